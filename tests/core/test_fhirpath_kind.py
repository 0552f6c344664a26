"""The `fhirpath` escape hatch: three-valued over the request Bundle, optional, never shipped."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from priorauth.cli.main import app
from priorauth.core.evaluator import compile_policy
from priorauth.demo.samples import hemgenix_request
from priorauth.errors import PolicyInvalid
from priorauth.intake.pas_bundle import read_bundle
from priorauth.policies import parse_policy
from tests.core.factories import facts
from tests.core.test_history_kinds import run
from tests.policies.test_policy_files import DATA, SHIPPED

WEIGHT = "Bundle.entry.resource.ofType(Observation).where(code.coding.code = '29463-7')"


def check(expression: str) -> dict[str, Any]:
    return {"kind": "fhirpath", "label": "a recorded body weight", "expression": expression}


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    return hemgenix_request(name="t-fhirpath")


def on(bundle: dict[str, Any]) -> Any:
    return dataclasses.replace(facts(), bundle=bundle)


@pytest.mark.parametrize(
    ("expression", "expected", "reason"),
    [
        (f"{WEIGHT}.exists()", "met", "is true (1 result(s))"),
        (f"{WEIGHT}.valueQuantity.value > 200", "not_met", "is false"),
        (f"{WEIGHT}.valueQuantity.value > 50 and {WEIGHT}.exists()", "met", "is true"),
        ("Bundle.entry.resource.ofType(Procedure)", "unknown", "finds nothing"),
        ("Bundle.entry.resource.ofType(Procedure).exists()", "not_met", "is false"),
        # a resource result exists: true, and the evidence names it
        (WEIGHT, "met", "is true"),
        # the review date is %reviewDate
        ("%reviewDate = '2026-05-04'", "met", "is true"),
        # an error on this bundle decides nothing, and quotes no data
        (f"{WEIGHT}.valueQuantity > 2", "unknown", "could not be evaluated (Exception)"),
    ],
)
def test_three_valued(bundle: dict[str, Any], expression: str, expected: str, reason: str) -> None:
    status, why, _ = run(check(expression), on(bundle))
    assert status == expected, why
    assert reason in why
    assert "88" not in why


def test_evidence_names_resources_and_values(bundle: dict[str, Any]) -> None:
    weight = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and e["resource"]["code"]["coding"][0]["code"] == "29463-7"
    )
    _, _, evidence = run(check(WEIGHT), on(bundle))
    assert [(e.ref, e.value) for e in evidence] == [(f"Observation/{weight['id']}", "found")]
    _, _, evidence = run(check(f"{WEIGHT}.valueQuantity.value"), on(bundle))
    assert [(e.ref, e.value) for e in evidence] == [("Bundle", 88.0)]


def test_facts_without_a_bundle_are_unknown() -> None:
    status, why, _ = run(check(f"{WEIGHT}.exists()"), facts())
    assert status == "unknown" and "bundle is not available" in why


def test_intake_keeps_the_bundle_and_evaluation_leaves_it_as_it_was(bundle: dict[str, Any]) -> None:
    before = orjson.dumps(bundle)
    f = read_bundle(bundle)
    assert f.bundle == bundle
    assert run(check(f"{WEIGHT}.exists()"), f)[0] == "met"
    assert orjson.dumps(bundle) == before


@pytest.mark.parametrize("expression", ["Bundle.entry.where(", "Bundle.entry.nosuchfn()", "1 +"])
def test_an_unusable_expression_is_refused_at_compile_time(expression: str) -> None:
    with pytest.raises(PolicyInvalid, match="Z: the FHIRPath expression cannot be used"):
        run(check(expression), facts())


def test_without_fhirpathpy_the_policy_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fhirpathpy", None)  # import fails
    with pytest.raises(PolicyInvalid, match=r"install priorauth\[fhirpath\]"):
        run(check(f"{WEIGHT}.exists()"), facts())


EXTRA = f"""  - id: Z
    text: A body weight is recorded.
    evidence: documentation
    check: {{kind: fhirpath, label: a recorded body weight, expression: "{WEIGHT}.exists()"}}
"""


def _with_fhirpath() -> str:
    return SHIPPED.replace("\nexclusions:\n", "\n" + EXTRA + "\nexclusions:\n", 1)


def test_in_a_policy_and_policy_check_warns(tmp_path: Path, bundle: dict[str, Any]) -> None:
    policy = compile_policy(parse_policy(_with_fhirpath()))
    assert policy.evaluate(read_bundle(bundle)).findings["Z"].status == "met"
    path = tmp_path / "p.yaml"
    path.write_text(_with_fhirpath())  # the shipped id and version: no overlap to report
    r = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert r.exit_code == 0, r.stdout
    (line,) = [x for x in r.stdout.splitlines() if "warning:" in x]
    assert (
        line.startswith(f"{path}:") and ": Z: warning: the fhirpath kind is an escape hatch" in line
    )
    assert "1 file(s) checked: no problems, 1 warning(s)" in r.stdout


def _kinds(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["kind"]] if isinstance(node.get("kind"), str) else []
        return own + [k for v in node.values() for k in _kinds(v)]
    if isinstance(node, list):
        return [k for v in node for k in _kinds(v)]
    return []


def test_no_shipped_policy_uses_the_escape_hatch() -> None:
    files = sorted(DATA.rglob("*.yaml"))
    assert len(files) > 5
    used = [f.name for f in files if "fhirpath" in _kinds(yaml.safe_load(f.read_text()))]
    assert used == []
