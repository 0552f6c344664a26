"""Fixtures for the web app: a service with the UI installed, demo users, signed-in clients."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from priorauth.api.app import create_app
from priorauth.auth.actors import Actor
from priorauth.demo.samples import Lab, hemgenix_request
from priorauth.service.app_service import PriorAuthService
from priorauth.service.users import ensure_demo_users
from priorauth.ui import install
from tests.api import conftest as api

# The API tests' fixtures: a service on SQLite (and PostgreSQL when configured), a hand clock.
clock, db_url, service = api.clock, api.db_url, api.service

INTAKE = ("intake", "intake-demo-2026")
DIRECTOR = ("director", "director-demo-2026")
MD = Actor("director", "user")  # the demo Medical Director, signed in, as the service sees her
DENY_LABS = {"1920-8": Lab(150, "U/L", uln=48, days_before=3)}


@pytest.fixture
def app(service: PriorAuthService) -> FastAPI:
    # These tests move the clock by days for case deadlines: sessions must outlive that.
    # The session timeouts have their own tests (tests/security/test_deploy.py).
    service.settings = dataclasses.replace(
        service.settings, session_idle_minutes=10**7, session_hours=10**6
    )
    app = create_app(service)
    install(app, service, secure_cookie=False)
    ensure_demo_users(service)
    return app


@pytest.fixture
def anon(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def sign_in(client: TestClient, who: tuple[str, str]) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    token = csrf_of(client.get("/ui/login").text)
    r = client.post("/ui/login", data={"username": who[0], "password": who[1], "csrf_token": token})
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/ui/queue").text)


@pytest.fixture
def intake(app: FastAPI) -> Iterator[tuple[TestClient, str]]:
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c, sign_in(c, INTAKE)


@pytest.fixture
def director(app: FastAPI) -> Iterator[tuple[TestClient, str]]:
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c, sign_in(c, DIRECTOR)


def submit(service: PriorAuthService, **kw: Any) -> str:
    """Submit a demo request as a provider would; returns the case id."""
    return service.submit(orjson.dumps(hemgenix_request(**kw))).record.id
