"""DTR operations: $questionnaire-package and adaptive $next-question, on CRD's stored context."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import orjson

from priorauth.core.evaluator import CompiledPolicy
from priorauth.crd import assertions
from priorauth.crd.bundle import order_bundle, with_response
from priorauth.crd.coverage import coverage_information
from priorauth.crd.hooks import reference_id
from priorauth.crd.orders import Service, match_orders
from priorauth.crd.service import judge, policies_in_force
from priorauth.dtr import adaptive
from priorauth.dtr.questionnaire import build, canonical
from priorauth.errors import InvalidRequest
from priorauth.intake.shapes import check_resource
from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import BadRequest, NotFound, Unprocessable

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

    def _policy(self, policy_id: str | None, version: str | None) -> CompiledPolicy:
        for v in self.svc.library.versions.get(policy_id or "", []):
            if v.policy.version == version:
                return v
        raise NotFound(f"the policy {policy_id} {version} of this assertion is no longer loaded")

    # --- $questionnaire-package ---------------------------------------------------

    def package(self, raw: bytes) -> Json:
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
                found = assertions.load(s, context)
                if found is None:
                    raise NotFound(f"no coverage assertion {context}")
                policy = self._policy(found.policy_id, found.policy_version)
                assertion_id, bundle = found.id, found.bundle
            elif orders:
                policy, assertion_id, bundle = self._from_order(s, params, orders, today)
            else:
                return self._forms_only(params)
            facts, det = judge(s, policy, bundle, today)
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
        return _package(entries)

    def _forms_only(self, params: dict[str, list[Json]]) -> Json:
        wanted = {str(p.get("valueCanonical", "")).split("|")[0] for p in params["questionnaire"]}
        base = self.svc.settings.base_url
        forms = [build(p, base) for p in self.svc.library.latest() if canonical(p, base) in wanted]
        if not forms:
            raise NotFound("no such questionnaire")
        return _package(forms)

    def _from_order(
        self, s: Any, params: dict[str, list[Json]], orders: list[Json], today: date
    ) -> tuple[CompiledPolicy, str, Json]:
        services = [Service.of(p) for p in policies_in_force(self.svc, today)]
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
        policy = m.service.policy
        bundle = order_bundle(
            order=m.order,
            policy=policy,
            patient={"resourceType": "Patient", "id": pid},
            coverage=coverages[0],
            resources=[],
            as_of=today,
        )
        facts, det = judge(s, policy, bundle, today)
        assertion_id = self._assert(s, policy, facts, det, bundle, m.reference, "dtr package")
        return policy, assertion_id, bundle

    def _assert(
        self,
        s: Any,
        policy: CompiledPolicy,
        facts: Any,
        det: Any,
        bundle: Json,
        order: str,
        source: str,
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
        )
        return assertion_id

    # --- $next-question -------------------------------------------------------------

    def next_question(self, raw: bytes) -> Json:
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
        qr = copy.deepcopy(given)
        context = assertion_of(qr)
        if context is None:
            raise Unprocessable(
                "the QuestionnaireResponse carries no coverage-assertion-id extension "
                "(start from $questionnaire-package)",
                "QuestionnaireResponse.extension",
            )
        today = self.svc.clock().date()
        with self.svc.write_lock, self.svc.sessions() as s:
            found = assertions.load(s, context)
            if found is None:
                raise NotFound(f"no coverage assertion {context}")
            policy = self._policy(found.policy_id, found.policy_version)
            bundle = with_response(found.bundle, qr)
            facts, det = judge(s, policy, bundle, today)
            asks = adaptive.open_questions(policy, facts, det, limit=1)
            form = _contained_form(qr, policy, self.svc.settings.base_url)
            qr.setdefault("meta", {})["profile"] = [ADAPT_QR_PROFILE]
            if asks:
                have = set(adaptive.form_links(form.get("item", [])))
                if asks[0].link_id not in have:
                    form.setdefault("item", []).append(asks[0].item())
                qr["status"] = "in-progress"
                return qr
            # Decided, or nothing a prescriber can answer is left: close the form.
            new_id = self._assert(
                s, policy, facts, det, bundle, found.order_ref, "dtr next-question"
            )
            s.commit()
            loaded = assertions.load(s, new_id)
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
