"""PAS Subscriptions: a decided case is pushed to the submitter's rest-hook endpoint."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from priorauth.demo.samples import hemgenix_request
from priorauth.service.app_service import PriorAuthService
from tests.api.conftest import action_codes, claim_response, post_fhir
from tests.api.receiver import (
    Receiver,
    allow_loopback,
    receiver,  # noqa: F401 - the fixture
    subscription,
)


@pytest.fixture(autouse=True)
def _loopback_allowed(service: PriorAuthService) -> None:
    allow_loopback(service)


def _provider_npi(bundle: dict) -> str:
    claim = bundle["entry"][0]["resource"]
    ref = claim["provider"]["reference"]
    org = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == ref)
    return org["identifier"][0]["value"]


def test_decision_is_pushed_to_the_subscriber(
    client: TestClient, service: PriorAuthService, receiver: Receiver
) -> None:
    bundle = hemgenix_request(name="sub-1")
    npi = _provider_npi(bundle)
    created = post_fhir(client, "/fhir/Subscription", subscription(receiver.url, npi))
    assert created.status_code == 201, created.text
    # Backport: "requested" until the endpoint accepts the handshake, then "active".
    assert created.json()["status"] == "requested"
    sub_id = created.json()["id"]
    service.notifier.flush()
    assert receiver.kinds() == ["handshake"]
    assert client.get(f"/fhir/Subscription/{sub_id}").json()["status"] == "active"

    # a subscriber for another organization must hear nothing
    other = Receiver()
    try:
        post_fhir(client, "/fhir/Subscription", subscription(other.url, "9999999999"))
        cr = claim_response(post_fhir(client, "/fhir/Claim/$submit", bundle))
        r = client.post(f"/api/cases/{cr['id']}/decision", json={"decision": "approve"})
        assert r.status_code == 200
        service.notifier.flush()
        assert other.kinds() == ["handshake"]  # and no event
    finally:
        other.close()

    assert receiver.kinds() == ["handshake", "event-notification"]
    headers, note = receiver.received[1]
    assert headers["Authorization"] == "Bearer provider-token"
    # The IG example asks for channel.payload application/json: honoured.
    assert headers["Content-Type"].startswith("application/json")
    assert note["type"] == "history"
    status = note["entry"][0]["resource"]
    assert status["resourceType"] == "Parameters"
    # spec-61: the focus is the whole PAS response Bundle, its ClaimResponse first.
    (response,) = [e["resource"] for e in note["entry"][1:]]
    assert response["resourceType"] == "Bundle"
    pushed = response["entry"][0]["resource"]
    assert pushed["id"] == cr["id"]
    assert action_codes(pushed) == ["A1"]
    history = service.case(cr["id"], with_history=True).history
    assert history[-1]["kind"] == "notified" and history[-1]["http_status"] == 200


def test_bad_subscriptions_are_refused(client: TestClient, receiver: Receiver) -> None:
    sub = subscription(receiver.url, "123")
    sub["channel"]["type"] = "websocket"
    r = post_fhir(client, "/fhir/Subscription", sub)
    assert r.status_code == 422
    assert "rest-hook" in r.json()["issue"][0]["diagnostics"]
    nofilter = subscription(receiver.url, "123")
    del nofilter["_criteria"]
    assert post_fhir(client, "/fhir/Subscription", nofilter).status_code == 422
    assert client.post("/fhir/Subscription", content=b"{").status_code == 400
    assert client.get("/fhir/Subscription/nope").status_code == 404


def test_unreachable_subscriber_does_not_undo_the_decision(
    client: TestClient, service: PriorAuthService, receiver: Receiver
) -> None:
    bundle = hemgenix_request(name="sub-down")
    post_fhir(client, "/fhir/Subscription", subscription(receiver.url, _provider_npi(bundle)))
    service.notifier.flush()  # the handshake: active
    receiver.status = 503  # then the subscriber goes down
    cr = claim_response(post_fhir(client, "/fhir/Claim/$submit", bundle))
    r = client.post(f"/api/cases/{cr['id']}/decision", json={"decision": "approve"})
    assert r.status_code == 200
    service.notifier.flush()
    case = service.case(cr["id"], with_history=True)
    assert case.status == "approved"
    [row] = [o for o in service.outbox() if o["case"] == cr["id"]]
    assert row["status"] == "pending" and row["last_http_status"] == 503  # retried later


def test_failed_handshake_leaves_the_subscription_in_error(
    client: TestClient, service: PriorAuthService, receiver: Receiver
) -> None:
    receiver.status = 404
    created = post_fhir(client, "/fhir/Subscription", subscription(receiver.url, "123"))
    assert created.status_code == 201
    service.notifier.flush()
    assert receiver.kinds() == ["handshake"]
    assert client.get(f"/fhir/Subscription/{created.json()['id']}").json()["status"] == "error"
