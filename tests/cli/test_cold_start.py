"""The fast CLI paths import nothing heavy: a behavioural guard for bench/cli.py's figures.

Each case runs the command in a fresh interpreter and lists which heavy packages ended up
in `sys.modules`. No timing: importing SQLAlchemy, FastAPI or fhir.resources is what made
`priorauth evaluate` take 1.8 s, and that is what these tests catch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from priorauth.demo.samples import hemgenix_request

HEAVY = ("sqlalchemy", "fastapi", "starlette", "uvicorn", "alembic", "fhir", "jinja2", "httpx")
# Rich draws the text views only; pydantic comes with the policy models (and Typer's options).
WATCHED = (*HEAVY, "rich", "pydantic")

_PROBE = """
import json, sys
args, watched, out = json.loads(sys.argv[1]), set(json.loads(sys.argv[2])), sys.argv[3]
sys.argv = ["priorauth", *args]
code = 0
try:
    from priorauth.cli.main import app
    app()
except SystemExit as e:
    code = e.code or 0
heavy = sorted({m.split(".")[0] for m in sys.modules} & watched)
with open(out, "w") as f:
    json.dump({"code": code, "heavy": heavy}, f)
"""


def _imports(tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    """Run `priorauth ARGS` in a new interpreter; its exit code and the watched packages loaded."""
    out = tmp_path / "probe.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIORAUTH_")}
    r = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(WATCHED), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.exists(), f"the probe failed:\n{r.stdout}\n{r.stderr}"
    result = json.loads(out.read_text())
    return result["code"], result["heavy"]


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    p = tmp_path / "req.json"
    p.write_bytes(orjson.dumps(hemgenix_request(name="cold")))
    return p


@pytest.mark.parametrize(
    ("fmt", "expected"), [("json", ["pydantic"]), ("text", ["pydantic", "rich"])]
)
def test_evaluate_imports_nothing_heavy(
    tmp_path: Path, request_file: Path, fmt: str, expected: list[str]
) -> None:
    code, loaded = _imports(tmp_path, "evaluate", str(request_file), "--format", fmt)
    assert code == 0
    assert loaded == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], []),
        (["evaluate", "--help"], ["pydantic"]),
        (["policy", "show"], ["pydantic", "rich"]),
    ],
)
def test_help_and_policy_show_import_nothing_heavy(
    tmp_path: Path, args: list[str], expected: list[str]
) -> None:
    code, loaded = _imports(tmp_path, *args)
    assert code == 0
    assert loaded == expected


def test_the_probe_sees_a_heavy_import(tmp_path: Path, request_file: Path) -> None:
    """Asked to validate, evaluate loads fhir.resources: the probe is not blind."""
    code, loaded = _imports(
        tmp_path, "evaluate", str(request_file), "--validate", "--format", "json"
    )
    assert code == 0
    assert loaded == ["fhir", "pydantic"]
