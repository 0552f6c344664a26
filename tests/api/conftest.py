"""A service on SQLite and on PostgreSQL (when PRIORAUTH_TEST_DATABASE_URL is set)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from priorauth.api.app import create_app
from priorauth.policies import PolicyLibrary
from priorauth.service.app_service import PriorAuthService
from priorauth.settings import Settings
from priorauth.store.db import make_engine
from tests.conftest import db_url

__all__ = ["db_url"]  # other folders' conftests take it from here with the service


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 5, 4, 15, 0, tzinfo=UTC))


@pytest.fixture
def service(db_url: str, clock: Clock, library: PolicyLibrary) -> Iterator[PriorAuthService]:
    engine = make_engine(db_url)
    settings = Settings(database_url=db_url, auth_enabled=False, rate_burst=100_000)
    # The session's compiled library: tests that change a library load their own.
    svc = PriorAuthService(settings, engine, library, clock=clock)
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
    """The ClaimResponse of a response Bundle, or of the first Bundle a PAS 2.2.1 $inquire
    Parameters returns."""
    bundle = r.json()
    if bundle["resourceType"] == "Parameters":
        bundle = bundle["parameter"][0]["resource"]
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
