"""Sign-in throttle (issue 9, item 17): per account and per address, in the database, liftable."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from priorauth.api.app import create_app
from priorauth.cli.main import app as cli
from priorauth.service.app_service import PriorAuthService
from priorauth.service.throttle import Limits, Throttle
from priorauth.service.users import create_user
from priorauth.store.models import AuditRow
from tests.api.conftest import Clock

NAME, PASSWORD = "md.throttle", "the right password 2026"


@pytest.fixture
def web(secured: PriorAuthService) -> FastAPI:
    create_user(secured.sessions, NAME, "medical_director", PASSWORD)
    return create_app(secured)


@pytest.fixture
def browser(web: FastAPI) -> Iterator[TestClient]:
    with TestClient(web, follow_redirects=False, client=("198.51.100.7", 5000)) as c:
        yield c


def attempt(client: TestClient, username: str, password: str) -> int:
    page = client.get("/ui/login").text
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m
    r = client.post(
        "/ui/login", data={"username": username, "password": password, "csrf_token": m.group(1)}
    )
    return r.status_code


def test_thirty_wrong_passwords_then_the_right_one_is_refused(
    browser: TestClient, secured: PriorAuthService, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = [attempt(browser, NAME, f"guess number {i}") for i in range(30)]
    assert codes[:5] == [401] * 5  # the fifth failure locks the account
    assert set(codes[5:]) == {429}  # refused before the password is even checked
    assert attempt(browser, NAME, PASSWORD) == 429  # the right one too, while locked
    assert browser.get("/ui/queue").status_code == 303  # not signed in

    # an administrator lifts the lock
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", db_url)
    r = CliRunner().invoke(cli, ["users", "unlock", NAME])
    assert r.exit_code == 0 and "unlocked" in r.stdout, r.output
    assert attempt(browser, NAME, PASSWORD) == 303


def test_the_lockout_ends_by_the_clock(browser: TestClient, clock: Clock) -> None:
    for i in range(5):
        attempt(browser, NAME, f"guess {i}")
    assert attempt(browser, NAME, PASSWORD) == 429
    clock.advance(minutes=14)
    assert attempt(browser, NAME, PASSWORD) == 429
    clock.advance(minutes=2)
    assert attempt(browser, NAME, PASSWORD) == 303


def test_one_address_trying_many_accounts_is_throttled(
    web: FastAPI, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 failures spread over 10 accounts: none is locked, the address is
    with TestClient(web, follow_redirects=False, client=("203.0.113.9", 1)) as spray:
        codes = [attempt(spray, f"user{i % 10}", "not the password") for i in range(20)]
        assert codes == [401] * 20
        assert attempt(spray, NAME, PASSWORD) == 429  # even a right password from it
        with TestClient(web, follow_redirects=False, client=("192.0.2.1", 1)) as other:
            assert attempt(other, NAME, PASSWORD) == 303  # the account itself is not locked
        monkeypatch.setenv("PRIORAUTH_DATABASE_URL", db_url)
        r = CliRunner().invoke(cli, ["users", "unlock", "--address", "203.0.113.9"])
        assert r.exit_code == 0 and "unlocked" in r.stdout, r.output
        assert attempt(spray, NAME, PASSWORD) == 303


def test_workers_share_the_counts(secured: PriorAuthService, clock: Clock) -> None:
    # Two throttles over one database, as two worker processes would have.
    limits = Limits(account_failures=4, address_failures=100)
    a = Throttle(secured.sessions, limits, clock)
    b = Throttle(secured.sessions, limits, clock)
    assert a.failed("x", "10.0.0.1") == []
    assert b.failed("X", "10.0.0.2") == []  # the same account, other case, other worker
    assert a.failed("x", "10.0.0.3") == []
    assert b.failed("x", "10.0.0.4") == ["user:x"]
    assert a.blocked("x", "10.0.0.5") is not None
    assert b.blocked("someone-else", "10.0.0.5") is None


def test_refused_attempts_are_counted_not_audited_one_by_one(
    browser: TestClient, secured: PriorAuthService, clock: Clock
) -> None:
    for i in range(25):
        attempt(browser, NAME, f"guess {i}")
    with secured.audit.sessions() as s:
        signins = list(s.scalars(select(AuditRow).where(AuditRow.action == "sign-in")))
    assert len(signins) == 5  # the failures that were checked; the lock is in the last
    assert signins[-1].detail == {"locked": ["user"]}
    clock.advance(seconds=61)
    attempt(browser, NAME, f"guess {99}")  # a window closed: its refusals in one record
    with secured.audit.sessions() as s:
        summaries = list(s.scalars(select(AuditRow).where(AuditRow.action == "rate-limit")))
    assert [r.detail["refused"] for r in summaries] == [20]
    assert summaries[0].source == "198.51.100.7"
