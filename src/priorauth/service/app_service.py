"""The service object: one per process, holding the store, the policies and the clocks."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from priorauth.auth import scopes as sc
from priorauth.auth.actors import SYSTEM, Actor
from priorauth.core.codes import ndc11
from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.model import Renewal
from priorauth.core.result import Determination
from priorauth.errors import InvalidRequest, UnusableContent
from priorauth.intake.pas_bundle import validate_bundle
from priorauth.intake.request import PasRequest
from priorauth.intake.shapes import check_resource
from priorauth.keys import KeyRing, audit_key, check_secrets
from priorauth.pas.digest import request_digest
from priorauth.pas.members import member_key
from priorauth.pas.records import CLIENT_DECIDER, CaseRecord, Decision, RequestKeys, Voided
from priorauth.pas.request import (
    InquiryKeys,
    read_inquiry,
    read_keys,
    trace_numbers,
    unwrap_inquiry,
)
from priorauth.pas.subscriptions import SubscriptionRequest
from priorauth.policies import PolicyLibrary
from priorauth.policies.judging import ClaimsLookup, Judged, judge
from priorauth.service.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceError,
    Unprocessable,
)
from priorauth.service.notifier import Notifier, cancel_pending, enqueue_decision, enqueue_handshake
from priorauth.service.notifier import rows as outbox_rows
from priorauth.service.outbound import OutboundPolicy, OutboundRefused
from priorauth.service.ratelimit import RateLimiter, RefusalSummary, RefusalTally, make_limiter
from priorauth.settings import Settings
from priorauth.store import cases as case_store
from priorauth.store import claims as claims_store
from priorauth.store.audit import AuditLog, Entry
from priorauth.store.db import session_factory
from priorauth.store.models import CaseRow, SubscriptionRow

log = logging.getLogger("priorauth.service")

T = TypeVar("T")
CANCEL = "3"  # X12 1322 certification type: cancel
AUTO_DECIDER = "system/auto-approval"  # decided_by of an approval the policy leaves to the engine
REVISE = "S"  # X12 1322 certification type: revised


def _now() -> datetime:
    return datetime.now(UTC)


class SubscriptionsMixin:
    """PAS Subscriptions (Backport, rest-hook) filtered by organization, with the handshake."""

    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]
    audit: AuditLog
    settings: Settings
    outbound: OutboundPolicy
    notifier: Notifier
    write_lock: AbstractContextManager[object]

    def _subscribe(self, resource: dict[str, Any], who: Actor) -> dict[str, Any]:
        import uuid

        from priorauth.pas.subscriptions import subscription_resource
        from priorauth.store.models import SubscriptionRow

        req = self._checked_subscription(resource, who)
        sid = str(uuid.uuid4())
        now = self.clock()
        with self.write_lock, self.sessions() as s:
            row = SubscriptionRow(
                id=sid,
                # Backport: "requested" until the endpoint accepts the handshake.
                status="requested",
                org_identifier=req.org_identifier,
                endpoint=req.endpoint,
                content=req.content,
                headers=list(req.headers),
                topic=req.topic,
                events_sent=0,
                created_at=now,
                payload_type=req.payload,
            )
            s.add(row)
            s.flush()
            enqueue_handshake(s, row, now, self.settings)
            s.commit()
        self.notifier.wake()
        return subscription_resource(sid, req, "requested")

    def _checked_subscription(self, resource: dict[str, Any], who: Actor) -> SubscriptionRequest:
        """A valid PAS Subscription for the caller's own organization, to an allowed endpoint."""
        from priorauth.pas.subscriptions import read_subscription

        try:
            req = read_subscription(resource)
        except InvalidRequest as e:  # a malformed one: 422, audited as a failure
            raise Unprocessable(str(e), e.where) from e
        # spec-59: a sending system subscribes to its own prior authorizations only.
        if who.organization and set(req.organizations) != {who.organization}:
            raise Forbidden("a client may subscribe to its own organization's results only")
        try:
            # Checked here on what the name resolves to now, and again at every delivery.
            self.outbound.check(req.endpoint)
        except OutboundRefused as e:
            raise Unprocessable(
                f"channel.endpoint is refused: {e}", "Subscription.channel.endpoint"
            ) from e
        return req

    def _own_subscription(self, s: Session, sub_id: str, who: Actor) -> SubscriptionRow:
        from priorauth.pas.subscriptions import organizations
        from priorauth.store.models import SubscriptionRow

        row = s.get(SubscriptionRow, sub_id)
        if row is None or (
            who.organization and who.organization not in organizations(row.org_identifier)
        ):
            raise NotFound(f"no Subscription {sub_id}")
        return row

    def _update_subscription(
        self, sub_id: str, resource: dict[str, Any], who: Actor
    ) -> dict[str, Any]:
        """Replace a Subscription (PUT): checked as a new one, then handshaken again."""
        from priorauth.pas.subscriptions import subscription_resource

        if resource.get("id") not in (None, sub_id):
            raise BadRequest("the Subscription's id is not the one in the URL")
        req = self._checked_subscription(resource, who)
        now = self.clock()
        with self.write_lock, self.sessions() as s:
            row = self._own_subscription(s, sub_id, who)
            cancel_pending(s, sub_id, now)
            row.status = "requested"
            row.org_identifier = req.org_identifier
            row.endpoint = req.endpoint
            row.content = req.content
            row.headers = list(req.headers)
            row.topic = req.topic
            row.payload_type = req.payload
            s.flush()
            enqueue_handshake(s, row, now, self.settings)
            s.commit()
        self.notifier.wake()
        return subscription_resource(sub_id, req, "requested")

    def _subscription_status(self, sub_id: str, who: Actor) -> dict[str, Any]:
        from priorauth.pas.subscriptions import status_parameters

        with self.sessions() as s:
            row = self._own_subscription(s, sub_id, who)
            return status_parameters(
                row.id, self.settings.base_url, row.topic, row.status, row.events_sent
            )

    def _read_subscription(self, sub_id: str, who: Actor) -> dict[str, Any]:
        from priorauth.pas.subscriptions import SubscriptionRequest, subscription_resource

        with self.sessions() as s:
            row = self._own_subscription(s, sub_id, who)
            req = SubscriptionRequest(
                topic=row.topic,
                org_identifier=row.org_identifier,
                endpoint=row.endpoint,
                content=row.content,  # type: ignore[arg-type]
                headers=tuple(row.headers),
                channel="rest-hook",
                payload=row.payload_type or "application/fhir+json",
            )
            return subscription_resource(row.id, req, row.status)

    def _unsubscribe(self, sub_id: str, who: Actor) -> None:
        with self.write_lock, self.sessions() as s:
            row = self._own_subscription(s, sub_id, who)
            cancel_pending(s, sub_id, self.clock())
            s.delete(row)
            # Recorded in the deletion's own transaction: no record, no deletion.
            self.audit.append_in(
                s, [Entry(who, "unsubscribe", "success", f"subscription/{sub_id}")]
            )
            s.commit()

    def outbox(self, who: Actor | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Notification deliveries, newest first (an organization's client sees its own)."""
        return outbox_rows(self.sessions, status, who.organization if who else None)


@dataclass
class Inquired:
    records: list[CaseRecord]  # newest first
    parameters: bool  # answer as PAS 2.2.1 Parameters (else a 2.0.1 Bundle)


@dataclass
class Submitted:
    record: CaseRecord
    created: bool  # False: an identical submission was already stored
    action: str = "submit"  # what the request did: submit, revise or cancel


@dataclass
class Rejected:
    """A request valid as FHIR that cannot be judged: nothing is stored; the answer is a
    ClaimResponse with `error` (PAS business errors), not an OperationOutcome."""

    request: PasRequest
    keys: RequestKeys
    errors: list[UnusableContent]
    action: str = "submit"


class PriorAuthService(SubscriptionsMixin):
    """Submit, inquire, decide. Every acknowledgement follows a committed transaction."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        library: PolicyLibrary,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions: sessionmaker[Session] = session_factory(engine)
        self.library = library
        self.clock = clock
        self.audit = AuditLog(engine, audit_key(settings.audit_key, settings.secret_key)[0])
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
        # Where the server's own requests may go (subscriptions, CRD prefetch).
        self.outbound = OutboundPolicy.from_settings(settings)
        self.notifier = Notifier(
            self.sessions, settings, clock, lambda: self.outbound, self.write_lock
        )

    # --- submission -----------------------------------------------------------

    def _submit(self, raw: bytes, who: Actor) -> Submitted | Rejected:
        # The body is decoded and indexed once here; keys, facts, store and response share it.
        request, keys = _read(raw, read_keys, "request", who)
        bundle = request.bundle
        try:
            if self.settings.fhir_validation:
                validate_bundle(bundle)
            else:
                # Without the models, the shapes of what is read are still checked: a
                # stored bundle must never break what reads it later (the reviewer app).
                check_resource(bundle, "Bundle")
        except InvalidRequest as e:
            raise Unprocessable(str(e)) from e
        if keys.certification == CANCEL:
            return _as("cancel", lambda: self._cancel(keys, who))
        now = self.clock()
        with self.write_lock, self.sessions() as s:
            # Judge before looking for a duplicate: a broken bundle is refused even if resent.
            try:
                judged = self._judge(s, request, keys)
            except UnusableContent as e:
                return Rejected(request, keys, [e])
            policy, evaluation = judged.policy, judged.to_dict()
            digest = request_digest(bundle)
            existing = case_store.find_submission(s, keys)
            revision = keys.related is not None or keys.certification == REVISE
            if existing is not None and _same_content(existing, digest):
                return Submitted(case_store.to_record(existing), False)
            if existing is not None and not revision:
                raise _other_content(keys)
            if revision:
                return _as(
                    "revise", lambda: self._revise(s, keys, request, policy, evaluation, now, who)
                )
            hours = (
                self.settings.expedited_hours if keys.expedited else self.settings.standard_hours
            )
            row = case_store.new_case(
                keys=keys,
                request=request,
                received_at=now,
                due_at=now + timedelta(hours=hours),
                policy_id=policy.policy.id if policy else None,
                policy_version=policy.policy.version if policy else None,
                recommendation=evaluation["recommendation"] if evaluation else None,
                evaluation=evaluation,
                member_key=self.member_key(keys.member_system, keys.member_id),
                digest=digest,
            )
            entries = _submission_entries(who, row.id, True, judged.determination)
            row, created = case_store.insert_case(
                s,
                row,
                actor=keys.submitter.key(),
                also=lambda s: self.audit.append_in(s, entries, now),
            )
            if not created and not _same_content(row, digest):
                raise _other_content(keys)  # a concurrent, different request won the race
            log.info("case %s %s", row.id, "stored" if created else "already stored")
            # A new case answers from the request already parsed; a clash, from its own.
            result = Submitted(
                case_store.to_record(row, request=request if created else None), created
            )
        if created and self.settings.auto_approve and _decided_at_once(policy, judged):
            result = Submitted(self._approve_at_once(result.record), True)
        return result

    def _approve_at_once(self, record: CaseRecord) -> CaseRecord:
        """Approve a case the policy lets the engine decide (A1); pended (A4) if the
        approval cannot be recorded (the member's lifetime limit is reached)."""
        try:
            return self._decide(
                record.id,
                "approve",
                AUTO_DECIDER,
                "every criterion of the policy is met; the policy does not send approvals "
                "to the Medical Director",
                by=SYSTEM,
            )
        except (Conflict, Unprocessable) as e:
            log.info("case %s not approved at once: %s", record.id, e.reason)
            return record

    def member_key(self, system: str | None, value: str | None) -> str | None:
        """The member's normalised identifier under this payer's settings."""
        return member_key(
            system,
            value,
            case_sensitive_systems=self.settings.case_sensitive_id_systems,
            default_system=self.settings.member_id_system,
        )

    def claims_lookup(self, s: Session, member_system: str | None = None) -> ClaimsLookup:
        """The stored claims history of a request's member, for the judging pipeline.

        Member ids compare without regard to case unless the member's identifier system
        (default: the payer's) is one of the case-sensitive ones.
        """
        system = (member_system or "").strip() or self.settings.member_id_system
        exact = system in self.settings.case_sensitive_id_systems
        return lambda facts: claims_store.history_for(s, facts.patient.member_id, exact)

    def _judge(self, s: Session, request: PasRequest, keys: RequestKeys) -> Judged:
        """The one pipeline (policies.judging) over the parsed request; 422 when unreadable,
        UnusableContent (not a ServiceError) when readable but a value cannot be judged."""
        try:
            return judge(request, self.library, claims=self.claims_lookup(s, keys.member_system))
        except UnusableContent:
            raise  # a business error: the caller answers it with ClaimResponse.error
        except InvalidRequest as e:
            raise Unprocessable(str(e), e.where) from e

    def _same_member(self, keys: RequestKeys, row: CaseRow, what: str) -> None:
        """A revision or cancellation speaks of the member of the case it refers to."""
        if self.member_key(keys.member_system, keys.member_id) != row.member_key:
            raise Unprocessable(
                f"the {what} names another member than the request it refers to",
                "Claim.patient",
            )

    def _cancel(self, keys: RequestKeys, who: Actor) -> Submitted:
        """Cancel an open case; for a decided one, record the provider's request to withdraw.

        A decision stands (and an approval keeps the member's lifetime record) until a
        Medical Director voids it: a provider's cancellation never frees the member.
        """
        now = self.clock()
        with self.write_lock, self.sessions() as s:
            row = case_store.find_related(s, keys)
            if row is None:
                raise Unprocessable("the cancellation refers to no known request", "Claim.related")
            if keys.member_id is not None:
                self._same_member(keys, row, "cancellation")
            actor = keys.submitter.key()
            if row.status == case_store.OPEN:
                row.status = "cancelled"
                row.updated_at = now
                case_store.event(s, row.id, "cancelled", actor, now)
                outcome = "cancelled"
            elif row.status in case_store.DECIDED:
                changed = case_store.request_withdrawal(s, row, actor, now)
                outcome = "withdrawal-requested" if changed else "withdrawal-already-requested"
            else:
                outcome = "already-cancelled"
            entry = Entry(who, "cancel", "success", f"case/{row.id}", {"result": outcome})
            self.audit.append_in(s, [entry], now)
            s.commit()
            return Submitted(case_store.to_record(row), False, "cancel")

    def _revise(
        self,
        s: Session,
        keys: RequestKeys,
        request: PasRequest,
        policy: CompiledPolicy | None,
        evaluation: dict[str, Any] | None,
        now: datetime,
        who: Actor,
    ) -> Submitted:
        """Replace an open (or denied) case's request with its revision and judge it again.

        The revision must come from the same organization (the look-up is by submitter),
        name the same member (normalised) and ask for the same service (the same policy
        covers it and a service code is shared); otherwise it is refused (422). A case
        that holds an approval, or is cancelled, cannot be revised (409).
        """
        if keys.related is None:
            raise Unprocessable(
                "a revision (certificationType S) names the request it revises in Claim.related",
                "Claim.related",
            )
        row = case_store.find_related(s, keys)
        if row is None:
            raise Unprocessable("the revision refers to no known request", "Claim.related")
        self._same_member(keys, row, "revision")
        policy_id = policy.policy.id if policy else None
        if policy_id != row.policy_id or not set(keys.service_codes) & set(
            row.service_codes.split()
        ):
            raise Unprocessable(
                "the revision asks for another service than the request it refers to",
                "Claim.item.productOrService",
            )
        if row.status not in (case_store.OPEN, "denied"):
            raise Conflict(
                f"the request it revises is {row.status}: an approved or cancelled request "
                "cannot be revised"
            )
        previous = row.claim_identifier
        row.claim_identifier = keys.claim_identifier.key()
        row.keys = case_store.keys_to_json(keys)
        row.member_id = keys.member_id
        row.service_codes = " ".join(keys.service_codes)
        row.request_bundle = request.raw or b""
        row.request_digest = request_digest(request.bundle)
        for column, words in case_store.summary_columns(request).items():
            setattr(row, column, words)
        row.evaluation = evaluation
        row.recommendation = evaluation["recommendation"] if evaluation else None
        row.policy_id = policy_id
        row.policy_version = policy.policy.version if policy else None
        row.status = case_store.OPEN
        for field in (
            "decision",
            "decided_at",
            "decided_by",
            "decision_reason",
            "product_ndc",
            "product_vials",
            "quantity",
            "unit",
            "auth_start",
            "auth_end",
            "lifetime_key",
            "withdrawal_requested_at",
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
        case = f"case/{row.id}"
        entries = [
            Entry(who, "revise", "success", case, {"recommendation": row.recommendation}),
            Entry(SYSTEM, "evaluate", "success", case, {"recommendation": row.recommendation}),
        ]
        try:
            s.flush()  # a clash with another submission's identifier surfaces here
        except IntegrityError as e:
            raise Conflict("the revision's Claim.identifier is already in use") from e
        self.audit.append_in(s, entries, now)
        s.commit()
        return Submitted(case_store.to_record(row, request=request), False, "revise")

    # --- reading ----------------------------------------------------------------

    def _inquire(self, raw: bytes, who: Actor) -> Inquired:
        wrapped = _unwrap(raw)
        _, q = _read(raw if wrapped is None else wrapped, read_inquiry, "inquiry", who)
        version = q.version or self.settings.pas_version
        with self.sessions() as s:
            member = self.member_key(q.member_system, q.member_id)
            rows = case_store.cases_for_inquiry(s, member, q.submitter.key())
            records = [case_store.to_record(row) for row in rows]
        return Inquired(
            _matching(records, q), parameters=wrapped is not None or not version.startswith("2.0")
        )

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
        if who and record is not None:
            self.audit.record(who, "read", "success", f"case/{case_id}")  # no record, no read
        elif who:
            self.audit.record_refusal(who, "read", f"case/{case_id}")
        if record is None:
            raise NotFound(f"no case {case_id}")
        return record

    def open_cases(self, who: Actor | None = None) -> list[CaseRecord]:
        if who:
            self.audit.record(who, "search", "success", "cases?status=pended")
        org = who.organization if who else None
        with self.sessions() as s:
            records = [case_store.to_record(r) for r in case_store.list_open(s)]
        # The case API refuses provider clients; should one get here, it sees its own only.
        return [r for r in records if org is None or r.keys.submitter.value == org]

    # --- decisions ----------------------------------------------------------------

    def _decide(
        self,
        case_id: str,
        kind: str,
        actor: str,
        reason: str | None = None,
        criteria: tuple[str, ...] = (),
        product_ndc: str | None = None,
        by: Actor = SYSTEM,
        quantity: float | None = None,
    ) -> CaseRecord:
        if kind not in ("approve", "approve-modified", "deny"):
            raise Unprocessable(f"decision must be approve, approve-modified or deny, not {kind!r}")
        current = self.case(case_id)
        ev = current.evaluation
        policy = self.library.version(current.policy_id, *ev.judged_under) if ev else None
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
        authorized = Authorized()
        if kind != "deny":
            authorized = self._authorized(current, policy, kind, product_ndc, quantity)
        today: date = self.clock().date()
        renewal = self._renewal(current, policy)
        days = (
            renewal.days if renewal else (policy.policy.approval.days if policy else None)
        ) or 90
        decision = Decision(
            kind=kind,  # type: ignore[arg-type]
            decided_at=self.clock(),
            decided_by=actor,
            reason=reason,
            criteria=tuple(criteria) if kind == "deny" else (),
            product_ndc=authorized.ndc,
            product_vials=authorized.vials,
            quantity=authorized.quantity,
            unit=authorized.unit,
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
                    s,
                    case_id,
                    decision,
                    also=lambda s: self._decision_also(s, case_id, entry),
                    lifetime=self._lifetime(current, policy, renewal),
                )
            except KeyError as e:
                raise NotFound(f"no case {case_id}") from e
            except case_store.CaseConflict as e:
                raise Conflict(str(e)) from e
            record = case_store.to_record(row)
        self.notifier.wake()
        return record

    def _renewal(self, record: CaseRecord, policy: CompiledPolicy | None) -> Renewal | None:
        """The policy's renewal terms when the request renews (X12 1322 "R") and the policy
        allows renewals; None otherwise (a renewal the policy does not allow is judged, and
        counted, as a new approval)."""
        if record.keys.certification != "R" or policy is None:
            return None
        return policy.policy.approval.renewal

    def _lifetime(
        self, record: CaseRecord, policy: CompiledPolicy | None, renewal: Renewal | None = None
    ) -> case_store.Lifetime | None:
        """The lifetime rule of the case's policy (its newest version if the one judged
        under is no longer loaded); None when the policy states no lifetime limit. A
        renewal counts against the policy's renewal limit, not the lifetime limit."""
        if policy is None and record.policy_id in self.library.versions:
            policy = self.library.versions[record.policy_id][-1]
        if renewal is not None and policy is not None:
            if renewal.limit is None:
                return None
            name = policy.policy.approval.therapy_class or policy.policy.id
            return case_store.Lifetime(f"{name}/renewal", renewal.limit)
        approval = policy.policy.approval if policy is not None else None
        if policy is None or approval is None or approval.lifetime_limit is None:
            return None
        # The model requires a class with a limit; the policy id is a safe fallback.
        return case_store.Lifetime(
            approval.therapy_class or policy.policy.id, approval.lifetime_limit
        )

    def _void(self, case_id: str, reason: str | None, by: Actor) -> CaseRecord:
        reason = (reason or "").strip()
        if not reason:
            raise Unprocessable("voiding an approval needs a reason", "reason")
        voider = self._decider(by)  # the authenticated identity, a verified person or system
        now = self.clock()
        with self.write_lock, self.sessions() as s:
            try:
                row = case_store.void(s, case_id, Voided(now, voider, reason))
            except KeyError as e:
                raise NotFound(f"no case {case_id}") from e
            except case_store.CaseConflict as e:
                raise Conflict(str(e)) from e
            entry = Entry(by, "void", "success", f"case/{case_id}", {"was": row.decision})
            self.audit.append_in(s, [entry], now)
            record = case_store.to_record(row)
            # The subscribers hear of the void from the outbox, committed with it.
            enqueue_decision(s, record, now, self.settings)
            s.commit()
        self.notifier.wake()
        return record

    def _decision_also(self, s: Session, case_id: str, entry: Entry) -> None:
        """Written in the decision's transaction: its audit record and its notifications."""
        self.audit.append_in(s, [entry])
        row = case_store.get(s, case_id)
        if row is not None:
            record = case_store.to_record(row)
            when = record.decision.decided_at if record.decision else self.clock()
            enqueue_decision(s, record, when, self.settings)

    # --- the public, audited use cases -----------------------------------------

    def _audit_run(self, action: str, who: Actor, fn: Callable[[], T]) -> T:
        return self.audited(action, who, fn)

    def audited(self, action: str, who: Actor, fn: Callable[[], T], entity: str | None = None) -> T:
        """Run `fn`; a refusal (ServiceError) is recorded as a failed `action`, then raised.

        The refusal goes out even if its record cannot be written (logged loudly instead).
        """
        try:
            return fn()
        except ServiceError as e:
            # A refused revision or cancellation is recorded under its own action.
            self.audit.record_refusal(who, e.action or action, entity, reason=e.reason)
            raise

    def record_refusals(self, summaries: list[RefusalSummary]) -> None:
        """One audit record per key and window, saying how many requests were refused."""
        for r in summaries:
            kind, _, who = r.key.partition(":")
            actor = (
                Actor(source=who)
                if kind == "anonymous"
                else Actor(who, kind if kind in ("client", "user") else "anonymous")
            )
            self.audit.record(
                actor,
                "rate-limit",
                "failure",
                None,
                refused=r.refused,
                window_start=datetime.fromtimestamp(r.window_start, UTC).isoformat(),
                window_seconds=int(self.refusals.window),
            )

    def submit(self, raw: bytes, who: Actor = SYSTEM) -> Submitted | Rejected:
        """Store a PAS request and its evaluation; acknowledged only once committed.

        A new case's, a revision's and a cancellation's audit records commit in their own
        transaction (actions submit, revise, cancel); a repeat is recorded right after.
        A request that cannot be judged (Rejected) stores nothing and is audited as refused.
        """
        result = self._audit_run("submit", who, lambda: self._submit(raw, who))
        if isinstance(result, Rejected):
            self.audit.record_refusal(who, "submit", None, reason="unusable-content")
            return result
        # A revision or cancellation is audited in its own transaction, under its own action.
        if not result.created and result.action == "submit":
            record = result.record
            self.audit.record_many(_submission_entries(who, record.id, False))
        return result

    def inquire(self, raw: bytes, who: Actor = SYSTEM) -> Inquired:
        """Every case the inquiry matches (PAS $inquire), each read audited.

        A 2.0.1 inquiry is answered with one Bundle (the newest match; none is 404); a
        2.2.1 one (the default) with Parameters holding every match, none included.
        """
        found = self._audit_run("inquire", who, lambda: self._inquire(raw, who))
        if not found.records and not found.parameters:
            self.audit.record_refusal(who, "inquire", None, reason="not-found")
            raise NotFound("no prior authorization matches this member, provider and service")
        for record in found.records if found.parameters else found.records[:1]:
            self.audit.record(who, "inquire", "success", f"case/{record.id}")
        return found

    def decide(
        self,
        case_id: str,
        kind: str,
        reason: str | None = None,
        criteria: tuple[str, ...] = (),
        product_ndc: str | None = None,
        *,
        who: Actor,
        quantity: float | None = None,
    ) -> CaseRecord:
        """A decision by the authenticated `who`; pushed to the submitter's subscriptions."""
        # The audit record of a decision commits in the decision's own transaction.
        return self._audit_run(
            "decide",
            who,
            lambda: self._decide(
                case_id, kind, self._decider(who), reason, criteria, product_ndc, who, quantity
            ),
        )

    def _decider(self, who: Actor) -> str:
        """Who a decision is recorded under: always the authenticated identity, never a name
        a caller supplies. A signed-in Medical Director, or the payer's own system as itself."""
        from priorauth.store.models import UserRow

        if who.kind == "user":
            with self.sessions() as s:
                row = s.scalars(select(UserRow).where(UserRow.username == who.id)).first()
            if row is None or not row.active or row.role != "medical_director":
                raise Forbidden("only a Medical Director can decide a case")
            return who.id
        if who.role == sc.PAYER_SYSTEM and who.organization is None:
            return f"{CLIENT_DECIDER}{who.id}"
        raise Forbidden("only a Medical Director or the payer's own system can decide a case")

    def void(self, case_id: str, reason: str | None, who: Actor) -> CaseRecord:
        """A Medical Director voids an approval, with a reason: the one way to free the
        member's lifetime record. Only a verified Medical Director or the payer's system."""
        return self._audit_run("void", who, lambda: self._void(case_id, reason, who))

    def subscribe(self, resource: dict[str, Any], who: Actor = SYSTEM) -> dict[str, Any]:
        created = self._audit_run("subscribe", who, lambda: self._subscribe(resource, who))
        self.audit.record(who, "subscribe", "success", f"subscription/{created['id']}")
        return created

    def subscription(self, sub_id: str, who: Actor = SYSTEM) -> dict[str, Any]:
        """Read a Subscription (its endpoint and headers are the organization's)."""
        entity = f"subscription/{sub_id}"
        found = self.audited("read", who, lambda: self._read_subscription(sub_id, who), entity)
        self.audit.record(who, "read", "success", entity)
        return found

    def update_subscription(
        self, sub_id: str, resource: dict[str, Any], who: Actor = SYSTEM
    ) -> dict[str, Any]:
        """Replace a Subscription (FHIR update); it is handshaken again before events."""
        entity = f"subscription/{sub_id}"
        updated = self.audited(
            "subscribe", who, lambda: self._update_subscription(sub_id, resource, who), entity
        )
        self.audit.record(who, "subscribe", "success", entity, update=True)
        return updated

    def subscription_status(self, sub_id: str, who: Actor = SYSTEM) -> dict[str, Any]:
        """Backport $status of a Subscription."""
        entity = f"subscription/{sub_id}"
        found = self.audited("read", who, lambda: self._subscription_status(sub_id, who), entity)
        self.audit.record(who, "read", "success", entity)
        return found

    def unsubscribe(self, sub_id: str, who: Actor = SYSTEM) -> None:
        entity = f"subscription/{sub_id}"
        self.audited("unsubscribe", who, lambda: self._unsubscribe(sub_id, who), entity)

    def _authorized(
        self,
        record: CaseRecord,
        policy: CompiledPolicy | None,
        kind: str,
        product_ndc: str | None,
        quantity: float | None,
    ) -> Authorized:
        """What an approval authorizes: the product and quantity in the policy's billing unit.

        approve-modified takes what the reviewer gives, else the engine's dose; approve takes
        what the request asked for, else the engine's dose. A reviewer may decide without
        any table (a policy that leaves the quantity to them): then the quantity is theirs.
        """
        ev = record.evaluation
        engine = ev.dose if ev else None
        asked = ev.requested if ev else None
        dosing = policy.policy.dosing if policy is not None else None
        unit = dosing.unit if dosing else (engine.unit if engine else asked.unit if asked else None)
        if quantity is not None and not quantity > 0:
            raise Unprocessable("the quantity to authorize must be greater than 0", "quantity")
        if kind == "approve-modified":
            if product_ndc is None and quantity is None:
                if engine is None:
                    raise Unprocessable(
                        "approve-modified needs the product or the quantity to authorize",
                        "quantity",
                    )
                product_ndc, quantity = engine.ndc, engine.quantity
            elif quantity is None:
                quantity = engine.quantity if engine else None
        else:
            if product_ndc is None:
                product_ndc = (asked.ndc if asked else None) or (engine.ndc if engine else None)
            if quantity is None:
                quantity = (asked.quantity if asked else None) or (
                    engine.quantity if engine else None
                )
        vials = None
        if dosing is not None and dosing.products and product_ndc is not None:
            wanted = ndc11(product_ndc)
            match = next((p for p in dosing.products if ndc11(p.ndc) == wanted), None)
            if match is None:
                raise Unprocessable(
                    f"{product_ndc} is not a product of {policy.policy.id if policy else ''}",
                    "product_ndc",
                )
            product_ndc, vials = match.ndc, dosing.vial_count(match)
        elif engine is not None and product_ndc == engine.ndc:
            vials = engine.vials
        return Authorized(product_ndc, vials, quantity, unit if quantity is not None else None)


@dataclass(frozen=True, slots=True)
class Authorized:
    """The product and quantity a decision authorizes."""

    ndc: str | None = None
    vials: int | None = None
    quantity: float | None = None
    unit: str | None = None


def _submission_entries(
    who: Actor, case_id: str, created: bool, judged: Determination | None = None
) -> list[Entry]:
    """The audit records of a submission; a new case's also say what the engine found."""
    case = f"case/{case_id}"
    entries = [Entry(who, "submit", "success", case, {"created": created})]
    if created:
        recommendation = judged.recommendation if judged else None
        entries.append(
            Entry(SYSTEM, "evaluate", "success", case, {"recommendation": recommendation})
        )
        if judged is not None and judged.missing:
            entries.append(
                Entry(SYSTEM, "doc-request", "success", case, {"items": len(judged.missing)})
            )
    return entries


def _unwrap(raw: bytes) -> bytes | None:
    """The inquiry Bundle of a Parameters body (re-encoded), or None for a bare Bundle."""
    import orjson

    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # _read answers it
    try:
        bundle, wrapped = unwrap_inquiry(body)
    except InvalidRequest as e:
        raise BadRequest(f"not a PAS inquiry: {e}") from e
    return orjson.dumps(bundle) if wrapped else None


def _matching(records: list[CaseRecord], q: InquiryKeys) -> list[CaseRecord]:
    """The member's and provider's cases the inquiry names, newest first.

    An inquiry that names a request by its trace numbers (Claim.identifier, the items'
    itemTraceNumber) gets those requests whatever service codes it carries (X12 278
    inquiries often code the service differently); otherwise a shared service code
    selects, and no service code (or "not-applicable") selects every case.
    """
    traces = set(q.trace_numbers)
    if q.claim_identifier is not None:
        traces.add(q.claim_identifier.value)
    by_trace = [
        r
        for r in records
        if r.keys.claim_identifier.value in traces or traces & set(trace_numbers(r.request))
    ]
    if by_trace:
        return by_trace
    if not q.service_codes:
        return records
    return [r for r in records if set(q.service_codes) & set(r.keys.service_codes)]


def _decided_at_once(policy: CompiledPolicy | None, judged: Judged) -> bool:
    """The policy lets the engine approve (issue 13 item 10): no Medical Director review of
    approvals (approval.medical_director_review is not "all"), every criterion met with
    nothing missing and nothing changed (recommendation approve), and no criterion a
    person must verify (evidence md_verification)."""
    found = judged.determination
    if policy is None or found is None:
        return False
    if policy.policy.approval.medical_director_review == "all" or found.medical_director_review:
        return False
    if found.recommendation != "approve" or found.missing:
        return False
    return not any(c.evidence == "md_verification" for c in policy.criteria.values())


def _same_content(row: CaseRow, digest: str) -> bool:
    """A stored case is this request again: same digest (a case stored before digests
    were kept is taken as the same, as it was then)."""
    return row.request_digest is None or row.request_digest == digest


def _other_content(keys: RequestKeys) -> Conflict:
    """A different request under an identifier already used, and no revision: refused, never
    answered with the other request's outcome (PAS: one Claim.identifier, one request)."""
    return Conflict(
        f"Claim.identifier {keys.claim_identifier.key()} is already used by another request "
        "with different content: send a new identifier, or a revision (Claim.related and "
        "certificationType S) of the earlier request",
        "Bundle.entry[0].resource.identifier[0]",
    )


def _as(action: str, fn: Callable[[], T]) -> T:
    """Run `fn`; a refusal it raises is audited under `action` (revise, cancel)."""
    try:
        return fn()
    except ServiceError as e:
        e.action = action
        raise


K = TypeVar("K", RequestKeys, InquiryKeys)


def _read(
    raw: bytes, reader: Callable[[PasRequest], K], what: str, who: Actor
) -> tuple[PasRequest, K]:
    """Parse a PAS bundle once and read its keys; a client may speak only for its own
    organization."""
    request = _parse(raw)
    try:
        keys = reader(request)
    except InvalidRequest as e:
        raise BadRequest(f"not a PAS {what} bundle: {e}") from e
    if who.organization and keys.submitter.value != who.organization:
        raise Forbidden(f"the {what}'s provider is not the organization of this client")
    return request, keys


def _parse(raw: bytes) -> PasRequest:
    try:
        request = PasRequest.parse(raw)
    except InvalidRequest as e:
        raise BadRequest(f"the body is not JSON: {e.__cause__ or e}") from e
    bundle = request.bundle
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("the body is not a FHIR Bundle")
    return request
