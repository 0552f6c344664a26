"""A service on SQLite and on PostgreSQL (when PRIORAUTH_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from priorauth.api.app import create_app
from priorauth.policies import builtin
from priorauth.service.app_service import PriorAuthService
from priorauth.settings import Settings
from priorauth.store.db import make_engine, upgrade

PG_ENV = "PRIORAUTH_TEST_DATABASE_URL"


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def postgres_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: the PostgreSQL variant is skipped")
    # A schema of this test process's own, clean for every test: nothing leaks between
    # tests, and two test runs on one server do not disturb each other.
    schema = f"priorauth_test_{os.getpid()}"
    try:
        eng = create_engine(url)
        with eng.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        eng.dispose()
    except ModuleNotFoundError as e:  # asked for PostgreSQL: a missing driver must not skip
        pytest.fail(f"{PG_ENV} is set but {e.name} is not installed: uv sync --extra postgres")
    except Exception as e:  # the server is down or refuses us
        pytest.skip(f"PostgreSQL at {PG_ENV} is not reachable: {type(e).__name__}")
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'priorauth.db'}"
    return postgres_url()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 5, 4, 15, 0, tzinfo=UTC))


@pytest.fixture
def service(db_url: str, clock: Clock) -> Iterator[PriorAuthService]:
    upgrade(db_url)
    engine = make_engine(db_url)
    settings = Settings(database_url=db_url, auth_enabled=False, rate_burst=100_000)
    svc = PriorAuthService(settings, engine, builtin(), clock=clock)
    yield svc
    svc.notifier.close()
    engine.dispose()


@pytest.fixture
def client(service: PriorAuthService) -> Iterator[TestClient]:
    with TestClient(create_app(service), raise_server_exceptions=False) as c:
        yield c


def post_fhir(client: TestClient, path: str, body: object) -> object:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(path, content=raw, headers={"Content-Type": "application/fhir+json"})


def claim_response(r) -> dict:  # type: ignore[no-untyped-def]
    bundle = r.json()
    assert bundle["resourceType"] == "Bundle"
    first = bundle["entry"][0]["resource"]
    assert first["resourceType"] == "ClaimResponse"
    return first


def action_codes(cr: dict) -> list[str]:
    """The X12 306 reviewAction codes of every item."""
    out = []
    for item in cr["item"]:
        for adj in item["adjudication"]:
            for ext in adj.get("extension", []):
                if ext["url"].endswith("extension-reviewAction"):
                    for sub in ext["extension"]:
                        if sub["url"].endswith("reviewActionCode"):
                            out.append(sub["valueCodeableConcept"]["coding"][0]["code"])
    return out
