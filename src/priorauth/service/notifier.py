"""PAS Subscriptions delivery through a durable outbox: written with the event, sent after.

A decision and the notifications it causes commit in one transaction (`enqueue_decision`),
so a notification is never lost to a crash and never sent for a decision that rolled
back. The delivery worker (`Notifier`: a thread in the server, or `priorauth outbox
deliver` once) claims due rows, sends each to its subscription's endpoint through the
outbound address policy, and records the outcome: delivered; retried after an
exponential backoff; or failed after the last attempt, visible in `GET /api/outbox`
and `priorauth outbox list`. Each row is tried on its own: one subscription's failure,
whatever it is, never stops the others. Logs name rows, subscriptions and cases by id.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx
import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from priorauth.pas.records import CaseRecord
from priorauth.pas.response import claim_response_bundle
from priorauth.pas.subscriptions import header_problem, notification_bundle, organizations
from priorauth.service.outbound import OutboundPolicy, OutboundRefused, UnresolvableHost, new_client
from priorauth.settings import Settings
from priorauth.store.cases import event
from priorauth.store.models import OutboxRow, SubscriptionRow

log = logging.getLogger("priorauth.notify")

PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"
HANDSHAKE: Literal["handshake"] = "handshake"
EVENT: Literal["event-notification"] = "event-notification"
BACKOFF_CAP = timedelta(hours=1)
# A row being sent is not picked again for this long: by another worker process, or
# after a crash mid-send (it is then sent again: delivery is at least once).
LEASE = timedelta(minutes=2)


def backoff(settings: Settings, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base, 2x base, 4x base ..., capped."""
    seconds = settings.outbox_backoff_seconds * 2 ** max(0, min(attempts - 1, 20))
    return min(timedelta(seconds=seconds), BACKOFF_CAP)


def enqueue_handshake(s: Session, sub: SubscriptionRow, now: datetime, settings: Settings) -> None:
    """The Backport handshake for a new rest-hook subscription (status "requested")."""
    body = notification_bundle(
        sub.id, settings.base_url, sub.topic, 0, None, now, HANDSHAKE, status="requested"
    )
    s.add(_row(sub, None, HANDSHAKE, 0, body, now))


def enqueue_decision(s: Session, record: CaseRecord, now: datetime, settings: Settings) -> int:
    """One outbox row per active subscription of the case's submitter, in the caller's
    transaction. Returns how many."""
    # A filter may name several organizations (spec-58): matched here, not in SQL.
    subs = [
        sub
        for sub in s.scalars(
            select(SubscriptionRow)
            .where(SubscriptionRow.status == "active")
            .order_by(SubscriptionRow.created_at, SubscriptionRow.id)
        )
        if record.keys.submitter.value in organizations(sub.org_identifier)
    ]
    if not subs:
        return 0
    response = claim_response_bundle(record, now=now, insurer_name=settings.insurer_name)
    for sub in subs:
        # Counted by the database's own increment: concurrent events get distinct numbers,
        # and the number stays the same however often the notification is retried.
        s.execute(
            update(SubscriptionRow)
            .where(SubscriptionRow.id == sub.id)
            .values(events_sent=SubscriptionRow.events_sent + 1)
        )
        number = int(
            s.scalar(select(SubscriptionRow.events_sent).where(SubscriptionRow.id == sub.id)) or 1
        )
        body = notification_bundle(
            sub.id,
            settings.base_url,
            sub.topic,
            number,
            response,
            now,
            EVENT,
            content=sub.content,  # type: ignore[arg-type]
        )
        s.add(_row(sub, record.id, EVENT, number, body, now, record.keys.submitter.value))
    return len(subs)


def _row(
    sub: SubscriptionRow,
    case_id: str | None,
    kind: str,
    number: int,
    body: dict[str, Any],
    now: datetime,
    org: str | None = None,
) -> OutboxRow:
    return OutboxRow(
        subscription_id=sub.id,
        # An event's row is the case's organization (a filter may list several).
        org_identifier=org or sub.org_identifier,
        case_id=case_id,
        kind=kind,
        event_number=number,
        body=orjson.dumps(body),
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


def cancel_pending(s: Session, subscription_id: str, now: datetime) -> None:
    """A deleted subscription's undelivered notifications are not sent."""
    s.execute(
        update(OutboxRow)
        .where(OutboxRow.subscription_id == subscription_id, OutboxRow.status == PENDING)
        .values(status=CANCELLED, body=None, updated_at=now)
    )


def listing(row: OutboxRow) -> dict[str, Any]:
    """A row as `GET /api/outbox` and `priorauth outbox list` show it: no payload, no headers."""
    return {
        "id": row.id,
        "subscription": row.subscription_id,
        "organization": row.org_identifier,
        "case": row.case_id,
        "kind": row.kind,
        "event_number": row.event_number,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.status == PENDING else None,
        "last_error": row.last_error,
        "last_http_status": row.last_http_status,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def rows(
    sessions: sessionmaker[Session],
    status: str | None = None,
    organization: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The newest outbox rows, optionally of one status and one organization."""
    q = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
    if status:
        q = q.where(OutboxRow.status == status)
    if organization:
        q = q.where(OutboxRow.org_identifier == organization)
    with sessions() as s:
        return [listing(r) for r in s.scalars(q)]


def counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    """How many rows are pending and how many failed (a figure for the payer's dashboards)."""
    from sqlalchemy import func

    with sessions() as s:
        found = dict(
            s.execute(
                select(OutboxRow.status, func.count())
                .where(OutboxRow.status.in_((PENDING, FAILED)))
                .group_by(OutboxRow.status)
            ).all()
        )
    return {PENDING: int(found.get(PENDING, 0)), FAILED: int(found.get(FAILED, 0))}


@dataclass
class DeliveryReport:
    """What one delivery pass did, by outcome."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    outcomes: dict[int, str] = field(default_factory=dict)  # row id -> outcome

    def add(self, row_id: int, outcome: str) -> None:
        self.outcomes[row_id] = outcome
        if outcome == DELIVERED:
            self.delivered += 1
        elif outcome == FAILED:
            self.failed += 1
        elif outcome == CANCELLED:
            self.cancelled += 1
        else:
            self.retrying += 1


class _Permanent(Exception):
    """A failure a retry cannot mend (a refused address, an invalid stored header)."""


@dataclass
class _Attempt:
    http_status: int | None = None
    error: str | None = None
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.http_status is not None


class Notifier:
    """The delivery worker. `start()` runs it in a thread; `deliver_due()` runs one pass."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        clock: Callable[[], datetime],
        policy: Callable[[], OutboundPolicy],
        write_lock: AbstractContextManager[object] | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.policy = policy  # read at each send: the address policy in force
        self.write_lock: AbstractContextManager[object] = write_lock or nullcontext()
        self._pass = threading.Lock()  # one pass at a time in this process
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._http: httpx.Client | None = None

    # --- the worker thread -------------------------------------------------------

    def start(self) -> None:
        """Deliver in a background thread: at once when woken, else every poll interval."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()
        log.info("outbox worker started; notifications go %s", self.policy().describe())

    def wake(self) -> None:
        """Something was written to the outbox: deliver now rather than at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the pass: a wake during it means "go again"
            try:
                self.deliver_due(stop=self._stop)
            except Exception as e:  # the database is away: try again at the next poll
                log.error("outbox delivery pass failed: %s", type(e).__name__)
            self._wake.wait(self.settings.outbox_poll_seconds)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.notify_timeout_seconds * 2 + 10)
            self._thread = None
        with self._pass:
            if self._http is not None:
                self._http.close()
                self._http = None

    def flush(self) -> DeliveryReport:
        """Deliver everything due now, after any pass already running (tests, shutdown)."""
        return self.deliver_due()

    # --- one pass ----------------------------------------------------------------------

    def deliver_due(self, limit: int = 200, stop: threading.Event | None = None) -> DeliveryReport:
        """Send every row due by the clock, each on its own; returns what happened.

        `stop` ends the pass early (the server is shutting down; the rest stay pending).
        """
        report = DeliveryReport()
        with self._pass:
            now = self.clock()
            with self.sessions() as s:
                due = list(
                    s.scalars(
                        select(OutboxRow.id)
                        .where(OutboxRow.status == PENDING, OutboxRow.next_attempt_at <= now)
                        .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
                        .limit(limit)
                    )
                )
            for row_id in due:
                if stop is not None and stop.is_set():
                    break
                try:
                    if self._claim(row_id):
                        report.add(row_id, self._deliver(row_id))
                except Exception as e:  # a database error on one row: it is tried again later
                    log.error("outbox row %s: delivery failed: %s", row_id, type(e).__name__)
                    report.add(row_id, "error")
        return report

    def _claim(self, row_id: int) -> bool:
        """Take the row for this attempt; False when another worker took it first."""
        now = self.clock()
        with self.write_lock, self.sessions() as s:
            taken = s.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id == row_id,
                    OutboxRow.status == PENDING,
                    OutboxRow.next_attempt_at <= now,
                )
                .values(
                    attempts=OutboxRow.attempts + 1, next_attempt_at=now + LEASE, updated_at=now
                )
            )
            s.commit()
        return bool(taken.rowcount == 1)  # type: ignore[attr-defined]

    def _deliver(self, row_id: int) -> str:
        now = self.clock()
        with self.write_lock, self.sessions() as s:
            row = s.get(OutboxRow, row_id)
            if row is None:
                return CANCELLED
            sub = s.get(SubscriptionRow, row.subscription_id)
            wanted = "requested" if row.kind == HANDSHAKE else "active"
            if sub is None or sub.status != wanted or row.body is None:
                # Deleted, or no longer in the state this notification was for.
                row.status, row.body, row.updated_at = CANCELLED, None, now
                s.commit()
                log.info("outbox row %s cancelled: subscription is gone or not %s", row_id, wanted)
                return CANCELLED
            endpoint, stored_headers, body = sub.endpoint, list(sub.headers), row.body
            payload = sub.payload_type or "application/fhir+json"
        attempt = self._send(endpoint, stored_headers, body, payload)
        return self._record(row_id, attempt)

    def _send(
        self,
        endpoint: str,
        stored_headers: list[str],
        body: bytes,
        payload: str = "application/fhir+json",
    ) -> _Attempt:
        try:
            headers = _request_headers(stored_headers, payload)
            if self._http is None:
                self._http = new_client(self.settings.notify_timeout_seconds)
            r = self.policy().send(self._http, "POST", endpoint, headers=headers, content=body)
        except _Permanent as e:
            return _Attempt(error=str(e), permanent=True)
        except UnresolvableHost as e:
            return _Attempt(error=str(e))  # DNS may come back
        except OutboundRefused as e:
            return _Attempt(error=f"endpoint refused: {e}", permanent=True)
        except httpx.HTTPError as e:
            return _Attempt(error=f"could not deliver: {type(e).__name__}")
        except Exception as e:  # a bug must not stop the other rows; its type is enough
            log.error("outbox send raised %s", type(e).__name__)
            return _Attempt(error=f"unexpected {type(e).__name__}")
        if 200 <= r.status_code < 300:
            return _Attempt(http_status=r.status_code)
        return _Attempt(http_status=r.status_code, error=f"endpoint answered HTTP {r.status_code}")

    def _record(self, row_id: int, attempt: _Attempt) -> str:
        now = self.clock()
        with self.write_lock, self.sessions() as s:
            row = s.get(OutboxRow, row_id)
            if row is None:
                return CANCELLED
            sub = s.get(SubscriptionRow, row.subscription_id)
            row.updated_at = now
            row.last_http_status = attempt.http_status
            row.last_error = attempt.error[:300] if attempt.error else None
            if attempt.ok:
                outcome = row.status = DELIVERED
                row.body = None
            elif (
                row.kind == HANDSHAKE  # one try: the client is waiting to see it active
                or attempt.permanent
                or row.attempts >= self.settings.outbox_max_attempts
            ):
                outcome = row.status = FAILED
            else:
                outcome = "retrying"
                row.next_attempt_at = now + backoff(self.settings, row.attempts)
            if row.kind == HANDSHAKE and sub is not None and sub.status == "requested":
                # Backport: active after a handshake the endpoint accepted, error otherwise.
                sub.status = "active" if attempt.ok else "error"
            if row.case_id is not None and outcome in (DELIVERED, FAILED):
                detail: dict[str, Any] = {"subscription": row.subscription_id}
                if attempt.http_status is not None:
                    detail["http_status"] = attempt.http_status
                if attempt.error:
                    detail["error"] = row.last_error
                kind = "notified" if outcome == DELIVERED else "notify-failed"
                event(s, row.case_id, kind, "priorauth", now, attempts=row.attempts, **detail)
            attempts, next_at = row.attempts, row.next_attempt_at
            what = f"{row.kind}, subscription {row.subscription_id}, case {row.case_id}"
            s.commit()
        # Ids, counts and the error's kind only: no PHI.
        if outcome == DELIVERED:
            log.info("outbox row %s delivered (%s), attempt %d", row_id, what, attempts)
        elif outcome == FAILED:
            log.warning(
                "outbox row %s FAILED after %d attempt(s) (%s): %s",
                row_id,
                attempts,
                what,
                attempt.error,
            )
        else:
            log.warning(
                "outbox row %s attempt %d failed (%s): %s; next attempt at %s",
                row_id,
                attempts,
                what,
                attempt.error,
                next_at.isoformat(),
            )
        return outcome


def _request_headers(stored: list[str], payload: str = "application/fhir+json") -> dict[str, str]:
    """The channel's headers, checked again: rows stored before the checks existed; the
    Content-Type is the subscription's channel.payload."""
    headers = {"Content-Type": payload}
    for n, header in enumerate(stored):
        problem = header_problem(header)
        if problem is not None:
            raise _Permanent(f"channel.header[{n}] is not valid: {problem}")
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    return headers
