"""PAS Subscriptions: reading a client's request, the stored resource, notifications."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.subscription import Subscription

from priorauth.errors import InvalidRequest
from priorauth.intake.request import PasRequest
from priorauth.pas.records import CaseRecord
from priorauth.pas.request import read_keys
from priorauth.pas.response import claim_response_bundle
from priorauth.pas.subscriptions import (
    NOTIFICATION_PROFILE,
    PAS_TOPIC,
    STATUS_PROFILE,
    SubscriptionRequest,
    notification_bundle,
    read_subscription,
    subscription_resource,
)
from priorauth.report.evaluation import Evaluation
from tests.conftest import shared_dir

NOW = datetime(2026, 5, 6, 14, 30, tzinfo=UTC)
BASE = "https://payer.example.org/fhir/"


def _good() -> dict[str, Any]:
    path = shared_dir("fixtures", "davinci-pas") / "PAS_Subscription_example_v221_good.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _response_bundle() -> dict[str, Any]:
    request = json.loads((shared_dir("examples", "hemgenix") / "pend.json").read_text())
    case = CaseRecord(
        id="7d1f0c2e-9b4a-4c53-8e1f-2a3b4c5d6e7f",
        status="pended",
        keys=read_keys(request),
        auth_number="PA26-7",
        received_at=NOW,
        due_at=NOW + timedelta(days=3),
        policy_id="cigna-ip0535",
        recommendation="pend",
        evaluation=Evaluation.parse(
            {"missing": ["Platelet count (LOINC 777-3) dated within 30 days."]}
        ),
        request=PasRequest(None, request),
    )
    return claim_response_bundle(case, now=NOW)


# --- reading a Subscription ------------------------------------------------------------


def test_the_good_fixture_parses() -> None:
    req = read_subscription(_good())
    assert req == SubscriptionRequest(
        topic=PAS_TOPIC,
        org_identifier="8189991234",
        endpoint="https://subscriptions.argo.run/fhir/r4/$subscription-hook",
        content="full-resource",
        headers=(),
        channel="rest-hook",
        payload="application/json",  # the fixture's channel.payload, honoured
    )


def test_headers_and_a_fhir_json_payload_are_accepted() -> None:
    sub = _good()
    sub["channel"]["header"] = ["Authorization: Bearer abc"]
    sub["channel"]["payload"] = "application/fhir+json; charset=utf-8"
    req = read_subscription(sub)
    assert req.payload == "application/fhir+json"
    assert req.headers == ("Authorization: Bearer abc",)


def test_id_only_is_refused() -> None:
    """PAS 2.2.1 spec-62: servers support content=full-resource only."""
    sub = _good()
    sub["channel"]["_payload"]["extension"][0]["valueCode"] = "id-only"
    with pytest.raises(InvalidRequest, match="spec-62"):
        read_subscription(sub)


def test_a_comma_separated_organization_list_is_read() -> None:
    """PAS 2.2.1 spec-58: org-identifier = one identifier or a comma-separated list."""
    sub = _good()
    sub["_criteria"]["extension"][0]["valueString"] = "org-identifier=111, 222 ,,333"
    req = read_subscription(sub)
    assert req.organizations == ("111", "222", "333")


def test_content_defaults_to_full_resource() -> None:
    sub = _good()
    del sub["channel"]["_payload"]
    assert read_subscription(sub).content == "full-resource"


def _set(sub: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    node: Any = sub
    for step in parents:
        node = node[int(step)] if step.isdigit() else node[step]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return sub


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("resourceType", "Basic", "resourceType must be Subscription"),
        ("criteria", "Claim?status=active", "PAS SubscriptionTopic"),
        ("_criteria", _DELETE, "org-identifier"),
        ("_criteria.extension.0.valueString", "npi=8189991234", "org-identifier"),
        ("_criteria.extension.0.valueString", "org-identifier=", "org-identifier"),
        ("_criteria.extension.0.url", "http://example.org/other", "org-identifier"),
        ("channel", _DELETE, "channel is required"),
        ("channel.type", "websocket", "only rest-hook is supported"),
        ("channel.type", "email", "only rest-hook is supported"),
        ("channel.endpoint", _DELETE, "endpoint"),
        ("channel.endpoint", "ftp://example.org/hook", "http"),
        ("channel.endpoint", "/relative/hook", "http"),
        ("channel.endpoint", "https://", "http"),
        ("channel.endpoint", "https://exa mple.org/hook", "endpoint"),
        ("channel.endpoint", "https://example.org:99999/hook", "endpoint"),
        ("channel.endpoint", 42, "endpoint"),
        ("channel._payload.extension.0.valueCode", "empty", "full-resource"),
        ("channel.payload", "application/fhir+xml", "application/fhir\\+json"),
        ("channel.header", "Authorization: x", "list"),
        ("channel.header", ["no colon"], "Name: value"),
        ("channel.header", ["X-A: 1\r\nX-B: 2"], "line breaks"),
        ("channel.header", ["Host: 169.254.169.254"], "may not set Host"),
        ("channel.header", ["Connection: Upgrade"], "hop-by-hop"),
        ("channel.header", ["X-Name: Zoë"], "printable ASCII"),
        ("channel.header", ["X-A: 1"] * 21, "at most 20"),
        ("channel.endpoint", "https://user:pw@example.org/hook", "credentials"),
        ("channel.endpoint", "https://exämple.org/hook", "ASCII"),
    ],
)
def test_refused(path: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        read_subscription(_set(_good(), path, value))


def test_not_an_object() -> None:
    with pytest.raises(InvalidRequest):
        read_subscription([])  # type: ignore[arg-type]


# --- the stored Subscription -----------------------------------------------------------


def test_subscription_resource_round_trips() -> None:
    sub = _good()
    sub["channel"]["header"] = ["Authorization: Bearer secret"]
    req = read_subscription(sub)
    stored = subscription_resource("sub-1", req, "active")
    Subscription.model_validate(stored)
    assert stored["id"] == "sub-1"
    assert stored["status"] == "active"
    assert stored["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription",
        "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-subscription",
    ]
    assert "header" not in stored["channel"]  # credentials are not handed back
    assert "Bearer secret" not in json.dumps(stored)
    assert read_subscription(stored) == SubscriptionRequest(**{**_fields(req), "headers": ()})


def _fields(req: SubscriptionRequest) -> dict[str, Any]:
    return {f: getattr(req, f) for f in SubscriptionRequest.__dataclass_fields__}


# --- notifications ---------------------------------------------------------------------


def _parameters(bundle: dict[str, Any]) -> dict[str, Any]:
    status = bundle["entry"][0]["resource"]
    assert status["resourceType"] == "Parameters"
    assert status["meta"]["profile"] == [STATUS_PROFILE]
    return {p["name"]: p for p in status["parameter"]}


def test_event_notification_full_resource() -> None:
    response = _response_bundle()
    bundle = notification_bundle("sub-1", BASE, PAS_TOPIC, 3, response, NOW, "event-notification")
    Bundle.model_validate(bundle)
    assert bundle["type"] == "history"
    assert bundle["meta"]["profile"] == [NOTIFICATION_PROFILE]
    assert bundle["timestamp"] == "2026-05-06T14:30:00Z"
    params = _parameters(bundle)
    assert list(params) == [
        "subscription",
        "topic",
        "status",
        "type",
        "events-since-subscription-start",
        "notification-event",
    ]
    assert params["subscription"]["valueReference"]["reference"] == (
        "https://payer.example.org/fhir/Subscription/sub-1"
    )
    assert params["topic"]["valueCanonical"] == PAS_TOPIC
    assert params["status"]["valueCode"] == "active"
    assert params["type"]["valueCode"] == "event-notification"
    assert params["events-since-subscription-start"]["valueString"] == "3"
    parts = params["notification-event"]["part"]
    assert parts[0] == {"name": "event-number", "valueString": "3"}
    assert parts[1] == {"name": "timestamp", "valueInstant": "2026-05-06T14:30:00Z"}
    focus = [p["valueReference"]["reference"] for p in parts if p["name"] == "focus"]
    # spec-61: the focus is the full PAS response Bundle, carried whole as one entry.
    (entry,) = bundle["entry"][1:]
    assert focus == [entry["fullUrl"]] == [f"urn:uuid:{response['id']}"]
    assert entry["resource"] == response
    assert entry["request"] == {"method": "POST", "url": "https://payer.example.org/fhir/Bundle"}
    assert all("request" in e and "response" in e for e in bundle["entry"])


def test_notification_follows_the_pas_example_shape() -> None:
    path = shared_dir("fixtures", "davinci-pas") / "PAS_notification_example_full_resource.json"
    example = json.loads(path.read_text())
    ours = notification_bundle("admission", BASE, PAS_TOPIC, 1, _response_bundle(), NOW)
    assert ours["type"] == example["type"]
    assert ours["meta"] == example["meta"]
    theirs_params = [p["name"] for p in example["entry"][0]["resource"]["parameter"]]
    assert [p["name"] for p in ours["entry"][0]["resource"]["parameter"]] == theirs_params
    theirs_parts = [p["name"] for p in example["entry"][0]["resource"]["parameter"][-1]["part"]]
    ours_parts = [p["name"] for p in ours["entry"][0]["resource"]["parameter"][-1]["part"]]
    # Same parts in the same order; the focus being the whole response Bundle (spec-61),
    # ours names no additional-context.
    assert ours_parts == [p for p in dict.fromkeys(theirs_parts) if p != "additional-context"]
    assert ours["entry"][0]["request"]["method"] == example["entry"][0]["request"]["method"]


def test_event_notification_id_only() -> None:
    response = _response_bundle()
    bundle = notification_bundle("sub-1", BASE, PAS_TOPIC, 1, response, NOW, content="id-only")
    Bundle.model_validate(bundle)
    claim_response_id = response["entry"][0]["resource"]["id"]
    url = f"https://payer.example.org/fhir/ClaimResponse/{claim_response_id}"
    parts = _parameters(bundle)["notification-event"]["part"]
    assert [p["valueReference"]["reference"] for p in parts if "valueReference" in p] == [url]
    (entry,) = bundle["entry"][1:]
    assert entry["fullUrl"] == url
    assert "resource" not in entry


@pytest.mark.parametrize("kind", ["handshake", "heartbeat"])
def test_handshake_and_heartbeat_carry_no_event(kind: Any) -> None:
    bundle = notification_bundle("sub-1", BASE, PAS_TOPIC, 0, None, NOW, kind, status="requested")
    Bundle.model_validate(bundle)
    assert len(bundle["entry"]) == 1
    params = _parameters(bundle)
    assert "notification-event" not in params
    assert params["type"]["valueCode"] == kind
    assert params["status"]["valueCode"] == "requested"
    assert params["events-since-subscription-start"]["valueString"] == "0"


def test_event_notification_needs_a_response_bundle() -> None:
    with pytest.raises(ValueError, match="response Bundle"):
        notification_bundle("sub-1", BASE, PAS_TOPIC, 1, None, NOW)
    not_first = copy.deepcopy(_response_bundle())
    not_first["entry"].reverse()
    with pytest.raises(ValueError, match="ClaimResponse"):
        notification_bundle("sub-1", BASE, PAS_TOPIC, 1, not_first, NOW)
