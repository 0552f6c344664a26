"""PAS Subscriptions: push a decided case to its submitter's rest-hook endpoints."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from priorauth.pas.records import CaseRecord
from priorauth.pas.response import claim_response_bundle
from priorauth.pas.subscriptions import notification_bundle
from priorauth.settings import Settings
from priorauth.store.cases import event
from priorauth.store.models import SubscriptionRow

log = logging.getLogger("priorauth.notify")


class Notifier:
    """Delivers notifications off the request thread; `flush()` waits for them (tests, shutdown)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="notify")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def case_decided(self, record: CaseRecord) -> None:
        fut = self._pool.submit(self._deliver, record)
        with self._lock:
            self._pending.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: Future[None]) -> None:
        with self._lock:
            self._pending.discard(fut)

    def flush(self, timeout: float = 30.0) -> None:
        with self._lock:
            pending = list(self._pending)
        for fut in pending:
            fut.result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _deliver(self, record: CaseRecord) -> None:
        org = record.keys.submitter.value
        with self.sessions() as s:
            subs = list(
                s.scalars(
                    select(SubscriptionRow).where(
                        SubscriptionRow.org_identifier == org, SubscriptionRow.status == "active"
                    )
                )
            )
        for sub in subs:
            self._send(sub, record)

    def _send(self, sub: SubscriptionRow, record: CaseRecord) -> None:
        now = datetime.now(UTC)
        with self.sessions() as s:
            # Count under the database's own increment so concurrent events get distinct numbers.
            s.execute(
                update(SubscriptionRow)
                .where(SubscriptionRow.id == sub.id)
                .values(events_sent=SubscriptionRow.events_sent + 1)
            )
            s.commit()
            number = s.scalar(
                select(SubscriptionRow.events_sent).where(SubscriptionRow.id == sub.id)
            )
        response = claim_response_bundle(record, now=now, insurer_name=self.settings.insurer_name)
        body = notification_bundle(
            subscription_id=sub.id,
            base_url=self.settings.base_url,
            req_topic=sub.topic,
            event_number=int(number or 1),
            response_bundle=response,
            now=now,
            kind="event-notification",
            content=sub.content,
        )
        headers = {"Content-Type": "application/fhir+json"}
        for h in sub.headers:
            name, _, value = h.partition(":")
            if name.strip():
                headers[name.strip()] = value.strip()
        outcome: dict[str, object]
        try:
            r = httpx.post(
                sub.endpoint,
                content=orjson.dumps(body),
                headers=headers,
                timeout=self.settings.notify_timeout_seconds,
            )
            outcome = {"subscription": sub.id, "http_status": r.status_code}
        except httpx.HTTPError as e:
            outcome = {"subscription": sub.id, "error": type(e).__name__}
        # Case ids only: no PHI in logs.
        log.info("notification for case %s: %s", record.id, outcome)
        with self.sessions() as s:
            event(s, record.id, "notified", "priorauth", now, **outcome)
            s.commit()
