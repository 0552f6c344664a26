"""Determination letters for decided cases: the facts once, rendered as HTML and as PDF."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fpdf import FPDF

from priorauth.pas.notes import authorized_text, requested_text
from priorauth.pas.records import CLIENT_DECIDER, CaseRecord
from priorauth.report.evaluation import NamedPolicy
from priorauth.ui.views import DECISION, Member, decider_of, member_of, plain, policy_of


@dataclass
class Reason:
    criterion: str
    policy_text: str  # the criterion in plainer words
    finding: str  # what the review found


@dataclass
class Letter:
    insurer: str
    date: str
    auth_number: str
    decision: str
    denied: bool
    member: Member
    drug: str
    policy: str
    authorized: str | None  # the product and quantity approved
    requested: str | None  # what was asked for, on a modification
    window: str | None
    decided_by: str  # as signed: the Medical Director with title, or the payer system
    md_reason: str | None
    explained_by: str  # whose explanation md_reason is: a Medical Director's, or the payer's
    reasons: list[Reason]


def letter_for(service: Any, record: CaseRecord, names: dict[str, str]) -> Letter | None:
    """The letter of a decided case, or None while it is open."""
    d = record.decision
    if d is None:
        return None
    ev = record.evaluation
    policy = policy_of(service, record)
    reasons = []
    for cid in d.criteria:
        found = ev.finding(cid) if ev else None
        text = policy.criteria[cid].text if policy and cid in policy.criteria else ""
        text = text or (found.text if found else "")
        if found is not None and found.source:
            text += (
                f" (benefit plan document: {found.source}, which supersedes the coverage policy)"
            )
        if found is not None and found.reconstructed:
            text += f" (wording reconstructed from the policy revision of {found.reconstructed})"
        reasons.append(Reason(cid, plain(text), found.reason if found else ""))
    p = ev.policy if ev else None
    member = member_of(record)
    return Letter(
        insurer=service.settings.insurer_name,
        date=d.decided_at.date().isoformat(),
        auth_number=record.auth_number,
        decision=DECISION.get(d.kind, d.kind)
        + (
            f"; voided on {record.voided.at.date().isoformat()}: {record.voided.reason}"
            if record.voided
            else ""
        ),
        denied=d.kind == "deny",
        member=member,
        drug=member.drug,
        policy=_policy_line(p, record.policy_id),
        authorized=(
            authorized_text(d)
            + (
                f", for each of {ev.administrations} administrations"
                if ev is not None and ev.administrations > 1
                else ""
            )
        )
        if d.kind != "deny"
        else None,
        requested=requested_text(record, d.unit) if d.kind == "approve-modified" else None,
        window=f"{d.auth_start.isoformat()} to {d.auth_end.isoformat()}"
        if d.auth_start and d.auth_end
        else None,
        decided_by=decider_of(d.decided_by, names),
        md_reason=d.reason,
        explained_by="The payer's"
        if d.decided_by.startswith(CLIENT_DECIDER)
        else "The Medical Director's",
        reasons=reasons,
    )


def _policy_line(p: NamedPolicy | None, policy_id: str | None) -> str:
    """The policy a letter names: number, title, version and the date of service."""
    if p is None:
        return "no coverage policy (manual review)"
    line = f"{p.number or policy_id or ''} {p.title or ''} (version {p.version or '?'}"
    served = p.selected.date_of_service if p.selected else None
    return line + (f", in force on the date of service {served})" if served else ")")


# fpdf2's core fonts are Latin-1 only; these keep the meaning without bundling a TTF font.
_ASCII = str.maketrans(
    {
        "≤": "<=",
        "≥": ">=",
        "×": "x",
        "→": "->",
        "−": "-",
        "–": "-",
        "—": "-",
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "…": "...",
    }
)


def _latin1(text: str) -> str:
    return text.translate(_ASCII).encode("latin-1", "replace").decode("latin-1")


def letter_pdf(letter: Letter) -> bytes:
    pdf = FPDF(format="Letter")
    pdf.set_title(_latin1(f"Prior authorization determination {letter.auth_number}"))
    pdf.set_author(_latin1(letter.insurer))
    pdf.set_margins(20, 20, 20)
    pdf.add_page()

    def line(text: str, size: float = 11, style: str = "", gap: float = 2) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, size * 0.5, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(gap)

    line(letter.insurer, 14, "B")
    line(f"Prior authorization determination - {letter.date}", 12, "B", 6)
    line(f"Member: {letter.member.name} (member ID {letter.member.member_id})", gap=0)
    if letter.member.birth_date:
        line(f"Date of birth: {letter.member.birth_date}", gap=0)
    line(f"Requesting provider: {letter.member.provider}", gap=0)
    if letter.member.prescriber:
        line(f"Prescriber: {letter.member.prescriber}", gap=0)
    line(f"Drug: {letter.drug}", gap=0)
    line(f"Coverage policy: {letter.policy}", gap=0)
    line(f"Authorization number: {letter.auth_number}", gap=6)
    line(f"Decision: {letter.decision}", 12, "B")
    if letter.denied:
        line("We cannot approve this request for the following reasons:")
        for i, r in enumerate(letter.reasons, 1):
            line(f"{i}. Policy criterion {r.criterion}: {r.policy_text}", style="B", gap=0)
            if r.finding:
                line(f"What we found: {r.finding}", gap=1)
        if letter.md_reason:
            line(f"{letter.explained_by} explanation: {letter.md_reason}", gap=4)
        line(
            "You or your provider may appeal this decision or ask for a peer-to-peer "
            "discussion with the reviewing Medical Director. You may also send new "
            "documentation with a new request."
        )
    else:
        if letter.requested:
            line(f"Requested: {letter.requested}", gap=0)
        line(f"Authorized: {letter.authorized or 'as requested'}", gap=0)
        line(f"Authorization window: {letter.window or '-'}", gap=4)
        if letter.md_reason:
            line(f"Note: {letter.md_reason}", gap=4)
    line(f"Reviewed by: {letter.decided_by}", 10, "I")
    return bytes(pdf.output())
