"""IP0535's five versions as data: routing by date of service, and what each version changed."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.model import walk
from priorauth.intake.pas_bundle import read_bundle
from priorauth.policies import PolicyLibrary
from tests.core.factories import HCPCS_CODE, facts, history, obs
from tests.policies.test_routing import _request

VERSIONS = ["2024-06-01", "2024-06-06", "2025-03-27", "2026-02-26", "2026-03-12"]
# The answers each older version also asks the prescriber for.
OLD_ANSWERS = {"no-fix-prophylaxis-after-infusion": True, "no-other-coagulation-disorder": True}
HIV_OK = [obs("75622-1", coded="260385009")]


def _v(library: PolicyLibrary, version: str) -> CompiledPolicy:
    found = library.version("cigna-ip0535", version)
    assert found is not None
    return found


def _judge(policy: CompiledPolicy, ids: tuple[str, ...] = (), **kw: Any) -> dict[str, str]:
    answers = {**OLD_ANSWERS, **kw.pop("answers", {})}
    replace = {"75622-1": HIV_OK, **kw.pop("replace", {})}
    d = policy.evaluate(facts(answers=answers, replace=replace, **kw))
    out = {i: f.status for i, f in {**d.findings, **d.exclusions}.items()}
    out["recommendation"] = d.recommendation
    return {i: out[i] for i in (*ids, "recommendation")}


def test_five_versions_ship_each_superseding_the_last(library: PolicyLibrary) -> None:
    got = [v.policy for v in library.versions["cigna-ip0535"]]
    assert [p.version for p in got] == VERSIONS
    assert [p.supersedes for p in got] == [None, *VERSIONS[:-1]]
    assert [p.approval.days_basis for p in got] == ["payer default"] * 4 + ["policy"]
    assert got[-1].approval.days == 90
    assert "patient-specific" in (got[3].documentation or "")
    assert "patient-specific" not in (got[2].documentation or "")


@pytest.mark.parametrize(
    ("serviced", "version"),
    [
        ("2024-06-03", "2024-06-01"),
        ("2024-06-06", "2024-06-06"),
        ("2025-01-10", "2024-06-06"),
        ("2025-03-27", "2025-03-27"),
        ("2026-02-25", "2025-03-27"),
        ("2026-03-01", "2026-02-26"),
        ("2026-05-25", "2026-03-12"),
    ],
)
def test_the_version_in_force_on_the_date_of_service(
    library: PolicyLibrary, serviced: str, version: str
) -> None:
    route = library.route(read_bundle(_request(serviced=serviced)))
    assert route is not None and route.policy.policy.version == version


def test_before_the_first_version_no_policy_applies(library: PolicyLibrary) -> None:
    assert library.route(read_bundle(_request(serviced="2024-05-31"))) is None


def test_keys_follow_criteria_across_versions(library: PolicyLibrary) -> None:
    for v in library.versions["cigna-ip0535"]:
        keys = [c.key for c in walk(v.policy.criteria + v.policy.exclusions)]
        assert None not in keys and len(keys) == len(set(keys)), v.policy.version
    kit = {v.policy.version: _kit_id(v) for v in library.versions["cigna-ip0535"]}
    assert kit == dict(zip(VERSIONS, ["Q", "P", "O", "O", "O"], strict=True))


def _kit_id(v: CompiledPolicy) -> str:
    return next(c.id for c in walk(v.policy.criteria) if c.key == "one-kit-by-weight")


def test_reconstructed_wording_is_marked_with_its_revision_row(library: PolicyLibrary) -> None:
    first = _v(library, "2024-06-01").policy
    marked = {c.id: c.reconstructed for c in walk(first.criteria) if c.reconstructed}
    assert marked["L"] == date(2024, 6, 6) and marked["E.iv"] == date(2024, 6, 6)
    assert marked["F.iii"] == date(2025, 3, 27)
    assert not any(c.reconstructed for c in walk(_v(library, "2026-03-12").policy.criteria))


# --- each revision decides a case differently -------------------------------------------


def test_renal_both_before_6_6_2024_one_of_after(library: PolicyLibrary) -> None:
    """CrCl 25 mL/min with creatinine within 2 x ULN: fails under 2024-06-01, meets after."""
    renal = {"2164-2": [obs("2164-2", 25, "mL/min")]}
    assert _judge(_v(library, "2024-06-01"), ("L",), replace=renal)["L"] == "not_met"
    for version in VERSIONS[1:]:
        assert _judge(_v(library, version), ("L",), replace=renal)["L"] == "met", version


def test_beqvez_counts_as_prior_gene_therapy_from_6_6_2024(library: PolicyLibrary) -> None:
    beqvez = history((HCPCS_CODE, "J1414"))
    first = _judge(_v(library, "2024-06-01"), ("C", "NC.1"), claims=beqvez)
    assert first == {"C": "met", "NC.1": "not_met", "recommendation": "approve"}
    for version in VERSIONS[1:]:
        later = _judge(_v(library, version), ("C",), claims=beqvez)
        assert later == {"C": "not_met", "recommendation": "deny"}, version


def test_routine_prophylaxis_was_an_option_of_e_until_6_6_2024(library: PolicyLibrary) -> None:
    only_prophylaxis = {
        "fix-exposure-days": 20,
        "life-threatening-hemorrhage": False,
        "repeated-spontaneous-bleeding": False,
        "fix-routine-prophylaxis-2-months": True,
    }
    assert _judge(_v(library, "2024-06-01"), ("E",), answers=only_prophylaxis)["E"] == "met"
    assert _judge(_v(library, "2024-06-06"), ("E",), answers=only_prophylaxis)["E"] == "not_met"


def test_hiv_by_documentation_until_6_6_2024(library: PolicyLibrary) -> None:
    no_screen = {"75622-1": None}
    assert _judge(_v(library, "2024-06-01"), ("H",), replace=no_screen)["H"] == "unknown"
    suppressed = {"75622-1": None, "20447-9": [obs("20447-9", 40, "{copies}/mL")]}
    assert _judge(_v(library, "2024-06-01"), ("H",), replace=suppressed)["H"] == "met"
    high = {"75622-1": None, "20447-9": [obs("20447-9", 5000, "{copies}/mL")]}
    # Not suppressed, and no screen on file: ONE of (screen, load) stays unknown, so it pends.
    got = _judge(_v(library, "2024-06-01"), ("H.i", "H.ii", "H"), replace=high)
    assert got == {"H.i": "unknown", "H.ii": "not_met", "H": "unknown", "recommendation": "pend"}
    assert _judge(_v(library, "2024-06-06"), ("H",), replace=no_screen)["H"] == "met"


def test_other_coagulation_disorder_until_6_6_2024(library: PolicyLibrary) -> None:
    from tests.core.factories import condition

    vwd = (condition("D68.0"),)
    assert _judge(_v(library, "2024-06-01"), ("O",), conditions=vwd) == {
        "O": "not_met",
        "recommendation": "deny",
    }
    assert _judge(_v(library, "2024-06-06"), (), conditions=vwd)["recommendation"] == "approve"


def test_inhibitor_history_moved_from_criteria_to_exclusions_3_27_2025(
    library: PolicyLibrary,
) -> None:
    old_positive = {
        "3185-6": [obs("3185-6", 0.0, "[beth'U]/mL"), obs("3185-6", 2.1, "BU", days=900)]
    }
    before = _judge(_v(library, "2024-06-06"), ("F.iii",), replace=old_positive)
    assert before == {"F.iii": "not_met", "recommendation": "deny"}
    after = _judge(_v(library, "2025-03-27"), ("NC.2",), replace=old_positive)
    assert after == {"NC.2": "met", "recommendation": "deny"}  # applies
    # Unknown history stays unknown in both shapes: it pends, never approves.
    unanswered = {"history-of-fix-inhibitors": None}
    assert _judge(_v(library, "2024-06-06"), ("F.iii",), answers=unanswered)["F.iii"] == "unknown"
    assert _judge(_v(library, "2025-03-27"), (), answers=unanswered)["recommendation"] == "pend"


def test_post_infusion_prophylaxis_attestation_until_3_27_2025(library: PolicyLibrary) -> None:
    unanswered = {"no-fix-prophylaxis-after-infusion": None}
    assert _judge(_v(library, "2024-06-06"), ("O",), answers=unanswered) == {
        "O": "unknown",
        "recommendation": "pend",
    }
    later = _judge(_v(library, "2025-03-27"), (), answers=unanswered)
    assert later["recommendation"] == "approve"
