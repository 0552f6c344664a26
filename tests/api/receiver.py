"""A subscriber's rest-hook endpoint on loopback that records what it is sent, and the
address-policy switch the tests need to reach it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from priorauth.service.app_service import PriorAuthService
from priorauth.service.outbound import OutboundPolicy


class Receiver:
    """A real HTTP endpoint on 127.0.0.1; answers `status` (200 unless a test sets it)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                owner.received.append((dict(self.headers), body))
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kinds(self) -> list[str]:
        """The notification type of everything received, in order."""
        out = []
        for _, note in self.received:
            params = note["entry"][0]["resource"]["parameter"]
            out.append(next(p["valueCode"] for p in params if p["name"] == "type"))
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiving() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def allow_loopback(service: PriorAuthService) -> None:
    """What PRIORAUTH_OUTBOUND_ALLOW=127.0.0.1 and http allowed give: the test receivers."""
    service.outbound = OutboundPolicy(["127.0.0.1"], allow_http=True)
