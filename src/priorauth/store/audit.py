"""The audit trail: append-only records chained by HMAC, a verifier, and FHIR AuditEvent export."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from priorauth.store.models import AuditHeadRow, AuditRow, Base

log = logging.getLogger("priorauth.audit")

GENESIS = "0" * 64
TRUNCATED = "…[truncated]"
# Column sizes (store/models.py): longer values are cut, with a marker, before hashing,
# so an over-long id or path is still recorded instead of failing the write.
LIMITS = {"actor": 200, "actor_kind": 20, "action": 60, "outcome": 20, "entity": 1000,
          "source": 200}  # fmt: skip
_sqlite_lock = threading.Lock()  # SQLite: one appender at a time within the process


class Who(Protocol):
    """What a record says of who acted (auth.actors.Actor has it): the store needs no more."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def source(self) -> str | None: ...


@dataclass(frozen=True)
class Entry:
    """One record to append."""

    actor: Who
    action: str
    outcome: str = "success"
    entity: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def clip(value: str | None, limit: int) -> str | None:
    """`value` cut to `limit` characters, ending with a marker when something was cut."""
    if value is None or len(value) <= limit:
        return value
    return value[: limit - len(TRUNCATED)] + TRUNCATED


def _digest(key: bytes, prev: str, fields: dict[str, Any]) -> str:
    # Canonical JSON (sorted keys) so the same record always hashes the same. Keyed: without
    # the key (which the database does not hold) an edited chain cannot be recomputed.
    body = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, prev.encode() + body, hashlib.sha256).hexdigest()


def _fields(row: AuditRow) -> dict[str, Any]:
    # Hashed in UTC: PostgreSQL hands timestamps back in the session's time zone.
    at = row.at.astimezone(UTC) if row.at.tzinfo else row.at.replace(tzinfo=UTC)
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


_HEAD = Base.metadata.tables[AuditHeadRow.__tablename__]
# Built once: a statement built per call costs more CPU than its round trip.
_LOCK_HEAD = select(_HEAD.c.last_id, _HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()
_INSERT_RECORDS = insert(Base.metadata.tables[AuditRow.__tablename__])
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(last_id=bindparam("new_id"), last_hash=bindparam("new_hash"))
)


@dataclass(frozen=True)
class Verdict:
    """What `verify` found: intact or not, the records checked, the first problem, the head."""

    intact: bool
    checked: int
    problem: str | None
    head_id: int = 0
    head_hash: str = GENESIS

    @property
    def head(self) -> str:
        """The head as `audit head` prints it and `--expect-head` takes it: SEQ:HASH."""
        return f"{self.head_id}:{self.head_hash}"


class AuditLog:
    """Appends records in their own short transactions; verifies and exports the chain."""

    def __init__(self, engine: Engine, key: bytes) -> None:
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._sqlite = engine.dialect.name == "sqlite"
        self._key = key

    def record(
        self,
        actor: Who,
        action: str,
        outcome: str = "success",
        entity: str | None = None,
        now: datetime | None = None,
        **detail: Any,
    ) -> int:
        """Append one record; returns its id. Detail must never carry PHI."""
        return self.record_many([Entry(actor, action, outcome, entity, detail)], now)[-1]

    def record_refusal(
        self,
        actor: Who,
        action: str,
        entity: str | None = None,
        now: datetime | None = None,
        **detail: Any,
    ) -> int | None:
        """Record a refused request, never raising: the refusal must still go out.

        Nothing was disclosed or changed, so a lost record costs less than turning a 4xx
        into a 500; the loss is logged loudly (an operator must look at the audit store).
        """
        try:
            return self.record(actor, action, "failure", entity, now, **detail)
        except Exception as e:
            log.error(
                "AUDIT RECORD LOST: could not record a refused %r by %s: %s",
                clip(action, 60),
                actor.kind,
                type(e).__name__,
            )
            return None

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
        """Append within the caller's transaction: the records commit with what they record.

        Three statements, none through the ORM's unit of work (it cost a tenth of a
        submission's CPU): lock and read the head, insert the records, move the head.
        The head stays locked until the caller commits, so keep what follows short.
        """
        if not entries:
            return []
        now = now or datetime.now(UTC)
        at = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
        stamp = at.isoformat(timespec="microseconds")
        # The caller's pending writes go first: from the lock on, every statement (and
        # the commit) holds up every other append.
        s.flush()
        # Locking the head row serializes appends, so two records never share a parent.
        last_id, last_hash = s.execute(_LOCK_HEAD).one()
        rows = []
        for e in entries:
            last_id += 1
            fields = {
                "id": last_id,
                "at": stamp,
                "actor": clip(e.actor.id, LIMITS["actor"]),
                "actor_kind": clip(e.actor.kind, LIMITS["actor_kind"]),
                "action": clip(e.action, LIMITS["action"]),
                "outcome": clip(e.outcome, LIMITS["outcome"]),
                "entity": clip(e.entity, LIMITS["entity"]),
                "source": clip(e.actor.source, LIMITS["source"]),
                "detail": e.detail,
            }
            digest = _digest(self._key, last_hash, fields)
            rows.append({**fields, "at": now, "prev_hash": last_hash, "hash": digest})
            last_hash = digest
        s.execute(_INSERT_RECORDS, rows)
        s.execute(_MOVE_HEAD, {"new_id": last_id, "new_hash": last_hash})
        return [r["id"] for r in rows]

    def verify(self, expect_head: str | None = None) -> Verdict:
        """Check the chain, the head, and (if given) an exported head `SEQ:HASH` or `HASH`.

        Without an exported head, cutting records off the end and rewinding the head
        leaves a shorter chain that is valid in itself: only the anchor kept elsewhere
        (`priorauth audit head`) shows it.
        """
        expected = _parse_head(expect_head) if expect_head else None
        prev, expected_id, checked = GENESIS, 1, 0
        # The empty chain's head (0:GENESIS) is a prefix of every chain.
        seen_expected = expected is not None and expected[1] == GENESIS and expected[0] in (0, None)
        with self.sessions() as s:

            def broken(problem: str) -> Verdict:
                return Verdict(False, checked, problem, checked, prev)

            for row in s.scalars(select(AuditRow).order_by(AuditRow.id)).yield_per(1000):
                if row.id != expected_id:
                    return broken(f"record {expected_id} is missing (next is {row.id})")
                if row.prev_hash != prev:
                    return broken(f"record {row.id}: its link to record {row.id - 1} is broken")
                if not hmac.compare_digest(_digest(self._key, prev, _fields(row)), row.hash):
                    return broken(
                        f"record {row.id} was altered (its hash does not match; "
                        "or the audit key is not the one it was written with)"
                    )
                prev, expected_id, checked = row.hash, expected_id + 1, checked + 1
                if expected is not None and _matches(expected, row.id, row.hash):
                    seen_expected = True
            head = s.get(AuditHeadRow, 1)
            if head is None:
                return broken("the chain's head record is missing (deleted)")
            if head.last_id != checked or head.last_hash != prev:
                if head.last_id > checked:
                    return broken(f"records after {checked} were removed (head is {head.last_id})")
                return broken(
                    f"the head (record {head.last_id}) does not match the chain's last record "
                    f"({checked})"
                )
        if expected is not None and not seen_expected:
            seq = expected[0]
            if seq is not None and seq > checked:
                problem = (
                    f"the chain is shorter than the exported head: it ends at record {checked}, "
                    f"the head was record {seq} (records were removed and the head rewound)"
                )
            elif seq is not None and seq > 0:
                problem = (
                    f"record {seq} is not the exported head (its hash differs): "
                    "the chain was rewritten"
                )
            else:
                problem = "the exported head is not in the chain: records were removed or rewritten"
            return Verdict(False, checked, problem, checked, prev)
        return Verdict(True, checked, None, checked, prev)

    def rows(self, session: Session | None = None) -> list[AuditRow]:
        with self.sessions() as s:
            return list(s.scalars(select(AuditRow).order_by(AuditRow.id)))


def _parse_head(text: str) -> tuple[int | None, str]:
    """`SEQ:HASH` (as `audit head` prints it) or a bare `HASH`; ValueError otherwise."""
    seq_text, _, hash_ = text.strip().rpartition(":")
    hash_ = hash_.lower()
    if len(hash_) != 64 or any(c not in "0123456789abcdef" for c in hash_):
        raise ValueError("a head is SEQ:HASH (HASH: 64 hex digits), as `audit head` prints it")
    if not seq_text:
        return None, hash_
    if not seq_text.isdigit():
        raise ValueError(f"the head's sequence must be a whole number, not {seq_text!r}")
    return int(seq_text), hash_


def _matches(expected: tuple[int | None, str], row_id: int, row_hash: str) -> bool:
    seq, hash_ = expected
    return (seq is None or seq == row_id) and hmac.compare_digest(hash_, row_hash)


# FHIR AuditEvent.action: C create, R read, U update, D delete, E execute (search and
# operations). Actions not listed (any name may be recorded) count as E.
_ACTION_CODE = {"read": "R", "inquire": "E", "search": "E", "submit": "C", "decide": "U",
                "evaluate": "E", "sign-in": "E", "sign-out": "E", "token": "E",
                "subscribe": "C", "unsubscribe": "D", "revise": "U", "cancel": "U",
                "void": "U", "withdraw": "U", "doc-request": "C", "order-sign": "E",
                "dtr-package": "E", "dtr-next-question": "E", "access": "E"}  # fmt: skip
DCM = "http://dicom.nema.org/resources/ontology/DCM"
# AuditEvent.type (DICOM): sign-in/out and tokens are user authentication, a refused
# access is a security alert, the rest touch patient records.
_EVENT_TYPE = {
    "sign-in": ("110114", "User Authentication"),
    "sign-out": ("110114", "User Authentication"),
    "token": ("110114", "User Authentication"),
    "access": ("110113", "Security Alert"),
}
_PATIENT_RECORD = ("110110", "Patient Record")


def audit_event(row: AuditRow) -> dict[str, Any]:
    """One record as a FHIR R4 AuditEvent."""
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    code, display = _EVENT_TYPE.get(row.action, _PATIENT_RECORD)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row.id),
        "type": {"system": DCM, "code": code, "display": display},
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
