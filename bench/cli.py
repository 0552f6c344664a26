"""Cold start of the `priorauth` command, against `python -c pass` measured in the same run.

    uv run python bench/cli.py [--runs 30]

Every row is a new process. Bytecode is compiled first (`compileall` over the venv and
src/, as an installed wheel would have it), so the figures are imports and work, not
compilation. hyperfine runs the commands when it is installed (`apt-get install hyperfine`);
otherwise a plain loop does. CPU time (user + system) is printed beside wall time: on a
busy machine the wall time grows, the CPU time much less.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from priorauth.demo.samples import hemgenix_request

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    label: str
    argv: list[str]
    target_ms: float | None
    wall: list[float]  # seconds, one per run
    cpu: list[float]


def _compile() -> None:
    quiet = open(os.devnull, "w")  # noqa: SIM115 - compileall prints to stdout
    old, sys.stdout = sys.stdout, quiet
    try:
        for folder in (sysconfig.get_paths()["purelib"], str(ROOT / "src")):
            compileall.compile_dir(folder, quiet=2, workers=0)
    finally:
        sys.stdout = old
        quiet.close()


def _hyperfine(rows: list[Row], runs: int, warmup: int, hf: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "hf.json"
        cmds = [shlex.join(r.argv) for r in rows]
        options = ["-N", "--style", "none", "--warmup", str(warmup), "--runs", str(runs)]
        subprocess.run(
            [hf, *options, "--export-json", str(out), *cmds],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        results = json.loads(out.read_text())["results"]
    for row, res in zip(rows, results, strict=True):
        row.wall = list(res["times"])
        # hyperfine reports mean CPU only; repeat it per run for the same summary below
        row.cpu = [res["user"] + res["system"]] * len(row.wall)


def _loop(rows: list[Row], runs: int, warmup: int) -> None:
    for _ in range(warmup):
        for r in rows:
            subprocess.run(r.argv, check=True, stdout=subprocess.DEVNULL)
    # Interleave the commands so a change of load touches each alike.
    for _ in range(runs):
        for r in rows:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(r.argv, check=True, stdout=subprocess.DEVNULL)
            r.wall.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            r.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-hyperfine", action="store_true", help="time with a plain loop")
    args = ap.parse_args()

    exe = Path(sys.executable)
    cli = shutil.which("priorauth", path=str(exe.parent)) or shutil.which("priorauth")
    if cli is None:
        sys.exit("bench/cli.py: the `priorauth` command is not installed (run `uv sync`)")
    _compile()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "request.json"
        bundle.write_bytes(orjson.dumps(hemgenix_request(name="bench-cli")))
        rows = [
            Row("python -c pass (baseline)", [str(exe), "-c", "pass"], None, [], []),
            Row("priorauth --help", [cli, "--help"], 200, [], []),
            Row(
                "priorauth evaluate FILE --format json",
                [cli, "evaluate", str(bundle), "--format", "json"],
                300,
                [],
                [],
            ),
            Row("priorauth evaluate FILE (text)", [cli, "evaluate", str(bundle)], None, [], []),
            Row(
                "priorauth evaluate FILE --validate",
                [cli, "evaluate", str(bundle), "--format", "json", "--validate"],
                None,
                [],
                [],
            ),
        ]
        hf = None if args.no_hyperfine else shutil.which("hyperfine")
        if hf:
            _hyperfine(rows, args.runs, args.warmup, hf)
        else:
            _loop(rows, args.runs, args.warmup)

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print("priorauth CLI cold start")
    print(
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {load}; {args.runs} runs each, {'hyperfine' if hf else 'loop'}; "
        "bytecode compiled"
    )
    base = statistics.median(rows[0].wall)
    print(
        f"{'command':<40} {'median ms':>9} {'min ms':>7} {'CPU ms':>7} {'÷ baseline':>10}"
        f" {'target':>8}"
    )
    for r in rows:
        med = statistics.median(r.wall)
        target = f"≤ {r.target_ms:.0f}" if r.target_ms else ""
        verdict = ""
        if r.target_ms:
            verdict = " met" if med * 1000 <= r.target_ms else " MISSED"
        print(
            f"{r.label:<40} {med * 1000:>9.1f} {min(r.wall) * 1000:>7.1f}"
            f" {statistics.mean(r.cpu) * 1000:>7.1f} {med / base:>9.1f}×"
            f" {target:>8}{verdict}"
        )


if __name__ == "__main__":
    main()
