"""The service object: one per process, holding the store, the policies and the clocks."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import orjson
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from priorauth.auth.keys import KeyRing, check_secrets
from priorauth.core.evaluator import CompiledPolicy
from priorauth.errors import InvalidRequest
from priorauth.intake.pas_bundle import read_bundle, validate_bundle
from priorauth.pas.records import CaseRecord, Decision, RequestKeys
from priorauth.pas.request import InquiryKeys, read_inquiry, read_keys
from priorauth.policies import PolicyLibrary
from priorauth.report import determination_to_dict
from priorauth.service.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceError,
    Unprocessable,
)
from priorauth.service.notifier import Notifier
from priorauth.service.ratelimit import RateLimiter, RefusalTally, make_limiter
from priorauth.settings import Settings
from priorauth.store import cases as case_store
from priorauth.store import claims as claims_store
from priorauth.store.audit import SYSTEM, Actor, AuditLog, Entry
from priorauth.store.db import session_factory

log = logging.getLogger("priorauth.service")

T = TypeVar("T")
CANCEL = "3"  # X12 1322 certification type: cancel


def _now() -> datetime:
    return datetime.now(UTC)


class SubscriptionsMixin:
    """PAS Subscriptions (Backport, rest-hook, full-resource) filtered by organization."""

    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]

    def _subscribe(self, resource: dict[str, Any], who: Actor) -> dict[str, Any]:
        import uuid

        from priorauth.pas.subscriptions import read_subscription, subscription_resource
        from priorauth.store.models import SubscriptionRow

        req = read_subscription(resource)  # InvalidRequest for a malformed one
        if who.organization and req.org_identifier != who.organization:
            raise Forbidden("a client may subscribe to its own organization's results only")
        sid = str(uuid.uuid4())
        with self.sessions() as s:
            s.add(
                SubscriptionRow(
                    id=sid,
                    status="active",
                    org_identifier=req.org_identifier,
                    endpoint=req.endpoint,
                    content=req.content,
                    headers=list(req.headers),
                    topic=req.topic,
                    events_sent=0,
                    created_at=self.clock(),
                )
            )
            s.commit()
        return subscription_resource(sid, req, "active")

    def subscription(self, sub_id: str, who: Actor = SYSTEM) -> dict[str, Any]:
        from priorauth.pas.subscriptions import SubscriptionRequest, subscription_resource
        from priorauth.store.models import SubscriptionRow

        with self.sessions() as s:
            row = s.get(SubscriptionRow, sub_id)
            if row is None or (who.organization and row.org_identifier != who.organization):
                raise NotFound(f"no Subscription {sub_id}")
            req = SubscriptionRequest(
                topic=row.topic,
                org_identifier=row.org_identifier,
                endpoint=row.endpoint,
                content=row.content,
                headers=tuple(row.headers),
                channel="rest-hook",  # type: ignore[arg-type]
            )
            return subscription_resource(row.id, req, row.status)

    def unsubscribe(self, sub_id: str, who: Actor = SYSTEM) -> None:
        from priorauth.store.models import SubscriptionRow

        with self.sessions() as s:
            row = s.get(SubscriptionRow, sub_id)
            if row is None or (who.organization and row.org_identifier != who.organization):
                raise NotFound(f"no Subscription {sub_id}")
            s.delete(row)
            s.commit()


@dataclass
class Submitted:
    record: CaseRecord
    created: bool  # False: an identical submission was already stored


class PriorAuthService(SubscriptionsMixin):
    """Submit, inquire, decide. Every acknowledgement follows a committed transaction."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        library: PolicyLibrary,
        clock: Callable[[], datetime] = _now,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions: sessionmaker[Session] = session_factory(engine)
        self.library = library
        self.clock = clock
        self.notifier = notifier or Notifier(self.sessions, settings)
        self.audit = AuditLog(engine)
        # The raw secret; use self.keys (one derived key per purpose) to sign or verify.
        self.secret_key = settings.secret_key or secrets.token_urlsafe(32)
        self.keys = KeyRing(self.secret_key, settings.secret_key_previous)
        if settings.auth_enabled:
            check_secrets(settings.secret_key, settings.secret_key_previous)
        # Budgets per client and, for requests without a valid token, per address; both
        # on the service's clock so tests drive them by hand.
        seconds = lambda: self.clock().timestamp()  # noqa: E731
        self.limiter: RateLimiter = make_limiter(
            settings.rate_backend,
            settings.rate_per_minute,
            settings.rate_burst,
            seconds,
            engine=engine,
            redis_url=settings.redis_url,
            prefix="client:",
        )
        self.anon_limiter: RateLimiter = make_limiter(
            settings.rate_backend,
            settings.anon_rate_per_minute,
            settings.anon_rate_burst,
            seconds,
            engine=engine,
            redis_url=settings.redis_url,
            prefix="addr:",
        )
        # Refused requests are counted here and audited once per key and minute.
        self.refusals = RefusalTally()
        # SQLite has one writer at a time and its busy handler sleeps and retries, which
        # starves some requests under load; queueing writers here keeps waits fair.
        self.write_lock: AbstractContextManager[object] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    # --- submission -----------------------------------------------------------

    def _submit(self, raw: bytes, who: Actor) -> Submitted:
        bundle, keys = _read(raw, read_keys, "request", who)
        if self.settings.fhir_validation:
            try:
                validate_bundle(bundle)
            except InvalidRequest as e:
                raise Unprocessable(str(e)) from e
        now = self.clock()
        with self.write_lock, self.sessions() as s:
            if keys.certification == CANCEL:
                return Submitted(self._cancel(s, keys, now), False)
            # Judge before looking for a duplicate: a broken bundle is refused even if resent.
            policy, evaluation = self._evaluate(s, bundle, keys)
            existing = case_store.find_submission(s, keys)
            if existing is not None:
                return Submitted(case_store.to_record(existing), False)
            if keys.related is not None:
                revised = self._revise(s, keys, raw, policy, evaluation, now)
                if revised is not None:
                    return Submitted(revised, False)
            hours = (
                self.settings.expedited_hours if keys.expedited else self.settings.standard_hours
            )
            row = case_store.new_case(
                keys=keys,
                raw=raw,
                received_at=now,
                due_at=now + timedelta(hours=hours),
                policy_id=policy.policy.id if policy else None,
                policy_version=policy.policy.version if policy else None,
                recommendation=evaluation["recommendation"] if evaluation else None,
                evaluation=evaluation,
            )
            entries = _submission_entries(who, row.id, True, evaluation)
            row, created = case_store.insert_case(
                s,
                row,
                actor=keys.submitter.key(),
                also=lambda s: self.audit.append_in(s, entries, now),
            )
            log.info("case %s %s", row.id, "stored" if created else "already stored")
            return Submitted(case_store.to_record(row), created)

    def _evaluate(
        self, s: Session, bundle: dict[str, Any], keys: RequestKeys
    ) -> tuple[CompiledPolicy | None, dict[str, Any] | None]:
        try:
            facts = read_bundle(bundle)
        except InvalidRequest as e:
            raise Unprocessable(str(e), e.where) from e
        policy = self.library.for_request(facts)
        if policy is None:
            return None, None  # no loaded policy covers it: pended for manual review
        history = claims_store.history_for(s, facts.patient.member_id)
        facts = dataclasses.replace(facts, claims=history)
        return policy, determination_to_dict(policy.evaluate(facts), policy)

    def _cancel(self, s: Session, keys: RequestKeys, now: datetime) -> CaseRecord:
        row = case_store.find_related(s, keys)
        if row is None:
            raise Unprocessable("the cancellation refers to no known request", "Claim.related")
        if row.status != "cancelled":
            row.status = "cancelled"
            row.lifetime_key = None
            row.updated_at = now
            case_store.event(s, row.id, "cancelled", keys.submitter.key(), now)
            s.commit()
        return case_store.to_record(row)

    def _revise(
        self,
        s: Session,
        keys: RequestKeys,
        raw: bytes,
        policy: CompiledPolicy | None,
        evaluation: dict[str, Any] | None,
        now: datetime,
    ) -> CaseRecord | None:
        row = case_store.find_related(s, keys)
        if row is None:
            return None
        previous = row.claim_identifier
        row.claim_identifier = keys.claim_identifier.key()
        row.request_bundle = raw
        row.evaluation = evaluation
        row.recommendation = evaluation["recommendation"] if evaluation else None
        row.policy_id = policy.policy.id if policy else None
        row.policy_version = policy.policy.version if policy else None
        row.status = case_store.OPEN
        for field in (
            "decision",
            "decided_at",
            "decided_by",
            "decision_reason",
            "kit_ndc",
            "kit_vials",
            "auth_start",
            "auth_end",
            "lifetime_key",
        ):
            setattr(row, field, None)
        row.decision_criteria = None
        row.updated_at = now
        case_store.event(
            s,
            row.id,
            "revised",
            keys.submitter.key(),
            now,
            previous_claim=previous,
            recommendation=row.recommendation,
        )
        s.commit()
        return case_store.to_record(row)

    # --- reading ----------------------------------------------------------------

    def _inquire(self, raw: bytes, who: Actor) -> CaseRecord:
        _, q = _read(raw, read_inquiry, "inquiry", who)
        with self.sessions() as s:
            row = case_store.find_for_inquiry(s, q.member_id, q.submitter.key(), q.service_codes)
            if row is None:
                raise NotFound("no prior authorization matches this member, provider and service")
            return case_store.to_record(row)

    def case(
        self, case_id: str, with_history: bool = False, who: Actor | None = None
    ) -> CaseRecord:
        """One case. With `who`, the read is checked (own organization only) and audited."""
        with self.sessions() as s:
            row = case_store.get(s, case_id)
            org = who.organization if who else None
            visible = row is not None and not (
                org and row.keys.get("submitter", {}).get("value") != org
            )
            record = None
            if row is not None and visible:
                history = case_store.events(s, case_id) if with_history else None
                record = case_store.to_record(row, history)
        # Audited after the read's transaction ends: SQLite allows one open writer.
        if who:
            outcome = "success" if record else "failure"
            self.audit.record(who, "read", outcome, f"case/{case_id}")
        if record is None:
            raise NotFound(f"no case {case_id}")
        return record

    def open_cases(self, who: Actor | None = None) -> list[CaseRecord]:
        if who:
            self.audit.record(who, "search", "success", "cases?status=pended")
        with self.sessions() as s:
            return [case_store.to_record(r) for r in case_store.list_open(s)]

    # --- decisions ----------------------------------------------------------------

    def _decide(
        self,
        case_id: str,
        kind: str,
        actor: str,
        reason: str | None = None,
        criteria: tuple[str, ...] = (),
        kit_ndc: str | None = None,
        by: Actor = SYSTEM,
    ) -> CaseRecord:
        if kind not in ("approve", "approve-modified", "deny"):
            raise Unprocessable(f"decision must be approve, approve-modified or deny, not {kind!r}")
        current = self.case(case_id)
        policy = self._policy_of(current)
        reason = (reason or "").strip() or None
        if kind == "deny":
            if reason is None:
                raise Unprocessable("a denial needs a specific reason", "reason")
            if policy is not None:
                if not criteria:
                    raise Unprocessable("a denial names the unmet policy criteria", "criteria")
                unknown = [c for c in criteria if c not in policy.criteria]
                if unknown:
                    raise Unprocessable(f"not criteria of {policy.policy.id}: {', '.join(unknown)}")
        vials = None
        if kind != "deny":
            kit_ndc, vials = self._kit_for(current, policy, kind, kit_ndc)
        today: date = self.clock().date()
        days = policy.policy.approval.days if policy else 90
        decision = Decision(
            kind=kind,  # type: ignore[arg-type]
            decided_at=self.clock(),
            decided_by=actor,
            reason=reason,
            criteria=tuple(criteria) if kind == "deny" else (),
            kit_ndc=kit_ndc,
            kit_vials=vials,
            auth_start=today if kind != "deny" else None,
            auth_end=today + timedelta(days=days - 1) if kind != "deny" else None,
        )
        with self.write_lock, self.sessions() as s:
            try:
                entry = Entry(
                    by,
                    "decide",
                    "success",
                    f"case/{case_id}",
                    {"decision": kind, "criteria": list(decision.criteria)},
                )
                row = case_store.decide(
                    s, case_id, decision, also=lambda s: self.audit.append_in(s, [entry])
                )
            except KeyError as e:
                raise NotFound(f"no case {case_id}") from e
            except case_store.CaseConflict as e:
                raise Conflict(str(e)) from e
            record = case_store.to_record(row)
        self.notifier.case_decided(record)
        return record

    # --- the public, audited use cases -----------------------------------------

    def _audit_run(self, action: str, who: Actor, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ServiceError as e:
            self.audit.record(who, action, "failure", None, status=e.status, reason=e.code)
            raise

    def submit(self, raw: bytes, who: Actor = SYSTEM) -> Submitted:
        """Store a PAS request and its evaluation; acknowledged only once committed.

        A new case's audit records commit in the case's own transaction; a repeat,
        revision or cancellation is recorded right after.
        """
        result = self._audit_run("submit", who, lambda: self._submit(raw, who))
        if not result.created:
            record = result.record
            self.audit.record_many(_submission_entries(who, record.id, False, record.evaluation))
        return result

    def inquire(self, raw: bytes, who: Actor = SYSTEM) -> CaseRecord:
        record = self._audit_run("inquire", who, lambda: self._inquire(raw, who))
        self.audit.record(who, "inquire", "success", f"case/{record.id}")
        return record

    def decide(
        self,
        case_id: str,
        kind: str,
        actor: str,
        reason: str | None = None,
        criteria: tuple[str, ...] = (),
        kit_ndc: str | None = None,
        who: Actor | None = None,
    ) -> CaseRecord:
        """A Medical Director's decision; pushed to the submitter's subscriptions."""
        by = who or Actor(actor, "user")
        # The audit record of a decision commits in the decision's own transaction.
        return self._audit_run(
            "decide", by, lambda: self._decide(case_id, kind, actor, reason, criteria, kit_ndc, by)
        )

    def subscribe(self, resource: dict[str, Any], who: Actor = SYSTEM) -> dict[str, Any]:
        created = self._audit_run("subscribe", who, lambda: self._subscribe(resource, who))
        self.audit.record(who, "subscribe", "success", f"subscription/{created['id']}")
        return created

    def _policy_of(self, record: CaseRecord) -> CompiledPolicy | None:
        if record.policy_id is None:
            return None
        for v in self.library.versions.get(record.policy_id, []):
            ev = record.evaluation or {}
            if v.policy.version == ev.get("policy", {}).get("version"):
                return v
        return None

    def _kit_for(
        self, record: CaseRecord, policy: CompiledPolicy | None, kind: str, kit_ndc: str | None
    ) -> tuple[str | None, int | None]:
        ev = record.evaluation or {}
        engine_kit = ev.get("kit")
        requested = (ev.get("requested") or {}).get("ndc")
        if kit_ndc is None:
            if kind == "approve-modified":
                if engine_kit is None:
                    raise Unprocessable(
                        "approve-modified needs the kit NDC to authorize", "kit_ndc"
                    )
                kit_ndc = engine_kit["ndc"]
            else:
                kit_ndc = requested or (engine_kit or {}).get("ndc")
        if policy is not None and kit_ndc is not None:
            kits = {k.ndc: k.vials for k in policy.kits.values()}
            if kit_ndc not in kits:
                raise Unprocessable(f"{kit_ndc} is not a kit of {policy.policy.id}", "kit_ndc")
            return kit_ndc, kits[kit_ndc]
        return kit_ndc, None


def _submission_entries(
    who: Actor, case_id: str, created: bool, evaluation: dict[str, Any] | None
) -> list[Entry]:
    case = f"case/{case_id}"
    entries = [Entry(who, "submit", "success", case, {"created": created})]
    if created:
        ev = evaluation or {}
        entries.append(
            Entry(SYSTEM, "evaluate", "success", case, {"recommendation": ev.get("recommendation")})
        )
        if ev.get("missing"):
            entries.append(
                Entry(SYSTEM, "doc-request", "success", case, {"items": len(ev["missing"])})
            )
    return entries


K = TypeVar("K", RequestKeys, InquiryKeys)


def _read(
    raw: bytes, reader: Callable[[dict[str, Any]], K], what: str, who: Actor
) -> tuple[dict[str, Any], K]:
    """Parse a PAS bundle and its keys; a client may speak only for its own organization."""
    bundle = _parse(raw)
    try:
        keys = reader(bundle)
    except InvalidRequest as e:
        raise BadRequest(f"not a PAS {what} bundle: {e}") from e
    if who.organization and keys.submitter.value != who.organization:
        raise Forbidden(f"the {what}'s provider is not the organization of this client")
    return bundle, keys


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        bundle = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"the body is not JSON: {e}") from e
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("the body is not a FHIR Bundle")
    return bundle
