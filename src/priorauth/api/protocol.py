"""uvicorn's h11 protocol with a deadline for each request's head (half-open connections).

uvicorn times out an idle keep-alive connection, but not one that has sent part of a
request line or headers and then nothing: such a connection is held for ever, and a
few thousand of them exhaust the server (slowloris). Here every connection must send
a complete request head within `timeout_request_head` seconds of opening, and of each
response completing; otherwise it is closed. The body has its own idle timeout (the
BodyLimit middleware), and `limit_concurrency` caps what one worker holds at once.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from priorauth.settings import Settings


@cache
def head_timeout() -> float:
    # Read once per worker process from the environment `priorauth serve` checked
    # (a worker gets uvicorn's Config, not ours).
    return Settings.from_env().timeout_request_head


class TimedH11Protocol(H11Protocol):
    """H11Protocol that closes a connection whose request head does not arrive in time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline = head_timeout()
        self._head_timer: asyncio.TimerHandle | None = None
        self._waiting_after: object = None  # the cycle before the awaited request head

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self.cycle is not self._waiting_after:
            self._disarm()  # a request head arrived: its handling is the app's business

    def on_response_complete(self) -> None:
        before = self.cycle
        super().on_response_complete()
        # A pipelined request already under way has its head; else wait for the next one.
        if self.cycle is before and not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._waiting_after = self.cycle
        self._head_timer = self.loop.call_later(self._head_deadline, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is self._waiting_after and not self.transport.is_closing():
            self.transport.close()
