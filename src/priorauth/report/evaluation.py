"""The stored determination (`priorauth.determination/1`), typed: parsed once when read.

The store keeps the JSON object `determination_to_dict` makes; every layer above it (the
service, the PAS response, the case API, the reviewer app, CRD and DTR) reads this model
instead of walking the dict. Parsing is lenient (a row written by an older version, or
edited by hand, reads with the parts it has) and never raises.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

__all__ = [
    "Dose",
    "Evaluation",
    "NamedPolicy",
    "Requested",
    "Selection",
    "StoredFinding",
    "UnmetReason",
]


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Dose:
    """The right product and quantity the engine worked out, in the billing unit."""

    quantity: float
    unit: str
    ndc: str | None = None
    vials: int | None = None
    label: str | None = None
    text: str | None = None  # "264 mL (33 vials)" as the engine worded it
    code: str | None = None  # the billing code, SYSTEM|CODE, where the policy names one
    differs: bool | None = None  # the engine found the request asks otherwise; None: not said

    @classmethod
    def of(cls, dose: object, kit: object) -> Dose | None:
        d, k = _obj(dose), _obj(kit)
        vials = d.get("vials", k.get("vials"))
        count = vials if isinstance(vials, int) and not isinstance(vials, bool) else None
        quantity = _num(d.get("quantity"))
        if quantity is not None and isinstance(d.get("unit"), str):
            return cls(
                quantity,
                d["unit"],
                _str(d.get("ndc")),
                count,
                _str(d.get("label")),
                _str(d.get("text")),
                _str(d.get("code")),
                d["differs_from_request"]
                if isinstance(d.get("differs_from_request"), bool)
                else None,
            )
        if isinstance(k.get("ndc"), str):  # a row stored before `dose` (2026-12): one kit
            return cls(1.0, "kit", k["ndc"], count)  # stored before 2026-12
        return None

    def describe(self) -> str:
        if self.text:
            return self.text
        what = f"{self.quantity:g} {self.unit}"
        return what + (f", NDC {self.ndc}" if self.ndc else "")


@dataclass(frozen=True, slots=True)
class Requested:
    """What the request asked for."""

    ndc: str | None = None
    quantity: float | None = None
    unit: str | None = None


def _num(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass(frozen=True, slots=True)
class Selection:
    """Why this policy version judged the request (routing: payer, plan, date of service)."""

    why: str | None
    date_of_service: str | None
    plan_document: str | None  # the id of the benefit plan document that amended the policy
    data: dict[str, Any]  # as stored, for a new assertion to keep

    @classmethod
    def of(cls, value: object) -> Selection | None:
        if not isinstance(value, dict):
            return None
        return cls(
            why=_str(value.get("why")),
            date_of_service=_str(value.get("date_of_service")),
            plan_document=_str(_obj(value.get("plan_document")).get("id")),
            data=value,
        )


@dataclass(frozen=True, slots=True)
class NamedPolicy:
    """The policy version the determination names."""

    id: str | None
    number: str | None
    version: str | None
    title: str | None
    selected: Selection | None

    @classmethod
    def of(cls, value: object) -> NamedPolicy | None:
        if not isinstance(value, dict):
            return None
        return cls(
            id=_str(value.get("id")),
            number=_str(value.get("number")),
            version=_str(value.get("version")),
            title=_str(value.get("title")),
            selected=Selection.of(value.get("selected")),
        )


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """One criterion's finding as stored: status, the policy's words, reason, evidence."""

    status: str
    text: str = ""
    reason: str = ""
    evidence_kind: str | None = None
    evidence: tuple[dict[str, Any], ...] = ()
    source: str | None = None  # the benefit plan document that added or replaced it
    reconstructed: str | None = None  # the revision row the wording is rebuilt from

    @classmethod
    def of(cls, value: object) -> StoredFinding:
        d = _obj(value)
        evidence = d.get("evidence")
        return cls(
            status=_str(d.get("status")) or "unknown",
            text=_str(d.get("text")) or "",
            reason=_str(d.get("reason")) or "",
            evidence_kind=_str(d.get("evidence_kind")),
            evidence=tuple(e for e in evidence if isinstance(e, dict))
            if isinstance(evidence, list)
            else (),
            source=_str(d.get("source")),
            reconstructed=_str(d.get("reconstructed")),
        )


class StoredFindings(Mapping[str, StoredFinding]):
    """The findings by criterion id, in the stored order; each is parsed when first read,
    so listing many cases costs nothing for the criteria no one looks at."""

    __slots__ = ("_parsed", "_raw")

    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw
        self._parsed: dict[str, StoredFinding] = {}

    def __getitem__(self, key: str) -> StoredFinding:
        found = self._parsed.get(key)
        if found is None:
            found = self._parsed[key] = StoredFinding.of(self._raw[key])
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


@dataclass(frozen=True, slots=True)
class UnmetReason:
    """A criterion the recommendation fails on."""

    id: str
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The engine's determination of a case or coverage assertion, as stored."""

    recommendation: str | None
    policy: NamedPolicy | None
    dose: Dose | None
    requested: Requested
    authorization: tuple[date, date] | None
    missing: tuple[str, ...]
    reasons: tuple[UnmetReason, ...]
    criteria: Mapping[str, StoredFinding]
    data: dict[str, Any] = field(repr=False)  # the JSON object as stored (the case API shows it)
    administrations: int = 1  # doses the approval authorizes (the policy's approval terms)

    @classmethod
    def parse(cls, data: object) -> Evaluation | None:
        """The typed evaluation of a stored JSON object; None when there is none."""
        if not isinstance(data, dict):
            return None
        requested = _obj(data.get("requested"))
        missing = data.get("missing")
        reasons = data.get("reasons")
        criteria = _obj(data.get("criteria"))
        return cls(
            recommendation=_str(data.get("recommendation")),
            policy=NamedPolicy.of(data.get("policy")),
            dose=Dose.of(data.get("dose"), data.get("kit")),
            requested=Requested(
                _str(requested.get("ndc")),
                _num(requested.get("quantity")),
                _str(requested.get("unit")),
            ),
            authorization=_period(data.get("authorization")),
            administrations=_count(_obj(data.get("authorization")).get("administrations")),
            missing=tuple(m.strip() for m in missing if isinstance(m, str) and m.strip())
            if isinstance(missing, list)
            else (),
            reasons=tuple(
                UnmetReason(r["id"], _str(r.get("text")) or "", _str(r.get("reason")) or "")
                for r in (reasons if isinstance(reasons, list) else ())
                if isinstance(r, dict) and isinstance(r.get("id"), str)
            ),
            criteria=StoredFindings(criteria),
            data=data,
        )

    def finding(self, criterion: str) -> StoredFinding | None:
        return self.criteria.get(criterion)

    @property
    def judged_under(self) -> tuple[str | None, str | None]:
        """(policy version, plan document id): with the policy id, what
        `PolicyLibrary.version` takes to find the policy exactly as it judged."""
        if self.policy is None:
            return None, None
        selected = self.policy.selected
        return self.policy.version, selected.plan_document if selected else None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def _period(value: object) -> tuple[date, date] | None:
    d = _obj(value)
    try:
        return date.fromisoformat(d["start"]), date.fromisoformat(d["end"])
    except (KeyError, TypeError, ValueError):
        return None
