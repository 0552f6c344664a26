"""Benefit plan documents supersede the policy: exclusions, criteria, terms and reviewer."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from priorauth.errors import PolicyInvalid
from priorauth.intake.pas_bundle import read_bundle
from priorauth.policies import PolicyLibrary, builtin, load_directory
from priorauth.report import determination_to_dict
from priorauth.service.app_service import PriorAuthService
from tests.policies.test_routing import _request
from tests.ui.conftest import MD

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "priorauth" / "policies" / "examples"
GOLD_ANSWER = {"designated-treatment-center": True}
EXCLUDE = "exclude: not covered"


@pytest.fixture(scope="module")
def plans() -> PolicyLibrary:
    return load_directory(EXAMPLES, builtin())


def _judge(lib: PolicyLibrary, **kw: Any) -> dict[str, Any]:
    facts = read_bundle(_request(**kw))
    route = lib.route(facts)
    assert route is not None
    return determination_to_dict(route.policy.evaluate(facts), route.policy, route.to_dict())


def _with_answers(answers: dict[str, Any], **kw: Any) -> dict[str, Any]:
    from priorauth.demo.samples import DEFAULT_ATTESTATIONS

    return {"attestations": {**DEFAULT_ATTESTATIONS, **answers}, **kw}


def test_a_plan_that_excludes_the_service_decides_the_request(plans: PolicyLibrary) -> None:
    d = _judge(plans, plan="EX-BASIC")
    assert d["recommendation"] == "deny"
    pl = d["criteria"]["PL"]
    assert pl["status"] == "applies" and pl["evidence_kind"] == "benefit_plan"
    assert "Example Employer Basic Plan" in pl["reason"]
    assert "supersedes coverage policy IP0535" in pl["reason"]
    assert [r["id"] for r in d["reasons"]] == ["PL"]
    selected = d["policy"]["selected"]
    assert selected["plan_document"]["id"] == "example-basic-2026"
    assert "as amended by the benefit plan document" in selected["why"]
    # The same request on a plan without a document follows the policy alone.
    assert _judge(plans, plan="EX-OTHER")["recommendation"] == "approve"


def test_a_plan_replaces_a_criterion(plans: PolicyLibrary) -> None:
    from priorauth.demo.samples import Lab

    labs = {"777-3": Lab(60, "10*3/uL", days_before=5)}
    gold = _judge(plans, **_with_answers(GOLD_ANSWER, labs=labs), plan="EX-GOLD")
    assert gold["criteria"]["K"]["status"] == "not_met"
    assert gold["criteria"]["K"]["source"].startswith("Example Employer Gold Plan")
    assert "75" in gold["criteria"]["K"]["text"]
    base = _judge(plans, **_with_answers(GOLD_ANSWER, labs=labs))
    assert base["criteria"]["K"]["status"] == "met" and "source" not in base["criteria"]["K"]


def test_a_plan_adds_a_criterion(plans: PolicyLibrary) -> None:
    unanswered = _judge(plans, plan="EX-GOLD-PLUS")
    assert unanswered["criteria"]["PA"]["status"] == "unknown"
    assert unanswered["recommendation"] == "pend"
    assert any("designated-treatment-center" in m for m in unanswered["missing"])
    answered = _judge(plans, **_with_answers(GOLD_ANSWER), plan="EX-GOLD-PLUS")
    assert answered["recommendation"] == "approve"


def test_a_plan_changes_the_approval_terms_and_the_reviewer(plans: PolicyLibrary) -> None:
    gold = _judge(plans, **_with_answers(GOLD_ANSWER), plan="EX-GOLD")
    start = date.fromisoformat(gold["authorization"]["start"])
    assert gold["authorization"]["end"] == (start + timedelta(days=59)).isoformat()
    assert gold["reviewer"] == "clinical pharmacist"
    assert gold["medical_director_review"] is False  # the plan sends only denials to an MD
    base = _judge(plans, **_with_answers(GOLD_ANSWER))
    assert base["authorization"]["end"] == (start + timedelta(days=89)).isoformat()
    assert base["reviewer"] == "medical director" and base["medical_director_review"] is True


def _plan(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / "plans").mkdir(exist_ok=True)
    (tmp_path / "plans" / name).write_text(text)


PLAN = """
id: {id}
title: Test plan {id}
payer: cigna
plans: [{plans}]
effective: 2026-01-01
overrides:
  - policy: {policy}
    {body}
"""


@pytest.mark.parametrize(
    ("docs", "message"),
    [
        (
            [
                {"id": "a", "plans": "X", "policy": "cigna-ip0535", "body": EXCLUDE},
                {
                    "id": "b",
                    "plans": "X, Y",
                    "policy": "cigna-ip0535",
                    "body": "exclude: not covered",
                },
            ],
            "both amend cigna-ip0535 for plan X",
        ),
        (
            [{"id": "a", "plans": "X", "policy": "nobody", "body": EXCLUDE}],
            "unknown policy nobody",
        ),
        (
            [
                {
                    "id": "a",
                    "plans": "X",
                    "policy": "cigna-ip0535",
                    "body": "replace: [{id: ZZ, text: t, evidence: attestation, "
                    "check: {kind: attestation, link_id: x, expect: true}}]",
                }
            ],
            "replaces criteria ZZ",
        ),
    ],
)
def test_broken_plan_documents_are_refused_at_load(
    tmp_path: Path, docs: list[dict[str, str]], message: str
) -> None:
    for d in docs:
        _plan(tmp_path, f"{d['id']}.yaml", PLAN.format(**d))
    with pytest.raises(PolicyInvalid, match=message):
        load_directory(tmp_path, builtin())


def test_the_denial_letter_cites_the_plan_document(
    director: tuple[TestClient, str], service: PriorAuthService, plans: PolicyLibrary
) -> None:
    import orjson

    client, _ = director
    service.library = plans
    cid = service.submit(orjson.dumps(_request(plan="EX-BASIC", name="plan-basic"))).record.id
    assert service.case(cid).recommendation == "deny"
    service.decide(cid, "deny", "Excluded by the member's plan.", ("PL",), who=MD)
    letter = client.get(f"/ui/cases/{cid}/letter").text
    assert "Policy criterion PL:" in letter
    assert "benefit plan document: Example Employer Basic Plan" in letter
