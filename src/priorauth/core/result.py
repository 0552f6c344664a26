"""What an evaluation produces: findings per criterion and the determination."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Final, Literal

from priorauth.core.facts import (
    Attestation,
    ClaimLine,
    Condition,
    Medication,
    Observation,
)

Status = Literal["met", "not_met", "unknown"]
MET: Final = "met"
NOT_MET: Final = "not_met"
UNKNOWN: Final = "unknown"

Recommendation = Literal["approve", "approve-modified", "deny", "pend"]


@dataclass(frozen=True, slots=True)
class Derived:
    """A value the engine computed (age, Cockcroft-Gault estimate, vial count)."""

    label: str
    value: float | int | str
    unit: str | None = None
    inputs: tuple[str, ...] = ()  # refs of the facts it was computed from
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """A value read from a resource that is not a clinical result (birth date, sex, specialty)."""

    ref: str
    label: str
    value: str | float | None


# Evidence is the fact itself where one exists, so nothing is copied per evaluation.
Evidence = Observation | Attestation | Condition | Medication | ClaimLine | Derived | Recorded


Why = str | Callable[[], str]


class Finding:
    """One criterion's status, the sentence that explains it, and the evidence used.

    The reason may be given as a function: most evaluations end in a
    recommendation without anyone reading most sentences, so they are only
    written when read (then kept).
    """

    __slots__ = ("_why", "evidence", "id", "status", "value")

    def __init__(
        self,
        id: str,
        status: Status,
        why: Why,
        evidence: tuple[Evidence, ...] = (),
        value: float | None = None,  # a canonical number dependents reuse (weight in kg)
    ) -> None:
        self.id = id
        self.status: Status = status
        self._why = why
        self.evidence = evidence
        self.value = value

    @property
    def reason(self) -> str:
        w = self._why
        if not isinstance(w, str):
            w = self._why = w()
        return w

    @reason.setter
    def reason(self, value: Why) -> None:
        self._why = value

    def __repr__(self) -> str:
        return f"Finding({self.id!r}, {self.status!r}, {self.reason!r})"


@dataclass(frozen=True, slots=True)
class KitChoice:
    vials: int
    ndc: str


@dataclass(frozen=True, slots=True)
class Requested:
    """What the request asked for, as the determination compares it with the kit."""

    ndc: str | None
    quantity: float | None
    item_sequence: int | None


@dataclass(frozen=True, slots=True)
class Unmet:
    id: str
    text: str
    reason: str


@dataclass(slots=True)
class Determination:
    policy_id: str
    policy_version: str
    as_of: date
    recommendation: Recommendation
    findings: dict[str, Finding]
    exclusions: dict[str, Finding]
    kit: KitChoice | None
    requested: Requested
    authorization: tuple[date, date] | None
    missing: list[str] = field(default_factory=list)
    reasons: list[Unmet] = field(default_factory=list)
    medical_director_review: bool = True
    expedited: bool = False
