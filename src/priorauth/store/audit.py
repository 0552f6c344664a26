"""The audit trail: append-only records chained by hash, a verifier, and FHIR AuditEvent export."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from priorauth.store.models import AuditHeadRow, AuditRow

GENESIS = "0" * 64
_sqlite_lock = threading.Lock()  # SQLite: one appender at a time within the process


@dataclass(frozen=True)
class Actor:
    """Who did something, and from where. `kind`: user, client, system or anonymous."""

    id: str = "anonymous"
    kind: str = "anonymous"
    source: str | None = None
    organization: str | None = None  # a client's organization (NPI), for access checks
    scopes: frozenset[str] = field(default_factory=frozenset)
    role: str | None = None  # a client's: "provider" (one organization) or "payer-system"


SYSTEM = Actor("priorauth", "system")


@dataclass(frozen=True)
class Entry:
    """One record to append."""

    actor: Actor
    action: str
    outcome: str = "success"
    entity: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _digest(prev: str, fields: dict[str, Any]) -> str:
    # Canonical JSON (sorted keys) so the same record always hashes the same.
    body = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev.encode() + body).hexdigest()


def _fields(row: AuditRow) -> dict[str, Any]:
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    return {
        "id": row.id,
        "at": at.isoformat(timespec="microseconds"),
        "actor": row.actor,
        "actor_kind": row.actor_kind,
        "action": row.action,
        "outcome": row.outcome,
        "entity": row.entity,
        "source": row.source,
        "detail": row.detail,
    }


class AuditLog:
    """Appends records in their own short transactions; verifies and exports the chain."""

    def __init__(self, engine: Engine) -> None:
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._sqlite = engine.dialect.name == "sqlite"

    def record(
        self,
        actor: Actor,
        action: str,
        outcome: str = "success",
        entity: str | None = None,
        now: datetime | None = None,
        **detail: Any,
    ) -> int:
        """Append one record; returns its id. Detail must never carry PHI."""
        return self.record_many([Entry(actor, action, outcome, entity, detail)], now)[-1]

    def record_many(self, entries: list[Entry], now: datetime | None = None) -> list[int]:
        """Append several records in one transaction (one disk flush); returns their ids."""
        if self._sqlite:
            with _sqlite_lock:
                return self._append(entries, now or datetime.now(UTC))
        return self._append(entries, now or datetime.now(UTC))

    def _append(self, entries: list[Entry], now: datetime) -> list[int]:
        with self.sessions() as s:
            ids = self.append_in(s, entries, now)
            s.commit()
        return ids

    def append_in(self, s: Session, entries: list[Entry], now: datetime | None = None) -> list[int]:
        """Append within the caller's transaction: the records commit with what they record."""
        now = now or datetime.now(UTC)
        ids = []
        # Locking the head row serializes appends, so two records never share a parent.
        head = s.scalars(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).one()
        for e in entries:
            row = AuditRow(
                id=head.last_id + 1,
                at=now,
                actor=e.actor.id,
                actor_kind=e.actor.kind,
                action=e.action,
                outcome=e.outcome,
                entity=e.entity,
                source=e.actor.source,
                detail=e.detail,
                prev_hash=head.last_hash,
                hash="",
            )
            row.hash = _digest(head.last_hash, _fields(row))
            s.add(row)
            head.last_id, head.last_hash = row.id, row.hash
            ids.append(row.id)
        return ids

    def verify(self) -> tuple[bool, int, str | None]:
        """(intact, records checked, first problem) — the problem names the record."""
        prev, expected_id, checked = GENESIS, 1, 0
        with self.sessions() as s:
            for row in s.scalars(select(AuditRow).order_by(AuditRow.id)).yield_per(1000):
                if row.id != expected_id:
                    return False, checked, f"record {expected_id} is missing (next is {row.id})"
                if row.prev_hash != prev:
                    return (
                        False,
                        checked,
                        f"record {row.id}: its link to record {row.id - 1} is broken",
                    )
                if _digest(prev, _fields(row)) != row.hash:
                    return False, checked, f"record {row.id} was altered (its hash does not match)"
                prev, expected_id, checked = row.hash, expected_id + 1, checked + 1
            head = s.get(AuditHeadRow, 1)
            if head is not None and (head.last_id != checked or head.last_hash != prev):
                return (
                    False,
                    checked,
                    f"records after {checked} were removed (head is {head.last_id})",
                )
        return True, checked, None

    def rows(self, session: Session | None = None) -> list[AuditRow]:
        with self.sessions() as s:
            return list(s.scalars(select(AuditRow).order_by(AuditRow.id)))


_ACTION_CODE = {"read": "R", "inquire": "E", "search": "E", "submit": "C", "decide": "U",
                "evaluate": "E", "sign-in": "E", "token": "E", "subscribe": "C",
                "revise": "U", "cancel": "U", "void": "U"}  # fmt: skip


def audit_event(row: AuditRow) -> dict[str, Any]:
    """One record as a FHIR R4 AuditEvent."""
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row.id),
        "type": {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110110",
            "display": "Patient Record",
        },
        "subtype": [{"system": "urn:priorauth:audit-action", "code": row.action}],
        "action": _ACTION_CODE.get(row.action, "E"),
        "recorded": at.isoformat(),
        "outcome": "0" if row.outcome == "success" else "4",
        "agent": [
            {
                "who": {
                    "identifier": {"system": f"urn:priorauth:{row.actor_kind}", "value": row.actor}
                },
                "requestor": True,
                **({"network": {"address": row.source, "type": "2"}} if row.source else {}),
            }
        ],
        "source": {"observer": {"display": "priorauth"}},
        "extension": [{"url": "urn:priorauth:audit-hash", "valueString": row.hash}],
    }
    if row.entity:
        event["entity"] = [
            {"what": {"identifier": {"system": "urn:priorauth", "value": row.entity}}}
        ]
    return event
