"""Benchmark the open-case list (the queue's data): N stored cases listed with who and what.

Run: uv run python bench/case_list.py [--cases 500] [--rounds 5]

Submits `--cases` demo requests through the service into a fresh SQLite database, then
times `service.open_cases()` plus the reviewer app's `member_of` for every case (what the
queue page shows), and counts the `orjson.loads` calls one listing makes. The figure is the
median of `--rounds` listings, in wall time (the database is part of the cost). Compare
two checkouts by running this file of one with PYTHONPATH pointing at the other's src/.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from priorauth.demo.samples import hemgenix_request
from priorauth.policies import builtin
from priorauth.service.app_service import PriorAuthService
from priorauth.settings import Settings
from priorauth.store.db import make_engine, upgrade
from priorauth.ui.views import member_of


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        settings = Settings(database_url=url, auth_enabled=False, rate_burst=1_000_000)
        now = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
        svc = PriorAuthService(settings, engine, builtin(), clock=lambda: now)
        try:
            for n in range(args.cases):
                svc.submit(orjson.dumps(hemgenix_request(name=f"bench-{n}")))
            calls = [0]
            loads = orjson.loads

            def counting(data: Any) -> Any:
                calls[0] += 1
                return loads(data)

            times = []
            for _ in range(args.rounds):
                calls[0] = 0
                orjson.loads = counting  # type: ignore[assignment]
                start = time.perf_counter()
                names = [member_of(r).name for r in svc.open_cases()]
                times.append(time.perf_counter() - start)
                orjson.loads = loads  # type: ignore[assignment]
            assert len(names) == min(args.cases, 500)
            print(
                f"open-case list of {len(names)} cases with who and what: "
                f"{statistics.median(times) * 1000:.1f} ms (median of {args.rounds}); "
                f"orjson.loads calls per listing: {calls[0]}"
            )
        finally:
            svc.notifier.close()
            engine.dispose()


if __name__ == "__main__":
    main()
