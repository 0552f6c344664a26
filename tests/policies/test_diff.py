"""`priorauth policy diff`: each pair of IP0535 versions reads like the seed's revision table."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from priorauth.cli.main import app

runner = CliRunner()


def _diff(a: str, b: str) -> list[dict]:
    r = runner.invoke(
        app, ["policy", "diff", f"cigna-ip0535@{a}", f"cigna-ip0535@{b}", "--format", "json"]
    )
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["from"], out["to"]) == (a, b)
    return out["changes"]  # type: ignore[no-any-return]


def _find(changes: list[dict], change: str, key: str, field: str | None = None) -> dict:
    for c in changes:
        if c["change"] == change and c["key"] == key and (field is None or c.get("field") == field):
            return c
    raise AssertionError(f"no {change} of {key} in {changes}")


def test_6_6_2024_selected_revision() -> None:
    changes = _diff("2024-06-01", "2024-06-06")
    assert _find(changes, "logic", "no-prior-gene-therapy", "check.hcpcs")["new"] == [
        "hcpcs|J1411",
        "hcpcs|J1414",
    ]
    assert _find(changes, "removed", "routine-prophylaxis-2-months")["old_id"] == "E.iv"
    assert "negative for Factor IX" in _find(changes, "wording", "negative-for-inhibitors")["new"]
    assert _find(changes, "logic", "renal-function", "combine") | {} == {
        "change": "logic",
        "key": "renal-function",
        "old_id": "L",
        "new_id": "L",
        "field": "combine",
        "old": "all",
        "new": "one",
    }
    assert _find(changes, "removed", "no-other-coagulation-disorder")["old_id"] == "O"
    assert "prescribing physician" in _find(changes, "wording", "no-uncontrolled-hiv")["new"]
    assert _find(changes, "renumbered", "one-kit-by-weight")["new_id"] == "P"


def test_3_27_2025_annual_revision() -> None:
    changes = _diff("2024-06-06", "2025-03-27")
    moved = _find(changes, "moved", "history-of-factor-ix-inhibitors")
    assert (moved["old_id"], moved["new_id"]) == ("F.iii", "NC.2")
    assert _find(changes, "removed", "no-prophylaxis-after-infusion")
    assert "Note" in _find(changes, "wording", "no-advanced-liver-disease")["old"]


def test_2026_revisions_change_terms_only() -> None:
    doc = _diff("2025-03-27", "2026-02-26")
    assert [c["key"] for c in doc] == ["documentation"]
    assert "patient-specific" in doc[0]["new"]
    days = _diff("2026-02-26", "2026-03-12")
    assert days == [
        {
            "change": "terms",
            "key": "approval.days",
            "field": "approval.days",
            "old": "not stated",
            "new": "90 days",
        }
    ]


def test_text_output_and_errors() -> None:
    r = runner.invoke(app, ["policy", "diff", "cigna-ip0535@2026-02-26", "cigna-ip0535@2026-03-12"])
    assert r.exit_code == 0
    assert r.stdout.splitlines() == [
        "cigna-ip0535 2026-02-26 -> 2026-03-12",
        "  approval.days: terms changed (approval.days): 'not stated' -> '90 days'",
    ]
    same = runner.invoke(app, ["policy", "diff", "cigna-ip0535@2026-03-12", "cigna-ip0535"])
    assert same.stdout.strip().endswith("no change")
    bad = runner.invoke(app, ["policy", "diff", "cigna-ip0535@1990-01-01", "cigna-ip0535"])
    assert bad.exit_code == 3 and "no version" in bad.stderr


def test_a_changed_at_least_is_a_logic_change() -> None:
    from priorauth.policies import parse_policy
    from priorauth.policies.diff import diff_policies
    from tests.core.test_combinators import policy_text

    two, three = (parse_policy(policy_text("at_least", n)) for n in (2, 3))
    changes = [c for c in diff_policies(two, three).changes if c.new_id == "Z"]
    assert [(c.change, c.field, c.old, c.new) for c in changes] == [("logic", "at_least", 2, 3)]
