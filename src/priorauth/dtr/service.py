"""DTR operations: $questionnaire-package and adaptive $next-question, on CRD's stored context."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy.orm import Session

from priorauth.auth.actors import SYSTEM, Actor
from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import HCPCS, Facts
from priorauth.core.result import Determination
from priorauth.coverage import assertions
from priorauth.coverage.bundle import order_bundle, with_response
from priorauth.coverage.information import coverage_information
from priorauth.coverage.judging import policies_in_force
from priorauth.coverage.orders import Service, match_orders
from priorauth.coverage.questions import canonical, questions
from priorauth.coverage.references import reference_id
from priorauth.dtr import adaptive
from priorauth.dtr.questionnaire import ADAPTIVE_SUFFIX, build, dependencies
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
DTR_SD = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition"
PACKAGE_PROFILE = f"{DTR_SD}/DTR-QPackageBundle"
QR_CONTEXT = f"{DTR_SD}/qr-context"
INTENDED_USE = f"{DTR_SD}/intendedUse"
# CRD DocReason: the answers go with the prior authorization request.
WITH_PA = {
    "system": "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp",
    "code": "withpa",
    "display": "Include in prior authorization",
}


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


@dataclass(frozen=True, slots=True)
class _Draft:
    """What a package's draft response is made of: the form's policy and the order's context."""

    policy: CompiledPolicy
    assertion_id: str | None
    subject: Json | None
    contexts: list[str]  # qr-context: the Coverage(s), then the order(s)
    facts: Facts | None = None
    det: Determination | None = None

    @classmethod
    def of(
        cls,
        policy: CompiledPolicy,
        assertion_id: str,
        bundle: Json,
        order_ref: str,
        facts: Facts,
        det: Determination,
    ) -> _Draft:
        claim = bundle["entry"][0]["resource"]
        coverages = [
            ref
            for i in claim.get("insurance") or ()
            if isinstance(ref := (i.get("coverage") or {}).get("reference"), str)
        ]
        return cls(policy, assertion_id, claim.get("patient"), [*coverages, order_ref], facts, det)

    @classmethod
    def bare(cls, policy: CompiledPolicy, coverages: list[Json], orders: list[Json]) -> _Draft:
        """A named form without CRD context: its response names what the client sent."""
        refs = [r for c in coverages if (r := _ref(c)) is not None]
        refs += [r for o in orders if (r := _ref(o)) is not None]
        subject = next(
            (
                x[key]
                for x in [*coverages, *orders]
                for key in ("beneficiary", "subject", "patient")
                if isinstance(x.get(key), dict) and x[key].get("reference")
            ),
            None,
        )
        return cls(policy, None, subject, refs)


def _ref(resource: Json) -> str | None:
    kind, rid = resource.get("resourceType"), resource.get("id")
    return f"{kind}/{rid}" if isinstance(kind, str) and isinstance(rid, str) and rid else None


def _resources(params: dict[str, list[Json]], name: str) -> list[Json]:
    return [p["resource"] for p in params.get(name, []) if isinstance(p.get("resource"), dict)]


def _canonicals(params: dict[str, list[Json]]) -> list[tuple[str, str | None]]:
    """The questionnaire parameters as (url, version or None)."""
    out = []
    for p in params.get("questionnaire", []):
        value = p.get("valueCanonical")
        if isinstance(value, str) and value:
            url, _, version = value.partition("|")
            out.append((url, version or None))
    return out


def _kinds(url: str, wanted: list[tuple[str, str | None]]) -> list[bool]:
    """Which of the policy's forms the client named (False: standard, True: adaptive)."""
    named = {u for u, _ in wanted}
    return [adaptive for adaptive in (False, True) if url + ADAPTIVE_SUFFIX * adaptive in named]


def _is_dtr_response(qr: Json) -> bool:
    """Whether the draft meets the DTR QuestionnaireResponse profile's cardinalities."""
    urls = [e.get("url") for e in qr.get("extension", [])]
    return (
        urls.count(QR_CONTEXT) >= 2
        and INTENDED_USE in urls
        and bool(qr.get("item"))
        and "subject" in qr
    )


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
        orders = _resources(params, "order")
        coverages = _resources(params, "coverage")
        wanted = _canonicals(params)
        # changedsince is accepted: a form is generated per policy version, and a version
        # once loaded never changes, so every package is returned as it stands.
        if context is None and not orders and not wanted:
            raise Unprocessable("dtr-1: give an order, a questionnaire or a context", "Parameters")
        base = self.svc.settings.base_url
        drafts: list[_Draft] = []
        with self.svc.write_lock, self.svc.sessions() as s:
            if context is not None:
                found = assertions.load(s, context, who.organization)
                if found is None:
                    raise NotFound(f"no coverage assertion {context}")
                policy = self._policy(found)
                facts, det = self._judge(s, found.bundle, today, policy)
                drafts.append(
                    _Draft.of(policy, found.id, found.bundle, found.order_ref, facts, det)
                )
            elif orders:
                judged = self._from_order(s, orders, coverages, today, who, bool(wanted))
                if judged is not None:
                    drafts.append(judged)
            for d in drafts:
                # The pre-filled answers come from the patient's data: no record, no answer.
                entry = Entry(who, "dtr-package", "success", f"coverage-assertion/{d.assertion_id}")
                self.svc.audit.append_in(s, [entry], self.svc.clock())
            s.commit()
        bundles: list[Json] = []
        missing: list[str] = []
        for d in drafts:
            kinds = _kinds(canonical(d.policy, base), wanted) or [False, True]
            bundles.extend(self._bundle(d, adaptive) for adaptive in kinds)
        done = {canonical(d.policy, base) for d in drafts}
        for url, version in wanted:
            if url.removesuffix(ADAPTIVE_SUFFIX) in done:
                continue
            named = self._by_canonical(url, version)
            if named is None:
                missing.append(f"{url}|{version}" if version else url)
                continue
            bare = _Draft.bare(named, coverages, orders)
            bundles.append(self._bundle(bare, url.endswith(ADAPTIVE_SUFFIX)))
        if not bundles:
            if missing:
                raise NotFound(f"no questionnaire {', '.join(missing)}")
            raise NotFound("no questionnaire applies to these orders")
        return _package(bundles, missing)

    def _by_canonical(self, url: str, version: str | None) -> CompiledPolicy | None:
        """The policy whose form has this canonical (its newest version unless one is named)."""
        base = self.svc.settings.base_url
        url = url.removesuffix(ADAPTIVE_SUFFIX)
        for p in self.svc.library.latest():
            if canonical(p, base) == url:
                if version is None or version == p.policy.version:
                    return p
                return self.svc.library.version(p.policy.id, version)
        return None

    def _bundle(self, d: _Draft, adaptive_form: bool) -> Json:
        """One DTR package Bundle: the form first, what it depends on, then its draft response."""
        base = self.svc.settings.base_url
        form = build(d.policy, base, adaptive=adaptive_form)
        answers: dict[str, bool] = {}
        if d.facts is not None and d.det is not None:
            answers = adaptive.payer_answers(d.policy, d.facts, d.det)
        extension: list[Json] = [
            *(
                {"url": QR_CONTEXT, "valueReference": {"reference": ref, "type": ref.split("/")[0]}}
                for ref in d.contexts
            ),
            {"url": INTENDED_USE, "valueCodeableConcept": {"coding": [WITH_PA]}},
        ]
        if d.assertion_id is not None:
            extension.append({"url": self.assertion_url, "valueString": d.assertion_id})
        response: Json = {
            "resourceType": "QuestionnaireResponse",
            "id": f"prefill-{d.assertion_id or d.policy.policy.id}"
            + (ADAPTIVE_SUFFIX if adaptive_form else ""),
            "extension": extension,
            "status": "in-progress",
            "authored": self.svc.clock().isoformat(),
        }
        if d.subject is not None:
            response["subject"] = d.subject
        if adaptive_form:
            # SDC adaptive: the response carries its form, which holds what was asked so far
            # (here: the questions the payer's own records answer).
            inner = copy.deepcopy(form)
            inner["item"] = [q.item() for q in questions(d.policy) if q.link_id in answers]
            if not inner["item"]:
                del inner["item"]
            response["contained"] = [inner]
            response["questionnaire"] = f"#{inner['id']}"
            items = adaptive.response_items(inner.get("item", []), answers)
        else:
            response["questionnaire"] = f"{form['url']}|{form['version']}"
            items = adaptive.response_items(form["item"], answers, every_item=True)
        if items:
            response["item"] = _origin(items)
        profiles = [QR_PROFILE] if _is_dtr_response(response) else []
        if adaptive_form:
            profiles.append(ADAPT_QR_PROFILE)
        response["meta"] = {"profile": profiles}
        if not profiles:
            del response["meta"]
        entries = [form, *dependencies(d.policy, base), response]
        return {
            "resourceType": "Bundle",
            "meta": {"profile": [PACKAGE_PROFILE]},
            "type": "collection",
            "entry": [{"resource": r} for r in entries],
        }

    def _from_order(
        self,
        s: Any,
        orders: list[Json],
        coverages: list[Json],
        today: date,
        who: Actor,
        named: bool,
    ) -> _Draft | None:
        """The order's form, judged; None when no policy governs the order but the client
        named its questionnaires (they are then returned without pre-filled answers)."""
        services = [Service.of(p) for p in policies_in_force(self.svc.library, today)]
        found = match_orders(orders, services)
        if not found:
            if named:
                return None
            raise NotFound("no questionnaire applies to these orders")
        m = found[0]
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
        return _Draft.of(policy, assertion_id, bundle, m.reference, facts, det)

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
        today = self.svc.clock().date()
        found: assertions.Assertion | None = None
        # Read and judge without the write lock (the costly part: every open question is
        # tried against the engine); then record the step, and any new assertion, briefly.
        with self.reads() as r:
            if context is not None:
                # CRD's context, when the response carries it: the order, the member's data,
                # and the policy version it was judged under (the organization's own only).
                found = assertions.load(r, context, who.organization)
                if found is None:
                    raise NotFound(f"no coverage assertion {context}")
                policy = self._policy(found)
                bundle = with_response(found.bundle, qr)
            else:
                # No context: the form's canonical names the policy; only the answers count.
                policy = self._form_policy(qr)
                bundle = with_response(_answers_only(policy, qr, today), qr)
            facts, det = self._judge(r, bundle, today, policy)
        asks = adaptive.open_questions(policy, facts, det, limit=1)
        entity = f"coverage-assertion/{found.id}" if found else f"questionnaire/{policy.policy.id}"
        step = Entry(who, "dtr-next-question", "success", entity, {"done": not asks})
        form = _contained_form(qr, policy, self.svc.settings.base_url)
        qr.setdefault("meta", {})["profile"] = [ADAPT_QR_PROFILE]
        if asks:
            have = set(adaptive.form_links(form.get("item", [])))
            if asks[0].link_id not in have:
                form.setdefault("item", []).append(asks[0].item())
        _with_asked(qr, form)
        if asks:
            qr["status"] = "in-progress"
            with self.svc.write_lock, self.svc.sessions() as s:
                self.svc.audit.append_in(s, [step], self.svc.clock())
                s.commit()  # the audit record: no record, no answer
            return qr
        qr["status"] = "completed"
        if found is None:
            # Nothing a prescriber can answer is left; with no order there is no coverage
            # assertion to record: the completed response goes with the PAS request.
            with self.svc.write_lock, self.svc.sessions() as s:
                self.svc.audit.append_in(s, [step], self.svc.clock())
                s.commit()
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

    def _form_policy(self, qr: Json) -> CompiledPolicy:
        """The policy whose form the response answers: the contained form's derivedFrom (an
        SDC adaptive instance has no url; older clients send one), or the response's
        `questionnaire`."""
        ref = qr.get("questionnaire")
        urls: list[Any] = []
        for inner in qr.get("contained") or ():
            if (
                isinstance(inner, dict)
                and inner.get("resourceType") == "Questionnaire"
                and (ref is None or ref == f"#{inner.get('id')}")
            ):
                derived = inner.get("derivedFrom")
                urls.extend(derived if isinstance(derived, list) else [])
                urls.append(inner.get("url"))
        if isinstance(ref, str) and not ref.startswith("#"):
            urls.append(ref)
        named = [u for u in urls if isinstance(u, str) and u]
        if not named:
            raise Unprocessable(
                "the QuestionnaireResponse names no questionnaire (questionnaire, or a "
                "contained Questionnaire with a derivedFrom or url)",
                "QuestionnaireResponse.questionnaire",
            )
        for value in named:
            url, _, version = value.partition("|")
            policy = self._by_canonical(url, version or None)
            if policy is not None:
                return policy
        raise NotFound(f"no questionnaire {named[0]}")


def _answers_only(policy: CompiledPolicy, qr: Json, today: date) -> Json:
    """A request for the policy's service with nothing but the patient: the answers decide.

    Without CRD's context there is no order or record to read; the EHR's own data reaches
    the payer with the PAS request.
    """
    pid = reference_id((qr.get("subject") or {}).get("reference"), "Patient") or "patient"
    service = policy.policy.service
    order = {
        "resourceType": "MedicationRequest",
        "id": "order",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": HCPCS, "code": code} for code in service.hcpcs],
            "text": service.names[0] if service.names else policy.policy.title,
        },
        "subject": {"reference": f"Patient/{pid}"},
    }
    return order_bundle(
        order=order,
        policy=policy,
        patient={"resourceType": "Patient", "id": pid},
        coverage=None,
        resources=[],
        as_of=today,
    )


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


def _with_asked(qr: Json, form: Json) -> None:
    """Every question the form has asked is an item of the response, answered or not.

    SDC adaptive: the response lists what was asked so far, the new question without an
    answer (dtr-questionnaireresponse: item 1..*, and no empty array anywhere).
    """
    items = qr.get("item")
    given = items if isinstance(items, list) else []
    have = _response_links(given)
    for item in adaptive.walk_items(form.get("item") or []):
        link = item.get("linkId")
        if item.get("type") != "group" and isinstance(link, str) and link not in have:
            asked: Json = {"linkId": link}
            if isinstance(item.get("text"), str):
                asked["text"] = item["text"]
            given.append(asked)
    for owner, kept in ((qr, given), (form, form.get("item"))):
        if kept:
            owner["item"] = kept
        else:
            owner.pop("item", None)


def _response_links(items: Any) -> set[str]:
    """The linkIds of a response's items, through item.item and answer.item."""
    out: set[str] = set()
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("linkId"), str):
            out.add(item["linkId"])
        out |= _response_links(item.get("item"))
        for answer in item.get("answer") or ():
            if isinstance(answer, dict):
                out |= _response_links(answer.get("item"))
    return out


def _origin(items: list[Json]) -> list[Json]:
    """Mark pre-filled answers as the payer's (DTR information-origin)."""
    for item in items:
        for answer in item.get("answer", []):
            answer["extension"] = [
                {"url": ORIGIN, "extension": [{"url": "source", "valueCode": "auto"}]}
            ]
        _origin(item.get("item", []))
    return items


def _package(bundles: list[Json], missing: list[str]) -> Json:
    """The operation's output: a PackageBundle per form, and a warning for each form not found."""
    out: list[Json] = [{"name": "PackageBundle", "resource": b} for b in bundles]
    if missing:
        issues = [
            {
                "severity": "warning",
                "code": "not-found",
                "diagnostics": f"no questionnaire {url}",
                "expression": ["Parameters.parameter.where(name = 'questionnaire')"],
            }
            for url in missing
        ]
        out.append(
            {"name": "Outcome", "resource": {"resourceType": "OperationOutcome", "issue": issues}}
        )
    return {"resourceType": "Parameters", "parameter": out}
