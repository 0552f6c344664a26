"""Benchmark the decision engine: evaluation, bundle -> recommendation, vs orjson.loads.

Run: uv run python bench/engine.py [--seconds 2]

Figures, all measured in this one run on this machine:
- microseconds per evaluation of already-extracted facts;
- milliseconds per request Bundle -> recommendation, without and with full
  FHIR model validation (fhir.resources R4B);
- the ratio of bundle -> recommendation (no validation) to orjson.loads of the
  same bytes: the floor no engine can beat.
Each figure is the median of several timed batches.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import orjson
from priorauth.samples import hemgenix_request

from priorauth.intake.pas_bundle import read_bundle
from priorauth.policies import builtin


def per_call(fn: Callable[[], object], seconds: float, batches: int = 7) -> float:
    """Median seconds per call over `batches` batches sized to fill `seconds` in total."""
    fn()
    n, t0 = 1, time.perf_counter()
    while time.perf_counter() - t0 < 0.05:
        fn()
        n += 1
    per_batch = max(1, int(n / (time.perf_counter() - t0) * seconds / batches))
    samples = []
    for _ in range(batches):
        t = time.perf_counter()
        for _ in range(per_batch):
            fn()
        samples.append((time.perf_counter() - t) / per_batch)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="time per figure")
    args = ap.parse_args()

    lib = builtin()
    raw = orjson.dumps(hemgenix_request(name="bench"))
    facts = read_bundle(raw)
    policy = lib.for_request(facts)
    assert policy is not None
    assert policy.evaluate(facts).recommendation == "approve"

    def end_to_end(validate: bool) -> Callable[[], object]:
        def run() -> object:
            f = read_bundle(raw, validate=validate)
            p = lib.for_request(f)
            assert p is not None
            return p.evaluate(f).recommendation

        return run

    loads = per_call(lambda: orjson.loads(raw), args.seconds)
    evaluate = per_call(lambda: policy.evaluate(facts), args.seconds)
    fast = per_call(end_to_end(False), args.seconds)
    full = per_call(end_to_end(True), args.seconds)

    print(f"priorauth engine benchmark  (Python {platform.python_version()}, {platform.machine()})")
    print(f"request bundle: {len(raw):,} bytes, {len(orjson.loads(raw)['entry'])} entries")
    print(f"{'figure':52s} {'value':>12s}")
    print(f"{'orjson.loads of the bundle (baseline)':52s} {loads * 1e6:9.1f} µs")
    print(f"{'evaluate already-extracted facts':52s} {evaluate * 1e6:9.1f} µs")
    print(f"{'bundle -> recommendation, no model validation':52s} {fast * 1e3:9.3f} ms")
    print(f"{'bundle -> recommendation, fhir.resources validation':52s} {full * 1e3:9.3f} ms")
    print(f"{'ratio: no-validation path / orjson.loads':52s} {fast / loads:9.2f} ×")


if __name__ == "__main__":
    main()
