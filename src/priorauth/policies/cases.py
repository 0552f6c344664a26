"""`priorauth policy test`: run each policy's folder of cases against the library's routing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from priorauth.errors import InvalidClaims, InvalidRequest, PolicyInvalid
from priorauth.policies import PolicyLibrary


@dataclass
class CaseResult:
    policy: str
    name: str
    expected: str
    got: str
    version: str | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def packaged_cases() -> Path:
    return Path(str(resources.files("priorauth.policies") / "cases"))


def case_folders(root: Path) -> list[Path]:
    """Every folder below `root` that holds a request.json and an expected.yaml."""
    return sorted(
        p.parent for p in root.rglob("expected.yaml") if (p.parent / "request.json").is_file()
    )


def run_case(folder: Path, library: PolicyLibrary) -> CaseResult:
    from priorauth.intake.claims import read_claims
    from priorauth.policies.judging import ClaimsLookup, judge

    name = folder.name
    policy_dir = folder.parent.name
    try:
        expected: dict[str, Any] = yaml.safe_load((folder / "expected.yaml").read_text()) or {}
    except (yaml.YAMLError, OSError) as e:
        return CaseResult(policy_dir, name, "?", "?", failures=[f"expected.yaml: {e}"])
    want = str(expected.get("recommendation", "?"))
    result = CaseResult(policy_dir, name, want, "?")
    try:
        as_of = expected.get("as_of")
        claims = folder / "claims.ndjson"
        lookup: ClaimsLookup | None = None
        if claims.is_file():
            history = read_claims(claims.read_bytes().splitlines())
            lookup = lambda facts: history.history_for(facts.patient.member_id)  # noqa: E731
        judged = judge(
            (folder / "request.json").read_bytes(),
            library,
            claims=lookup,
            as_of=as_of if isinstance(as_of, date) else None,
        )
    except (InvalidRequest, InvalidClaims, PolicyInvalid, OSError) as e:
        result.failures.append(f"cannot be judged: {e}")
        return result
    d, policy = judged.determination, judged.policy
    if d is None or policy is None:
        result.got = "no policy"
        result.failures.append("no loaded policy covers the request")
        return result
    result.got, result.version = d.recommendation, policy.policy.version
    if policy.policy.id != policy_dir:
        result.failures.append(f"routed to {policy.policy.id}, not {policy_dir}")
    if d.recommendation != want:
        result.failures.append(f"recommendation {d.recommendation}, expected {want}")
    version = expected.get("version")
    if version is not None and str(version) != result.version:
        result.failures.append(f"version {result.version}, expected {version}")
    statuses: dict[str, str] = {i: f.status for i, f in d.findings.items()}
    statuses.update(
        {
            i: {"met": "applies", "not_met": "does_not_apply"}.get(f.status, f.status)
            for i, f in d.exclusions.items()
        }
    )
    for cid, status in (expected.get("criteria") or {}).items():
        got = statuses.get(str(cid), "absent")
        if got != status:
            result.failures.append(f"{cid} is {got}, expected {status}")
    return result


def run_cases(root: Path, library: PolicyLibrary) -> list[CaseResult]:
    return [run_case(folder, library) for folder in case_folders(root)]
