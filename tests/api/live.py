"""A real server on loopback: uvicorn in a thread, or `priorauth serve` in its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from priorauth.api.app import create_app
from priorauth.service.app_service import PriorAuthService


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(service: PriorAuthService) -> Iterator[str]:
    """The service's whole application on loopback; yields its base URL."""
    with serve(create_app(service)) as base:
        yield base


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 from a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # generous: a busy machine starts slowly
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


# Generous: on a busy 2-core machine a new interpreter's imports alone can take half a minute.
START_SECONDS = 180


def serve_process(
    db_url: str, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`priorauth serve` (one worker, auth off) in its own process on a migrated database.

    Returns the process and its base URL once /fhir/metadata answers. When it does not
    start, the error carries the server's own log.
    """
    env = {
        **os.environ,
        "PRIORAUTH_DATABASE_URL": db_url,
        "PRIORAUTH_AUTH": "off",
        "PRIORAUTH_RATE_PER_MINUTE": str(10**9),
        "PRIORAUTH_RATE_BURST": str(10**9),
        **(extra_env or {}),
    }
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - read back only when start-up fails
    command = [sys.executable, "-m", "priorauth", "serve", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/fhir/metadata", timeout=2).status_code == 200:
                log.close()
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    proc.wait()
    log.seek(0)
    tail = log.read().decode(errors="replace")[-4000:]
    log.close()
    raise RuntimeError(
        f"`priorauth serve` did not answer within {START_SECONDS} s; its log:\n{tail}"
    )
