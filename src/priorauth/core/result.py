"""What an evaluation produces: findings per criterion and the determination."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

from priorauth.core.dose import Dose
from priorauth.core.facts import (
    Attestation,
    ClaimLine,
    Condition,
    Medication,
    Observation,
    Record,
    RequestedItem,
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
Evidence = (
    Observation | Attestation | Condition | Medication | ClaimLine | Derived | Recorded | Record
)


Why = str | Callable[[], str]

# What a compiled check returns: the status, a number dependents reuse (weight
# in kg, vial count), and the explanation. The explanation is either
# (reason, evidence) or a function returning it, called only when someone
# reads the finding: a recommendation needs the statuses alone, so an
# evaluation builds no Finding, sentence or evidence tuple it does not show.
Explanation = tuple[str, tuple[Evidence, ...]]


class Combined:
    """A group's explanation: written from its children's statuses when read."""

    __slots__ = ("at_least", "children", "combine", "id")

    def __init__(
        self, id: str, combine: str, children: tuple[str, ...], at_least: int | None = None
    ) -> None:
        self.id = id
        self.combine = combine
        self.children = children
        self.at_least = at_least

    def reason(self, status: Status, status_of: Callable[[str], Status]) -> str:
        statuses = [status_of(i) for i in self.children]
        which = ", ".join(i for i, s in zip(self.children, statuses, strict=True) if s == status)
        names = ", ".join(self.children)
        if self.combine == "all":
            word = {NOT_MET: "not met", UNKNOWN: "unknown", MET: "met"}[status]
            return f"ALL of {names}: " + ("all met." if status == MET else f"{which} {word}.")
        if self.combine == "one":
            return (
                f"ONE of {names}: "
                + {
                    MET: f"{which} met.",
                    UNKNOWN: f"none met; {which} unknown.",
                    NOT_MET: "none met.",
                }[status]
            )
        return self._counted(statuses)

    def _counted(self, statuses: list[Status]) -> str:
        # none and at_least: the sentence says how many children were met, and which.
        def named(s: Status) -> str:
            return ", ".join(i for i, x in zip(self.children, statuses, strict=True) if x == s)

        met, unknown = statuses.count(MET), statuses.count(UNKNOWN)
        head = (
            f"NONE of {', '.join(self.children)}: "
            if self.combine == "none"
            else f"AT LEAST {self.at_least} of {', '.join(self.children)}: "
        )
        out = f"{met} of {len(statuses)} met"
        if met:
            out += f" ({named(MET)})"
        if unknown:
            out += f"; {named(UNKNOWN)} unknown"
        return head + out + "."


# A deferred explanation without a closure: (function, *arguments), called on read.
# The generated evaluation code builds these (a closure there would share cells).
Deferred = tuple[Any, ...]
Detail = Explanation | Callable[[], Explanation] | Combined | Deferred
Raw = tuple[Status, float | None, Detail]


def explain(detail: Detail) -> Explanation:
    """The (reason, evidence) of a leaf's raw result."""
    if type(detail) is tuple:
        head = detail[0]
        if type(head) is str:
            return detail
        made: Explanation = head(*detail[1:])
        return made
    assert callable(detail), "a group's explanation needs its children: see Findings"
    return detail()


class Finding:
    """One criterion's status, the sentence that explains it, and the evidence used.

    The reason may be given as a function: it is only written when read (then kept).
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

    @classmethod
    def of(cls, id: str, raw: Raw, status_of: Callable[[str], Status]) -> Finding:
        """The finding of one raw result; `status_of` gives the other criteria's statuses."""
        detail = raw[2]
        if type(detail) is Combined:
            return cls(id, raw[0], detail.reason(raw[0], status_of), (), raw[1])
        reason, evidence = explain(detail)
        return cls(id, raw[0], reason, evidence, raw[1])

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


class Findings(Mapping[str, Finding]):
    """Criterion id -> Finding, in the policy's order, each built on first read.

    A read-only view over the raw results of one evaluation (a tuple, in the
    order `slot` numbers); the views of one determination share the built findings.
    """

    __slots__ = ("_built", "_ids", "_known", "_raws", "_slot")

    def __init__(
        self,
        raws: tuple[Raw, ...],
        slot: Mapping[str, int],
        ids: tuple[str, ...],
        known: frozenset[str],
        built: dict[str, Finding],
    ) -> None:
        self._raws = raws
        self._slot = slot
        self._ids = ids
        self._known = known
        self._built = built

    def __getitem__(self, cid: str) -> Finding:
        f = self._built.get(cid)
        if f is None:
            if cid not in self._known:
                raise KeyError(cid)
            f = self._built[cid] = Finding.of(cid, self._raws[self._slot[cid]], self._status_of)
        return f

    def _status_of(self, cid: str) -> Status:
        return self._raws[self._slot[cid]][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, cid: object) -> bool:
        return cid in self._known

    def status(self, cid: str) -> Status:
        """A criterion's status without building its finding."""
        if cid not in self._known:
            raise KeyError(cid)
        return self._raws[self._slot[cid]][0]

    def __repr__(self) -> str:
        return f"Findings({dict(self)!r})"


@dataclass(frozen=True, slots=True)
class Requested:
    """What the request asked for, as the determination compares it with the right dose."""

    ndc: str | None
    quantity: float | None
    item_sequence: int | None
    unit: str | None = None  # Claim.item.quantity's unit, where the request states one


@dataclass(frozen=True, slots=True)
class Unmet:
    id: str
    text: str
    reason: str


class Determination:
    """The recommendation with every criterion's finding.

    `findings` and `exclusions` build each Finding when it is read; `missing`
    and `reasons` are worked out when first read. Both are pure functions of
    the evaluation, so reading them later gives what reading them at once would.
    """

    __slots__ = (
        "_missing",
        "_reasons",
        "_requested",
        "administrations",
        "as_of",
        "authorization",
        "differs",
        "dose",
        "exclusions",
        "expedited",
        "findings",
        "medical_director_review",
        "policy_id",
        "policy_version",
        "recommendation",
    )

    def __init__(
        self,
        policy_id: str,
        policy_version: str,
        as_of: date,
        recommendation: Recommendation,
        findings: Mapping[str, Finding],
        exclusions: Mapping[str, Finding],
        dose: Dose | None,
        requested: Requested | RequestedItem,
        authorization: tuple[date, date] | None,
        missing: list[str] | Callable[[], list[str]] | None = None,
        reasons: list[Unmet] | Callable[[], list[Unmet]] | None = None,
        medical_director_review: bool = True,
        expedited: bool = False,
        administrations: int = 1,
        differs: bool = False,
    ) -> None:
        self.policy_id = policy_id
        self.policy_version = policy_version
        self.as_of = as_of
        self.recommendation: Recommendation = recommendation
        self.findings = findings
        self.exclusions = exclusions
        self.dose = dose
        self._requested = requested
        self.authorization = authorization
        self._missing = [] if missing is None else missing
        self._reasons = [] if reasons is None else reasons
        self.medical_director_review = medical_director_review
        self.expedited = expedited
        self.administrations = administrations  # doses the approval authorizes
        self.differs = differs  # the request asks for another product or quantity than `dose`

    @property
    def requested(self) -> Requested:
        """What the request asked for (given as the claim item: made when first read)."""
        r = self._requested
        if isinstance(r, RequestedItem):
            r = self._requested = Requested(r.ndc, r.quantity, r.sequence, r.unit)
        return r

    @property
    def missing(self) -> list[str]:
        """What to ask for: the request text of every unknown criterion that decides."""
        m = self._missing
        if not isinstance(m, list):
            m = self._missing = m()
        return m

    @property
    def reasons(self) -> list[Unmet]:
        """The unmet criteria (and applying exclusions) a denial cites."""
        r = self._reasons
        if not isinstance(r, list):
            r = self._reasons = r()
        return r

    def __repr__(self) -> str:
        return (
            f"Determination({self.policy_id!r}, {self.policy_version!r}, "
            f"{self.recommendation!r}, as_of={self.as_of.isoformat()})"
        )
