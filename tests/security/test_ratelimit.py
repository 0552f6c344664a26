"""Rate limits (issue 9, item 18): before the audit, per address without a token, shared by workers.

Every limiter runs on an injected clock: nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from priorauth.api.app import create_app
from priorauth.policies import PolicyLibrary
from priorauth.service.app_service import PriorAuthService
from priorauth.service.ratelimit import (
    DatabaseRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    RefusalTally,
    make_limiter,
    redis_client,
)
from priorauth.settings import Settings
from priorauth.store.db import make_engine
from priorauth.store.models import AuditRow
from tests.api.conftest import Clock

REDIS_URL = "redis://127.0.0.1:6379/0"


class Seconds:
    """A clock in seconds, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def audit_count(svc: PriorAuthService, action: str) -> int:
    with svc.audit.sessions() as s:
        q = select(func.count()).select_from(AuditRow).where(AuditRow.action == action)
        return int(s.scalar(q) or 0)


def test_a_tokenless_flood_is_refused_before_it_is_audited(
    api: TestClient, secured: PriorAuthService, clock: Clock
) -> None:
    burst = secured.settings.anon_rate_burst
    codes = [api.get("/api/cases").status_code for _ in range(300)]
    assert codes[:burst] == [401] * burst
    assert set(codes[burst:]) == {429}
    # Before: 300 audit rows. Now: one per request let through to the token check.
    assert audit_count(secured, "access") == burst
    assert audit_count(secured, "rate-limit") == 0  # the window is still open
    bad = {"Authorization": "Bearer forged.token.value"}
    assert api.get("/api/cases", headers=bad).status_code == 429  # invalid tokens alike
    clock.advance(seconds=61)
    assert api.get("/api/cases").status_code == 401  # the budget refilled
    with secured.audit.sessions() as s:
        summary = s.scalars(select(AuditRow).where(AuditRow.action == "rate-limit")).one()
    assert summary.detail["refused"] == 300 - burst + 1
    assert summary.source == "testclient" and summary.outcome == "failure"


def test_the_token_endpoint_spends_the_address_budget(
    api: TestClient, secured: PriorAuthService
) -> None:
    form = {"grant_type": "client_credentials"}
    codes = [api.post("/auth/token", data=form).status_code for _ in range(40)]
    burst = secured.settings.anon_rate_burst
    assert codes[:burst] == [400] * burst and set(codes[burst:]) == {429}
    assert audit_count(secured, "token") == burst


def test_memory_limiter_follows_its_clock() -> None:
    t = Seconds()
    lim = RateLimiter(per_minute=60, burst=3, clock=t)
    assert [lim.take("k") for _ in range(3)] == [None, None, None]
    wait = lim.take("k")
    assert wait == pytest.approx(1.0)
    t.now += 0.5
    assert lim.take("k") == pytest.approx(0.5)
    t.now += 0.5
    assert lim.take("k") is None
    assert lim.take("other") is None  # budgets are per key


def _shares_one_budget(a: RateLimiter, b: RateLimiter, t: Seconds, key: str) -> None:
    # Two instances (two worker processes) alternate: together they get the burst, once.
    results = [(a if i % 2 else b).take(key) for i in range(10)]
    assert [r is None for r in results] == [True] * 4 + [False] * 6
    t.now += 60  # one minute refills 2 requests (2 per minute)
    assert a.take(key) is None and b.take(key) is None
    assert a.take(key) is not None and b.take(key) is not None


def test_database_backend_shares_the_budget_between_instances(db_url: str) -> None:
    t = Seconds()
    e1, e2 = make_engine(db_url), make_engine(db_url)  # two engines: two processes' pools
    try:
        a = DatabaseRateLimiter(e1, per_minute=2, burst=4, clock=t)
        b = DatabaseRateLimiter(e2, per_minute=2, burst=4, clock=t)
        _shares_one_budget(a, b, t, "client:shared")
    finally:
        e1.dispose()
        e2.dispose()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    try:
        client = redis_client(REDIS_URL)
        client.ping()
    except Exception as e:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {type(e).__name__}")
    prefix = f"priorauth-test:{uuid.uuid4()}:"
    yield prefix
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)


def test_redis_backend_shares_the_budget_between_instances(redis_prefix: str) -> None:
    t = Seconds()
    a = RedisRateLimiter(redis_client(REDIS_URL), 2, 4, t, prefix=redis_prefix)
    b = RedisRateLimiter(redis_client(REDIS_URL), 2, 4, t, prefix=redis_prefix)
    _shares_one_budget(a, b, t, "client:shared")


def test_two_workers_on_the_database_backend_share_the_address_budget(
    db_url: str, clock: Clock, library: PolicyLibrary
) -> None:
    settings = Settings(
        database_url=db_url, rate_backend="database", anon_rate_burst=6, anon_rate_per_minute=6
    )
    workers = []
    for _ in range(2):
        engine = make_engine(db_url)
        workers.append(PriorAuthService(settings, engine, library, clock=clock))
    try:
        clients = [TestClient(create_app(w), raise_server_exceptions=False) for w in workers]
        codes = [clients[i % 2].get("/api/cases").status_code for i in range(10)]
        # Before: each worker had its own budget (6 + 6 = all 10 through). Now 6 in all.
        assert codes == [401] * 6 + [429] * 4
    finally:
        for w in workers:
            w.notifier.close()
            w.engine.dispose()


def test_the_backend_is_chosen_by_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("PRIORAUTH_RATE_BACKEND", "redis")
    monkeypatch.setenv("PRIORAUTH_REDIS_URL", "redis://127.0.0.1:6379/3")
    s = Settings.from_env()
    assert (s.rate_backend, s.redis_url) == ("redis", "redis://127.0.0.1:6379/3")
    lim = make_limiter(s.rate_backend, 60, 5, Seconds(), redis_url=s.redis_url, prefix="x:")
    assert isinstance(lim, RedisRateLimiter)
    assert isinstance(make_limiter("memory", 60, 5, Seconds()), RateLimiter)
    monkeypatch.setenv("PRIORAUTH_RATE_BACKEND", "memcached")
    with pytest.raises(ValueError, match="PRIORAUTH_RATE_BACKEND"):
        Settings.from_env()


def test_refusals_are_summarised_per_key_and_window() -> None:
    tally = RefusalTally(window_seconds=60)
    for i in range(50):
        assert tally.count("anonymous:1.2.3.4", 100.0 + i) == []
    assert tally.count("client:a", 130.0) == []
    assert tally.closed(159.0) == []
    done = tally.closed(160.0)
    assert [(d.key, d.refused) for d in done] == [("anonymous:1.2.3.4", 50)]
    assert [(d.key, d.refused) for d in tally.drain()] == [("client:a", 1)]


def test_service_limiter_runs_on_the_service_clock(secured: PriorAuthService, clock: Clock) -> None:
    svc = secured
    burst = svc.settings.rate_burst
    assert all(svc.limiter.take("c") is None for _ in range(burst))
    assert svc.limiter.take("c") is not None
    clock.advance(seconds=1)  # 60 per minute: one more
    assert svc.limiter.take("c") is None
