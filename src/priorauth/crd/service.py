"""The CRD use case: the engine judges an order from the EHR's data; cards and coverage follow."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from sqlalchemy.orm import Session

from priorauth.auth.actors import SYSTEM, Actor
from priorauth.core.evaluator import CompiledPolicy
from priorauth.coverage import assertions
from priorauth.coverage.bundle import order_bundle
from priorauth.coverage.information import (
    assertion_id_of,
    carried,
    coverage_information,
    plain_information,
    same_answer,
    with_coverage_information,
)
from priorauth.coverage.judging import final_denial, policies_in_force
from priorauth.coverage.orders import OrderMatch, Service, match_orders
from priorauth.coverage.questions import canonical
from priorauth.coverage.references import reference_id
from priorauth.crd import cards
from priorauth.crd.hooks import (
    ORDER_HOOKS,
    HookRequest,
    PrefetchUnavailable,
    checked_resources,
    parse_hook,
)
from priorauth.crd.prefetch import resolve, resources_of, templates
from priorauth.errors import InvalidRequest
from priorauth.policies.judging import judge
from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import BadRequest, NotFound, Unprocessable
from priorauth.store.audit import Entry
from priorauth.store.db import read_sessions

Json = dict[str, Any]
SERVICE_IDS = {f"priorauth-{hook}": hook for hook in ORDER_HOOKS}
# The resources CRD states coverage for (its profiles of orders, appointments, encounters).
ORDER_TYPES = frozenset(
    {
        "MedicationRequest",
        "ServiceRequest",
        "DeviceRequest",
        "NutritionOrder",
        "VisionPrescription",
        "CommunicationRequest",
        "Appointment",
        "Encounter",
    }
)


class CrdService:
    """CDS Hooks discovery and the order-sign / order-select services."""

    def __init__(self, svc: PriorAuthService, http: httpx.Client | None = None) -> None:
        self.svc = svc
        self.http = http  # None: one short-lived client per fetch
        self.reads = read_sessions(svc.engine)

    def discovery(self) -> Json:
        wanted = templates(self.svc.library.latest())
        return {
            "services": [
                {
                    "hook": hook,
                    "id": sid,
                    "title": f"Coverage requirements ({hook})",
                    "description": (
                        "Coverage information for every order (Da Vinci CRD 2.0.1): prior "
                        "authorization and documentation requirements where a loaded coverage "
                        "policy governs the service."
                    ),
                    "prefetch": wanted,
                }
                for sid, hook in SERVICE_IDS.items()
            ]
        }

    def call(self, service_id: str, raw: bytes, who: Actor = SYSTEM) -> Json:
        """Answer a hook; a refusal is audited, and so is every judgement of an order."""
        hook = SERVICE_IDS.get(service_id, "cds-hook")
        return self.svc.audited(hook, who, lambda: self._call(service_id, raw, who))

    def policy_text(self, policy_id: str, version: str) -> Json:
        """The text of a policy version an External Reference card links to."""
        policy = self.svc.library.version(policy_id, version)
        if policy is None:
            raise NotFound(f"no policy {policy_id} version {version}")
        return cards.policy_text(policy)

    def _call(self, service_id: str, raw: bytes, who: Actor) -> Json:
        hook = SERVICE_IDS.get(service_id)
        if hook is None:
            raise NotFound(f"no CDS service {service_id}")
        req = parse_hook(raw, hook)
        today = self.svc.clock().date()
        services = [Service.of(p) for p in policies_in_force(self.svc.library, today)]
        orders = self._dispatched(req) if hook == "order-dispatch" else req.draft_orders()
        found = match_orders(orders, services, req.selections())
        for m in found:
            subject = m.order.get("subject", {}).get("reference")
            if reference_id(subject, "Patient") != req.patient_id:
                raise Unprocessable(
                    "the order's subject is not context.patientId", f"{m.reference}.subject"
                )
        base = self.svc.settings.base_url
        selected = req.selections()
        if selected is not None:
            # CRD 2.0.1 order-select: coverage information for the orders just chosen only.
            orders = [o for o in orders if f"{o.get('resourceType')}/{o.get('id')}" in selected]
        # Only what the answer needs: the Coverage for every order, the patient's record
        # only when a policy governs one of them.
        wanted = templates(s.policy for s in services)
        if not found:
            wanted = {"coverage": wanted["coverage"]}
        try:
            data = resolve(req, wanted, self.svc.outbound, self.http)
        except PrefetchUnavailable:
            if hook != "order-select":
                raise
            # Coverage information is a SHOULD on order-select: without the EHR's data
            # the chosen orders still get their notices (order-sign answers 412).
            return self._notices(found, who)
        # Fetched resources are held to the prefetch's rules (the prefetch is checked again:
        # cheap, and the one place that sees both).
        checked_resources(data, "fhirServer")
        coverage = _coverage(data.get("coverage", []), req.patient_id, orders)
        patient = _patient(data, req) if found and coverage is not None else {}
        resources = [
            r for key, rs in data.items() if key not in ("patient", "coverage") for r in rs
        ] + [r for r in data.get("coverage", []) if r.get("resourceType") == "Organization"]
        governed = {id(m.order): m for m in found}
        context = _Context(req, patient, coverage, data.get("coverage", []), resources, today)
        # Judged from a read-only session, outside the write lock; only the assertions
        # and their audit records are written under it, in one short transaction.
        with self.reads() as r:
            answers = [
                self._answer(r, context, order, governed.get(id(order)), who)
                for order in orders
                if _annotated(order)
            ]
        out: Json = {"cards": [], "systemActions": []}
        with self.svc.write_lock, self.svc.sessions() as s:
            entries = []
            for a in answers:
                if a.card is not None:
                    out["cards"].append(a.card)
                if a.save is not None:
                    assertions.save(s, now=self.svc.clock(), **a.save)
                if a.action is not None:
                    out["systemActions"].append(a.action)
                if a.judged or a.save is not None:
                    # The patient's data was judged or an answer about them stored: recorded
                    # in this transaction.
                    entity = f"coverage-assertion/{a.assertion_id}"
                    entries.append(Entry(who, hook, "success", entity))
            self.svc.audit.append_in(s, entries, self.svc.clock())
            s.commit()
        if hook == "order-select":
            # CRD: no documentation is requested while orders are still being chosen: a
            # notice per governed order, not the order-sign instructions.
            out["cards"] = [cards.prior_auth_notice(m.service.policy, _product(m)) for m in found]
        policies = _distinct(a.policy for a in answers if a.policy is not None)
        out["cards"].extend(cards.external_reference(p, base) for p in policies)
        return out

    def _notices(self, found: list[OrderMatch], who: Actor) -> Json:
        """order-select without coverage data: a notice per governed order, no actions."""
        if found:
            self.svc.audit.record(who, "order-select", "success", None, orders=len(found))
        base = self.svc.settings.base_url
        notices = [cards.prior_auth_notice(m.service.policy, _product(m)) for m in found]
        policies = _distinct(m.service.policy for m in found)
        links = [cards.external_reference(p, base) for p in policies]
        return {"cards": notices + links, "systemActions": []}

    def _dispatched(self, req: HookRequest) -> list[Json]:
        """order-dispatch: the dispatched orders, from the prefetch or the EHR's server."""
        given: dict[str, Json] = {}
        for key in ("order", "orders", "dispatchedOrders"):
            for r in resources_of(req.prefetch.get(key)):
                given[f"{r.get('resourceType')}/{r.get('id')}"] = r
        refs = req.dispatched()
        missing = {f"order-{i}": ref for i, ref in enumerate(refs) if ref not in given}
        fetched = resolve(req, missing, self.svc.outbound, self.http) if missing else {}
        checked_resources(fetched, "fhirServer")
        out = []
        for i, ref in enumerate(refs):
            found = [given[ref]] if ref in given else fetched.get(f"order-{i}", [])
            match = [r for r in found if f"{r.get('resourceType')}/{r.get('id')}" == ref]
            if not match:
                raise PrefetchUnavailable(
                    f"the dispatched order {ref} is not available", "context.dispatchedOrders"
                )
            out.append(match[0])
        return out

    def _answer(
        self, s: Session, c: _Context, order: Json, m: OrderMatch | None, who: Actor
    ) -> _Answer:
        """One order's coverage information: judged when a policy governs it."""
        ref = f"{order['resourceType']}/{order['id']}"
        assertion_id = assertions.new_id()
        policy: CompiledPolicy | None = None
        card: Json | None = None
        save: Json = {
            "assertion_id": assertion_id,
            "policy": None,
            "det": None,
            "bundle": {"resourceType": "Bundle", "type": "collection", "entry": []},
            "order_ref": ref,
            "member_id": None,
            "source": f"{c.req.hook} {c.req.instance}",
            "organization": who.organization,
            "as_of": c.today,
        }
        judged = False
        if c.coverage is None:
            extension = plain_information(
                coverage=_no_coverage_reference(c.found_coverage, c.req.patient_id),
                covered=False,
                reason="no active coverage for the patient",
                assertion_id=assertion_id,
                on=c.today,
            )
        else:
            coverage_ref = f"Coverage/{c.coverage['id']}"
            signed = self._sign(s, c, m, coverage_ref, assertion_id) if m is not None else None
            judged = m is not None
            if signed is None:
                # No policy of the member's payer and plan governs it: no PA needed.
                extension = plain_information(
                    coverage={"reference": coverage_ref},
                    covered=True,
                    reason=None,
                    assertion_id=assertion_id,
                    on=c.today,
                )
            else:
                card, extension, judged_save = signed
                save.update(judged_save)
                policy = judged_save["policy"]
        save["coverage"] = extension
        for old in carried(order):
            old_id = assertion_id_of(old)
            if (
                old_id is not None
                and same_answer(old, extension)
                and assertions.load(s, old_id, who.organization) is not None
            ):
                # The order already says this (CRD: no update for what the EHR holds).
                return _Answer(card, None, None, old_id, policy, judged)
        action = {
            "type": "update",
            "description": f"Added coverage information to {ref}",
            "resource": with_coverage_information(order, extension),
        }
        return _Answer(card, action, save, assertion_id, policy, judged)

    def _sign(
        self, s: Session, c: _Context, m: OrderMatch, coverage_ref: str, assertion_id: str
    ) -> tuple[Json, Json, Json] | None:
        """The card, the extension and what to store for a governed order; None when the
        member's payer and plan have no policy for it."""
        assert c.coverage is not None
        bundle = order_bundle(
            order=m.order,
            policy=m.service.policy,
            patient=c.patient,
            coverage=c.coverage,
            resources=c.resources,
            as_of=c.today,
        )
        # The one pipeline of $submit: routed by the Coverage's payer and plan and the date
        # of service, judged with the member's claims history.
        try:
            judged = judge(
                bundle, self.svc.library, claims=self.svc.claims_lookup(s), as_of=c.today
            )
        except InvalidRequest as e:
            raise Unprocessable(f"the EHR's data cannot be read: {e.message}", e.where) from e
        policy, det, facts = judged.policy, judged.determination, judged.facts
        if policy is None or det is None:
            return None
        denied = final_denial(policy, facts, det)
        extension = coverage_information(
            coverage_ref=coverage_ref,
            determination=det,
            final_denial=denied,
            questionnaire=canonical(policy, self.svc.settings.base_url),
            assertion_id=assertion_id,
            on=c.today,
            documentation=c.req.hook != "order-select",
        )
        save: Json = {
            "policy": policy,
            "det": det,
            "bundle": bundle,
            "member_id": facts.patient.member_id,
            "routing": judged.routing,
        }
        card = cards.instructions_card(policy, det, final_denial=denied, product=_product(m))
        return card, extension, save


@dataclass(frozen=True, slots=True)
class _Context:
    """What every order of one hook call is answered from."""

    req: HookRequest
    patient: Json
    coverage: Json | None  # the one active Coverage; None: the patient has none
    found_coverage: list[Json]
    resources: list[Json]
    today: date


@dataclass(frozen=True, slots=True)
class _Answer:
    card: Json | None
    action: Json | None  # None: the order already carries this answer
    save: Json | None  # the new assertion to store (None: unchanged)
    assertion_id: str
    policy: CompiledPolicy | None
    judged: bool


def _annotated(order: Json) -> bool:
    """Whether CRD states coverage for the resource (an order or appointment with an id)."""
    return order.get("resourceType") in ORDER_TYPES and isinstance(order.get("id"), str)


def _distinct(policies: Iterable[CompiledPolicy]) -> list[CompiledPolicy]:
    seen: dict[tuple[str, str], CompiledPolicy] = {}
    for p in policies:
        seen.setdefault((p.policy.id, p.policy.version), p)
    return list(seen.values())


def _no_coverage_reference(found: list[Json], patient_id: str) -> Json:
    """The Coverage a not-covered answer names: an inactive one of the patient, if any."""
    for c in found:
        if (
            c.get("resourceType") == "Coverage"
            and isinstance(c.get("id"), str)
            and reference_id(c.get("beneficiary", {}).get("reference"), "Patient")
            in (None, patient_id)
        ):
            return {"reference": f"Coverage/{c['id']}"}
    return {"display": "no active coverage found for the patient"}


def _product(m: OrderMatch) -> str:
    names = m.service.policy.policy.service.names
    return names[0].capitalize() if names else m.service.policy.policy.title


def _patient(data: dict[str, list[Json]], req: HookRequest) -> Json:
    for r in data.get("patient", []):
        if r.get("resourceType") == "Patient":
            return r
    raise PrefetchUnavailable(f"the Patient {req.patient_id} is not available", "prefetch.patient")


def _coverage(found: list[Json], patient_id: str, orders: list[Json]) -> Json | None:
    """The one active Coverage of the patient the orders bill; None when there is none
    (the orders are then not covered), 400 when several and no order names one."""
    active = [
        c
        for c in found
        if c.get("resourceType") == "Coverage"
        and c.get("status", "active") == "active"
        and reference_id(c.get("beneficiary", {}).get("reference"), "Patient") in (None, patient_id)
    ]
    named = {
        reference_id(i.get("reference"), "Coverage")
        for order in orders
        for i in order.get("insurance") or ()
        if isinstance(i, dict)
    } - {None}
    if named:
        active = [c for c in active if c.get("id") in named]
    if not active:
        return None
    if len(active) > 1:
        raise BadRequest(
            "several active Coverages and the order names none: which plan pays is ambiguous",
            "prefetch.coverage",
        )
    coverage = active[0]
    if not coverage.get("id"):
        raise BadRequest("the Coverage has no id", "prefetch.coverage")
    return coverage
