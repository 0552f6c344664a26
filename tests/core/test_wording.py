"""Check sentences come from the policy's words: the code names no drug or disease."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import priorauth
from priorauth.core.facts import HCPCS
from tests.core.factories import NEGATIVE, NOT_DETECTED, POSITIVE, condition, facts, history, obs
from tests.core.test_history_kinds import run

CHECKS = Path(priorauth.__file__).parent / "core" / "checks"
# Words of a policy, not of the engine. dosing.py (the kit table) is the dose check's own.
BANNED = re.compile(
    r"gene therapy|hepatitis|factor ix|factor viii|hemophilia|hemgenix|beqvez|\bhiv\b|\bkits?\b",
    re.IGNORECASE,
)


def _strings(path: Path) -> list[str]:
    """The string constants of a module (f-string parts too), docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize(
    "module", sorted(p.name for p in CHECKS.glob("*.py") if p.name != "dosing.py")
)
def test_no_check_sentence_names_a_drug_or_disease(module: str) -> None:
    assert [s for s in _strings(CHECKS / module) if BANNED.search(s)] == []


def test_no_prior_claims_says_the_label() -> None:
    check = {
        "kind": "no_prior_claims",
        "label": "prior cell therapy",
        "hcpcs": ["J1411"],
        "attestation_required_when_clean": False,
    }
    f = facts(claims=history((HCPCS, "J1411")))
    assert run(check, f)[:2] == ("not_met", "Claims history shows prior cell therapy (J1411).")
    assert run(check, facts(claims=history()))[:2] == (
        "met",
        "Claims history (1 claims) shows no prior cell therapy.",
    )
    del check["label"]
    assert run(check, f)[1] == "Claims history shows claims for the listed codes (J1411)."


SCREEN = {
    "kind": "infection_screen",
    "panels": [
        {"name": "virus A", "codes": ["5196-1", "29615-2"], "viral_load": ["29615-2"]},
        {"name": "virus B", "codes": ["11011-4"], "viral_load": ["11011-4"]},
    ],
    "conditions": ["B18.2"],
}


def test_infection_screen_sentences_come_from_the_panels() -> None:
    f = facts()
    assert run(SCREEN, f)[:2] == ("met", "Virus A negative and virus B not detected.")
    three = {**SCREEN, "panels": [*SCREEN["panels"], {"name": "virus C", "codes": ["3187-2"]}]}
    f3 = facts(observations=[*_screen_obs(), obs("3187-2", coded=NEGATIVE)])
    assert run(three, f3)[1] == "Virus A negative, virus B not detected and virus C negative."
    one = {"kind": "infection_screen", "panels": [{"name": "HIV-1/2", "codes": ["5196-1"]}]}
    assert run(one, f)[1] == "HIV-1/2 negative."
    positive = facts(replace={"5196-1": [obs("5196-1", coded=POSITIVE)]})
    assert run(SCREEN, positive)[1].startswith("Positive or detected: virus A ")


def test_infection_screen_condition_sentence_uses_the_label() -> None:
    f = facts(conditions=(condition("B18.2"),))
    assert run({**SCREEN, "label": "viral"}, f)[:2] == (
        "not_met",
        "Active viral Condition Condition/B18.2.",
    )
    assert run(SCREEN, f)[1] == "Active Condition Condition/B18.2."


def _screen_obs() -> list:
    return [obs("5196-1", coded=NEGATIVE), obs("11011-4", coded=NOT_DETECTED)]


def test_prescriber_specialty_label() -> None:
    check = {"kind": "prescriber_specialty", "taxonomies": ["207RH0000X"], "label": "a specialist"}
    assert run(check, facts())[1] == (
        "The prescriber's specialty 207RH0000X is one the policy accepts as a specialist."
    )
    assert run(check, facts(taxonomies=("208D00000X",)))[1].startswith(
        "The prescriber's specialty (208D00000X) is not one the policy accepts as a specialist"
    )
    del check["label"]
    assert (
        run(check, facts())[1] == "The prescriber's specialty 207RH0000X is one the policy accepts."
    )
