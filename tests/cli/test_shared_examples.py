"""The CLI over ../shared/examples/hemgenix, checked against their expected outcomes.

The examples were built from the data contract, which calls a clean claims
history enough for criterion C. The policy's Note says the prescriber must
still confirm ("If no claim ... is present (or if claims history is not
available), the prescribing physician confirms"), and the policy wins. None of
the examples carries that confirmation (`no-prior-gene-therapy`), so the two
approvals pend on C alone; with the confirmation added they give exactly the
outcome the examples expect. Both halves are checked here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from priorauth.cli.main import app
from tests.conftest import shared_dir

runner = CliRunner()

# file -> (expected by the examples' README, what the policy gives as sent, ids not met/unknown)
EXPECTED = {
    "approve.json": ("approve", "pend", {"unknown": ["C"]}),
    "approve-modified.json": ("approve-modified", "pend", {"unknown": ["C"]}),
    "deny.json": ("deny", "deny", {"not_met": ["I.ii"]}),
    "pend.json": ("pend", "pend", {"unknown": ["C", "H", "K"]}),
}
KITS = {"approve.json": "0053-0180-18", "approve-modified.json": "0053-0180-18"}


def _run(bundle: Path, claims: Path) -> dict:
    r = runner.invoke(app, ["evaluate", str(bundle), "--claims", str(claims), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def _leaves(d: dict, status: str) -> list[str]:
    crit = d["criteria"]
    return sorted(
        i
        for i, c in crit.items()
        if c["status"] == status
        and not any(j.startswith(i + ".") for j in crit)
        and not i.startswith("NC")
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_examples_as_sent(name: str) -> None:
    folder = shared_dir("examples", "hemgenix")
    _, as_sent, leaves = EXPECTED[name]
    d = _run(folder / name, folder / "claims.ndjson")
    assert d["recommendation"] == as_sent
    for status, ids in leaves.items():
        got = _leaves(d, status)
        assert set(ids) <= set(got), (status, got)
        if status == "unknown":
            assert got == sorted(ids + (["E.ii.b"] if "E.ii.b" in got else []))
    if name in KITS:
        assert d["kit"]["ndc"] == KITS[name]
        assert "no-prior-gene-therapy" in d["missing"][0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_examples_with_the_prescribers_confirmation(name: str, tmp_path: Path) -> None:
    folder = shared_dir("examples", "hemgenix")
    bundle = json.loads((folder / name).read_text())
    confirmed = copy.deepcopy(bundle)
    qr = next(
        e["resource"]
        for e in confirmed["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
    )
    qr["item"].append({"linkId": "no-prior-gene-therapy", "answer": [{"valueBoolean": True}]})
    path = tmp_path / name
    path.write_text(json.dumps(confirmed))
    expected, _, _ = EXPECTED[name]
    d = _run(path, folder / "claims.ndjson")
    assert d["recommendation"] == expected
    assert d["criteria"]["C"]["status"] == "met"
    if name in KITS:
        assert d["kit"] == {"vials": 18, "ndc": KITS[name]}
        assert d["authorization"] == {"start": "2026-05-04", "end": "2026-08-01"}
    if name == "approve-modified.json":
        assert d["requested"]["ndc"] == "0053-0170-17"
