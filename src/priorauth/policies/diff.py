"""Compare two policy versions criterion by criterion, lined up by their stable keys."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from priorauth.core.model import Criterion, Policy, walk

ChangeKind = Literal[
    "added", "removed", "moved", "renumbered", "wording", "logic", "thresholds", "terms"
]
# Check parameters that are numbers a reviewer reads as thresholds or windows.
THRESHOLDS = frozenset(
    {"value", "uln_multiple", "window_days", "cutoff", "years", "at_least", "threshold", "op"}
)
_SECTION = {False: "the criteria", True: "Conditions Not Covered"}


@dataclass(frozen=True, slots=True)
class Change:
    change: ChangeKind
    key: str  # the criterion's key (its id when it has none), or a policy term's name
    old_id: str | None = None
    new_id: str | None = None
    field: str | None = None
    old: Any = None
    new: Any = None

    def describe(self) -> str:
        where = self.new_id or self.old_id or ""
        label = f"{where} ({self.key})" if where and where != self.key else self.key
        if self.change == "added":
            return f"{label}: added: {self.new}"
        if self.change == "removed":
            return f"{label}: removed: {self.old}"
        if self.change == "moved":
            return f"{label}: moved from {self.old} ({self.old_id}) to {self.new} ({self.new_id})"
        if self.change == "renumbered":
            return f"{label}: renumbered {self.old_id} -> {self.new_id}"
        return f"{label}: {self.change} changed ({self.field}): {self.old!r} -> {self.new!r}"


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    policy_id: str
    old_version: str
    new_version: str
    changes: tuple[Change, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy_id,
            "from": self.old_version,
            "to": self.new_version,
            "changes": [
                {k: v for k, v in asdict(c).items() if v is not None} for c in self.changes
            ],
        }

    def to_text(self) -> str:
        head = f"{self.policy_id} {self.old_version} -> {self.new_version}"
        if not self.changes:
            return f"{head}: no change"
        return "\n".join([head, *(f"  {c.describe()}" for c in self.changes)])


def _index(p: Policy) -> dict[str, tuple[Criterion, bool]]:
    out = {(c.key or c.id): (c, False) for c in walk(p.criteria)}
    out.update({(c.key or c.id): (c, True) for c in walk(p.exclusions)})
    return out


def _check_changes(key: str, a: Criterion, b: Criterion) -> list[Change]:
    out: list[Change] = []
    if a.combine != b.combine:
        out.append(Change("logic", key, a.id, b.id, "combine", a.combine, b.combine))
    if a.at_least != b.at_least:
        out.append(Change("logic", key, a.id, b.id, "at_least", a.at_least, b.at_least))
    if a.check is None or b.check is None:
        if (a.check is None) != (b.check is None):
            out.append(Change("logic", key, a.id, b.id, "check", _kind(a), _kind(b)))
        return out
    if a.check.kind != b.check.kind:
        return [*out, Change("logic", key, a.id, b.id, "check.kind", a.check.kind, b.check.kind)]
    old, new = a.check.model_dump(), b.check.model_dump()
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            kind: ChangeKind = "thresholds" if name in THRESHOLDS else "logic"
            out.append(Change(kind, key, a.id, b.id, f"check.{name}", old.get(name), new.get(name)))
    return out


def _kind(c: Criterion) -> str:
    return c.check.kind if c.check else f"group ({c.combine})"


def _terms(a: Policy, b: Policy) -> list[Change]:
    out: list[Change] = []
    pairs: list[tuple[str, Any, Any]] = [
        ("approval.days", _days(a), _days(b)),
        ("approval.administrations", a.approval.administrations, b.approval.administrations),
        (
            "approval.renewal",
            a.approval.renewal.model_dump() if a.approval.renewal else None,
            b.approval.renewal.model_dump() if b.approval.renewal else None,
        ),
        ("approval.lifetime_limit", a.approval.lifetime_limit, b.approval.lifetime_limit),
        (
            "approval.medical_director_review",
            a.approval.medical_director_review,
            b.approval.medical_director_review,
        ),
        ("documentation", a.documentation, b.documentation),
        ("service", a.service.model_dump(), b.service.model_dump()),
        ("applies_to", a.applies_to.model_dump(), b.applies_to.model_dump()),
        (
            "dosing",
            a.dosing.model_dump() if a.dosing else None,
            b.dosing.model_dump() if b.dosing else None,
        ),
    ]
    for name, old, new in pairs:
        if old != new:
            out.append(Change("terms", name, field=name, old=old, new=new))
    return out


def _days(p: Policy) -> str:
    if p.approval.days_basis == "payer default" or p.approval.days is None:
        return "not stated"
    return f"{p.approval.days} days"


def diff_policies(a: Policy, b: Policy) -> PolicyDiff:
    """What changed from `a` to `b`: terms first, then each criterion in `b`'s order."""
    old, new = _index(a), _index(b)
    changes = _terms(a, b)
    for key, (c, excl) in new.items():
        if key not in old:
            changes.append(Change("added", key, None, c.id, new=c.text))
            continue
        o, o_excl = old[key]
        if o_excl != excl:
            changes.append(
                Change("moved", key, o.id, c.id, old=_SECTION[o_excl], new=_SECTION[excl])
            )
        elif o.id != c.id:
            changes.append(Change("renumbered", key, o.id, c.id))
        if o.text != c.text:
            changes.append(Change("wording", key, o.id, c.id, "text", o.text, c.text))
        changes.extend(_check_changes(key, o, c))
    for key, (o, _) in old.items():
        if key not in new:
            changes.append(Change("removed", key, o.id, None, old=o.text))
    return PolicyDiff(a.id, a.version, b.version, tuple(changes))
