"""CRD conformance tests: the API fixtures (auth off) and the secured ones (auth on)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.api.conftest import clock, db_url, service  # noqa: F401
from tests.crd.conftest import app_client  # noqa: F401
from tests.crd.ehr import search
from tests.security.conftest import api, secured  # noqa: F401


class JsonServer:
    """A loopback HTTP server answering GETs from a path -> JSON table (a JWKS, a FHIR API)."""

    def __init__(self, routes: Callable[[str], Any]) -> None:
        self.seen: list[str] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                body = routes(self.path)
                raw = json.dumps(body).encode() if body is not None else b"{}"
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http() -> Iterator[Callable[[Callable[[str], Any]], JsonServer]]:
    servers: list[JsonServer] = []

    def make(routes: Callable[[str], Any]) -> JsonServer:
        servers.append(JsonServer(routes))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def fhir_api(resources: dict[str, list[dict[str, Any]]]) -> Callable[[str], Any]:
    """Routes of a small EHR FHIR API under /r4: reads by id, searches return everything."""

    def routes(path: str) -> Any:
        kind, _, _query = path.removeprefix("/r4/").partition("?")
        kind, _, rid = kind.partition("/")
        found = resources.get(kind, [])
        if not rid:
            return search(found)
        return next((r for r in found if r.get("id") == rid), None)

    return routes
