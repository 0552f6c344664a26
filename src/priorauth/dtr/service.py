"""DTR operations: $questionnaire-package and adaptive $next-question, on CRD's stored context."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import orjson
from sqlalchemy.orm import Session

from priorauth.auth.actors import SYSTEM, Actor
from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import Facts
from priorauth.core.result import Determination
from priorauth.coverage import assertions
from priorauth.coverage.bundle import order_bundle, with_response
from priorauth.coverage.information import coverage_information
from priorauth.coverage.judging import policies_in_force
from priorauth.coverage.orders import Service, match_orders
from priorauth.coverage.questions import canonical
from priorauth.coverage.references import reference_id
from priorauth.dtr import adaptive, cql
from priorauth.dtr.questionnaire import build
from priorauth.errors import InvalidRequest
from priorauth.intake.shapes import check_resource
from priorauth.policies.judging import Judged, judge
from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import BadRequest, NotFound, Unprocessable
from priorauth.store.audit import Entry
from priorauth.store.db import read_sessions

Json = dict[str, Any]
QR_PROFILE = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaireresponse"
ADAPT_QR_PROFILE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaireresponse-adapt"
ORIGIN = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin"
ASSERTION_SUFFIX = "/StructureDefinition/coverage-assertion-id"


def _json(raw: bytes, kind: str) -> Json:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"the body is not JSON: {e}") from e
    if not isinstance(body, dict) or body.get("resourceType") != kind:
        raise BadRequest(f"the body must be a FHIR {kind}")
    try:
        check_resource(body, kind)
    except InvalidRequest as e:
        raise Unprocessable(e.message, e.where) from e
    return body


def _params(body: Json) -> dict[str, list[Json]]:
    out: dict[str, list[Json]] = {}
    for p in body.get("parameter") or ():
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            out.setdefault(p["name"], []).append(p)
    return out


def assertion_of(resource: Json) -> str | None:
    for ext in resource.get("extension") or ():
        if isinstance(ext, dict) and str(ext.get("url", "")).endswith(ASSERTION_SUFFIX):
            value = ext.get("valueString")
            return value if isinstance(value, str) else None
    return None


class DtrService:
    def __init__(self, svc: PriorAuthService) -> None:
        self.svc = svc
        self.assertion_url = f"{svc.settings.base_url.rstrip('/')}/fhir{ASSERTION_SUFFIX}"
        self.reads = read_sessions(svc.engine)

    def _policy(self, found: assertions.Assertion) -> CompiledPolicy:
        """The policy version (as a plan document amends it) the assertion was judged under."""
        # An assertion without its evaluation: the base version it names.
        ev = found.evaluation
        version, plan = ev.judged_under if ev else (found.policy_version, None)
        policy = self.svc.library.version(found.policy_id, version, plan)
        if policy is None:
            raise NotFound(
                f"the policy {found.policy_id} {found.policy_version} of this assertion is no "
                "longer loaded"
            )
        return policy

    # --- $questionnaire-package ---------------------------------------------------

    def package(self, raw: bytes, who: Actor = SYSTEM) -> Json:
        """The forms, pre-filled from CRD's context; every use of a context is audited."""
        return self.svc.audited("dtr-package", who, lambda: self._package(raw, who))

    def _package(self, raw: bytes, who: Actor) -> Json:
        params = _params(_json(raw, "Parameters"))
        today = self.svc.clock().date()
        context = next(
            (
                p["valueString"]
                for p in params.get("context", [])
                if isinstance(p.get("valueString"), str)
            ),
            None,
        )
        orders = [
            p["resource"] for p in params.get("order", []) if isinstance(p.get("resource"), dict)
        ]
        if context is None and not orders and "questionnaire" not in params:
            raise Unprocessable("dtr-1: give an order, a questionnaire or a context", "Parameters")
        with self.svc.write_lock, self.svc.sessions() as s:
            if context is not None:
                found = assertions.load(s, context, who.organization)
                if found is None:
                    raise NotFound(f"no coverage assertion {context}")
                policy = self._policy(found)
                assertion_id, bundle = found.id, found.bundle
                facts, det = self._judge(s, bundle, today, policy)
            elif orders:
                policy, assertion_id, bundle, facts, det = self._from_order(
                    s, params, orders, today, who
                )
            else:
                return self._forms_only(params)
            # The pre-filled answers come from the patient's data: no record, no answer.
            entry = Entry(who, "dtr-package", "success", f"coverage-assertion/{assertion_id}")
            self.svc.audit.append_in(s, [entry], self.svc.clock())
            s.commit()
        form = build(policy, self.svc.settings.base_url)
        answers = adaptive.payer_answers(policy, facts, det)
        response: Json = {
            "resourceType": "QuestionnaireResponse",
            "id": f"prefill-{assertion_id}",
            "meta": {"profile": [QR_PROFILE]},
            "extension": [{"url": self.assertion_url, "valueString": assertion_id}],
            "questionnaire": f"{form['url']}|{form['version']}",
            "status": "in-progress",
            "subject": bundle["entry"][0]["resource"]["patient"],
            "authored": self.svc.clock().isoformat(),
            "item": _origin(adaptive.response_items(form["item"], answers)),
        }
        entries = [form, build(policy, self.svc.settings.base_url, adaptive=True), response]
        entries.append(cql.library(policy, self.svc.settings.base_url))  # the pre-fill logic
        return _package(entries)

    def _forms_only(self, params: dict[str, list[Json]]) -> Json:
        wanted = {str(p.get("valueCanonical", "")).split("|")[0] for p in params["questionnaire"]}
        base = self.svc.settings.base_url
        found = [p for p in self.svc.library.latest() if canonical(p, base) in wanted]
        if not found:
            raise NotFound("no such questionnaire")
        return _package([r for p in found for r in (build(p, base), cql.library(p, base))])

    def _from_order(
        self, s: Any, params: dict[str, list[Json]], orders: list[Json], today: date, who: Actor
    ) -> tuple[CompiledPolicy, str, Json, Facts, Determination]:
        services = [Service.of(p) for p in policies_in_force(self.svc.library, today)]
        found = match_orders(orders, services)
        if not found:
            raise NotFound("no questionnaire applies to these orders")
        m = found[0]
        coverages = [
            p["resource"] for p in params.get("coverage", []) if isinstance(p.get("resource"), dict)
        ]
        if len(coverages) != 1:
            raise BadRequest("give exactly one coverage with the order", "coverage")
        pid = reference_id(m.order.get("subject", {}).get("reference"), "Patient")
        if pid is None:
            raise Unprocessable("the order has no Patient subject", f"{m.reference}.subject")
        bundle = order_bundle(
            order=m.order,
            policy=m.service.policy,
            patient={"resourceType": "Patient", "id": pid},
            coverage=coverages[0],
            resources=[],
            as_of=today,
        )
        # The one pipeline of $submit and CRD: the Coverage's payer and plan, the date.
        judged = self._judged(s, bundle, today)
        policy, det, facts = judged.policy, judged.determination, judged.facts
        if policy is None or det is None:
            raise NotFound("no questionnaire applies to these orders for this payer and plan")
        assertion_id = self._assert(
            s,
            policy,
            facts,
            det,
            bundle,
            m.reference,
            "dtr package",
            who.organization,
            judged.routing,
        )
        return policy, assertion_id, bundle, facts, det

    def _judged(
        self, s: Session, bundle: Json, today: date, policy: CompiledPolicy | None = None
    ) -> Judged:
        """The one pipeline (policies.judging) with the member's stored claims; 422 when the
        order's data cannot be read."""
        try:
            return judge(
                bundle,
                self.svc.library,
                claims=self.svc.claims_lookup(s),
                as_of=today,
                policy=policy,
            )
        except InvalidRequest as e:
            raise Unprocessable(f"the order's data cannot be read: {e.message}", e.where) from e

    def _judge(
        self, s: Session, bundle: Json, today: date, policy: CompiledPolicy
    ) -> tuple[Facts, Determination]:
        """Judged under the assertion's own policy version, as it was first judged."""
        judged = self._judged(s, bundle, today, policy)
        assert judged.determination is not None  # a named policy is always evaluated
        return judged.facts, judged.determination

    def _assert(
        self,
        s: Any,
        policy: CompiledPolicy,
        facts: Any,
        det: Any,
        bundle: Json,
        order: str,
        source: str,
        organization: str | None,
        routing: Json | None = None,
    ) -> str:
        assertion_id = assertions.new_id()
        claim = bundle["entry"][0]["resource"]
        coverage = (
            (claim.get("insurance") or [{}])[0]
            .get("coverage", {})
            .get("reference", "Coverage/unknown")
        )
        ext = coverage_information(
            coverage_ref=coverage,
            determination=det,
            final_denial=adaptive.final_denial(policy, facts, det),
            questionnaire=canonical(policy, self.svc.settings.base_url),
            assertion_id=assertion_id,
            on=det.as_of,
        )
        assertions.save(
            s,
            assertion_id=assertion_id,
            now=self.svc.clock(),
            policy=policy,
            det=det,
            bundle=bundle,
            order_ref=order,
            member_id=facts.patient.member_id,
            coverage=ext,
            source=source,
            organization=organization,
            routing=routing,
        )
        return assertion_id

    # --- $next-question -------------------------------------------------------------

    def next_question(self, raw: bytes, who: Actor = SYSTEM) -> Json:
        """The next question of the adaptive form; each step is audited."""
        return self.svc.audited("dtr-next-question", who, lambda: self._next(raw, who))

    def _next(self, raw: bytes, who: Actor) -> Json:
        body = _json(raw, "Parameters")
        given = next(
            (
                p["resource"]
                for p in _params(body).get("questionnaire-response", [])
                if isinstance(p.get("resource"), dict)
            ),
            None,
        )
        if given is None or given.get("resourceType") != "QuestionnaireResponse":
            raise Unprocessable("questionnaire-response is required", "Parameters.parameter")
        qr: Json = copy.deepcopy(given)
        context = assertion_of(qr)
        if context is None:
            raise Unprocessable(
                "the QuestionnaireResponse carries no coverage-assertion-id extension "
                "(start from $questionnaire-package)",
                "QuestionnaireResponse.extension",
            )
        today = self.svc.clock().date()
        # Read and judge without the write lock (the costly part: every open question is
        # tried against the engine); then record the step, and any new assertion, briefly.
        with self.reads() as r:
            found = assertions.load(r, context, who.organization)
            if found is None:
                raise NotFound(f"no coverage assertion {context}")
            policy = self._policy(found)
            bundle = with_response(found.bundle, qr)
            facts, det = self._judge(r, bundle, today, policy)
        asks = adaptive.open_questions(policy, facts, det, limit=1)
        entity = f"coverage-assertion/{found.id}"
        step = Entry(who, "dtr-next-question", "success", entity, {"done": not asks})
        form = _contained_form(qr, policy, self.svc.settings.base_url)
        qr.setdefault("meta", {})["profile"] = [ADAPT_QR_PROFILE]
        if asks:
            have = set(adaptive.form_links(form.get("item", [])))
            if asks[0].link_id not in have:
                form.setdefault("item", []).append(asks[0].item())
            qr["status"] = "in-progress"
            with self.svc.write_lock, self.svc.sessions() as s:
                self.svc.audit.append_in(s, [step], self.svc.clock())
                s.commit()  # the audit record: no record, no answer
            return qr
        with self.svc.write_lock, self.svc.sessions() as s:
            self.svc.audit.append_in(s, [step], self.svc.clock())
            # Decided, or nothing a prescriber can answer is left: close the form.
            # The answer stays with the organization the assertion it continues belongs to.
            new_id = self._assert(
                s,
                policy,
                facts,
                det,
                bundle,
                found.order_ref,
                "dtr next-question",
                found.organization,
                # The new assertion keeps why its policy version (and plan) was chosen.
                _selected(found),
            )
            s.commit()
            loaded = assertions.load(s, new_id, found.organization)
            assert loaded is not None
        qr["status"] = "completed"
        qr["extension"] = [
            *[
                e
                for e in qr.get("extension", [])
                if not str(e.get("url", "")).endswith(ASSERTION_SUFFIX)
            ],
            {"url": self.assertion_url, "valueString": new_id},
            loaded.coverage,
        ]
        return qr


def _selected(found: assertions.Assertion) -> Json | None:
    """Why the assertion's policy version (and plan) was chosen, as stored."""
    named = found.evaluation.policy if found.evaluation else None
    return named.selected.data if named and named.selected else None


def _contained_form(qr: Json, policy: CompiledPolicy, base_url: str) -> Json:
    """The adaptive Questionnaire inside the response (added when the client sent none)."""
    ref = qr.get("questionnaire")
    for inner in qr.get("contained") or ():
        if (
            isinstance(inner, dict)
            and inner.get("resourceType") == "Questionnaire"
            and (ref is None or ref == f"#{inner.get('id')}")
        ):
            return inner
    form = build(policy, base_url, adaptive=True)
    qr.setdefault("contained", []).append(form)
    qr["questionnaire"] = f"#{form['id']}"
    return form


def _origin(items: list[Json]) -> list[Json]:
    """Mark pre-filled answers as the payer's (DTR information-origin)."""
    for item in items:
        for answer in item.get("answer", []):
            answer["extension"] = [
                {"url": ORIGIN, "extension": [{"url": "source", "valueCode": "auto"}]}
            ]
        _origin(item.get("item", []))
    return items


def _package(resources: list[Json]) -> Json:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "PackageBundle",
                "resource": {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": r} for r in resources],
                },
            }
        ],
    }
