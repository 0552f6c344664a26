"""Count the Python work of one engine request: bytecodes executed and calls, per function.

Run: uv run python bench/bytecodes.py [evaluate|request] [--top 25]

Deterministic (sys.settrace with opcode events), so two versions of the engine
can be compared on a busy machine where timings are not: `evaluate` is the
evaluation of already-extracted facts, `request` is bundle -> recommendation
(orjson.loads itself is C and counts nothing).
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import orjson

from priorauth.demo.samples import hemgenix_request
from priorauth.intake.pas_bundle import read_bundle
from priorauth.policies import builtin
from priorauth.policies.judging import judge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", default="evaluate", choices=["evaluate", "request"])
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    lib = builtin()
    raw = orjson.dumps(hemgenix_request(name="bench"))
    facts = read_bundle(raw)
    policy = lib.for_request(facts)
    assert policy is not None

    def evaluate() -> object:
        return policy.evaluate(facts)

    def request() -> object:
        # The one pipeline the service, CLI and public API run (policies.judging).
        det = judge(raw, lib).determination
        assert det is not None
        return det.recommendation

    fn: Callable[[], object] = evaluate if args.what == "evaluate" else request
    fn()  # warm: lazy imports and caches are not part of a request
    ops: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        code = frame.f_code
        key = f"{code.co_filename.split('priorauth/')[-1]}:{code.co_firstlineno}({code.co_name})"
        if event == "call":
            calls[key] += 1
        elif event == "opcode":
            ops[key] += 1
        return tracer

    sys.settrace(tracer)
    fn()
    sys.settrace(None)
    print(f"{args.what}: {sum(ops.values()):,} bytecodes, {sum(calls.values())} Python calls")
    print(f"{'bytecodes':>9s} {'calls':>5s}  function")
    for key, n in ops.most_common(args.top):
        print(f"{n:9d} {calls[key]:5d}  {key}")


if __name__ == "__main__":
    main()
