"""The payer's claims history in the database: import from NDJSON, read per member."""

from __future__ import annotations

import unicodedata
from datetime import date

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from priorauth.core.facts import ClaimLine, ClaimsHistory
from priorauth.intake.claims import ClaimsIndex
from priorauth.store.models import ClaimLineRow


def import_claims(session: Session, index: ClaimsIndex) -> tuple[int, int]:
    """Add the lines not already stored (keyed by claim id and line position).

    Returns (lines added, lines read). Importing the same file twice adds nothing.
    """
    added = read = 0
    for member_id in index.members():
        history = index.history_for(member_id)
        existing = {
            (e, q)
            for e, q in session.execute(
                select(ClaimLineRow.eob_id, ClaimLineRow.sequence).where(
                    ClaimLineRow.member_id == member_id
                )
            )
        }
        position: dict[str, int] = {}
        for line in history.lines:
            read += 1
            seq = position[line.ref] = position.get(line.ref, 0) + 1
            if (line.ref, seq) in existing:
                continue
            session.add(
                ClaimLineRow(
                    eob_id=line.ref,
                    sequence=seq,
                    member_id=member_id,
                    codes=[list(c) for c in line.codes],
                    service_date=line.when,
                )
            )
            added += 1
    session.commit()
    return added, read


def history_for(
    session: Session, member_id: str | None, case_sensitive: bool = False
) -> ClaimsHistory:
    """The member's stored claims; empty (not available) when there are none.

    Member ids are matched trimmed and, unless the member's identifier system is
    case-sensitive, without regard to case: "m123 " finds the claims of "M123"
    (an index on lower(trim(member_id)) serves the look-up).
    """
    wanted = unicodedata.normalize("NFKC", member_id).strip() if member_id else ""
    if not wanted:
        return ClaimsHistory(member_id="")
    if not case_sensitive:
        wanted = wanted.lower()
    rows = session.execute(_HISTORY[case_sensitive], {"member": wanted}).all()
    lines = tuple(
        ClaimLine(eob_id, tuple((c[0], c[1]) for c in codes), when) for eob_id, codes, when in rows
    )
    return ClaimsHistory(member_id or "", lines, len({r[0] for r in rows}))


def _history_query(case_sensitive: bool) -> Select[str, list[list[str]], date | None]:
    stored = func.trim(ClaimLineRow.member_id)
    if not case_sensitive:
        stored = func.lower(stored)
    return (
        select(ClaimLineRow.eob_id, ClaimLineRow.codes, ClaimLineRow.service_date)
        .where(stored == bindparam("member"))
        .order_by(ClaimLineRow.eob_id, ClaimLineRow.sequence)
    )


# Built once (every submission reads a history): building the query cost more CPU than running it.
_HISTORY = {cs: _history_query(cs) for cs in (False, True)}
