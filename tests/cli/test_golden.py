"""Golden files: the JSON determination of each demo request, byte for byte.

A change to wording, evidence or shape shows up here as a diff to review.
Regenerate on purpose with: PRIORAUTH_UPDATE_GOLDEN=1 uv run pytest tests/cli/test_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from priorauth.cli.main import app
from priorauth.demo.command import demo_requests

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
runner = CliRunner()


@pytest.mark.parametrize("name", sorted(demo_requests()))
def test_demo_determination_matches_golden(name: str, tmp_path: Path) -> None:
    req = tmp_path / f"{name}.json"
    req.write_bytes(orjson.dumps(demo_requests()[name]))
    r = runner.invoke(app, ["evaluate", str(req), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    golden = GOLDEN / f"demo-{name}.json"
    if os.environ.get("PRIORAUTH_UPDATE_GOLDEN"):
        golden.write_text(r.stdout)
    assert r.stdout == golden.read_text(), f"{golden.name} differs; review, then regenerate"
