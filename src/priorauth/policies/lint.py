"""`priorauth policy check`: every problem of a policy file at once, each with its line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from priorauth.core.codes import code_lists, is_bare, parse_code, system_name
from priorauth.core.facts import ICD10CM, LOINC, NDC
from priorauth.core.model import (
    AttestationCheck,
    CreatinineClearanceCheck,
    Criterion,
    DoseByWeightCheck,
    ExclusionByCriterionCheck,
    FhirPathCheck,
    LabPresentCheck,
    Policy,
    SexCheck,
)
from priorauth.errors import PolicyInvalid
from priorauth.policies import SharedCodesets, load_codesets, resolve_codesets

Path_ = tuple[str | int, ...]
_ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9AB](\.[0-9A-Z]{1,4})?(\*)?$|^[A-TV-Z][0-9][0-9AB]\.?\*$")
_NDC = re.compile(r"^(\d{4}-\d{4}-\d{2}|\d{5}-\d{3}-\d{2}|\d{5}-\d{4}-\d{1}|\d{11})$")
_LOINC = re.compile(r"^(\d{1,7})-(\d)$")
_WEIGHT_UNITS = {"kg", "[lb_av]", "g"}


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    criterion: str | None
    message: str
    warning: bool = False  # a warning does not fail `policy check`

    def __str__(self) -> str:
        head = "warning: " if self.warning else ""
        return f"{self.file}:{self.line}: {self.criterion or '-'}: {head}{self.message}"


def loinc_ok(code: str) -> bool:
    """LOINC's mod-10 check digit (the Luhn variant LOINC publishes)."""
    m = _LOINC.match(code)
    if not m:
        return False
    digits = m.group(1)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d // 10 + d % 10
        total += d
    return (10 - total % 10) % 10 == int(m.group(2))


class _Lines:
    """Line numbers of every node of a YAML document, by path."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Path_, int] = {}
        root = yaml.compose(text)
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: Path_) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                self._walk(v, (*path, str(k.value)))
                self.lines[(*path, str(k.value))] = k.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                self._walk(v, (*path, i))

    def of(self, path: Path_) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


def _criterion_paths(raw: Any) -> dict[str, Path_]:
    out: dict[str, Path_] = {}

    def walk(items: Any, path: Path_) -> None:
        if not isinstance(items, list):
            return
        for i, c in enumerate(items):
            if isinstance(c, dict):
                if isinstance(c.get("id"), str):
                    out.setdefault(c["id"], (*path, i))
                walk(c.get("children"), (*path, i, "children"))

    if isinstance(raw, dict):
        walk(raw.get("criteria"), ("criteria",))
        walk(raw.get("exclusions"), ("exclusions",))
    return out


def _id_at(raw: Any, loc: tuple[Any, ...]) -> str | None:
    found, node = None, raw
    for part in loc:
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            found = node["id"]
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        else:
            break
    if isinstance(node, dict) and isinstance(node.get("id"), str):
        found = node["id"]
    return found


def check_text(
    text: str, name: str, shared: SharedCodesets | None = None
) -> tuple[Policy | None, list[Problem]]:
    """Every problem of one policy file: schema errors, then the meaning of what it says."""
    try:
        raw = yaml.safe_load(text)
        lines = _Lines(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        return None, [Problem(name, mark.line + 1 if mark else 1, None, f"not YAML: {e}")]
    try:
        raw = resolve_codesets(raw, name, shared)
    except PolicyInvalid as e:
        return None, [Problem(name, lines.of(("codesets_from",)), None, str(e))]
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc)
            problems.append(
                Problem(name, lines.of(loc), _id_at(raw, loc), f"{where}: {err['msg']}")
            )
        return None, problems
    paths = _criterion_paths(raw)
    problems = [
        Problem(
            name,
            lines.of((*paths.get(cid or "", ()), *field)),
            cid,
            message,
            message.startswith(BARE_CODES),
        )
        for cid, field, message in lint(policy)
    ] + [
        Problem(name, lines.of((*paths.get(cid or "", ()), *field)), cid, message, warning=True)
        for cid, field, message in warnings(policy)
    ]
    return policy, problems


BARE_CODES = "code list does not name its system"


def warnings(policy: Policy) -> Iterator[tuple[str | None, tuple[str, ...], str]]:
    """What a policy may say but should rarely: the escape hatch."""
    for c in _walk(policy.criteria + policy.exclusions):
        if isinstance(c.check, FhirPathCheck):
            yield (
                c.id,
                ("check", "expression"),
                "the fhirpath kind is an escape hatch: its sentences cannot say what was "
                "read, DTR cannot ask for it, and policy diff sees only the text; prefer a "
                "predicate kind",
            )


def lint(policy: Policy) -> Iterator[tuple[str | None, Path_, str]]:
    """What the schema cannot see: references, answer types, code shapes, units, windows."""
    by_id: dict[str, Criterion] = {}
    for c in _walk(policy.criteria + policy.exclusions):
        by_id[c.id] = c
    answers: dict[str, tuple[str, str]] = {}  # linkId -> (answer type, first criterion)
    for c in by_id.values():
        check = c.check
        if check is None:
            continue
        yield from _references(c, by_id)
        for link_id, kind in _answer_types(check):
            seen = answers.setdefault(link_id, (kind, c.id))
            if seen[0] != kind:
                yield (
                    c.id,
                    ("check",),
                    f"linkId {link_id} is asked as {kind} here but as {seen[0]} in {seen[1]}",
                )
        data = check.model_dump()
        yield from _codes(c.id, data, policy.systems)
        if data.get("value") is not None and data.get("units") is None:
            yield c.id, ("check", "value"), "a threshold value needs its units"
        if data.get("window_days") == 0:
            yield c.id, ("check", "window_days"), "a window must be at least one day"
    for code in policy.service.ndc:
        if not _NDC.match(code):
            yield None, ("service",), f"service NDC {code} is not an NDC"
    for code in policy.service.hcpcs:
        if not re.match(r"^[A-V][0-9]{4}$", code):
            yield None, ("service",), f"service HCPCS {code} is not a HCPCS Level II code"
    for code in policy.service.cpt:
        if not re.match(r"^[0-9]{4}[0-9FTU]$", code):
            yield None, ("service",), f"service CPT {code} is not a CPT code"


def _codes(
    cid: str, data: dict[str, Any], systems: dict[str, str]
) -> Iterator[tuple[str | None, Path_, str]]:
    """Each code list: named system (a warning when bare), and each code's shape in its system."""
    for path, tokens, default in code_lists(data):
        where = ("check", *path)
        bare = [t for t in tokens if is_bare(t)]
        if bare:
            example = f"{system_name(default)}|{bare[0]}"
            yield cid, where, f"{BARE_CODES}: write {example!r} (a bare code means {default})"
        for token in tokens:
            system, code = parse_code(token, default, systems)  # the model checked the aliases
            if system == LOINC and not loinc_ok(code):
                yield cid, where, f"{code} is not a valid LOINC code"
            elif system == ICD10CM and not _ICD10.match(code.upper()):
                yield cid, where, f"{code} is not an ICD-10-CM code or prefix"
            elif system == NDC and not _NDC.match(code):
                yield cid, where, f"{code} is not an NDC (4-4-2, 5-3-2, 5-4-1 or 11)"


def _references(
    c: Criterion, by_id: dict[str, Criterion]
) -> Iterator[tuple[str | None, Path_, str]]:
    check = c.check
    refs: list[tuple[str, str, str]] = []  # (field, target, what it must be)
    if isinstance(check, CreatinineClearanceCheck) or (
        isinstance(check, DoseByWeightCheck) and check.weight_from is not None
    ):
        assert check.weight_from is not None
        refs.append(("weight_from", check.weight_from, "weight"))
    if isinstance(check, DoseByWeightCheck) and check.height_from is not None:
        refs.append(("height_from", check.height_from, "height"))
    if isinstance(check, CreatinineClearanceCheck):
        refs.append(("sex_from", check.sex_from, "sex"))
    if isinstance(check, ExclusionByCriterionCheck):
        refs.append(("criterion", check.criterion, "any"))
    for field, target, must in refs:
        t = by_id.get(target)
        if t is None:
            yield c.id, ("check", field), f"{field} names {target}, which does not exist"
        elif t.check is None:
            yield c.id, ("check", field), f"{field} names {target}, a group, not a check"
        elif must == "weight" and not (
            isinstance(t.check, LabPresentCheck)
            and t.check.units is not None
            and t.check.units.canonical in _WEIGHT_UNITS
        ):
            yield (
                c.id,
                ("check", field),
                f"{field} names {target}, which does not measure a body weight in kg",
            )
        elif must == "height" and not (
            isinstance(t.check, LabPresentCheck)
            and t.check.units is not None
            and t.check.units.canonical == "cm"
        ):
            yield (
                c.id,
                ("check", field),
                f"{field} names {target}, which does not measure a height in cm",
            )
        elif must == "sex" and not isinstance(t.check, SexCheck):
            yield c.id, ("check", field), f"{field} names {target}, which is not a sex check"


def _answer_types(check: Any) -> Iterator[tuple[str, str]]:
    if isinstance(check, AttestationCheck):
        yield check.link_id, "number" if check.at_least is not None else "boolean"
        return
    link_id = getattr(check, "attestation", None)
    if isinstance(link_id, str):
        yield link_id, "boolean"


def _walk(cs: list[Criterion]) -> list[Criterion]:
    out: list[Criterion] = []
    for c in cs:
        out.append(c)
        out.extend(_walk(c.children))
    return out


def check_files(paths: list[Path]) -> list[Problem]:
    """Lint each file, then load them together with the configured library for overlaps."""
    from priorauth.policies import configured, parse_plan

    problems: list[Problem] = []
    good: list[tuple[Path, Policy]] = []
    try:
        lib = configured()
    except PolicyInvalid as e:
        return [Problem("-", 1, None, f"the configured library cannot be loaded: {e}")]
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            problems.append(Problem(str(path), 1, None, f"cannot read: {e.strerror or e}"))
            continue
        if path.parent.name == "plans":
            try:
                parse_plan(text, str(path))
            except PolicyInvalid as e:
                problems.append(Problem(str(path), 1, None, str(e)))
            continue
        shared = dict(lib.codesets)
        load_codesets(path.parent, shared)
        policy, found = check_text(text, str(path), shared)
        problems.extend(found)
        if policy is not None and all(p.warning for p in found):
            good.append((path, policy))
    try:
        for path, policy in good:
            if lib.version(policy.id, policy.version) is None:
                lib.add(policy, str(path))
        lib.check_overlaps()
    except PolicyInvalid as e:
        problems.append(Problem(str(good[-1][0]) if good else "-", 1, None, str(e)))
    return problems
