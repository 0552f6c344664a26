"""What the pages show, built from case records, the request bundle and the policy."""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.model import Criterion, DoseByWeightCheck, walk
from priorauth.pas.records import CLIENT_DECIDER, CaseRecord
from priorauth.report.evaluation import Requested, StoredFinding

log = logging.getLogger("priorauth.ui")

STATUS = {  # finding status -> (icon, words); words too, so color is never the only cue
    "met": ("✓", "Met"),
    "not_met": ("✗", "Not met"),
    "unknown": ("?", "Unknown"),
    "does_not_apply": ("✓", "Does not apply"),
    "applies": ("✗", "Applies"),
}
EVIDENCE_KIND = {
    "documentation": "Documentation",
    "claims": "Claims history",
    "attestation": "Attestation",
    "md_verification": "Medical Director verification",
    "benefit_plan": "Benefit plan document",
}
RECOMMENDATION = {
    "approve": "Approve",
    "approve-modified": "Approve with the right product or quantity",
    "deny": "Deny",
    "pend": "Pend: documentation missing",
    None: "Manual review (no policy)",
}
CASE_STATUS = {
    "pended": "Open",
    "approved": "Approved",
    "modified": "Approved (modified)",
    "denied": "Denied",
    "cancelled": "Cancelled",
}
DECISION = {
    "approve": "Approved",
    "approve-modified": "Approved with a modified product or quantity",
    "deny": "Denied",
}


def decider_of(decided_by: str, names: dict[str, str]) -> str:
    """Who decided, as letters and pages print it: a person's title only when one decided."""
    if decided_by.startswith(CLIENT_DECIDER):
        return f"the payer system {decided_by.removeprefix(CLIENT_DECIDER)} (no named reviewer)"
    return f"{names.get(decided_by, decided_by)}, Medical Director"


def policy_of(service: Any, record: CaseRecord) -> CompiledPolicy | None:
    """The policy version (as a plan document amends it) the case was judged under."""
    ev = record.evaluation
    return service.library.version(record.policy_id, *ev.judged_under) if ev else None


# --- who and what ---------------------------------------------------------------


@dataclass
class Member:
    name: str
    member_id: str
    birth_date: str | None
    provider: str
    prescriber: str | None
    drug: str
    readable: bool = True


def member_of(record: CaseRecord) -> Member:
    """Who and what the case is about: the words read once at submission (intake.summary),
    so no page, and no list of 500 cases, decodes a stored bundle."""
    words = record.summary
    named = record.evaluation.policy if record.evaluation else None
    title = named.title if named else None
    return Member(
        name=words.member_name or "(name not given)",
        member_id=record.keys.member_id or "(no member id)",
        birth_date=words.member_birth_date,
        provider=words.provider_name or record.keys.submitter.value,
        prescriber=words.prescriber_name,
        drug=words.service_name or title or "the service",
    )


# --- the deadline clock -----------------------------------------------------------


def _span(delta: timedelta) -> str:
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins:02d} min"


@dataclass
class Clock:
    label: str  # "23 h 10 min left" or "overdue by 2 h 00 min"
    overdue: bool
    soon: bool  # under a quarter of the clock left
    window: str  # "Expedited (24 h)"


def clock_of(record: CaseRecord, now: datetime, settings: Any) -> Clock:
    hours = settings.expedited_hours if record.keys.expedited else settings.standard_hours
    window = f"{'Expedited' if record.keys.expedited else 'Standard'} ({hours} h)"
    end = record.decision.decided_at if record.decision else now
    left = record.due_at - end
    if record.status != "pended":
        late = left < timedelta(0)
        label = f"decided {_span(left)} {'late' if late else 'early'}" if record.decision else "-"
        return Clock(label, False, False, window)
    if left < timedelta(0):
        return Clock(f"overdue by {_span(left)}", True, False, window)
    return Clock(f"{_span(left)} left", False, left < timedelta(hours=hours / 4), window)


# --- the checklist ------------------------------------------------------------------


def _num(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def evidence_line(e: dict[str, Any]) -> str:
    """One piece of evidence in words: value, unit, date, ULN; a derived value with its formula."""
    if "derived" in e:
        text = f"{e['derived']}: {_num(e['value'])}{' ' + e['unit'] if e.get('unit') else ''}"
        return text + (f" = {e['formula']}" if e.get("formula") else "")
    parts = []
    if e.get("loinc"):
        parts.append(f"LOINC {e['loinc']}")
    elif e.get("code"):
        parts.append(str(e["code"]))
    if e.get("record"):
        parts.append(f"{e['record']} {e.get('value') or ''}".rstrip())
        if e.get("status"):
            parts.append(f"status {e['status']}")
        for a in e.get("attachments") or ():
            parts.append(f"attached {a.get('title') or a.get('url') or 'inline content'}")
    if e.get("link_id"):
        parts.append(f"prescriber's answer to '{e['link_id']}'")
    if e.get("field"):
        parts.append(str(e["field"]))
    if "value" in e and e["value"] is not None and not e.get("record"):
        parts.append(f"{_num(e['value'])}{' ' + e['unit'] if e.get('unit') else ''}")
    if e.get("coded"):
        parts.append(", ".join(c.rsplit("|", 1)[-1] for c in e["coded"]))
    if e.get("uln") is not None:
        parts.append(f"ULN {_num(e['uln'])} {e.get('uln_unit') or ''}".rstrip())
    if e.get("medication"):
        parts.append(f"medication {', '.join(e['medication'])}")
    if e.get("codes"):
        claim_line = "date" in e and "active" not in e and not e.get("record")
        label = "claim line" if claim_line else "codes"
        parts.append(f"{label} {', '.join(c.rsplit('|', 1)[-1] for c in e['codes'])}")
    if "active" in e:
        parts.append("active" if e["active"] else "not active")
    if e.get("date"):
        parts.append(f"dated {e['date']}")
    return "; ".join(parts) or str(e.get("resource", ""))


@dataclass
class Item:
    id: str
    text: str
    depth: int
    status: str
    icon: str
    status_label: str
    kind: str | None
    reason: str
    evidence: list[tuple[str, str, str]]  # (words, short reference, full reference)
    group: bool
    exclusion: bool
    decisive: bool = False  # unmet, and so is every group above it: it sinks the request
    reconstructed: str | None = None  # the revision row the wording is rebuilt from

    @property
    def unmet(self) -> bool:
        return self.status in ("not_met", "unknown", "applies")


def _short(ref: str) -> str:
    # "Observation/8e4aed86-b183-..." -> "Observation/8e4aed86": enough to tell them apart.
    kind, _, rest = ref.partition("/")
    return f"{kind}/{rest[:8]}" if rest and len(rest) > 12 else ref


def _item(c_id: str, depth: int, finding: StoredFinding, group: bool, excl: bool) -> Item:
    icon, label = STATUS.get(finding.status, ("?", finding.status))
    return Item(
        id=c_id,
        text=finding.text,
        depth=depth,
        status=finding.status,
        icon=icon,
        status_label=label,
        kind=EVIDENCE_KIND.get(finding.evidence_kind or ""),
        reason=finding.reason,
        evidence=[
            (evidence_line(e), _short(str(e.get("resource", ""))), str(e.get("resource", "")))
            for e in finding.evidence
        ],
        group=group,
        exclusion=excl,
        reconstructed=finding.reconstructed,
    )


def checklist(record: CaseRecord, policy: CompiledPolicy | None) -> list[Item]:
    """Every criterion in the policy's own order and wording, with its finding."""
    found = record.evaluation.criteria if record.evaluation else {}
    if policy is None:  # judged by a version no longer loaded: keep the stored order
        return _mark_decisive(
            [_item(i, i.count("."), f, False, i.startswith("NC")) for i, f in found.items()]
        )
    items = []

    def add(cs: list[Criterion], depth: int, excl: bool) -> None:
        for c in cs:
            f = found.get(c.id) or StoredFinding("unknown", reason="not judged")
            # The policy's own wording, and whether it is rebuilt, over what was stored.
            rebuilt = c.reconstructed.isoformat() if c.reconstructed else None
            f = dataclasses.replace(f, text=c.text, reconstructed=rebuilt)
            items.append(_item(c.id, depth, f, bool(c.children), excl))
            add(c.children, depth + 1, excl)

    add(policy.policy.criteria, 0, False)
    add(policy.policy.exclusions, 0, True)
    return _mark_decisive(items)


def _mark_decisive(items: list[Item]) -> list[Item]:
    """Flag the unmet leaves whose failure reaches the top (E.ii.a fails, but E is met)."""
    unmet = {i.id: i.unmet for i in items}
    for i in items:
        parts = i.id.split(".")
        chain = [".".join(parts[:n]) for n in range(1, len(parts) + 1)]
        i.decisive = not i.group and all(unmet.get(c, True) for c in chain)
    return items


# --- the product and quantity -------------------------------------------------------


@dataclass
class DoseView:
    computation: str | None  # the dose criterion's reason: weight -> dose -> product
    formula: str | None
    engine: str | None  # the right product and quantity, in words
    engine_ndc: str | None
    engine_quantity: float | None
    unit: str | None  # the policy's billing unit
    requested_ndc: str | None
    requested_quantity: float | None
    requested_unit: str | None
    matches: bool | None  # None: nothing to compare
    options: list[tuple[str, str]] = field(default_factory=list)  # (ndc, label)


def dose_of(record: CaseRecord, policy: CompiledPolicy | None) -> DoseView:
    ev = record.evaluation
    dose = ev.dose if ev else None
    requested = ev.requested if ev else Requested()
    computation = formula = None
    if policy is not None and ev is not None:
        for c in walk(policy.policy.criteria):
            if isinstance(c.check, DoseByWeightCheck):
                f = ev.finding(c.id)
                computation = f.reason if f else None
                formula = next(
                    (e.get("formula") for e in (f.evidence if f else ()) if e.get("formula")),
                    None,
                )
    options = []
    dosing = policy.policy.dosing if policy is not None else None
    if dosing is not None:
        for p in dosing.products:
            vials = dosing.vial_count(p)
            held = " ".join(
                x
                for x in (
                    p.label or "",
                    f"{vials} vials" if vials else "",
                    f"({p.weight})" if p.weight else "",
                )
                if x
            )
            options.append((p.ndc, f"{p.ndc}: {held}" if held else p.ndc))
    # The engine's comparison (the policy's rule), as stored; a row from before it says none.
    matches = None
    asked = requested.ndc is not None or requested.quantity is not None
    if dose is not None and dose.differs is not None and asked:
        matches = not dose.differs
    return DoseView(
        computation=computation,
        formula=formula,
        engine=dose.describe() if dose else None,
        engine_ndc=dose.ndc if dose else None,
        engine_quantity=dose.quantity if dose else None,
        unit=dosing.unit if dosing else (dose.unit if dose else requested.unit),
        requested_ndc=requested.ndc,
        requested_quantity=requested.quantity,
        requested_unit=requested.unit,
        matches=matches,
        options=options,
    )


# --- history -----------------------------------------------------------------------

_EVENT = {
    "submitted": "Submitted by the provider",
    "revised": "Revised by the provider (re-evaluated)",
    "cancelled": "Cancelled by the provider",
    "withdrawal_requested": "Withdrawal requested by the provider (the decision stands)",
    "voided": "Approval voided by the Medical Director",
    "decided": "Decided",
    "documentation_requested": "Documentation requested",
}


def history_of(record: CaseRecord, names: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for h in record.history:
        details = []
        if h.get("recommendation"):
            details.append(f"engine recommends {RECOMMENDATION.get(h['recommendation'])}")
        if h.get("decision"):
            details.append(DECISION.get(h["decision"], h["decision"]))
        if h.get("criteria"):
            details.append("criteria " + ", ".join(h["criteria"]))
        if h.get("product_ndc") or h.get("kit_ndc"):
            details.append(f"product {h.get('product_ndc') or h.get('kit_ndc')}")
        if h.get("quantity") is not None:
            details.append(f"quantity {h['quantity']:g} {h.get('unit') or ''}".strip())
        if h.get("reason"):
            details.append(f"“{h['reason']}”")
        for item in h.get("items") or []:
            details.append(item)
        if h.get("note"):
            details.append(f"note: {h['note']}")
        out.append(
            {
                "at": h["at"][:16].replace("T", " ") + " UTC",
                "what": _EVENT.get(h["kind"], h["kind"]),
                "actor": names.get(h["actor"], _actor(h["actor"])),
                "details": details,
            }
        )
    return out


def _actor(key: str) -> str:
    # Provider submissions carry "system|value"; show the NPI.
    return key.rsplit("|", 1)[-1] if "|" in key else key


def plain(text: str) -> str:
    """The policy's wording in plainer words, for letters."""
    text = re.sub(r"\s*\[[^\]]*required\]", "", text)
    for a, b in ((">=", "at least"), ("<=", "no more than"), ("10^9/L", "billion per liter")):
        text = text.replace(a, b)
    return text
