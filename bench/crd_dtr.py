"""Latency of CRD order-sign and DTR $next-question over loopback (wrk), beside /fhir/metadata.

Run: uv run python bench/crd_dtr.py [--seconds 10] [--workers 2]

Starts the server in its own process on a fresh SQLite database (the app that
`priorauth serve` builds, with the CDS Hooks and DTR routes installed), then
drives it with wrk (Debian package `wrk`) at 1 and 10 connections. order-sign
carries a full prefetch, is judged by the engine and stores a coverage
assertion; $next-question starts an empty adaptive form, the costliest step
(every open question is tried against the engine). CRD asks 5 s at the 90th
percentile and SDC's $next-question 1 s; the target here is p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the request builders live with the tests

from bench.load import fresh_postgres, start_server, wrk  # noqa: E402
from tests.crd.ehr import order_sign  # noqa: E402

CONCURRENCY = (1, 10)
# wrk needs a script to POST a body; the same one serves both endpoints.
POST_LUA = """
function init(args)
  local f = assert(io.open(os.getenv("PRIORAUTH_BENCH_BODY"), "rb"))
  body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
function response(status, headers, b)
  if status ~= 200 then bad = (bad or 0) + 1 end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + (t:get("bad") or 0) end
  io.write(string.format("NON201 %d\\n", n))
  for _, p in ipairs({50, 99}) do
    io.write(string.format("P%d %.3f\\n", p, latency:percentile(p) / 1000.0))
  end
  io.write(string.format("REQS %d\\nSECS %.3f\\nERRS %d\\n", summary.requests,
    summary.duration / 1e6, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.status + summary.errors.timeout))
end
"""


def next_question_body(base: str, hook: dict) -> dict:
    """Sign once, fetch the package, and start the adaptive form from it."""
    signed = httpx.post(f"{base}/cds-services/priorauth-order-sign", json=hook, timeout=30)
    signed.raise_for_status()
    ext = signed.json()["systemActions"][0]["resource"]["extension"][-1]
    assertion = next(
        p["valueString"] for p in ext["extension"] if p["url"] == "coverage-assertion-id"
    )
    params = {
        "resourceType": "Parameters",
        "parameter": [{"name": "context", "valueString": assertion}],
    }
    r = httpx.post(f"{base}/fhir/Questionnaire/$questionnaire-package", json=params, timeout=30)
    r.raise_for_status()
    # The second package Bundle is the adaptive form's; its draft response contains the form.
    qr = r.json()["parameter"][1]["resource"]["entry"][-1]["resource"]
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "questionnaire-response", "resource": qr}],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2, help="server worker processes")
    ap.add_argument(
        "--postgres",
        default=None,
        help="run on PostgreSQL (a database priorauth_bench is created beside this URL), "
        "not on a fresh SQLite file",
    )
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    hook, _ = order_sign("bench", drop_labs=("777-3",))
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(POST_LUA)
        db = fresh_postgres(args.postgres) if args.postgres else f"sqlite:///{tmp}/bench.db"
        proc, base = start_server(db, args.workers)
        try:
            bodies = {
                "order-sign": Path(tmp) / "sign.json",
                "$next-question": Path(tmp) / "next.json",
            }
            bodies["order-sign"].write_bytes(orjson.dumps(hook))
            bodies["$next-question"].write_bytes(orjson.dumps(next_question_body(base, hook)))
            paths = {
                "order-sign": "/cds-services/priorauth-order-sign",
                "$next-question": "/fhir/Questionnaire/$next-question",
            }
            database = "PostgreSQL" if args.postgres else "SQLite"
            print(f"server: uvicorn --workers {args.workers}, {database}; {args.seconds} s per row")
            print(
                "| endpoint | clients | req/s | p50 ms | p99 ms | non-200 "
                "| metadata p50 ms | metadata p99 ms |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for name, path in paths.items():
                for conns in CONCURRENCY:
                    env = {"PRIORAUTH_BENCH_BODY": str(bodies[name])}
                    s = wrk(base, str(script), path, conns, args.seconds, env)
                    b = wrk(
                        base, "metadata.lua", "/fhir/metadata", conns, max(2, args.seconds // 3), {}
                    )
                    print(
                        f"| {name} | {conns} | {s['RPS']:.0f} | {s['P50']:.1f} | {s['P99']:.1f} | "
                        f"{int(s['NON201'] + s['ERRS'])} | {b['P50']:.1f} | {b['P99']:.1f} |",
                        flush=True,
                    )
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
