"""Read the payer's claims history: NDJSON of ExplanationOfBenefit (data contract section 4)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from priorauth.core.facts import ClaimLine, ClaimsHistory
from priorauth.errors import InvalidClaims
from priorauth.intake.values import codings, parse_date


class ClaimsIndex:
    """Claims history by member id (ExplanationOfBenefit.patient.identifier.value)."""

    __slots__ = ("_claims", "_lines")

    def __init__(self) -> None:
        self._claims: dict[str, int] = {}
        self._lines: dict[str, list[ClaimLine]] = {}

    def add(self, member_id: str, lines: Iterable[ClaimLine]) -> None:
        """Record one claim (EOB) of a member, with its lines."""
        self._claims[member_id] = self._claims.get(member_id, 0) + 1
        self._lines.setdefault(member_id, []).extend(lines)

    def history_for(self, member_id: str | None) -> ClaimsHistory:
        """The member's claims; empty (not available) for an unknown or missing member id."""
        if not member_id:
            return ClaimsHistory(member_id="")
        return ClaimsHistory(
            member_id=member_id,
            lines=tuple(self._lines.get(member_id, ())),
            claim_count=self._claims.get(member_id, 0),
        )

    def members(self) -> list[str]:
        """Every member id that has at least one claim."""
        return list(self._claims)

    def __len__(self) -> int:
        """Number of claims held, all members together."""
        return sum(self._claims.values())


def read_claims(lines: Iterable[str | bytes]) -> ClaimsIndex:
    """Index NDJSON lines of ExplanationOfBenefit; blank lines are skipped.

    Raises InvalidClaims naming the (1-based) line of the first unreadable claim.
    """
    index = ClaimsIndex()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            eob = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InvalidClaims("not valid JSON", where) from exc
        if type(eob) is not dict or eob.get("resourceType") != "ExplanationOfBenefit":
            raise InvalidClaims("not an ExplanationOfBenefit", where)
        member_id = _member_id(eob)
        if member_id is None:
            raise InvalidClaims("ExplanationOfBenefit.patient.identifier.value is missing", where)
        index.add(member_id, _claim_lines(eob, where))
    return index


def read_claims_file(path: str | Path) -> ClaimsIndex:
    """read_claims over a file's lines."""
    with Path(path).open("rb") as handle:
        return read_claims(handle)


def _member_id(eob: dict[str, Any]) -> str | None:
    patient = eob.get("patient")
    identifier = patient.get("identifier") if type(patient) is dict else None
    value = identifier.get("value") if type(identifier) is dict else None
    return value if type(value) is str and value else None


def _claim_lines(eob: dict[str, Any], where: str) -> list[ClaimLine]:
    rid = eob.get("id")
    ref = (
        f"ExplanationOfBenefit/{rid}"
        if type(rid) is str and rid
        else f"ExplanationOfBenefit@{where}"
    )
    # Fallback date for lines without their own: the billing period, else the claim's creation.
    period = eob.get("billablePeriod")
    fallback = _date(period.get("start") if type(period) is dict else None, where, "billablePeriod")
    if fallback is None:
        fallback = _date(eob.get("created"), where, "created")
    items = eob.get("item") or []
    if type(items) is not list:
        raise InvalidClaims("ExplanationOfBenefit.item must be a JSON array", where)
    out = []
    for item in items:
        if type(item) is not dict:
            raise InvalidClaims("ExplanationOfBenefit.item must hold objects", where)
        served = item.get("servicedPeriod")
        when = _date(item.get("servicedDate"), where, "item.servicedDate")
        if when is None and type(served) is dict:
            when = _date(served.get("start"), where, "item.servicedPeriod.start")
        out.append(ClaimLine(ref, codings(item.get("productOrService")), when or fallback))
    return out


def _date(value: Any, where: str, path: str) -> date | None:
    if value is None:
        return None
    return parse_date(value, where, f"ExplanationOfBenefit.{path}", error=InvalidClaims)
