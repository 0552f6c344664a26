"""Benchmark priorauth's evaluation against the reference CQL engine on the same request bundle.

Run: uv run python bench/cql.py [--repeat 50] [--rounds 5]
(needs Node 20 and `npm ci` in tests/conformance/cql/js)

Both figures are measured in this one run on this machine, over the same request Bundle
(the demo approval request), already parsed on both sides (JSON parsing is not counted):
- priorauth: Bundle -> Facts -> the full determination of the policy version the request is
  routed to (every criterion, not only the pre-filled ones), milliseconds per request;
- cql-execution 3 + cql-exec-fhir (FHIR 4.0.1), the peer: the generated ELM Library of the
  same policy version, every pre-fill define over the same Bundle, milliseconds per request
  (library built and model info loaded once beforehand; one warm-up run).
Wall time on both sides (perf_counter; process.hrtime); each figure is the median of
`--rounds` rounds of `--repeat` evaluations.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

from priorauth.demo.command import demo_requests
from priorauth.dtr import cql
from priorauth.intake.pas_bundle import read_bundle
from priorauth.policies import load_library

JS = Path(__file__).resolve().parents[1] / "tests" / "conformance" / "cql" / "js"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    library = load_library()
    bundle = demo_requests()["approve"]
    facts = read_bundle(bundle)
    route = library.route(facts)
    assert route is not None, "the demo request is routed to a policy"
    policy = route.policy
    elm = cql.elm(policy)
    defines = len(cql.prefills(policy))

    ours = []
    for _ in range(args.rounds):
        policy.evaluate(read_bundle(bundle))  # warm-up
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            policy.evaluate(read_bundle(bundle))
        ours.append((time.perf_counter() - t0) * 1000 / args.repeat)

    payload = json.dumps(
        {"runs": [{"elm": elm, "bundle": bundle}] * args.rounds, "repeat": args.repeat + 1}
    )
    done = subprocess.run(
        ["node", str(JS / "run.js")], input=payload, capture_output=True, text=True, check=True
    )
    theirs = json.loads(done.stdout)["ms_per_run"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)

    a, b = statistics.median(ours), statistics.median(theirs)
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}, node {node.stdout.strip()}"
    )
    print(
        f"bundle: demo approve ({len(bundle['entry'])} entries); policy "
        f"{policy.policy.id} {policy.policy.version} ({len(policy.criteria)} criteria, "
        f"{defines} pre-fill defines)"
    )
    print(f"priorauth, bundle -> determination (all criteria): {a:8.3f} ms/request")
    print(f"cql-execution, bundle -> pre-fill defines:       {b:8.3f} ms/request")
    print(f"cql-execution / priorauth: {b / a:.1f}x")


if __name__ == "__main__":
    main()
