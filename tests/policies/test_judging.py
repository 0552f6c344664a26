"""The one judging pipeline, and the typed evaluation its JSON is read back as."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest

from priorauth.core.facts import ClaimsHistory, Facts
from priorauth.demo.samples import hemgenix_request
from priorauth.policies import builtin
from priorauth.policies.judging import judge
from priorauth.report.evaluation import Evaluation


def test_the_pipeline_routes_looks_up_claims_once_routed_and_evaluates() -> None:
    library = builtin()
    asked: list[str | None] = []

    def claims(facts: Facts) -> ClaimsHistory:
        asked.append(facts.patient.member_id)
        return ClaimsHistory(member_id=facts.patient.member_id or "")

    judged = judge(orjson.dumps(hemgenix_request(name="pipe")), library, claims=claims)
    assert judged.determination is not None and judged.policy is not None
    assert judged.route is not None and judged.route.policy is judged.policy
    assert asked == [judged.facts.patient.member_id]
    assert judged.facts.claims is not None  # the history the look-up gave is judged with
    data = judged.to_dict()
    assert data is not None and data["policy"]["selected"] == judged.routing


def test_an_uncovered_request_is_not_judged_and_asks_for_no_claims() -> None:
    bundle = hemgenix_request(name="uncovered")
    item = bundle["entry"][0]["resource"]["item"][0]
    item["productOrService"] = {"coding": [{"system": "urn:x", "code": "nothing"}]}
    for e in item.get("extension", []):
        e["url"] = "urn:not-requested-service"

    def claims(facts: Facts) -> ClaimsHistory:
        raise AssertionError("no claims look-up for a request no policy covers")

    judged = judge(bundle, builtin(), claims=claims)
    assert judged.determination is None and judged.policy is None and judged.to_dict() is None


def test_a_named_policy_is_used_without_routing() -> None:
    library = builtin()
    policy = library.version("cigna-ip0535", "2024-06-06")
    assert policy is not None
    judged = judge(hemgenix_request(name="named"), None, policy=policy, as_of=date(2026, 5, 4))
    assert judged.policy is policy and judged.route is None and judged.determination is not None


def test_the_stored_json_reads_back_typed() -> None:
    judged = judge(hemgenix_request(name="typed", ndc="0053-0170-17"), builtin())
    data = judged.to_dict()
    det = judged.determination
    assert data is not None and det is not None
    ev = Evaluation.parse(orjson.loads(orjson.dumps(data)))
    assert ev is not None and ev.policy is not None and ev.policy.selected is not None
    assert ev.recommendation == det.recommendation
    assert (ev.dose.ndc if ev.dose else None) == (det.dose.ndc if det.dose else None)
    assert ev.dose is not None and det.dose is not None
    assert (ev.dose.quantity, ev.dose.unit) == (det.dose.quantity, det.dose.unit)
    assert ev.requested.ndc == "0053-0170-17"
    assert ev.missing == tuple(det.missing)
    assert [r.id for r in ev.reasons] == [r.id for r in det.reasons]
    assert set(ev.criteria) == set(det.findings) | set(det.exclusions)
    assert ev.policy.version == judged.policy.policy.version  # type: ignore[union-attr]
    assert ev.judged_under == (ev.policy.version, None)
    assert ev.data is not None


@pytest.mark.parametrize(
    "stored",
    [None, [], "x", {}, {"policy": 5, "kit": [], "criteria": {"A": 3}, "missing": [1, " "]}],
)
def test_a_stored_evaluation_of_any_shape_reads_without_raising(stored: Any) -> None:
    ev = Evaluation.parse(stored)
    if not isinstance(stored, dict):
        assert ev is None
        return
    assert ev is not None and ev.policy is None and ev.dose is None and ev.missing == ()
    assert all(f.status == "unknown" for f in ev.criteria.values())
