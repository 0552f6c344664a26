"""The CLI over ../shared/examples/hemgenix, checked against their expected outcomes.

Since the contract's correction of 2026-12-01 the examples carry the prescriber's
`no-prior-gene-therapy` confirmation that the policy's Note asks for, so each gives
its expected outcome as sent. Without that confirmation a clean claims history
alone does not meet C: the approvals pend on C, which is checked here too.
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

# file -> (expected by the examples' README, ids not met / unknown as sent)
EXPECTED = {
    "approve.json": ("approve", {}),
    "approve-modified.json": ("approve-modified", {}),
    "deny.json": ("deny", {"not_met": ["I.ii"]}),
    "pend.json": ("pend", {"unknown": ["H", "K"]}),
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
    expected, leaves = EXPECTED[name]
    d = _run(folder / name, folder / "claims.ndjson")
    assert d["recommendation"] == expected
    assert d["criteria"]["C"]["status"] == "met"
    for status, ids in leaves.items():
        got = _leaves(d, status)
        assert set(ids) <= set(got), (status, got)
        if status == "unknown":
            # E.ii.b is unanswered in every example; E is met through E.i.
            assert sorted(set(got) - {"E.ii.b"}) == sorted(ids), got
    if name in KITS:
        assert d["kit"] == {"vials": 18, "ndc": KITS[name]}
        assert d["authorization"] == {
            "start": "2026-05-04",
            "end": "2026-08-01",
            "administrations": 1,
        }
    if name == "approve-modified.json":
        assert d["requested"]["ndc"] == "0053-0170-17"


def _without_confirmation(bundle: dict) -> dict:
    stripped = copy.deepcopy(bundle)
    for e in stripped["entry"]:
        r = e["resource"]
        if r["resourceType"] == "QuestionnaireResponse":
            r["item"] = _drop(r.get("item", []), "no-prior-gene-therapy")
    return stripped


def _drop(items: list, link_id: str) -> list:
    return [
        {**i, "item": _drop(i.get("item", []), link_id)} if "item" in i else i
        for i in items
        if i.get("linkId") != link_id
    ]


@pytest.mark.parametrize("name", ["approve.json", "approve-modified.json"])
def test_clean_claims_alone_do_not_meet_c(name: str, tmp_path: Path) -> None:
    folder = shared_dir("examples", "hemgenix")
    bundle = _without_confirmation(json.loads((folder / name).read_text()))
    path = tmp_path / name
    path.write_text(json.dumps(bundle))
    d = _run(path, folder / "claims.ndjson")
    assert d["criteria"]["C"]["status"] == "unknown"
    assert d["recommendation"] == "pend"
    assert any("no-prior-gene-therapy" in m for m in d["missing"])
