"""The CapabilityStatement tells exactly what the server does (pas.capability)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from priorauth.pas.capability import capability_statement

BASE = "https://payer.example.org/fhir"


def _statement() -> dict[str, Any]:
    return capability_statement(BASE, version="1.2.3", now=datetime(2026, 5, 6, tzinfo=UTC))


def test_validates_as_fhir() -> None:
    CapabilityStatement.model_validate(_statement())


def test_identity() -> None:
    cs = _statement()
    assert cs["status"] == "active"
    assert cs["kind"] == "instance"
    assert cs["fhirVersion"] == "4.0.1"
    assert cs["format"] == ["json"]
    assert cs["date"] == "2026-05-06T00:00:00Z"
    assert cs["software"] == {"name": "priorauth", "version": "1.2.3"}
    assert cs["implementation"]["url"] == BASE
    assert cs["instantiates"] == [
        "http://hl7.org/fhir/us/davinci-pas/CapabilityStatement/IntermediaryCapabilities"
    ]


def test_lists_exactly_what_the_server_does() -> None:
    (rest,) = _statement()["rest"]
    assert rest["mode"] == "server"
    resources = {r["type"]: r for r in rest["resource"]}
    assert set(resources) == {"Claim", "ClaimResponse", "Subscription", "Questionnaire"}
    assert {o["name"] for o in resources["Questionnaire"]["operation"]} == {
        "questionnaire-package",
        "next-question",
    }
    claim = resources["Claim"]
    assert {(o["name"], o["definition"]) for o in claim["operation"]} == {
        ("submit", "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-submit"),
        ("inquire", "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-inquiry"),
    }
    assert "interaction" not in claim
    assert [i["code"] for i in resources["ClaimResponse"]["interaction"]] == ["read"]
    assert "operation" not in resources["ClaimResponse"]
    subscription = resources["Subscription"]
    assert [i["code"] for i in subscription["interaction"]] == [
        "create",
        "read",
        "update",
        "delete",
    ]
    assert [o["name"] for o in subscription["operation"]] == ["status"]
    assert subscription["extension"][0]["valueCanonical"] == (
        "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic"
    )
    assert "rest-hook" in subscription["documentation"]
    # No system-level interactions or operations are claimed.
    assert set(rest) == {"mode", "resource", "security"}
