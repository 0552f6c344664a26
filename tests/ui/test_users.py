"""Reviewer accounts: argon2 hashes, validation, demo users and `priorauth users add`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from priorauth.cli.users import users_app
from priorauth.service.app_service import PriorAuthService
from priorauth.service.users import UserError, authenticate, create_user, ensure_demo_users
from priorauth.store.db import make_engine, session_factory
from priorauth.store.models import UserRow
from tests.databases import Databases

runner = CliRunner()


def test_passwords_are_stored_as_argon2id_hashes(service: PriorAuthService) -> None:
    create_user(service.sessions, "md.one", "medical_director", "correct horse battery")
    with service.sessions() as s:
        row = s.scalars(select(UserRow).where(UserRow.username == "md.one")).one()
    assert row.password_hash.startswith("$argon2id$")
    assert "correct horse" not in row.password_hash
    assert authenticate(service.sessions, "md.one", "correct horse battery") is not None
    assert authenticate(service.sessions, "md.one", "wrong horse battery") is None
    assert authenticate(service.sessions, "nobody", "correct horse battery") is None


@pytest.mark.parametrize(
    ("username", "role", "password", "message"),
    [
        ("ok.user", "admin", "long enough pw", "role must be one of"),
        ("ok.user", "intake", "short", "at least 10 characters"),
        ("bad name!", "intake", "long enough pw", "a username is"),
    ],
)
def test_bad_users_are_refused(
    service: PriorAuthService, username: str, role: str, password: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        create_user(service.sessions, username, role, password)


def test_duplicate_usernames_are_refused(service: PriorAuthService) -> None:
    create_user(service.sessions, "dup", "intake", "long enough pw")
    with pytest.raises(UserError, match="already exists"):
        create_user(service.sessions, "dup", "intake", "long enough pw")


def test_demo_users_are_created_once(service: PriorAuthService) -> None:
    first = ensure_demo_users(service)
    assert [(u, r) for u, _, r in first] == [("intake", "intake"), ("director", "medical_director")]
    assert ensure_demo_users(service) == first
    for username, password, role in first:
        user = authenticate(service.sessions, username, password, allow_demo=True)
        assert user is not None and user.role == role
        # outside development mode a demo account never signs in
        assert authenticate(service.sessions, username, password) is None


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, databases: Databases) -> str:
    url = databases.migrated("sqlite", tmp_path)
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", url)
    return url


def test_users_add_with_password_on_stdin(cli_db: str) -> None:
    r = runner.invoke(
        users_app,
        [
            "add",
            "dr.who",
            "--role",
            "medical_director",
            "--display-name",
            "Dr. Who",
            "--password-stdin",
        ],
        input="tardis-password-1\n",
    )
    assert r.exit_code == 0, r.output
    assert "created dr.who (Medical Director)" in r.stdout
    sessions = session_factory(make_engine(cli_db))
    user = authenticate(sessions, "dr.who", "tardis-password-1")
    assert user is not None and user.display_name == "Dr. Who"
    listed = runner.invoke(users_app, ["list"])
    assert "dr.who\tMedical Director\tactive\tDr. Who" in listed.stdout


def test_users_add_prompts_twice(cli_db: str) -> None:
    r = runner.invoke(
        users_app, ["add", "ivy", "--role", "intake"], input="intake-pass-1\nintake-pass-1\n"
    )
    assert r.exit_code == 0, r.output
    sessions = session_factory(make_engine(cli_db))
    assert authenticate(sessions, "ivy", "intake-pass-1") is not None


def test_users_add_refuses_a_bad_role_without_a_traceback(cli_db: str) -> None:
    r = runner.invoke(
        users_app, ["add", "x.y", "--role", "boss", "--password-stdin"], input="p" * 12
    )
    assert r.exit_code == 2
    assert "role must be one of" in r.stderr and "Traceback" not in r.output
