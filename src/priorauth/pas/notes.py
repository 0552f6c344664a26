"""The words of a PAS response: processNote texts and the documentation a pended case lacks."""

from __future__ import annotations

from datetime import UTC, date, datetime

from priorauth.pas.records import CaseRecord, Decision

__all__ = ["authorization_period", "instant", "missing_documents", "process_notes"]


def instant(moment: datetime) -> str:
    """A FHIR instant (UTC, "Z"); a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def missing_documents(case: CaseRecord) -> list[str]:
    """What the engine found missing (the evaluation's missing items), for a pended case only."""
    if case.status != "pended" or case.evaluation is None:
        return []
    return list(case.evaluation.missing)


def authorization_period(case: CaseRecord) -> tuple[date, date] | None:
    """The authorized period of an approved or modified case (the decision's, else the engine's)."""
    if case.status not in ("approved", "modified"):
        return None
    decision = case.decision
    if decision is not None and decision.auth_start is not None and decision.auth_end is not None:
        return decision.auth_start, decision.auth_end
    return case.evaluation.authorization if case.evaluation is not None else None


def process_notes(case: CaseRecord) -> list[str]:
    """The texts of ClaimResponse.processNote, in order, for the case's status."""
    notes = _status_notes(case)
    judged = _policy_note(case)
    return [*notes, judged] if judged and case.status != "cancelled" else notes


def _policy_note(case: CaseRecord) -> str | None:
    """Which policy version judged the request, and why that one (the routing's words)."""
    named = case.evaluation.policy if case.evaluation is not None else None
    if case.policy_id is None or named is None:
        return None
    if named.number is None or named.version is None:
        return None
    note = f"Judged under coverage policy {named.number} version {named.version}"
    why = named.selected.why if named.selected is not None else None
    return f"{note}: {why}." if why else f"{note}."


def _status_notes(case: CaseRecord) -> list[str]:
    decision = case.decision
    if case.status == "pended":
        notes = [f"Missing documentation: {m}" for m in missing_documents(case)]
        if case.policy_id is None:
            notes.append(
                "No coverage policy on file covers the requested service; the request is "
                "pended for Medical Director review."
            )
        else:
            notes.append("The request is pended for Medical Director review.")
        notes.append(f"A determination is due by {instant(case.due_at)}.")
        return notes
    if case.status == "denied":
        notes = []
        if decision is not None and decision.reason and decision.reason.strip():
            notes.append(f"Reason for denial: {decision.reason.strip()}")
        notes.extend(_unmet_criteria(case))
        return notes + _withdrawal(case)
    if case.status in ("approved", "modified"):
        notes = []
        times = case.evaluation.administrations if case.evaluation else 1
        each = f" for each of {times} administrations" if times > 1 else ""
        if case.status == "modified" and decision is not None:
            notes.append(
                f"Modified: the authorization covers {authorized_text(decision)}{each}, "
                f"in place of {requested_text(case, decision.unit)}."
            )
        elif each and decision is not None:
            notes.append(f"The authorization covers {authorized_text(decision)}{each}.")
        if decision is not None and decision.reason and decision.reason.strip():
            notes.append(f"Medical Director note: {decision.reason.strip()}")
        return notes + _withdrawal(case)
    if case.voided is not None:
        return [
            f"The approval was voided by the payer on {instant(case.voided.at)}: "
            f"{case.voided.reason.strip()}"
        ]
    return ["The prior authorization request was cancelled."]


def _withdrawal(case: CaseRecord) -> list[str]:
    """A decided case the provider asked to cancel: the determination stands."""
    if case.withdrawal_requested_at is None:
        return []
    return [
        f"Withdrawal requested by the provider on {instant(case.withdrawal_requested_at)}; "
        "the determination stands unless the payer voids it."
    ]


def _unmet_criteria(case: CaseRecord) -> list[str]:
    """One note per criterion a denial cites, with the policy's wording and the finding.

    The Medical Director's citations (Decision.criteria) come first; without
    them, the engine's unmet criteria (the evaluation's reasons) are cited.
    """
    evaluation = case.evaluation
    cited = list(case.decision.criteria) if case.decision is not None else []
    if not cited and evaluation is not None:
        cited = [r.id for r in evaluation.reasons]
    notes = []
    for cid in dict.fromkeys(cited):
        found = evaluation.finding(cid) if evaluation is not None else None
        note = f"Criterion {cid} not met"
        if found is not None and found.text.strip():
            note += f": {found.text.strip()}"
        if found is not None and found.reason.strip():
            note += f" Finding: {found.reason.strip()}"
        notes.append(note)
    return notes


def authorized_text(decision: Decision) -> str:
    """What a decision authorizes: '264 mL (33 vials)', '1 kit, NDC 12345-0180-18 (18 vials)'."""
    parts = []
    if decision.quantity is not None:
        parts.append(f"{decision.quantity:g} {decision.unit or ''}".strip())
    if decision.product_ndc:
        parts.append(f"NDC {decision.product_ndc}")
    text = ", ".join(parts) or "the service as requested"
    if decision.product_vials and decision.unit != "vial":
        text += f" ({decision.product_vials} vials)"
    return text


def requested_text(case: CaseRecord, unit: str | None = None) -> str:
    """What the request asked for, in the same words. A quantity that states no unit is
    in the billing unit (`unit`): the engine compares it so too."""
    asked = case.evaluation.requested if case.evaluation else None
    if asked is None or (asked.ndc is None and asked.quantity is None):
        return "what was requested"
    parts = []
    if asked.quantity is not None:
        parts.append(f"{asked.quantity:g} {asked.unit or unit or ''}".strip())
    if asked.ndc:
        parts.append(f"NDC {asked.ndc}")
    return "the requested " + ", ".join(parts)
