"""PAS Subscriptions (issue 13 item 6): the subscriptions-test-kit's R4 Backport server checks
(subscription creation, handshake, $status, notification shape) and PAS 2.2.1 spec-58, spec-61,
spec-62; kit fixture PAS_Subscription_example_v221_good.json."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from priorauth.demo.samples import hemgenix_request
from priorauth.service.app_service import PriorAuthService
from tests.api.conftest import claim_response, post_fhir
from tests.api.receiver import (
    Receiver,
    allow_loopback,
    receiver,  # noqa: F401 - the fixture
    subscription,
)

SUBMIT = "/fhir/Claim/$submit"


@pytest.fixture(autouse=True)
def _loopback_allowed(service: PriorAuthService) -> None:
    allow_loopback(service)


def _npi(bundle: dict[str, Any]) -> str:
    claim = bundle["entry"][0]["resource"]
    ref = claim["provider"]["reference"]
    org = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == ref)
    return str(org["identifier"][0]["value"])


def _status(note: dict[str, Any]) -> dict[str, Any]:
    return {p["name"]: p for p in note["entry"][0]["resource"]["parameter"]}


def test_requested_then_handshake_then_active_and_status(
    client: TestClient, service: PriorAuthService, receiver: Receiver
) -> None:
    """Backport: created "requested"; the handshake (type handshake) goes to the endpoint;
    then "active"; $status answers a SubscriptionStatus of type query-status. Every URL is
    under the /fhir base."""
    created = post_fhir(client, "/fhir/Subscription", subscription(receiver.url, "1234567893"))
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "requested"
    sub_id = created.json()["id"]
    service.notifier.flush()
    assert receiver.kinds() == ["handshake"]
    handshake = _status(receiver.received[0][1])
    assert handshake["status"]["valueCode"] == "requested"
    assert handshake["subscription"]["valueReference"]["reference"].endswith(
        f"/fhir/Subscription/{sub_id}"
    )
    assert client.get(f"/fhir/Subscription/{sub_id}").json()["status"] == "active"
    status = client.get(f"/fhir/Subscription/{sub_id}/$status")
    assert status.status_code == 200, status.text
    params = {p["name"]: p for p in status.json()["parameter"]}
    assert status.json()["resourceType"] == "Parameters"
    assert params["type"]["valueCode"] == "query-status"
    assert params["status"]["valueCode"] == "active"
    assert params["events-since-subscription-start"]["valueString"] == "0"
    assert client.get("/fhir/Subscription/nope/$status").status_code == 404


def test_the_notification_focus_is_the_full_response_bundle(
    client: TestClient, service: PriorAuthService, receiver: Receiver
) -> None:
    """spec-61: the notification includes a full PAS response Bundle (the focus); its
    channel.payload (application/json in the IG example) is the Content-Type sent."""
    bundle = hemgenix_request(name="conf-sub")
    post_fhir(client, "/fhir/Subscription", subscription(receiver.url, _npi(bundle)))
    service.notifier.flush()
    cr = claim_response(post_fhir(client, SUBMIT, bundle))
    assert client.post(f"/api/cases/{cr['id']}/decision", json={"decision": "approve"}).is_success
    service.notifier.flush()
    assert receiver.kinds() == ["handshake", "event-notification"]
    headers, note = receiver.received[1]
    assert headers["Content-Type"].startswith("application/json")
    event = _status(note)["notification-event"]["part"]
    (focus,) = [p["valueReference"]["reference"] for p in event if p["name"] == "focus"]
    (entry,) = note["entry"][1:]
    assert entry["fullUrl"] == focus
    assert entry["resource"]["resourceType"] == "Bundle"
    assert entry["resource"]["identifier"]["value"]
    assert entry["resource"]["entry"][0]["resource"]["id"] == cr["id"]
    assert "/fhir/" in entry["request"]["url"]


def test_id_only_subscriptions_are_refused(client: TestClient, receiver: Receiver) -> None:
    """spec-62: PAS servers support content=full-resource only (422 with an outcome)."""
    sub = subscription(receiver.url, "1234567893")
    sub["channel"]["_payload"]["extension"][0]["valueCode"] = "id-only"
    r = post_fhir(client, "/fhir/Subscription", sub)
    assert r.status_code == 422
    assert r.json()["resourceType"] == "OperationOutcome"


def test_a_comma_separated_organization_list_hears_each_organization(
    client: TestClient, service: PriorAuthService, receiver: Receiver
) -> None:
    """spec-58: the filter names one organization or a comma-separated list of them."""
    bundle = hemgenix_request(name="conf-sub-list")
    orgs = f"9999999999,{_npi(bundle)}"
    created = post_fhir(client, "/fhir/Subscription", subscription(receiver.url, orgs))
    assert created.status_code == 201, created.text
    service.notifier.flush()
    cr = claim_response(post_fhir(client, SUBMIT, bundle))
    client.post(f"/api/cases/{cr['id']}/decision", json={"decision": "approve"})
    service.notifier.flush()
    assert receiver.kinds() == ["handshake", "event-notification"]


def test_a_subscription_update_is_handshaken_again(
    client: TestClient, service: PriorAuthService, receiver: Receiver
) -> None:
    """FHIR update (PUT) of a Subscription, as the CapabilityStatement claims: back to
    "requested", a new handshake, then active again."""
    sub = subscription(receiver.url, "1234567893")
    sub_id = post_fhir(client, "/fhir/Subscription", sub).json()["id"]
    service.notifier.flush()
    sub["id"] = sub_id
    sub["channel"]["payload"] = "application/fhir+json"
    r = client.put(f"/fhir/Subscription/{sub_id}", json=sub)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "requested"
    assert r.json()["channel"]["payload"] == "application/fhir+json"
    service.notifier.flush()
    assert receiver.kinds() == ["handshake", "handshake"]
    assert client.get(f"/fhir/Subscription/{sub_id}").json()["status"] == "active"
    assert client.put("/fhir/Subscription/nope", json={**sub, "id": "nope"}).status_code == 404
