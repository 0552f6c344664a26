"""Load benchmark of PAS $submit over loopback with wrk, on SQLite and PostgreSQL.

Run: uv run python bench/load.py [--seconds 10] [--postgres URL]

For each database it starts `priorauth serve` in its own process on a fresh
database, then drives it with wrk (Debian package `wrk`) at 1, 10 and 50
concurrent connections. Every request is a new submission (a unique
Claim.identifier), judged by the engine and committed before the answer. The
baseline, measured in the same run against the same server, is GET
/fhir/metadata: what the HTTP stack alone costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, text

from priorauth.demo.samples import hemgenix_request

HERE = Path(__file__).resolve().parent
CONCURRENCY = (1, 10, 50)

START_SECONDS = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_postgres(url: str) -> str:
    """A clean database `priorauth_bench` next to the one named by url."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text("DROP DATABASE IF EXISTS priorauth_bench"))
        c.execute(text("CREATE DATABASE priorauth_bench"))
    admin.dispose()
    return url.rsplit("/", 1)[0] + "/priorauth_bench"


def start_server(
    db_url: str, workers: int, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`priorauth serve` in its own process on a freshly upgraded database."""
    env = {
        **os.environ,
        "PRIORAUTH_DATABASE_URL": db_url,
        # What is measured is the request path, not token checks or per-client budgets.
        "PRIORAUTH_AUTH": "off",
        "PRIORAUTH_RATE_PER_MINUTE": str(10**9),
        "PRIORAUTH_RATE_BURST": str(10**9),
        **(extra_env or {}),
    }
    subprocess.run(
        [sys.executable, "-m", "priorauth", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - read back only when start-up fails
    proc = subprocess.Popen(
        [
            *PIN["server"],
            sys.executable,
            "-m",
            "priorauth",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    # Generous: on a busy 2-core machine the workers' imports alone can take half a minute.
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        log.seek(0)
        # Every worker, not just the first: connections opened while one worker is still
        # importing all land on the other and stay there (keep-alive) for the whole run.
        ready = workers == 1 or log.read().count(b"Application startup complete") >= workers
        try:
            if ready and httpx.get(f"{base}/fhir/metadata", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    log.seek(0)
    tail = log.read().decode(errors="replace")[-4000:]
    raise SystemExit(f"the server did not start within {START_SECONDS} s; its log:\n{tail}")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    kids = [int(p) for p in text.split()]
    return kids + [g for k in kids for g in _children(k)]


def worker_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each process under `pid` (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for child in _children(pid):
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        out[child] = (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_used(before: dict[int, float], after: dict[int, float]) -> tuple[float, float]:
    """(CPU seconds all workers used between the two readings, the busiest one's share)."""
    used = [after[p] - before.get(p, 0.0) for p in after]
    total = sum(used)
    return total, (max(used) / total if total else 0.0)


# `--pin`: wrk on the last core, the server on the others (taskset), so that the load
# generator does not take the server's CPU.
PIN: dict[str, list[str]] = {"wrk": [], "server": []}


def pin_cores() -> None:
    last = (os.cpu_count() or 2) - 1
    PIN["wrk"] = ["taskset", "-c", str(last)]
    PIN["server"] = ["taskset", "-c", ",".join(str(c) for c in range(last)) or "0"]


def wrk(
    base: str, script: str, path: str, conns: int, seconds: int, env: dict[str, str]
) -> dict[str, float]:
    threads = min(conns, 2)
    out = subprocess.run(
        [
            *PIN["wrk"],
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(conns),
            "-d",
            f"{seconds}s",
            "--timeout",
            "30s",
            "-s",
            str(HERE / script),
            f"{base}{path}",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    vals = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in {"P50", "P99", "REQS", "SECS", "ERRS", "NON201"}:
            vals[parts[0]] = float(parts[1])
    vals["RPS"] = vals["REQS"] / vals["SECS"]
    return vals


def run_backend(
    name: str,
    db_url: str,
    seconds: int,
    body_file: str,
    workers: int,
    validation: bool,
    clients: tuple[int, ...] = CONCURRENCY,
) -> list[str]:
    flag = "true" if validation else "false"
    proc, base = start_server(db_url, workers, {"PRIORAUTH_FHIR_VALIDATION": flag})
    label = f"{name} | {'on' if validation else 'off'}"
    rows = []
    try:
        for conns in clients:
            env = {
                "PRIORAUTH_BENCH_BODY": body_file,
                "PRIORAUTH_BENCH_RUN": f"{name}-{conns}-{time.time_ns()}",
            }
            before = worker_cpu(proc.pid)
            s = wrk(base, "submit.lua", "/fhir/Claim/$submit", conns, seconds, env)
            cpu, busiest = cpu_used(before, worker_cpu(proc.pid))
            b = wrk(base, "metadata.lua", "/fhir/metadata", conns, max(2, seconds // 3), {})
            rows.append(
                f"| {label} | {conns} | {s['RPS']:.0f} | {s['P50']:.1f} | {s['P99']:.1f} | "
                f"{int(s['NON201'] + s['ERRS'])} | {1000 * cpu / max(s['REQS'], 1):.1f} | "
                f"{100 * busiest:.0f}% | {b['RPS']:.0f} | {b['P99']:.1f} |"
            )
            print(rows[-1], flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2, help="server worker processes")
    ap.add_argument(
        "--postgres",
        default=os.environ.get("PRIORAUTH_TEST_DATABASE_URL"),
        help="a PostgreSQL URL (a database priorauth_bench is created beside it)",
    )
    ap.add_argument(
        "--clients",
        default=",".join(map(str, CONCURRENCY)),
        help="comma-separated connection counts (default 1,10,50)",
    )
    ap.add_argument(
        "--databases", default="sqlite,postgresql", help="which of sqlite,postgresql to run"
    )
    ap.add_argument("--validation", default="on,off", help="which of on,off to run")
    ap.add_argument(
        "--pin", action="store_true", help="wrk on the last core, the server on the others"
    )
    args = ap.parse_args()
    if args.pin:
        pin_cores()
    clients = tuple(int(c) for c in args.clients.split(","))
    databases = set(args.databases.lower().split(","))
    validations = [v == "on" for v in args.validation.split(",")]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    bundle = hemgenix_request(name="load")
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = "__TRACE__"
    with tempfile.TemporaryDirectory() as tmp:
        body_file = str(Path(tmp) / "body.json")
        Path(body_file).write_bytes(orjson.dumps(bundle))
        print(f"$submit load, {args.seconds} s per row, body {len(orjson.dumps(bundle)):,} bytes")
        print(f"server: priorauth serve --workers {args.workers}; FHIR model validation on and off")
        print(
            "| database | validation | clients | $submit req/s | p50 ms | p99 ms | non-201 "
            "| server CPU ms/req | busiest worker | metadata req/s | metadata p99 ms |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for validation in validations:
            if "sqlite" in databases:
                run_backend(
                    "SQLite",
                    f"sqlite:///{tmp}/bench-{validation}.db",
                    args.seconds,
                    body_file,
                    args.workers,
                    validation,
                    clients,
                )
            if args.postgres and "postgresql" in databases:
                run_backend(
                    "PostgreSQL",
                    fresh_postgres(args.postgres),
                    args.seconds,
                    body_file,
                    args.workers,
                    validation,
                    clients,
                )
        if not args.postgres:
            print("(PostgreSQL skipped: pass --postgres URL or set PRIORAUTH_TEST_DATABASE_URL)")


if __name__ == "__main__":
    main()
