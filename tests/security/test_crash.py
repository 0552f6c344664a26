"""Crash safety: SIGKILL the server mid-load of $submit; nothing acknowledged is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, select, text

from priorauth.demo.samples import hemgenix_request
from priorauth.store.models import CaseRow
from tests.api.live import serve_process

pytestmark = pytest.mark.slow


def _start(db_url: str) -> tuple[subprocess.Popen[bytes], str]:
    # `priorauth serve` in its own process, auth off, on the migrated test database.
    return serve_process(db_url, {"PRIORAUTH_FHIR_VALIDATION": "false"})


def test_sigkill_mid_load_loses_no_acknowledged_submission(db_url: str, tmp_path: Path) -> None:
    proc, base = _start(db_url)
    template = hemgenix_request(name="crash")
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as c:
            i = 0
            while not stop.is_set():
                i += 1
                trace = f"crash-{n}-{i}"
                template_copy = orjson.loads(orjson.dumps(template))
                template_copy["entry"][0]["resource"]["identifier"][0]["value"] = trace
                try:
                    r = c.post("/fhir/Claim/$submit", content=orjson.dumps(template_copy))
                except httpx.HTTPError:
                    continue  # the server is gone: this one was never acknowledged
                if 200 <= r.status_code < 300:
                    with lock:
                        acked.append(trace)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    # Generous: the count matters, not the speed; a busy machine may take minutes.
    deadline = time.monotonic() + 300
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of the load, requests in flight
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 40

    engine = create_engine(db_url)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        stored = {
            key.split("|", 1)[1] for key in conn.execute(select(CaseRow.claim_identifier)).scalars()
        }
    engine.dispose()
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged submissions were lost"

    # and the service comes back
    proc, base = _start(db_url)
    try:
        again = httpx.post(
            f"{base}/fhir/Claim/$submit",
            content=orjson.dumps(hemgenix_request(name="after-crash")),
            timeout=10,
        )
        assert again.status_code == 201
    finally:
        proc.terminate()
        proc.wait(timeout=30)
