"""ICD-10-CM code sets as value sets ({system, include}) or as lists of codes and prefixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from priorauth.core.evaluator import compile_policy
from priorauth.errors import PolicyInvalid
from priorauth.policies import SharedCodesets, load_codesets, packaged_codesets, parse_policy
from tests.core.factories import condition, facts
from tests.policies.test_policy_files import SHIPPED, _variant

CODESET_FILE = """\
bleeding-disorders: {system: icd10cm, include: [D66, "D68.*"]}
liver-as-url: {system: "http://hl7.org/fhir/sid/icd-10-cm", include: ["K74.6*"]}
plain-prefixes: ["D67", "D69.*"]
"""


def _shared(tmp_path: Path, text: str = CODESET_FILE) -> SharedCodesets:
    (tmp_path / "codesets").mkdir()
    (tmp_path / "codesets" / "extra.yaml").write_text(text)
    shared = packaged_codesets()
    load_codesets(tmp_path, shared)
    return shared


def _policy(shared: SharedCodesets, dx: str, liver: str = "{codeset: liver-as-url}") -> str:
    text = _variant(
        SHIPPED, "codesets_from: [hemophilia-b]", "codesets_from: [hemophilia-b, extra]"
    )
    text = _variant(
        text,
        'check: {kind: diagnosis, codes: ["icd10cm|D67"]}',
        f"check: {{kind: diagnosis, codes: {dx}}}",
    )
    return _variant(text, "codes: {codeset: advanced-liver-conditions}", f"codes: {liver}")


def test_a_value_set_file_entry_expands_to_codes_and_prefixes(tmp_path: Path) -> None:
    shared = _shared(tmp_path)
    assert shared["extra"] == {
        "bleeding-disorders": ["D66", "D68.*"],
        "liver-as-url": ["K74.6*"],
        "plain-prefixes": ["D67", "D69.*"],
    }


@pytest.mark.parametrize(
    ("dx", "diagnoses", "conditions", "expected"),
    [
        ("{codeset: bleeding-disorders}", ("D66",), (), "met"),
        ("{codeset: bleeding-disorders}", ("D68.1",), (), "met"),  # D68.* is a prefix
        ("{codeset: bleeding-disorders}", ("D68",), (), "met"),
        ("{codeset: bleeding-disorders}", ("D67",), (), "not_met"),
        ("{codeset: bleeding-disorders}", (), ("D68.311",), "met"),  # an active Condition
        ("{codeset: plain-prefixes}", ("D69.6",), (), "met"),
        ("{codeset: plain-prefixes}", ("D68.1",), (), "not_met"),
    ],
)
def test_diagnosis_from_a_code_set(
    tmp_path: Path, dx: str, diagnoses: tuple[str, ...], conditions: tuple[str, ...], expected: str
) -> None:
    shared = _shared(tmp_path)
    policy = compile_policy(parse_policy(_policy(shared, dx), "p.yaml", shared))
    f = facts(diagnoses=diagnoses, conditions=tuple(condition(c) for c in conditions))
    assert policy.evaluate(f).findings["DX"].status == expected


def test_no_condition_from_a_value_set(tmp_path: Path) -> None:
    shared = _shared(tmp_path)
    policy = compile_policy(parse_policy(_policy(shared, '["D67"]'), "p.yaml", shared))
    f = facts(conditions=(condition("K74.60"),))
    (liver,) = [
        c.id for c in policy.criteria.values() if c.check and c.check.kind == "no_condition"
    ]
    assert policy.evaluate(f).findings[liver].status == "not_met"
    assert policy.evaluate(facts(conditions=(condition("K74.3"),))).findings[liver].status == "met"


def test_a_policy_may_write_its_own_value_set(tmp_path: Path) -> None:
    text = _variant(
        SHIPPED,
        "codesets_from: [hemophilia-b]",
        "codesets_from: [hemophilia-b]\ncodesets:\n  mine: {system: icd10cm, include: [D66]}",
    )
    text = _variant(
        text,
        'check: {kind: diagnosis, codes: ["icd10cm|D67"]}',
        "check: {kind: diagnosis, codes: {codeset: mine}}",
    )
    p = parse_policy(text)
    assert p.codesets["mine"] == ["D66"]
    assert compile_policy(p).evaluate(facts(diagnoses=("D66",))).findings["DX"].status == "met"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("x: {system: loinc, include: [3187-2]}", "system must be icd10cm"),
        ("x: {system: icd10cm, include: []}", "includes a list of codes"),
        (
            "x: {system: icd10cm, include: [D66], exclude: [D66.1]}",
            "a code set is a list of codes or a value set",
        ),
        ("x: [D66, 3]", "a code set is a list of codes or a value set"),
    ],
)
def test_a_malformed_value_set_is_refused(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(PolicyInvalid, match=message):
        _shared(tmp_path, entry + "\n")
