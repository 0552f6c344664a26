"""The CQL conformance harness: the requests, the Python engine's readings, the Node runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from priorauth.core.codes import IcdPatterns, code_key, codes_of, parse_codes
from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import ICD10CM, LOINC, Facts
from priorauth.core.model import Criterion
from priorauth.intake.pas_bundle import read_bundle
from priorauth.policies import PolicyLibrary

JS = Path(__file__).resolve().parent / "js"
CASES = Path(__file__).resolve().parents[3] / "src" / "priorauth" / "policies" / "cases"
Json = dict[str, Any]


def node_missing() -> str | None:
    """Why the reference engine cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (JS / "node_modules" / "cql-execution").is_dir():
        return f"no node_modules in {JS} (run `npm ci` there)"
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Request:
    name: str
    bundle: Json
    as_of: date | None = None


def requests() -> list[Request]:
    """Every shipped policy's test case request and the demo requests."""
    import yaml

    from priorauth.demo.command import demo_requests

    out = []
    for folder in sorted(CASES.glob("*/*")):
        if not (folder / "request.json").is_file():
            continue
        expected = yaml.safe_load((folder / "expected.yaml").read_text()) or {}
        as_of = expected.get("as_of")
        out.append(
            Request(
                f"{folder.parent.name}/{folder.name}",
                json.loads((folder / "request.json").read_text()),
                as_of if isinstance(as_of, date) else None,
            )
        )
    out += [Request(f"demo/{k}", v) for k, v in demo_requests().items()]
    return out


def versions(library: PolicyLibrary) -> list[CompiledPolicy]:
    return [v for vs in library.versions.values() for v in vs]


def run_elm(runs: list[tuple[Json, Json]], repeat: int = 1) -> tuple[list[Json], list[float]]:
    """Each (ELM, bundle) through cql-execution: every define's value, and ms per run."""
    payload = json.dumps({"runs": [{"elm": e, "bundle": b} for e, b in runs], "repeat": repeat})
    done = subprocess.run(
        ["node", str(JS / "run.js")],
        input=payload,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cql-execution failed: {done.stderr[-4000:]}")
    out = json.loads(done.stdout)
    return out["results"], out["ms_per_run"]


def facts_of(r: Request) -> Facts:
    return read_bundle(r.bundle, as_of=r.as_of)


def python_value(c: Criterion, facts: Facts, systems: dict[str, str]) -> Any:
    """What the Python engine reads for the criterion, from the same request's Facts."""
    check = c.check
    assert check is not None
    kind = check.kind
    if kind == "diagnosis":
        pats = IcdPatterns.of(codes_of(check.codes, ICD10CM, systems))
        return any(
            cond.active and any(s == ICD10CM and pats.match(k) for s, k in cond.codes)
            for cond in facts.conditions
        )
    if kind == "sex":
        return facts.patient.birth_sex or facts.patient.gender
    if kind in ("min_age", "age"):
        born = facts.patient.birth_date
        return born.isoformat() if born else None
    if kind == "prescriber_specialty":
        p = facts.prescriber
        return p.taxonomies[0] if p and p.taxonomies else None
    codes = getattr(check, "codes", None) or getattr(check, "measured_codes", [])
    keys = [code_key(s, k) for s, k in parse_codes(codes, LOINC, systems)]
    seen: dict[str, Any] = {}
    for key in keys:
        for o in facts.observations.get(key, ()):
            seen.setdefault(o.ref, o)
    # Each code's results are newest first; across codes, the dates decide (undated last).
    found = sorted(seen.values(), key=lambda o: o.when or date.min, reverse=True)
    values = [o.value for o in found if o.value is not None]
    if not values:
        return None
    if kind == "history_of_positive":
        return max(values)
    pick = getattr(check, "pick", "latest")
    if pick == "lowest":
        return min(values)
    if pick == "highest":
        return max(values)
    return values[0]
