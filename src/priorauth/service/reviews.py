"""The reviewers' use cases: list cases by status, request documentation for an open case."""

from __future__ import annotations

from typing import TYPE_CHECKING

from priorauth.auth.actors import Actor
from priorauth.pas.records import CaseRecord
from priorauth.service.errors import Conflict, NotFound, Unprocessable
from priorauth.store import cases as case_store
from priorauth.store.audit import Entry
from priorauth.store.queries import cases_by_status

if TYPE_CHECKING:
    from priorauth.service.app_service import PriorAuthService

# The statuses a list may ask for, and the case states each shows (None: every case).
LISTS: dict[str, tuple[str, ...] | None] = {
    "open": (case_store.OPEN,),
    "overdue": (case_store.OPEN,),
    "decided": case_store.DECIDED,
    "cancelled": ("cancelled",),
    "all": None,
}
MOST = 500  # cases on one list


def cases(service: PriorAuthService, status: str, who: Actor) -> list[CaseRecord]:
    """The cases of one list, soonest deadline first; the search is audited.

    Open ones come from the open queue (audited there); any other list is recorded after
    its read's transaction (SQLite has one writer), and not shown if it cannot be.
    """
    if status not in LISTS:
        raise Unprocessable(f"status must be one of {', '.join(LISTS)}, not {status!r}", "status")
    if status in ("open", "overdue"):
        now = service.clock()
        records = service.open_cases(who=who)
        return [r for r in records if status == "open" or r.due_at < now]
    with service.sessions() as s:
        records = [case_store.to_record(r) for r in cases_by_status(s, LISTS[status], MOST)]
    service.audit.record(who, "search", "success", f"cases?status={status}", count=len(records))
    return records


def request_documentation(
    service: PriorAuthService, case_id: str, items: list[str], note: str | None, who: Actor
) -> None:
    """Record a reviewer's request for documentation on an open case.

    The case event and its audit record commit in one transaction, under the write lock;
    a refusal is audited as a failed `doc-request`.
    """
    note = (note or "").strip() or None

    def run() -> None:
        if not items and not note:
            raise Unprocessable("choose what to request or write a note", "items")
        now = service.clock()
        with service.write_lock, service.sessions() as s:
            row = case_store.get(s, case_id)
            if row is None:
                raise NotFound(f"no case {case_id}")
            if row.status != case_store.OPEN:
                raise Conflict("documentation can only be requested for an open case")
            case_store.event(
                s, case_id, "documentation_requested", who.id, now, items=items, note=note
            )
            entry = Entry(who, "doc-request", "success", f"case/{case_id}", {"items": len(items)})
            service.audit.append_in(s, [entry], now)
            s.commit()

    service.audited("doc-request", who, run, f"case/{case_id}")
