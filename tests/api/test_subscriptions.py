"""PAS Subscriptions: a decided case is pushed to the submitter's rest-hook endpoint."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from priorauth.demo.samples import hemgenix_request
from priorauth.service.app_service import PriorAuthService
from tests.api.conftest import action_codes, claim_response, post_fhir
from tests.conftest import shared_dir


class Receiver:
    """A real HTTP endpoint on loopback that records what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                received.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _subscription(endpoint: str, org: str) -> dict:
    sub = json.loads(
        (
            shared_dir("fixtures", "davinci-pas") / "PAS_Subscription_example_v221_good.json"
        ).read_text()
    )
    sub = copy.deepcopy(sub)
    sub["channel"]["endpoint"] = endpoint
    sub["channel"]["header"] = ["Authorization: Bearer provider-token"]
    sub["_criteria"]["extension"][0]["valueString"] = f"org-identifier={org}"
    return sub


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
    created = post_fhir(client, "/fhir/Subscription", _subscription(receiver.url, npi))
    assert created.status_code == 201, created.text
    sub_id = created.json()["id"]
    assert client.get(f"/fhir/Subscription/{sub_id}").json()["status"] == "active"

    # a subscriber for another organization must hear nothing
    other = Receiver()
    try:
        post_fhir(client, "/fhir/Subscription", _subscription(other.url, "9999999999"))
        cr = claim_response(post_fhir(client, "/fhir/Claim/$submit", bundle))
        r = client.post(
            f"/api/cases/{cr['id']}/decision", json={"decision": "approve", "decided_by": "dr.md"}
        )
        assert r.status_code == 200
        service.notifier.flush()
        assert other.received == []
    finally:
        other.close()

    assert len(receiver.received) == 1
    headers, note = receiver.received[0]
    assert headers["Authorization"] == "Bearer provider-token"
    assert headers["Content-Type"].startswith("application/fhir+json")
    assert note["type"] == "history"
    status = note["entry"][0]["resource"]
    assert status["resourceType"] == "Parameters"
    pushed = next(
        e["resource"] for e in note["entry"] if e["resource"]["resourceType"] == "ClaimResponse"
    )
    assert pushed["id"] == cr["id"]
    assert action_codes(pushed) == ["A1"]
    history = service.case(cr["id"], with_history=True).history
    assert history[-1]["kind"] == "notified" and history[-1]["http_status"] == 200


def test_bad_subscriptions_are_refused(client: TestClient, receiver: Receiver) -> None:
    sub = _subscription(receiver.url, "123")
    sub["channel"]["type"] = "websocket"
    r = post_fhir(client, "/fhir/Subscription", sub)
    assert r.status_code == 422
    assert "rest-hook" in r.json()["issue"][0]["diagnostics"]
    nofilter = _subscription(receiver.url, "123")
    del nofilter["_criteria"]
    assert post_fhir(client, "/fhir/Subscription", nofilter).status_code == 422
    assert client.post("/fhir/Subscription", content=b"{").status_code == 400
    assert client.get("/fhir/Subscription/nope").status_code == 404


def test_unreachable_subscriber_does_not_undo_the_decision(
    client: TestClient, service: PriorAuthService
) -> None:
    bundle = hemgenix_request(name="sub-down")
    post_fhir(
        client,
        "/fhir/Subscription",
        _subscription("http://127.0.0.1:9/hook", _provider_npi(bundle)),
    )
    cr = claim_response(post_fhir(client, "/fhir/Claim/$submit", bundle))
    r = client.post(
        f"/api/cases/{cr['id']}/decision", json={"decision": "approve", "decided_by": "md"}
    )
    assert r.status_code == 200
    service.notifier.flush()
    case = service.case(cr["id"], with_history=True)
    assert case.status == "approved"
    assert case.history[-1]["kind"] == "notified" and "error" in case.history[-1]
