"""The notification outbox: written with the decision, delivered by a worker, retried with
backoff, given up on visibly, and one subscription's failure never stops the others."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from priorauth.api.app import create_app
from priorauth.auth.actors import Actor
from priorauth.cli.main import app as cli
from priorauth.demo.samples import hemgenix_request
from priorauth.service.app_service import PriorAuthService
from priorauth.service.notifier import Notifier
from priorauth.store.db import make_engine, session_factory
from priorauth.store.models import OutboxRow, SubscriptionRow
from tests.api.conftest import Clock, clock, db_url, service  # noqa: F401
from tests.api.live import live_server
from tests.api.receiver import (
    Receiver,
    allow_loopback,
    receiver,  # noqa: F401 - the fixture
    receiving,
    subscription,
)

PAYER = Actor("payer", "client", role="payer-system")  # the payer's own system decides

MEMBER = "MOUTBOX77"


@pytest.fixture
def svc(service: PriorAuthService) -> PriorAuthService:
    allow_loopback(service)
    return service


def _npi(bundle: dict[str, Any]) -> str:
    claim = bundle["entry"][0]["resource"]
    ref = claim["provider"]["reference"]
    org = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == ref)
    return str(org["identifier"][0]["value"])


def _active(svc: PriorAuthService, endpoint: str, org: str) -> str:
    """A subscription whose handshake the endpoint accepted."""
    sid = str(svc.subscribe(subscription(endpoint, org))["id"])
    svc.notifier.flush()
    assert svc.subscription(sid)["status"] == "active"
    return sid


def _case(svc: PriorAuthService, name: str) -> tuple[str, str]:
    bundle = hemgenix_request(name=name, member_id=f"{MEMBER}{name}")
    return svc.submit(orjson.dumps(bundle)).record.id, _npi(bundle)


def _outbox(svc: PriorAuthService, case_id: str) -> list[OutboxRow]:
    with svc.sessions() as s:
        return list(s.scalars(select(OutboxRow).where(OutboxRow.case_id == case_id)))


def test_a_decision_and_its_notification_commit_together(
    svc: PriorAuthService, receiver: Receiver
) -> None:
    case_id, npi = _case(svc, "together")
    sid = _active(svc, receiver.url, npi)
    svc.decide(case_id, "approve", who=PAYER)
    # Durable before any delivery: another connection sees the row, with its event number.
    with session_factory(make_engine(svc.settings.database_url))() as s:
        [row] = s.scalars(select(OutboxRow).where(OutboxRow.case_id == case_id)).all()
        assert (row.status, row.subscription_id, row.event_number) == ("pending", sid, 1)
    assert receiver.kinds() == ["handshake"]
    report = svc.notifier.flush()
    assert report.delivered == 1
    assert receiver.kinds() == ["handshake", "event-notification"]
    [row] = _outbox(svc, case_id)
    assert row.status == "delivered" and row.body is None  # no copy of PHI is kept


def test_a_decision_whose_notification_cannot_be_written_is_not_stored(
    svc: PriorAuthService, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id, npi = _case(svc, "rollback")
    _active(svc, receiver.url, npi)

    def broken(*args: object, **kw: object) -> int:
        raise RuntimeError("the outbox write failed")

    monkeypatch.setattr("priorauth.service.app_service.enqueue_decision", broken)
    with pytest.raises(RuntimeError):
        svc.decide(case_id, "approve", who=PAYER)
    assert svc.case(case_id).status == "pended"  # neither the decision nor a notification
    assert _outbox(svc, case_id) == []


def test_one_subscriptions_failure_never_stops_the_others(
    svc: PriorAuthService,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    case_id, npi = _case(svc, "others")
    with receiving() as down, receiving() as up:
        # Stored before headers were checked: a non-ASCII header that used to raise an
        # uncaught UnicodeEncodeError and stop delivery to every later subscription.
        with svc.sessions() as s:
            s.add(
                SubscriptionRow(
                    id="legacy-non-ascii",
                    status="active",
                    org_identifier=npi,
                    endpoint=up.url,
                    content="full-resource",
                    headers=["X-Practice: Cliníca"],
                    topic=subscription(up.url, npi)["criteria"],
                    events_sent=0,
                    created_at=clock() - timedelta(days=1),
                )
            )
            s.commit()
        _active(svc, down.url, npi)
        down.status = 500
        clock.advance(seconds=1)
        _active(svc, up.url, npi)
        svc.decide(case_id, "approve", who=PAYER)
        with caplog.at_level(logging.INFO, logger="priorauth.notify"):
            report = svc.notifier.flush()
        assert (report.delivered, report.retrying, report.failed) == (1, 1, 1)
        assert up.kinds() == ["handshake", "event-notification"]  # once: not via the legacy row
        assert down.kinds() == ["handshake", "event-notification"]
    by_sub = {r.subscription_id: r for r in _outbox(svc, case_id)}
    legacy = by_sub.pop("legacy-non-ascii")
    assert legacy.status == "failed" and "channel.header[0]" in (legacy.last_error or "")
    assert sorted(r.status for r in by_sub.values()) == ["delivered", "pending"]
    # Failures are logged, by id and kind only.
    failed = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(failed) == 2 and all(case_id in m for m in failed)
    assert not any(MEMBER in r.getMessage() or "Clin" in r.getMessage() for r in caplog.records)


def test_retries_back_off_exponentially_then_give_up_visibly(
    svc: PriorAuthService,
    clock: Clock,
    receiver: Receiver,
    client_for: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    svc.notifier.settings = dataclasses.replace(
        svc.settings, outbox_max_attempts=3, outbox_backoff_seconds=30
    )
    case_id, npi = _case(svc, "backoff")
    _active(svc, receiver.url, npi)
    receiver.status = 502
    svc.decide(case_id, "approve", who=PAYER)
    with caplog.at_level(logging.WARNING, logger="priorauth.notify"):
        assert svc.notifier.flush().retrying == 1  # attempt 1
        assert svc.notifier.flush().outcomes == {}  # nothing is due yet
        clock.advance(seconds=29)
        assert svc.notifier.flush().outcomes == {}
        clock.advance(seconds=1)
        assert svc.notifier.flush().retrying == 1  # attempt 2, 30 s later
        clock.advance(seconds=59)
        assert svc.notifier.flush().outcomes == {}
        clock.advance(seconds=1)
        assert svc.notifier.flush().failed == 1  # attempt 3, 60 s later: the last
        clock.advance(days=1)
        receiver.status = 200
        assert svc.notifier.flush().outcomes == {}  # given up: never sent again
    events = [
        n for n, k in zip(receiver.received, receiver.kinds(), strict=True) if k != "handshake"
    ]
    assert len(events) == 3
    numbers = {
        p["valueString"]
        for _, note in events
        for p in note["entry"][0]["resource"]["parameter"]
        if p["name"] == "events-since-subscription-start"
    }
    assert numbers == {"1"}  # one event, however often it is retried
    assert "FAILED after 3 attempt(s)" in caplog.text and MEMBER not in caplog.text
    history = svc.case(case_id, with_history=True).history
    assert history[-1]["kind"] == "notify-failed" and history[-1]["http_status"] == 502

    # The payer sees it: the API (no content, no headers) and the command line.
    web = client_for(svc)
    assert web.get("/ui/metrics.json").json()["notifications"] == {"pending": 0, "failed": 1}
    assert "0 waiting to be delivered, 1 failed" in web.get("/ui/metrics").text
    listed = web.get("/api/outbox", params={"status": "failed"}).json()
    [row] = [r for r in listed if r["case"] == case_id]
    assert row["attempts"] == 3 and row["last_http_status"] == 502
    assert "provider-token" not in json.dumps(listed) and MEMBER not in json.dumps(listed)
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", svc.settings.database_url)
    out = CliRunner().invoke(cli, ["outbox", "list", "--status", "failed"])
    assert out.exit_code == 0, out.stderr
    assert case_id in out.stdout and "HTTP 502" in out.stdout
    assert CliRunner().invoke(cli, ["outbox", "list", "--status", "lost"]).exit_code == 2


@pytest.fixture
def client_for() -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(svc: PriorAuthService) -> TestClient:
        clients.append(TestClient(create_app(svc), raise_server_exceptions=False))
        return clients[-1]

    yield make
    for c in clients:
        c.close()


def test_the_cli_delivers_once(
    svc: PriorAuthService, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id, npi = _case(svc, "cli")
    _active(svc, receiver.url, npi)
    svc.decide(case_id, "deny", "Not indicated.", ("A",), who=PAYER)
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("PRIORAUTH_OUTBOUND_ALLOW", "127.0.0.1")
    monkeypatch.setenv("PRIORAUTH_OUTBOUND_ALLOW_HTTP", "true")
    r = CliRunner().invoke(cli, ["outbox", "deliver"])
    assert r.exit_code == 0, r.stderr
    assert "delivered 1" in r.stdout
    assert receiver.kinds() == ["handshake", "event-notification"]
    assert [row.status for row in _outbox(svc, case_id)] == ["delivered"]


def test_two_workers_never_take_the_same_row(svc: PriorAuthService, receiver: Receiver) -> None:
    case_id, npi = _case(svc, "claim")
    _active(svc, receiver.url, npi)
    svc.decide(case_id, "approve", who=PAYER)
    [row] = _outbox(svc, case_id)
    other = Notifier(svc.sessions, svc.settings, svc.clock, lambda: svc.outbound)
    assert svc.notifier._claim(row.id) is True
    assert other._claim(row.id) is False  # leased to the first until it is done
    other.close()


def test_deleting_a_subscription_cancels_its_notifications(
    svc: PriorAuthService, receiver: Receiver
) -> None:
    case_id, npi = _case(svc, "delete")
    sid = _active(svc, receiver.url, npi)
    svc.decide(case_id, "approve", who=PAYER)
    svc.unsubscribe(sid)
    assert svc.notifier.flush().outcomes == {}
    assert receiver.kinds() == ["handshake"]
    [row] = _outbox(svc, case_id)
    assert row.status == "cancelled" and row.body is None


def test_delete_subscription_over_http_is_a_clean_204(
    svc: PriorAuthService, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    sid = _active(svc, receiver.url, "8189991234")
    with caplog.at_level(logging.INFO), live_server(svc) as base:
        r = httpx.delete(f"{base}/fhir/Subscription/{sid}", timeout=60)
        assert r.status_code == 204 and r.content == b""
        assert httpx.get(f"{base}/fhir/Subscription/{sid}", timeout=60).status_code == 404
    # It used to send "null" with the 204, and uvicorn raised RuntimeError on every delete.
    assert "RuntimeError" not in caplog.text and "unexpected" not in caplog.text


def test_the_server_delivers_by_itself(svc: PriorAuthService) -> None:
    """The worker thread starts with the application and delivers without being asked."""
    arrived = threading.Event()
    with receiving() as r:
        original = r.server.RequestHandlerClass.do_POST  # type: ignore[attr-defined]

        def do_post(handler: Any) -> None:
            original(handler)
            arrived.set()

        r.server.RequestHandlerClass.do_POST = do_post  # type: ignore[attr-defined]
        with TestClient(create_app(svc)) as c:
            created = c.post("/fhir/Subscription", content=orjson.dumps(subscription(r.url, "1")))
            assert created.status_code == 201
            # A generous bound on a background thread, not a timing assumption.
            assert arrived.wait(60), "the worker did not deliver the handshake"
            svc.notifier.flush()  # waits for the worker's pass to finish
            assert c.get(f"/fhir/Subscription/{created.json()['id']}").json()["status"] == "active"
