"""`priorauth policy test`: the shipped cases pass, and a wrong expectation fails loudly."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from priorauth.cli.main import app
from priorauth.policies.cases import packaged_cases

runner = CliRunner()


def test_every_shipped_case_passes() -> None:
    r = runner.invoke(app, ["policy", "test"])
    assert r.exit_code == 0, r.stdout
    assert "0 failed" in r.stdout
    # every shipped policy has cases, and both older versions are exercised
    assert "2024-06-01" in r.stdout and "2024-06-06" in r.stdout


def test_a_wrong_expectation_fails_naming_what_differs(tmp_path: Path) -> None:
    case = tmp_path / "cigna-ip0535" / "approve"
    shutil.copytree(packaged_cases() / "cigna-ip0535" / "approve", case)
    (case / "expected.yaml").write_text(
        'recommendation: deny\nversion: "2024-06-01"\ncriteria: {C: not_met}\n'
    )
    r = runner.invoke(app, ["policy", "test", str(tmp_path)])
    assert r.exit_code == 1
    assert "recommendation approve, expected deny" in r.stdout
    assert "version 2026-03-12, expected 2024-06-01" in r.stdout
    assert "C is met, expected not_met" in r.stdout
    assert "0 passed, 1 failed" in r.stdout


def test_an_empty_folder_is_a_one_line_error(tmp_path: Path) -> None:
    r = runner.invoke(app, ["policy", "test", str(tmp_path)])
    assert r.exit_code == 2 and "no cases" in r.stderr
