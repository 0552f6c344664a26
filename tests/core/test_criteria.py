"""Every row of the data contract, judged at and beside its boundaries."""

from __future__ import annotations

from datetime import date

import pytest

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import Facts
from priorauth.core.result import Derived
from tests.core.factories import (
    DETECTED,
    HCPCS_CODE,
    NDC_CODE,
    NEGATIVE,
    NOT_DETECTED,
    POSITIVE,
    condition,
    facts,
    history,
    medication,
    obs,
    replace_patient,
)


def judge(policy: CompiledPolicy, f: Facts, cid: str) -> str:
    d = policy.evaluate(f)
    found = d.findings.get(cid) or d.exclusions[cid]
    assert found.reason, f"{cid} has no reason"
    return found.status


def test_default_facts_meet_everything(ip0535: CompiledPolicy) -> None:
    d = ip0535.evaluate(facts())
    assert {i: f.status for i, f in d.findings.items() if f.status != "met"} == {
        "E.ii": "not_met",
        "E.ii.a": "not_met",
        "E.ii.b": "unknown",
    }
    assert d.recommendation == "approve"


# --- DX ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diagnoses", "conditions", "expected"),
    [
        (("D67",), (), "met"),
        (("D68.1",), (), "not_met"),
        (("D68.1",), (condition("D67"),), "met"),
        ((), (condition("D67"),), "met"),
        ((), (condition("D67", active=False),), "unknown"),
        ((), (), "unknown"),
    ],
)
def test_dx(
    ip0535: CompiledPolicy, diagnoses: tuple[str, ...], conditions: tuple, expected: str
) -> None:
    assert judge(ip0535, facts(diagnoses=diagnoses, conditions=conditions), "DX") == expected


# --- A: sex -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("patient", "expected", "in_reason"),
    [
        ({"sex_for_clinical_use": "male-typical", "birth_sex": "F"}, "met", "clinical use"),
        ({"sex_for_clinical_use": "female-typical", "birth_sex": "M"}, "not_met", "clinical use"),
        ({"birth_sex": "M", "gender": "female"}, "met", "Birth sex"),
        ({"birth_sex": "F", "gender": "male"}, "not_met", "Birth sex"),
        ({"birth_sex": None, "gender": "male"}, "met", "fell back"),
        ({"birth_sex": None, "gender": "female"}, "not_met", "fell back"),
        ({"birth_sex": "UNK", "gender": None}, "unknown", "No sex"),
        ({"birth_sex": None, "gender": None}, "unknown", "No sex"),
    ],
)
def test_a_sex(ip0535: CompiledPolicy, patient: dict, expected: str, in_reason: str) -> None:
    d = ip0535.evaluate(facts(patient=patient))
    assert d.findings["A"].status == expected
    assert in_reason in d.findings["A"].reason


# --- B: age -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "expected"),
    [
        (date(2008, 5, 4), "met"),  # 18th birthday on the review date
        (date(2008, 5, 5), "not_met"),  # one day short
        (date(2008, 5, 3), "met"),
        (date(1940, 1, 1), "met"),
    ],
)
def test_b_age(ip0535: CompiledPolicy, born: date, expected: str) -> None:
    assert judge(ip0535, facts(patient={"birth_date": born}), "B") == expected


def test_b_unknown_without_birth_date(ip0535: CompiledPolicy) -> None:
    assert judge(ip0535, facts(patient={"birth_date": None}), "B") == "unknown"


def test_b_leap_day_birthday_counts_from_march_first(ip0535: CompiledPolicy) -> None:
    f = facts(patient={"birth_date": date(2008, 2, 29)})
    assert ip0535.evaluate(f, as_of=date(2026, 2, 28)).findings["B"].status == "not_met"
    assert ip0535.evaluate(f, as_of=date(2026, 3, 1)).findings["B"].status == "met"


# --- C and NC.1: prior gene therapy ------------------------------------------


@pytest.mark.parametrize(
    ("claims", "answer", "c", "nc1"),
    [
        (history((HCPCS_CODE, "J1411")), True, "not_met", "met"),
        (history((HCPCS_CODE, "J1414")), None, "not_met", "met"),
        (history((NDC_CODE, "00053-0150-15")), True, "not_met", "met"),  # kit NDC, 11 digits
        (history((NDC_CODE, "0053-0480-48")), True, "not_met", "met"),
        (history(), True, "met", "not_met"),
        # The policy's Note: a clean history still needs the prescriber's confirmation.
        (history(), None, "unknown", "unknown"),
        (history(), False, "not_met", "met"),
        (None, True, "met", "not_met"),
        (None, False, "not_met", "met"),
        (None, None, "unknown", "unknown"),
        (history(member="M1", extra_claims=0), True, "met", "not_met"),  # empty = not available
    ],
)
def test_c_and_nc1(ip0535: CompiledPolicy, claims, answer, c: str, nc1: str) -> None:
    d = ip0535.evaluate(facts(claims=claims, answers={"no-prior-gene-therapy": answer}))
    assert d.findings["C"].status == c
    assert d.exclusions["NC.1"].status == nc1
    if nc1 == "met":
        assert d.recommendation == "deny"
        assert {"C", "NC.1"} <= {r.id for r in d.reasons}


def test_c_cites_the_claim_lines(ip0535: CompiledPolicy) -> None:
    d = ip0535.evaluate(facts(claims=history((HCPCS_CODE, "J1411"))))
    assert [e.ref for e in d.findings["C"].evidence] == ["ExplanationOfBenefit/e0"]


# --- D: baseline FIX -----------------------------------------------------------


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([obs("3187-2", 2.0, "%", days=900)], "met"),
        ([obs("3187-2", 2.1, "%", days=900)], "not_met"),
        ([obs("3187-2", 2.0, "[iU]/dL", days=900)], "met"),
        ([obs("3187-2", 5.0, "%", days=1), obs("3187-2", 1.5, "%", days=900)], "met"),
        ([obs("3187-2", 5.0, "%", days=1), obs("3187-2", 3.0, "%", days=900)], "not_met"),
        ([obs("3187-2", 1.0, "mg", days=9)], "unknown"),
        ([obs("3187-2", 1.0, "%", days=-1)], "unknown"),  # after the review date
        ([], "unknown"),
    ],
)
def test_d_baseline_fix(ip0535: CompiledPolicy, results: list, expected: str) -> None:
    assert judge(ip0535, facts(replace={"3187-2": results}), "D") == expected


def test_d_reports_the_lowest(ip0535: CompiledPolicy) -> None:
    f = facts(
        replace={"3187-2": [obs("3187-2", 5.0, "%", days=1), obs("3187-2", 1.5, "%", days=99)]}
    )
    d = ip0535.evaluate(f).findings["D"]
    assert d.evidence[0].value == 1.5  # type: ignore[union-attr]
    assert "lowest of 2" in d.reason


# --- E ------------------------------------------------------------------------

NO_E = {
    "fix-exposure-days": None,
    "life-threatening-hemorrhage": None,
    "on-demand-fix-life-threatening": None,
    "repeated-spontaneous-bleeding": None,
    "on-demand-fix-spontaneous": None,
}


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"fix-exposure-days": 150}, {"E.i": "met", "E": "met"}),
        ({"fix-exposure-days": 149}, {"E.i": "not_met", "E": "unknown"}),
        ({"fix-exposure-days": "many"}, {"E.i": "unknown"}),
        (
            {"life-threatening-hemorrhage": True, "on-demand-fix-life-threatening": True},
            {"E.ii": "met", "E": "met"},
        ),
        (
            {"life-threatening-hemorrhage": True},
            {"E.ii.b": "unknown", "E.ii": "unknown", "E": "unknown"},
        ),
        (
            {"life-threatening-hemorrhage": True, "on-demand-fix-life-threatening": False},
            {"E.ii": "not_met"},
        ),
        (
            {"repeated-spontaneous-bleeding": True, "on-demand-fix-spontaneous": True},
            {"E.iii": "met", "E": "met"},
        ),
        (
            {
                "fix-exposure-days": 10,
                "life-threatening-hemorrhage": False,
                "repeated-spontaneous-bleeding": True,
                "on-demand-fix-spontaneous": False,
            },
            {"E": "not_met"},
        ),
        ({}, {"E": "unknown"}),
    ],
)
def test_e(ip0535: CompiledPolicy, answers: dict, expected: dict[str, str]) -> None:
    d = ip0535.evaluate(facts(answers={**NO_E, **answers}))
    assert {k: d.findings[k].status for k in expected} == expected


def test_e_not_met_denies_naming_e(ip0535: CompiledPolicy) -> None:
    answers = {
        **NO_E,
        "fix-exposure-days": 10,
        "life-threatening-hemorrhage": False,
        "repeated-spontaneous-bleeding": False,
    }
    d = ip0535.evaluate(facts(answers=answers))
    assert d.recommendation == "deny"
    assert [r.id for r in d.reasons] == ["E"]


# --- F: inhibitors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("results", "fi", "fii"),
    [
        ([obs("3185-6", 0.0, "[beth'U]/mL", days=30)], "met", "met"),
        ([obs("3185-6", 0.0, "[beth'U]/mL", days=31)], "unknown", "unknown"),
        ([obs("3185-6", 0.0, "[beth'U]/mL", days=-1)], "unknown", "unknown"),
        ([obs("3185-6", 0.59, "BU/mL")], "met", "met"),
        ([obs("3185-6", 0.6, "[beth'U]")], "met", "not_met"),
        ([obs("3185-6", interp=("NEG",))], "met", "met"),
        ([obs("3185-6", coded=NEGATIVE)], "met", "met"),
        ([obs("3185-6", coded=POSITIVE)], "met", "not_met"),
        ([obs("3185-6", 0.2, "mg/dL")], "met", "unknown"),
        # the most recent within 30 days is judged
        ([obs("3185-6", 0.0, "BU/mL", days=2), obs("3185-6", 0.9, "BU/mL", days=20)], "met", "met"),
        ([], "unknown", "unknown"),
    ],
)
def test_f(ip0535: CompiledPolicy, results: list, fi: str, fii: str) -> None:
    answers = {"history-of-fix-inhibitors": False}
    d = ip0535.evaluate(facts(replace={"3185-6": results}, answers=answers))
    assert (d.findings["F.i"].status, d.findings["F.ii"].status) == (fi, fii)


# --- G.i: hepatitis ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("hbv", "hcv", "conds", "expected"),
    [
        ([obs("5196-1", coded=NEGATIVE)], [obs("11011-4", coded=NOT_DETECTED)], (), "met"),
        ([obs("5195-3", interp=("NEG",))], [obs("11011-4", 0, "[IU]/mL")], (), "met"),
        ([obs("29615-2", 0, "[IU]/mL")], [obs("11011-4", interp=("ND",))], (), "met"),
        ([obs("5196-1", coded=POSITIVE)], [obs("11011-4", coded=NOT_DETECTED)], (), "not_met"),
        ([obs("5196-1", coded=NEGATIVE)], [obs("11011-4", 15, "[IU]/mL")], (), "not_met"),
        ([obs("5196-1", coded=NEGATIVE)], [obs("11011-4", coded=DETECTED)], (), "not_met"),
        (
            [obs("5196-1", coded=NEGATIVE), obs("29615-2", 200, "[IU]/mL")],
            [obs("11011-4", coded=NOT_DETECTED)],
            (),
            "not_met",
        ),
        ([obs("5196-1", coded=NEGATIVE)], [], (), "unknown"),
        ([], [obs("11011-4", coded=NOT_DETECTED)], (), "unknown"),
        (
            [obs("5196-1", coded=NEGATIVE)],
            [obs("11011-4", coded=NOT_DETECTED)],
            (condition("B18.1"),),
            "not_met",
        ),
        (
            [obs("5196-1", coded=NEGATIVE)],
            [obs("11011-4", coded=NOT_DETECTED)],
            (condition("B17.10"),),
            "not_met",
        ),
        # B17.0: acute delta superinfection of a hepatitis B carrier (contract, 2026-12-01)
        (
            [obs("5196-1", coded=NEGATIVE)],
            [obs("11011-4", coded=NOT_DETECTED)],
            (condition("B17.0"),),
            "not_met",
        ),
        (
            [obs("5196-1", coded=NEGATIVE)],
            [obs("11011-4", coded=NOT_DETECTED)],
            (condition("B17.2"),),
            "met",
        ),
        (
            [obs("5196-1", coded=NEGATIVE)],
            [obs("11011-4", coded=NOT_DETECTED)],
            (condition("B18.2", active=False),),
            "met",
        ),
        (
            [obs("5196-1", coded=NEGATIVE)],
            [obs("11011-4", coded=NOT_DETECTED)],
            (condition("B18.9"),),
            "met",
        ),
    ],
)
def test_gi(ip0535: CompiledPolicy, hbv: list, hcv: list, conds: tuple, expected: str) -> None:
    f = facts(replace={"5196-1": hbv, "11011-4": hcv}, conditions=conds)
    assert judge(ip0535, f, "G.i") == expected


def test_gi_judges_the_most_recent_of_each_test(ip0535: CompiledPolicy) -> None:
    f = facts(
        replace={
            "5196-1": [
                obs("5196-1", coded=NEGATIVE, days=3),
                obs("5196-1", coded=POSITIVE, days=400),
            ]
        }
    )
    assert judge(ip0535, f, "G.i") == "met"


# --- G.ii, H, J: statements ------------------------------------------------------


@pytest.mark.parametrize(
    ("meds", "answer", "expected"),
    [
        ((medication("Tenofovir disoproxil fumarate 300 mg"),), True, "not_met"),
        ((medication("Sofosbuvir / velpatasvir"),), True, "not_met"),
        ((medication("Entecavir", active=False),), True, "met"),
        ((medication("Ibuprofen"),), True, "met"),
        ((), False, "not_met"),
        ((), None, "unknown"),
    ],
)
def test_gii(ip0535: CompiledPolicy, meds: tuple, answer: bool | None, expected: str) -> None:
    f = facts(medications=meds, answers={"no-current-hepatitis-antiviral": answer})
    assert judge(ip0535, f, "G.ii") == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(True, "met"), (False, "not_met"), (None, "unknown"), ("yes", "unknown")],
)
def test_h(ip0535: CompiledPolicy, answer: object, expected: str) -> None:
    assert judge(ip0535, facts(answers={"no-uncontrolled-hiv": answer}), "H") == expected


@pytest.mark.parametrize(
    ("conds", "answer", "expected"),
    [
        ((condition("K74.60"),), True, "not_met"),
        ((condition("K70.30"),), True, "not_met"),
        ((condition("K72.10"),), True, "not_met"),
        ((condition("K76.6"),), True, "not_met"),
        ((condition("K76.0"),), True, "met"),
        ((condition("K74.60", active=False),), True, "met"),
        ((), False, "not_met"),
        ((), None, "unknown"),
    ],
)
def test_j(ip0535: CompiledPolicy, conds: tuple, answer: bool | None, expected: str) -> None:
    f = facts(conditions=conds, answers={"no-advanced-liver-disease": answer})
    assert judge(ip0535, f, "J") == expected


# --- I and L.ii: multiples of the ULN ---------------------------------------------


@pytest.mark.parametrize(
    ("cid", "code"),
    [
        ("I.i", "1742-6"),
        ("I.i", "1744-2"),
        ("I.ii", "1920-8"),
        ("I.iii", "1975-2"),
        ("I.iv", "6768-6"),
        ("L.ii", "2160-0"),
    ],
)
@pytest.mark.parametrize(
    ("value", "uln", "days", "uln_unit", "expected"),
    [
        (96.0, 48.0, 9, None, "met"),  # exactly 2 x ULN
        (96.1, 48.0, 9, None, "not_met"),
        (2.4, 1.2, 30, None, "met"),
        (2.5, 1.2, 30, None, "not_met"),
        (10.0, 48.0, 31, None, "unknown"),  # too old
        (10.0, None, 9, None, "unknown"),  # no ULN
        (10.0, 48.0, 9, "mmol/L", "unknown"),  # ULN in another unit
    ],
)
def test_uln_multiples(
    ip0535: CompiledPolicy,
    cid: str,
    code: str,
    value: float,
    uln: float | None,
    days: int,
    uln_unit: str | None,
    expected: str,
) -> None:
    f = facts(
        replace={
            "1742-6": None,
            code: [obs(code, value, "U/L", days=days, uln=uln, uln_unit=uln_unit)],
        }
    )
    if cid == "L.ii":
        f = facts(
            replace={code: [obs(code, value, "mg/dL", days=days, uln=uln, uln_unit=uln_unit)]}
        )
    assert judge(ip0535, f, cid) == expected


def test_i_not_met_denies_naming_the_test(ip0535: CompiledPolicy) -> None:
    d = ip0535.evaluate(facts(replace={"1920-8": [obs("1920-8", 150, "U/L", days=3, uln=48)]}))
    assert d.recommendation == "deny"
    assert [r.id for r in d.reasons] == ["I.ii"]
    assert "3.12 × ULN 48" in d.reasons[0].reason


# --- K: platelets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (obs("777-3", 50, "10*9/L"), "met"),
        (obs("777-3", 49.9, "10*3/uL"), "not_met"),
        (obs("777-3", 50, "10*3/uL", days=30), "met"),
        (obs("777-3", 300, "10*3/uL", days=31), "unknown"),
        (obs("777-3", 300, "/uL"), "unknown"),
    ],
)
def test_k(ip0535: CompiledPolicy, result, expected: str) -> None:
    assert judge(ip0535, facts(replace={"777-3": [result]}), "K") == expected


# --- L.i: creatinine clearance --------------------------------------------------------


@pytest.mark.parametrize(("crcl", "expected"), [(30, "met"), (29.9, "not_met")])
def test_li_measured(ip0535: CompiledPolicy, crcl: float, expected: str) -> None:
    f = facts(observations=None, replace={"2164-2": [obs("2164-2", crcl, "mL/min")]})
    assert judge(ip0535, f, "L.i") == expected


def _cg_facts(creatinine: float, unit: str = "mg/dL", **patient: object) -> Facts:
    # 40-year-old on the review date, 72 kg: (140-40)*72/(72*Cr) = 100/Cr
    return facts(
        replace={
            "2160-0": [obs("2160-0", creatinine, unit, uln=0.1)],
            "29463-7": [obs("29463-7", 72.0, "kg")],
        },
        patient={"birth_date": date(1986, 5, 4), **patient},
    )


@pytest.mark.parametrize(
    ("creatinine", "unit", "expected"),
    [
        (100 / 30, "mg/dL", "met"),  # exactly 30 mL/min
        (100 / 29.9, "mg/dL", "not_met"),
        (100 / 30 * 88.4, "umol/L", "met"),
        (100 / 29.9 * 88.4, "umol/L", "not_met"),
    ],
)
def test_li_cockcroft_gault(
    ip0535: CompiledPolicy, creatinine: float, unit: str, expected: str
) -> None:
    d = ip0535.evaluate(_cg_facts(creatinine, unit))
    li = d.findings["L.i"]
    assert li.status == expected
    assert "Cockcroft-Gault" in li.reason
    est = next(e for e in li.evidence if isinstance(e, Derived))
    assert est.unit == "mL/min"
    assert d.findings["L.ii"].status == "not_met"  # ULN 0.1 keeps L on L.i alone
    assert d.findings["L"].status == expected


def test_li_female_factor_and_unknown_sex(ip0535: CompiledPolicy) -> None:
    # 100/3.0 = 33.3 male; x 0.85 = 28.3 female
    f = _cg_facts(3.0)
    assert ip0535.evaluate(f).findings["L.i"].status == "met"
    female = replace_patient(f, birth_sex="F")
    assert ip0535.evaluate(female).findings["L.i"].status == "not_met"
    unknown = replace_patient(f, birth_sex=None, gender=None)
    li = ip0535.evaluate(unknown).findings["L.i"]
    assert li.status == "unknown"
    assert "depending on sex" in li.reason


def test_li_needs_weight_and_age(ip0535: CompiledPolicy) -> None:
    assert judge(ip0535, facts(replace={"29463-7": None}), "L.i") == "unknown"
    assert judge(ip0535, facts(patient={"birth_date": None}), "L.i") == "unknown"


def test_l_one_of(ip0535: CompiledPolicy) -> None:
    f = facts(replace={"2160-0": [obs("2160-0", 9.0, "mg/dL", uln=1.3)]})
    d = ip0535.evaluate(f)
    assert (d.findings["L.i"].status, d.findings["L.ii"].status, d.findings["L"].status) == (
        "not_met",
        "not_met",
        "not_met",
    )
    assert d.recommendation == "deny"
    assert [r.id for r in d.reasons] == ["L"]


# --- M: prescriber -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("taxonomies", "answer", "expected"),
    [
        (("207RH0000X",), None, "met"),
        (("207RH0003X",), None, "met"),
        (("2080P0207X",), None, "met"),
        (("207Q00000X",), None, "not_met"),
        (("207Q00000X",), True, "met"),
        ((), True, "met"),
        ((), False, "not_met"),
        ((), None, "unknown"),
    ],
)
def test_m(ip0535: CompiledPolicy, taxonomies: tuple, answer: bool | None, expected: str) -> None:
    f = facts(taxonomies=taxonomies, answers={"prescriber-hemophilia-specialist": answer})
    assert judge(ip0535, f, "M") == expected


# --- N and O: weight and the dose by weight ------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "n", "o", "vials", "ndc"),
    [
        (obs("29463-7", 50.0, "kg"), "met", "met", 10, "0053-0100-10"),
        (obs("29463-7", 50.1, "kg"), "met", "met", 11, "0053-0110-11"),
        (obs("29463-7", 45.0, "kg"), "met", "unknown", 9, None),
        (obs("29463-7", 45.1, "kg"), "met", "met", 10, "0053-0100-10"),
        (obs("29463-7", 240.0, "kg"), "met", "met", 48, "0053-0480-48"),
        (obs("29463-7", 240.1, "kg"), "met", "unknown", 49, None),
        (obs("29463-7", 194.0, "[lb_av]"), "met", "met", 18, "0053-0180-18"),  # 88.0 kg
        (obs("29463-7", 88.0, "kg", days=30), "met", "met", 18, "0053-0180-18"),
        (obs("29463-7", 88.0, "kg", days=31), "unknown", "unknown", None, None),
        (obs("29463-7", 88.0, "stone"), "unknown", "unknown", None, None),
    ],
)
def test_n_o(
    ip0535: CompiledPolicy, weight, n: str, o: str, vials: int | None, ndc: str | None
) -> None:
    d = ip0535.evaluate(facts(replace={"29463-7": [weight]}, ndc=None))
    assert (d.findings["N"].status, d.findings["O"].status) == (n, o)
    if o == "met":
        assert d.dose is not None
        assert (d.dose.vials, d.dose.quantity, d.dose.unit) == (vials, 1, "kit")
        assert d.findings["O"].value == 1  # one kit: the quantity in the billing unit
    elif vials is not None:
        # Outside the table: the reason shows the dose the weight needs.
        assert f"{d.findings['N'].value * 2:g} mL" in d.findings["O"].reason
    assert (d.dose.ndc if d.dose else None) == ndc
    if o == "unknown":
        assert d.recommendation == "pend"


def test_n_absent(ip0535: CompiledPolicy) -> None:
    d = ip0535.evaluate(facts(replace={"29463-7": None}))
    assert d.findings["N"].status == "unknown"
    assert d.findings["O"].status == "unknown"


# --- NC.2 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("results", "answer", "expected"),
    [
        ([obs("3185-6", 1.2, "BU/mL", days=800)], False, "met"),
        ([obs("3185-6", 0.6, "BU/mL", days=800)], False, "met"),
        ([obs("3185-6", 0.59, "BU/mL", days=800)], False, "not_met"),
        ([obs("3185-6", interp=("POS",), days=800)], False, "met"),
        ([], True, "met"),
        ([], False, "not_met"),
        ([], None, "unknown"),
    ],
)
def test_nc2(ip0535: CompiledPolicy, results: list, answer: bool | None, expected: str) -> None:
    current = [obs("3185-6", 0.0, "BU/mL")]
    f = facts(replace={"3185-6": current + results}, answers={"history-of-fix-inhibitors": answer})
    d = ip0535.evaluate(f)
    assert d.exclusions["NC.2"].status == expected
    assert d.recommendation == {"met": "deny", "not_met": "approve", "unknown": "pend"}[expected]


# --- results sent as a bound (valueQuantity.comparator) ---------------------------


@pytest.mark.parametrize(
    ("code", "value", "unit", "comparator", "cid", "expected"),
    [
        ("3187-2", 1.0, "%", "<", "D", "met"),  # "<1 %" is at most 2 %
        ("3187-2", 2.0, "%", ">", "D", "not_met"),  # ">2 %" fails "≤ 2 %"
        ("3187-2", 1.0, "%", ">", "D", "unknown"),  # ">1 %" may or may not be ≤ 2
        ("3185-6", 0.6, "BU/mL", "<", "F.ii", "met"),  # "<0.6 BU" is negative
        ("3185-6", 0.5, "BU/mL", ">", "F.ii", "unknown"),
        ("777-3", 50, "10*9/L", ">", "K", "met"),
        ("777-3", 50, "10*9/L", "<", "K", "not_met"),
        ("29463-7", 88, "kg", "<", "N", "unknown"),  # a bound is not a weight
    ],
)
def test_comparators_are_bounds(
    ip0535: CompiledPolicy,
    code: str,
    value: float,
    unit: str,
    comparator: str,
    cid: str,
    expected: str,
) -> None:
    import dataclasses

    o = dataclasses.replace(
        obs(code, value, unit, days=9 if code != "3187-2" else 900), comparator=comparator
    )
    assert judge(ip0535, facts(replace={code: [o]}), cid) == expected
