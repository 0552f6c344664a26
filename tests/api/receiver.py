"""A subscriber's rest-hook endpoint on loopback that records what it is sent, the
address-policy switch the tests need to reach it, and a PAS Subscription that points at it."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from priorauth.service.app_service import PriorAuthService
from priorauth.service.outbound import OutboundPolicy
from tests.conftest import shared_dir


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
        # A short poll: close() waits for the loop to notice, 0.5 s a receiver by default.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def subscription(endpoint: str, org: str, headers: list[str] | None = None) -> dict[str, Any]:
    """The IG's good Subscription example, sent to `endpoint`, filtered on `org`."""
    path = shared_dir("fixtures", "davinci-pas") / "PAS_Subscription_example_v221_good.json"
    sub: dict[str, Any] = copy.deepcopy(json.loads(path.read_text()))
    sub["channel"]["endpoint"] = endpoint
    sub["channel"]["header"] = headers or ["Authorization: Bearer provider-token"]
    sub["_criteria"]["extension"][0]["valueString"] = f"org-identifier={org}"
    return sub
