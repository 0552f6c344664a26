"""The CRD use case: the engine judges an order from the EHR's data; cards and coverage follow."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from sqlalchemy.orm import Session

from priorauth.auth.actors import SYSTEM, Actor
from priorauth.coverage import assertions
from priorauth.coverage.bundle import order_bundle
from priorauth.coverage.information import coverage_information, with_coverage_information
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
from priorauth.crd.prefetch import resolve, templates
from priorauth.errors import InvalidRequest
from priorauth.policies.judging import judge
from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import BadRequest, NotFound, Unprocessable
from priorauth.store.audit import Entry
from priorauth.store.db import read_sessions

Json = dict[str, Any]
SERVICE_IDS = {f"priorauth-{hook}": hook for hook in ORDER_HOOKS}


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
                        "Prior authorization and documentation requirements for orders a "
                        "loaded coverage policy governs (Da Vinci CRD STU 2)."
                    ),
                    "prefetch": wanted,
                }
                for sid, hook in SERVICE_IDS.items()
            ]
        }

    def call(self, service_id: str, raw: bytes, who: Actor = SYSTEM) -> Json:
        """Answer a hook; a refusal is audited, and so is every order-sign judgement."""
        hook = SERVICE_IDS.get(service_id, "cds-hook")
        return self.svc.audited(hook, who, lambda: self._call(service_id, raw, who))

    def _call(self, service_id: str, raw: bytes, who: Actor) -> Json:
        hook = SERVICE_IDS.get(service_id)
        if hook is None:
            raise NotFound(f"no CDS service {service_id}")
        req = parse_hook(raw, hook)
        today = self.svc.clock().date()
        services = [Service.of(p) for p in policies_in_force(self.svc.library, today)]
        found = match_orders(req.draft_orders(), services, req.selections())
        if not found:
            return {"cards": [], "systemActions": []}
        for m in found:
            subject = m.order.get("subject", {}).get("reference")
            if reference_id(subject, "Patient") != req.patient_id:
                raise Unprocessable(
                    "the order's subject is not context.patientId", f"{m.reference}.subject"
                )
        if hook == "order-select":
            # CRD: no documentation is requested while orders are still being chosen.
            self.svc.audit.record(who, "order-select", "success", None, orders=len(found))
            return {
                "cards": [cards.prior_auth_notice(m.service.policy, _product(m)) for m in found],
                "systemActions": [],
            }
        data = resolve(req, templates(s.policy for s in services), self.svc.outbound, self.http)
        # Fetched resources are held to the prefetch's rules (the prefetch is checked again:
        # cheap, and the one place that sees both).
        checked_resources(data, "fhirServer")
        patient = _patient(data, req)
        coverage = _coverage(data.get("coverage", []), req.patient_id, found)
        resources = [
            r for key, rs in data.items() if key not in ("patient", "coverage") for r in rs
        ] + [r for r in data.get("coverage", []) if r.get("resourceType") == "Organization"]
        out: Json = {"cards": [], "systemActions": []}
        # Judged from a read-only session, outside the write lock; only the assertions
        # and their audit records are written under it, in one short transaction.
        with self.reads() as r:
            signed = [
                self._sign(r, req, m, patient, coverage, resources, today, who) for m in found
            ]
        with self.svc.write_lock, self.svc.sessions() as s:
            entries = []
            for one in signed:
                if one is None:
                    continue  # the member's payer and plan have no policy for this order
                card, action, assertion_id, save = one
                assertions.save(s, now=self.svc.clock(), **save)
                out["cards"].append(card)
                out["systemActions"].append(action)
                entries.append(
                    Entry(who, "order-sign", "success", f"coverage-assertion/{assertion_id}")
                )
            # The patient's data was judged and stored: recorded in the same transaction.
            self.svc.audit.append_in(s, entries, self.svc.clock())
            s.commit()
        return out

    def _sign(
        self,
        s: Session,
        req: HookRequest,
        m: OrderMatch,
        patient: Json,
        coverage: Json,
        resources: list[Json],
        today: date,
        who: Actor,
    ) -> tuple[Json, Json, str, Json] | None:
        """The card, the system action, the new assertion's id and what to store for it."""
        bundle = order_bundle(
            order=m.order,
            policy=m.service.policy,
            patient=patient,
            coverage=coverage,
            resources=resources,
            as_of=today,
        )
        # The one pipeline of $submit: routed by the Coverage's payer and plan and the date
        # of service, judged with the member's claims history.
        try:
            judged = judge(bundle, self.svc.library, claims=self.svc.claims_lookup(s), as_of=today)
        except InvalidRequest as e:
            raise Unprocessable(f"the EHR's data cannot be read: {e.message}", e.where) from e
        policy, det, facts = judged.policy, judged.determination, judged.facts
        if policy is None or det is None:
            return None
        denied = final_denial(policy, facts, det)
        assertion_id = assertions.new_id()
        extension = coverage_information(
            coverage_ref=f"Coverage/{coverage['id']}",
            determination=det,
            final_denial=denied,
            questionnaire=canonical(policy, self.svc.settings.base_url),
            assertion_id=assertion_id,
            on=today,
        )
        save: Json = {
            "assertion_id": assertion_id,
            "policy": policy,
            "det": det,
            "bundle": bundle,
            "order_ref": m.reference,
            "member_id": facts.patient.member_id,
            "coverage": extension,
            "source": f"{req.hook} {req.instance}",
            "organization": who.organization,
            "routing": judged.routing,
        }
        card = cards.instructions_card(policy, det, final_denial=denied, product=_product(m))
        action = {
            "type": "update",
            "description": f"Added coverage information to {m.reference}",
            "resource": with_coverage_information(m.order, extension),
        }
        return card, action, assertion_id, save


def _product(m: OrderMatch) -> str:
    names = m.service.policy.policy.service.names
    return names[0].capitalize() if names else m.service.policy.policy.title


def _patient(data: dict[str, list[Json]], req: HookRequest) -> Json:
    for r in data.get("patient", []):
        if r.get("resourceType") == "Patient":
            return r
    raise PrefetchUnavailable(f"the Patient {req.patient_id} is not available", "prefetch.patient")


def _coverage(found: list[Json], patient_id: str, orders: list[OrderMatch]) -> Json:
    """The one active Coverage of the patient the orders bill (400 when none or several)."""
    active = [
        c
        for c in found
        if c.get("resourceType") == "Coverage"
        and c.get("status", "active") == "active"
        and reference_id(c.get("beneficiary", {}).get("reference"), "Patient") in (None, patient_id)
    ]
    named = {
        reference_id(i.get("reference"), "Coverage")
        for m in orders
        for i in m.order.get("insurance") or ()
        if isinstance(i, dict)
    } - {None}
    if named:
        active = [c for c in active if c.get("id") in named]
    if not active:
        raise BadRequest(
            "no active Coverage for the patient: coverage cannot be determined", "prefetch.coverage"
        )
    if len(active) > 1:
        raise BadRequest(
            "several active Coverages and the order names none: which plan pays is ambiguous",
            "prefetch.coverage",
        )
    coverage = active[0]
    if not coverage.get("id"):
        raise BadRequest("the Coverage has no id", "prefetch.coverage")
    return coverage
