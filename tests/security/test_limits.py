"""Hard limits: every POST route refuses an oversized body unread, and checks the token first."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI

from priorauth.api import cases, cds, dtr, fhir, security
from priorauth.api.app import create_app
from priorauth.auth import scopes as sc
from priorauth.service.app_service import PriorAuthService
from priorauth.ui import app as ui_app
from priorauth.ui import pages
from tests.api.live import serve_process
from tests.databases import Databases
from tests.security.conftest import BASE, bearer, make_client

CHUNK = 64 * 1024


@dataclass
class Answer:
    status: int
    consumed: int  # body bytes the app pulled from the connection
    body: bytes


def call(
    app: FastAPI,
    path: str,
    *,
    chunks: Iterator[bytes],
    headers: dict[str, str] | None = None,
    declared: int | None = None,
) -> Answer:
    """POST through the ASGI interface, counting what the app reads of a lazily made body."""
    consumed = 0
    sent: list[dict[str, Any]] = []
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if declared is not None:
        raw_headers.append((b"content-length", str(declared).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *raw_headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], consumed, body)


def endless(total: int) -> Iterator[bytes]:
    """`total` bytes in chunks, made only as they are read."""
    block = b"x" * CHUNK
    for _ in range(total // CHUNK):
        yield block


ROUTERS = (
    security.router,
    fhir.router,
    cases.router,
    cds.router,
    dtr.router,
    ui_app.router,
    pages.router,
)


def post_paths(app: FastAPI) -> list[str]:
    """Every POST route of the app (API and web app), path parameters filled in."""
    out = set()
    for router in ROUTERS:
        for route in router.routes:
            if "POST" in (getattr(route, "methods", None) or ()):
                out.add(re.sub(r"\{[^}]+\}", "x", getattr(route, "path", "")))
    # Nothing in the published API is missed (the web app is not in the schema).
    for path, operations in app.openapi()["paths"].items():
        if "post" in operations:
            assert re.sub(r"\{[^}]+\}", "x", path) in out, path
    return sorted(out)


@pytest.fixture
def app(secured: PriorAuthService) -> FastAPI:
    return create_app(secured)


def test_every_post_route_is_listed(app: FastAPI) -> None:
    # The other tests walk this list: make sure it is the whole API, web app included.
    paths = post_paths(app)
    for expected in (
        "/api/cases/x/decision",
        "/auth/token",
        "/cds-services/x",
        "/fhir/Claim/$submit",
        "/fhir/Questionnaire/$next-question",
        "/fhir/Subscription",
        "/ui/login",
        "/ui/cases/x/decision",
    ):
        assert expected in paths


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_declared_oversized_body_gets_413_unread(
    app: FastAPI, secured: PriorAuthService, content_type: str
) -> None:
    limit = (
        secured.settings.max_body_bytes
        if content_type == "application/json"
        else secured.settings.max_form_bytes
    )
    for path in post_paths(app):
        a = call(
            app,
            path,
            chunks=endless(limit + CHUNK),
            headers={"content-type": content_type},
            declared=limit + 1,
        )
        assert a.status == 413, (path, a.status, a.body[:200])
        assert a.consumed == 0, path
        assert b"OperationOutcome" in a.body and b"too-long" in a.body


def test_a_streamed_oversized_body_is_cut_at_the_limit(
    app: FastAPI, secured: PriorAuthService
) -> None:
    # No Content-Length (chunked): counted as read; the reader stops one chunk past the limit.
    provider = make_client(secured, "all-scopes", "RS384", list(sc.ALL), None)
    with_token = _token(app, provider)
    limit = secured.settings.max_body_bytes
    for path in post_paths(app):
        a = call(
            app,
            path,
            chunks=endless(3 * limit),
            headers={"content-type": "application/json", **with_token},
        )
        if a.consumed == 0:
            # Refused before reading: the web app without a session (to sign-in), or the
            # token endpoint, which reads forms only (this body is not one).
            assert a.status == 303 or 400 <= a.status < 500, (path, a.status)
            continue
        assert a.status == 413, (path, a.status, a.body[:200])
        assert a.consumed <= limit + CHUNK, path


def test_unauthenticated_posts_get_401_before_the_body_is_read(app: FastAPI) -> None:
    # The attack: large unauthenticated posts to the case API buffered before the 401.
    for path in post_paths(app):
        if path in ("/auth/token", "/ui/login"):
            continue  # where a caller authenticates: the form limit bounds them
        for headers in ({}, {"authorization": "Bearer forged"}):
            a = call(
                app,
                path,
                chunks=endless(16 * 1024 * 1024),
                headers={"content-type": "application/json", **headers},
            )
            assert a.consumed == 0, (path, a.consumed)
            # 303: to the web app's sign-in; 403: sign-out's CSRF check.
            assert a.status in (401, 303, 403), (path, a.status)


def test_a_big_form_at_the_token_endpoint_is_cut_at_the_form_limit(
    app: FastAPI, secured: PriorAuthService
) -> None:
    limit = secured.settings.max_form_bytes
    a = call(
        app,
        "/auth/token",
        chunks=endless(16 * 1024 * 1024),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert a.status == 413
    assert a.consumed <= limit + CHUNK


def _token(app: FastAPI, client: Any) -> dict[str, str]:
    from fastapi.testclient import TestClient

    with TestClient(app, base_url=BASE) as api:
        return {k.lower(): v for k, v in bearer(api, client, " ".join(sc.ALL)).items()}


# --- connections that never finish (priorauth serve) ---------------------------------

SHORT = "1"  # seconds: the test's own timeouts, so a closed connection shows quickly
BOUND = 45.0  # generous: closing takes ~1 s; without the limits the socket waits for ever


# Session scope: one process serves the three tests below. (Under pytest-xdist --dist load a
# worker interleaves modules, and module scope started a server at each return to this file.)
@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, databases: Databases
) -> Iterator[tuple[str, int]]:
    """`priorauth serve` in its own process, with short connection timeouts."""
    url = databases.migrated("sqlite", tmp_path_factory.mktemp("conn"))
    proc, base = serve_process(
        url,
        {
            "PRIORAUTH_TIMEOUT_REQUEST_HEAD": SHORT,
            "PRIORAUTH_TIMEOUT_REQUEST_BODY": SHORT,
            "PRIORAUTH_TIMEOUT_KEEP_ALIVE": SHORT,
        },
    )
    host, port = base.removeprefix("http://").split(":")
    try:
        yield host, int(port)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    sock.settimeout(BOUND)
    start, got = time.monotonic(), b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"the server kept the connection open {BOUND} s; it sent {got[:200]!r}")
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    return got, time.monotonic() - start


@pytest.mark.parametrize(
    "partial",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"POST /fhir/Claim/$submit HTTP/1.1\r\nHost: x\r\n", id="half-a-head"),
        pytest.param(b"GET /fhir/metad", id="half-a-request-line"),
    ],
)
def test_a_connection_that_never_finishes_its_request_head_is_closed(
    server: tuple[str, int], partial: bytes
) -> None:
    with socket.create_connection(server, timeout=BOUND) as sock:
        sock.sendall(partial)
        got, took = _until_closed(sock)
    assert got == b"" or got.startswith(b"HTTP/1.1 4"), got[:200]
    assert took < BOUND


def test_a_body_that_stops_arriving_gets_408_and_the_connection_closes(
    server: tuple[str, int],
) -> None:
    head = (
        b"POST /fhir/Claim/$submit HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n"
    )
    with socket.create_connection(server, timeout=BOUND) as sock:
        sock.sendall(head + b'{"resourceType": "Bun')
        got, _ = _until_closed(sock)
    assert got.startswith(b"HTTP/1.1 408"), got[:300]
    assert b"OperationOutcome" in got


def test_an_idle_keep_alive_connection_is_closed_and_a_second_request_head_is_timed(
    server: tuple[str, int],
) -> None:
    with socket.create_connection(server, timeout=BOUND) as sock:
        sock.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
        # Half of a second request on the same connection: also closed in time.
        sock.sendall(b"GET /fhir/metadata HTTP/1.1\r\n")
        _until_closed(sock)
