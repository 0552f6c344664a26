"""Careless deployment (issue 9, items 20-23) and the start-up checklist of docs/deploy.md."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import orjson
import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select
from typer.testing import CliRunner

from priorauth.api.app import create_app
from priorauth.auth import scopes as sc
from priorauth.cli.main import app as cli
from priorauth.demo.samples import hemgenix_request
from priorauth.keys import (
    ACCESS_TOKEN,
    UI_SESSION,
    WeakSecret,
    derive_key,
    secret_problem,
)
from priorauth.policies import PolicyLibrary
from priorauth.service.app_service import PriorAuthService
from priorauth.service.preflight import OK, REFUSE, WARN, Finding, preflight
from priorauth.service.users import create_user, ensure_demo_users
from priorauth.settings import Settings
from priorauth.store.db import make_engine, upgrade
from priorauth.store.models import UserRow
from priorauth.ui.auth import SESSION_COOKIE
from tests.api.conftest import Clock
from tests.security.conftest import BASE, PROVIDER_SCOPES, bearer, make_client

STRONG = secrets.token_urlsafe(48)
OLD = secrets.token_urlsafe(48)
runner = CliRunner()


@pytest.fixture
def build(db_url: str, clock: Clock, library: PolicyLibrary) -> Iterator[Any]:
    """Build services on one database (as the workers of one deployment, or successive runs)."""
    made: list[PriorAuthService] = []

    def make(**kw: Any) -> PriorAuthService:
        kw.setdefault("rate_burst", 10_000)
        settings = Settings(database_url=db_url, base_url=BASE, **kw)
        svc = PriorAuthService(settings, make_engine(db_url), library, clock=clock)
        made.append(svc)
        return svc

    yield make
    for svc in made:
        svc.notifier.close()
        svc.engine.dispose()


def web(svc: PriorAuthService) -> TestClient:
    return TestClient(create_app(svc), base_url=BASE, follow_redirects=False)


def sign_in(client: TestClient, username: str, password: str) -> int:
    m = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/login").text)
    assert m
    data = {"username": username, "password": password, "csrf_token": m.group(1)}
    return client.post("/ui/login", data=data).status_code


def csrf(client: TestClient) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/queue").text)
    assert m
    return m.group(1)


# --- 20: the secret ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "weak",
    [
        "changeme",
        "changeme" * 4,
        "my-production-secret-key-for-priorauth",
        "a" * 64,
        "abcdefgh" * 5,
        "0123456789" * 4,
    ],
)
def test_weak_secrets_are_refused_with_authentication_on(build: Any, weak: str) -> None:
    assert secret_problem(weak) is not None
    with pytest.raises(WeakSecret, match="PRIORAUTH_SECRET_KEY is too weak"):
        build(secret_key=weak)
    build(secret_key=weak, auth_enabled=False)  # development mode stays easy


def test_generated_secrets_pass() -> None:
    for _ in range(200):
        assert secret_problem(secrets.token_urlsafe(32)) is None
        assert secret_problem(secrets.token_hex(32)) is None


def test_keys_are_derived_per_purpose() -> None:
    keys = {p: derive_key(STRONG, p) for p in (ACCESS_TOKEN, UI_SESSION, "csrf", "audit")}
    assert len(set(keys.values())) == 4 and all(len(k) == 32 for k in keys.values())
    assert derive_key(STRONG, ACCESS_TOKEN) == keys[ACCESS_TOKEN]  # stable across workers
    assert STRONG.encode() not in keys.values()


def _forged_token(key: str | bytes) -> str:
    now = int(time.time())
    claims = {
        "iss": "priorauth",
        "sub": "forger",
        "scope": " ".join(sc.ALL),
        "exp": now + 300,
        "role": sc.PAYER_SYSTEM,
    }
    return jwt.encode({**claims, "iat": now, "jti": "x", "org": None}, key, algorithm="HS256")


def test_the_secret_itself_or_the_session_key_cannot_forge_a_token(build: Any) -> None:
    svc = build(secret_key=STRONG)
    with web(svc) as c:
        # Before: the raw secret signed the tokens, so knowing it gave every scope.
        for key in (STRONG, derive_key(STRONG, UI_SESSION)):
            h = {"Authorization": f"Bearer {_forged_token(key)}"}
            assert c.get("/api/cases", headers=h).status_code == 401
        right = {"Authorization": f"Bearer {_forged_token(derive_key(STRONG, ACCESS_TOKEN))}"}
        # the right key gives a well-formed token: only the client check stops "forger"
        assert c.get("/api/cases", headers=right).status_code == 401
        assert "disabled" in c.get("/api/cases", headers=right).json()["issue"][0]["diagnostics"]


def test_the_secret_or_the_token_key_cannot_forge_a_directors_session(build: Any) -> None:
    svc = build(secret_key=STRONG)
    director = create_user(svc.sessions, "md.real", "medical_director", "long enough password")
    for key in (STRONG, derive_key(STRONG, ACCESS_TOKEN)):
        # Before: {"u": user id} signed with the secret was a Medical Director's session.
        forged = URLSafeTimedSerializer(key, salt="priorauth.ui.session").dumps(
            {"u": director.id, "c": "csrf", "s": "guessed"}
        )
        with web(svc) as c:
            c.cookies.set(SESSION_COOKIE, forged, path="/ui")
            assert c.get("/ui/queue").status_code == 303  # to the sign-in page


def test_rotation_accepts_the_previous_secret_for_verification(build: Any) -> None:
    before = build(secret_key=OLD)
    create_user(before.sessions, "md.rot", "medical_director", "long enough password")
    client = make_client(before, "ehr-rot", "ES384", PROVIDER_SCOPES, "1234567890")
    with web(before) as c:
        h = bearer(c, client)
        assert sign_in(c, "md.rot", "long enough password") == 303
        cookie = c.cookies.get(SESSION_COOKIE)
    during = build(secret_key=STRONG, secret_key_previous=OLD)
    after = build(secret_key=STRONG)
    for svc, accepted in ((during, True), (after, False)):
        with web(svc) as c:
            assert (c.get("/fhir/ClaimResponse/none", headers=h).status_code == 404) is accepted
            c.cookies.set(SESSION_COOKIE, cookie or "", path="/ui")
            assert (c.get("/ui/queue").status_code == 200) is accepted


# --- 21: demo users ---------------------------------------------------------------------


def test_a_demo_run_leaves_no_usable_account_in_production(
    build: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_demo_users(build(auth_enabled=False))  # `priorauth demo` once on this database
    prod = build(secret_key=STRONG)
    with web(prod) as c:
        # Before: the published password signed in a Medical Director.
        assert sign_in(c, "director", "director-demo-2026") == 401
    found = {f.check: f for f in preflight(prod.settings, prod.engine)}
    assert found["demo-users"].level == REFUSE
    assert "priorauth users remove-demo" in found["demo-users"].message
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", db_url)
    monkeypatch.setenv("PRIORAUTH_SECRET_KEY", STRONG)
    monkeypatch.setenv("PRIORAUTH_BASE_URL", "https://pa.example.org")
    started = _fake_uvicorn(monkeypatch)
    r = runner.invoke(cli, ["serve"])
    assert r.exit_code == 2 and not started
    assert "refusing to start: demo-users" in r.stderr
    assert "priorauth users remove-demo" in r.stderr
    gone = runner.invoke(cli, ["users", "remove-demo"])
    assert gone.exit_code == 0 and "intake, director" in gone.stdout
    assert runner.invoke(cli, ["serve"]).exit_code == 0 and started


def test_demo_users_are_created_in_development_mode_only(build: Any) -> None:
    from priorauth.service.users import UserError

    with pytest.raises(UserError, match="development mode"):
        ensure_demo_users(build(secret_key=STRONG))


def test_the_migration_flags_demo_accounts_made_before_it(blank_db_url: str) -> None:
    from alembic import command

    from priorauth.service.users import hash_password
    from priorauth.store.db import _alembic_config

    db_url = blank_db_url
    engine = make_engine(db_url)
    try:
        command.upgrade(_alembic_config(db_url), "0008-1")  # the schema just before 0008
        with engine.begin() as conn:
            for name, pw in (("director", "director-demo-2026"), ("intake", "changed by admin")):
                conn.exec_driver_sql(
                    "INSERT INTO users (username, display_name, password_hash, role, active, "
                    f"created_at) VALUES ('{name}', '{name}', '{hash_password(pw)}', "
                    "'intake', true, '2026-01-01 00:00:00')"
                )
        upgrade(db_url)
        with engine.connect() as conn:
            rows = dict(conn.execute(select(UserRow.username, UserRow.demo)).all())
        assert rows == {"director": True, "intake": False}  # a changed password is kept
    finally:
        engine.dispose()


# --- 22: sessions and disabling -----------------------------------------------------------


@pytest.fixture
def prod(build: Any) -> PriorAuthService:
    svc: PriorAuthService = build(secret_key=STRONG, session_idle_minutes=30)
    create_user(svc.sessions, "md.s", "medical_director", "long enough password")
    return svc


def test_sign_out_revokes_the_session(prod: PriorAuthService) -> None:
    with web(prod) as c:
        assert sign_in(c, "md.s", "long enough password") == 303
        stolen = c.cookies.get(SESSION_COOKIE)
        assert c.post("/ui/logout", data={"csrf_token": csrf(c)}).status_code == 303
    with web(prod) as replay:
        replay.cookies.set(SESSION_COOKIE, stolen or "", path="/ui")
        # Before: the signed cookie stayed valid for 8 h after sign-out.
        assert replay.get("/ui/queue").status_code == 303


def test_an_idle_session_ends(prod: PriorAuthService, clock: Clock) -> None:
    with web(prod) as c:
        assert sign_in(c, "md.s", "long enough password") == 303
        clock.advance(minutes=29)
        assert c.get("/ui/queue").status_code == 200  # activity keeps it alive
        clock.advance(minutes=29)
        assert c.get("/ui/queue").status_code == 200
        clock.advance(minutes=31)
        assert c.get("/ui/queue").status_code == 303


def test_sessions_end_after_the_longest_shift(prod: PriorAuthService, clock: Clock) -> None:
    with web(prod) as c:
        assert sign_in(c, "md.s", "long enough password") == 303
        for _ in range(16):
            clock.advance(minutes=29)
            c.get("/ui/queue")
        clock.advance(minutes=29)  # 8 h 41 min after sign-in
        assert c.get("/ui/queue").status_code == 303


def test_users_disable_ends_open_sessions(
    prod: PriorAuthService, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", db_url)
    with web(prod) as c:
        assert sign_in(c, "md.s", "long enough password") == 303
        r = runner.invoke(cli, ["users", "disable", "md.s"])
        assert r.exit_code == 0, r.output
        assert c.get("/ui/queue").status_code == 303
        assert sign_in(c, "md.s", "long enough password") == 401
    assert runner.invoke(cli, ["users", "disable", "nobody"]).exit_code == 2


def test_a_disabled_clients_token_stops_at_once(
    prod: PriorAuthService, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", db_url)
    client = make_client(prod, "ehr-off", "RS384", PROVIDER_SCOPES, "1234567890")
    with web(prod) as c:
        h = bearer(c, client)
        assert c.get("/fhir/ClaimResponse/none", headers=h).status_code == 404
        r = runner.invoke(cli, ["clients", "disable", "ehr-off"])
        assert r.exit_code == 0 and "disabled client ehr-off" in r.stdout
        # Before: the token worked until it expired (5 minutes).
        assert c.get("/fhir/ClaimResponse/none", headers=h).status_code == 401
    assert runner.invoke(cli, ["clients", "disable", "nobody"]).exit_code == 2


# --- 23: API docs, caching, workers -----------------------------------------------------------


def test_api_docs_are_off_in_production_unless_configured(build: Any) -> None:
    paths = ("/docs", "/redoc", "/openapi.json")
    with web(build(secret_key=STRONG)) as c:
        assert [c.get(p).status_code for p in paths] == [404, 404, 404]
    with web(build(secret_key=STRONG, api_docs=True)) as c:
        assert [c.get(p).status_code for p in paths] == [200, 200, 200]
    with web(build(auth_enabled=False)) as c:  # development mode: as easy as before
        assert c.get("/openapi.json").status_code == 200


def test_phi_responses_are_not_stored_by_caches(build: Any) -> None:
    svc = build(auth_enabled=False)
    create_user(svc.sessions, "md.c", "medical_director", "long enough password")
    with web(svc) as c:
        sub = c.post("/fhir/Claim/$submit", content=orjson.dumps(hemgenix_request(name="ns")))
        cid = sub.json()["entry"][0]["resource"]["id"]
        answers = [
            sub,
            c.get(f"/fhir/ClaimResponse/{cid}"),
            c.get("/api/cases"),
            c.get(f"/api/cases/{cid}"),
            c.get("/fhir/ClaimResponse/nothing"),  # an error answer too
            c.get("/cds-services"),
        ]
        sign_in(c, "md.c", "long enough password")
        answers += [c.get("/ui/queue"), c.get(f"/ui/cases/{cid}")]
        for r in answers:
            assert r.headers.get("cache-control") == "no-store", r.request.url


def _fake_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import uvicorn

    from priorauth.cli import server

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    # Several workers start through priorauth's own supervisor call, not uvicorn.run.
    monkeypatch.setattr(server, "run_uvicorn", lambda *a, **kw: calls.append(kw))
    return calls


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("PRIORAUTH_SECRET_KEY", "PRIORAUTH_AUTH", "PRIORAUTH_SECRET_KEY_PREVIOUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", db_url)
    return monkeypatch


def test_serve_refuses_several_workers_without_a_secret(env: pytest.MonkeyPatch) -> None:
    started = _fake_uvicorn(env)
    r = runner.invoke(cli, ["serve", "--workers", "2"])
    # Before: it started, each worker with a key of its own.
    assert r.exit_code == 2 and not started
    lines = [ln for ln in r.stderr.splitlines() if "refusing to start" in ln]
    assert len(lines) == 1 and "secret:" in lines[0] and "2 workers" in lines[0]
    env.setenv("PRIORAUTH_SECRET_KEY", STRONG)
    assert runner.invoke(cli, ["serve", "--workers", "2"]).exit_code == 0 and started


def test_serve_refuses_a_placeholder_secret(env: pytest.MonkeyPatch) -> None:
    started = _fake_uvicorn(env)
    env.setenv("PRIORAUTH_SECRET_KEY", "changeme")
    r = runner.invoke(cli, ["serve"])
    assert r.exit_code == 2 and not started
    assert "refusing to start: secret: PRIORAUTH_SECRET_KEY is too weak" in r.stderr


def test_the_app_factory_refuses_web_concurrency_without_a_secret(
    env: pytest.MonkeyPatch,
) -> None:
    from priorauth.api.factory import app_from_env

    env.setenv("WEB_CONCURRENCY", "2")  # what `uvicorn --workers` reads by default
    with pytest.raises(SystemExit) as stop:
        app_from_env()
    assert stop.value.code == 2


def test_development_mode_announces_itself_and_stays_easy(env: pytest.MonkeyPatch) -> None:
    started = _fake_uvicorn(env)
    env.setenv("PRIORAUTH_AUTH", "off")
    r = runner.invoke(cli, ["serve", "--workers", "2"])
    assert r.exit_code == 0 and started
    assert "warn   mode: development mode: authentication is OFF" in r.stderr


# --- the checklist ----------------------------------------------------------------------------


def _levels(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.level for f in findings}


def test_preflight_passes_a_production_configuration(prod: PriorAuthService) -> None:
    make_client(prod, "ehr-ok", "ES384", PROVIDER_SCOPES, "1234567890")
    settings = Settings(
        database_url="postgresql+psycopg://pa@db/pa",
        base_url="https://pa.example.org",
        secret_key=STRONG,
        rate_backend="database",
    )
    findings = preflight(settings, prod.engine, workers=4)
    assert _levels(findings) == {
        "mode": OK,
        "secret": OK,
        "tls": OK,
        "database": OK,
        "outbound": OK,
        "demo-users": OK,
        "clients": OK,
        "users": OK,
        "api-docs": OK,
        "rate-limit": OK,
    }, [f.line() for f in findings]


def test_preflight_names_every_problem(build: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ensure_demo_users(build(auth_enabled=False))
    svc = build(secret_key=STRONG)
    make_client(svc, "ehr-any", "ES384", PROVIDER_SCOPES, None)
    settings = Settings(
        database_url="sqlite:///x.db",
        outbound_allow=("10.0.0.5",),
        base_url="http://pa.example.org",
        secret_key="",
        secret_key_previous="changeme",
        api_docs=True,
    )
    levels = _levels(preflight(settings, svc.engine, workers=2))
    assert levels == {
        "mode": OK,
        "secret": REFUSE,
        "secret-rotation": REFUSE,
        "tls": REFUSE,
        "database": WARN,
        "outbound": WARN,
        "demo-users": REFUSE,
        "clients": WARN,
        "users": WARN,
        "api-docs": WARN,
        "rate-limit": WARN,
    }


def test_preflight_refuses_an_unreachable_redis() -> None:
    settings = Settings(secret_key=STRONG, rate_backend="redis", redis_url="redis://127.0.0.1:1/0")
    rate = [f for f in preflight(settings, None) if f.check == "rate-limit"]
    assert rate[0].level == REFUSE and "127.0.0.1:1" in rate[0].message


def test_audit_records_the_sign_out(prod: PriorAuthService) -> None:
    with web(prod) as c:
        sign_in(c, "md.s", "long enough password")
        c.post("/ui/logout", data={"csrf_token": csrf(c)})
    actions = [(r.action, r.actor) for r in prod.audit.rows()]
    assert ("sign-out", "md.s") in actions
    assert datetime.now(UTC)  # the records carry real times; the clock drives sessions only


def test_abandoned_sessions_are_swept_at_the_next_sign_in(
    prod: PriorAuthService, clock: Clock
) -> None:
    from sqlalchemy import func

    from priorauth.store.models import UiSessionRow

    for _ in range(3):
        with web(prod) as c:  # signed in, never signed out
            assert sign_in(c, "md.s", "long enough password") == 303
    clock.advance(minutes=31)
    with web(prod) as c:
        assert sign_in(c, "md.s", "long enough password") == 303
    with prod.sessions() as s:
        assert s.scalar(select(func.count()).select_from(UiSessionRow)) == 1
