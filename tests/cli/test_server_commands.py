"""`priorauth db upgrade`, `claims import` and `serve`'s refusal of an out-of-date schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from priorauth.cli.main import app
from priorauth.demo.samples import claims_ndjson
from priorauth.store.claims import history_for
from priorauth.store.db import make_engine, session_factory

runner = CliRunner()
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", url)
    return url


def test_serve_refuses_an_out_of_date_schema(db: str) -> None:
    r = runner.invoke(app, ["serve", "--port", "1"])
    assert r.exit_code == 2
    assert "priorauth db upgrade" in r.stderr and "refusing to start" in r.stderr


def test_upgrade_then_import_claims(db: str, tmp_path: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    f = tmp_path / "claims.ndjson"
    f.write_text(claims_ndjson("MIMPORT", (HCPCS, "J1411"), (HCPCS, "J7201")))
    r = runner.invoke(app, ["claims", "import", str(f)])
    assert r.exit_code == 0, r.stderr
    assert "imported" in r.stdout
    again = runner.invoke(app, ["claims", "import", str(f)])
    assert "imported 0 new" in again.stdout
    with session_factory(make_engine(db))() as s:
        h = history_for(s, "MIMPORT")
    assert h.available
    assert {code for line in h.lines for _, code in line.codes} == {"J1411", "J7201"}


def test_import_refuses_a_bad_file_and_an_old_schema(db: str, tmp_path: Path) -> None:
    f = tmp_path / "claims.ndjson"
    f.write_text(claims_ndjson("M1", (HCPCS, "J7201")))
    old = runner.invoke(app, ["claims", "import", str(f)])
    assert old.exit_code == 2 and "db upgrade" in old.stderr
    runner.invoke(app, ["db", "upgrade"])
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"resourceType": "Patient"}\n')
    r = runner.invoke(app, ["claims", "import", str(bad)])
    assert r.exit_code == 2 and "line 1" in r.stderr


@pytest.mark.parametrize(
    "args", [["db", "upgrade"], ["serve", "--port", "1"], ["users", "list"], ["audit", "verify"]]
)
def test_a_missing_database_driver_is_one_line_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """psycopg is the `postgres` extra: without a driver the commands say what to install."""
    # psycopg2 is never installed here, so it stands for a PostgreSQL driver that is absent.
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1/none")
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "priorauth[postgres]" in lines[0], r.stderr
    assert "Traceback" not in r.stderr + r.stdout
