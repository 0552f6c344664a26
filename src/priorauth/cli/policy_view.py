"""Text view of a policy: criteria tree with evidence kinds and checks, dosing, approval terms."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from priorauth.core.model import (
    AgeCheck,
    Check,
    ClinicalRecordCheck,
    Criterion,
    DocumentCheck,
    Dosing,
    FhirPathCheck,
    HasClaimsCheck,
    HasMedicationCheck,
    LabSeriesCheck,
    Policy,
)

_KIND = {
    "documentation": "documentation required",
    "claims": "claims-history verification",
    "attestation": "prescriber attestation",
    "md_verification": "Medical Director verification",
}


def _check(c: Criterion) -> str:
    """The check's kind, with what the records kinds look for."""
    check = c.check
    if check is None:
        return ""
    if isinstance(check, LabSeriesCheck):
        window = f" in {check.window_days} days" if check.window_days is not None else ""
        return (
            f"lab_series: latest {check.count} < {check.cutoff:g} {check.units.canonical}, "
            f"{check.min_gap_days} days apart{window}"
        )
    if isinstance(check, ClinicalRecordCheck):
        return f"clinical_record: {'/'.join(check.resources)} {', '.join(check.codes)}"
    if isinstance(check, DocumentCheck):
        return f"document: {', '.join(check.codes) or 'any type'}"
    return _summary(check)


def _summary(check: Check) -> str:
    """The kind, and for the history kinds what they look for."""
    kind = check.kind
    if isinstance(check, AgeCheck):
        low, high = check.min_years, check.max_years
        span = (
            f"{low}-{high}"
            if low is not None and high is not None
            else (f">= {low}" if low is not None else f"<= {high}")
        )
        return f"{kind} {span} years at {check.at}"
    if isinstance(check, HasMedicationCheck | HasClaimsCheck):
        parts = [check.label]
        if isinstance(check, HasClaimsCheck):
            parts.append(f">= {check.min_count} claim(s)")
            if check.min_span_days is not None:
                parts.append(f"over >= {check.min_span_days} days")
        elif check.min_duration_days is not None:
            parts.append(f">= {check.min_duration_days} days of use")
        if check.lookback_days is not None:
            parts.append(f"within {check.lookback_days} days")
        if check.attestation:
            parts.append(f"else attestation {check.attestation}")
        return f"{kind}: {', '.join(parts)}"
    if isinstance(check, FhirPathCheck):
        return f"{kind} (escape hatch): {check.label}"
    return kind


def _add(node: Tree, c: Criterion) -> None:
    label = f"[bold]{c.id}[/bold] {c.text}"
    if c.children:
        how = (c.combine or "").upper().replace("_", " ")
        if c.at_least is not None:
            how += f" {c.at_least}"
        label += f"  [dim]({how})[/dim]"
    else:
        kind = _KIND.get(c.evidence or "", "")
        check = escape(_check(c))
        label += f"  [cyan]\\[{kind}][/cyan] [dim]{check}[/dim]"
    branch = node.add(label)
    for ch in c.children:
        _add(branch, ch)


def show_policy(p: Policy, console: Console) -> None:
    console.print(
        f"[bold]{p.payer} {p.number}[/bold] {p.title}\n"
        f"id {p.id}, version {p.version}, effective {p.effective.isoformat()}"
        + (f", retired {p.retired.isoformat()}" if p.retired else "")
        + f"\nsource: {p.source}"
    )
    root = Tree("[bold]Approve when ALL of:[/bold]")
    for c in p.criteria:
        _add(root, c)
    console.print(root)
    if p.exclusions:
        ex = Tree("[bold]Not covered (deny when any applies):[/bold]")
        for c in p.exclusions:
            _add(ex, c)
        console.print(ex)
    a = p.approval
    console.print(
        f"Approval: {a.administrations} administration(s) for {a.days} days"
        + (f", {a.lifetime_limit} per lifetime" if a.lifetime_limit else "")
        + (f" in class {a.therapy_class}" if a.therapy_class else "")
        + (
            f"; renewals of {a.renewal.days} days"
            + (f" (at most {a.renewal.limit})" if a.renewal.limit else "")
            if a.renewal
            else ""
        )
        + f"; Medical Director reviews: {a.medical_director_review}."
    )
    d = p.dosing
    if d:
        console.print(f"Dosing: {dosing_summary(d)}")
        if d.products:
            t = Table(title=f"Products ({d.unit})")
            t.add_column("Vials", justify="right")
            t.add_column("Holds", justify="right")
            t.add_column("Body weight")
            t.add_column("NDC")
            for k in d.products:
                held = d.contents(k)
                unit = d.per_kg.unit if d.per_kg else ""
                t.add_row(
                    str(d.vial_count(k) or ""),
                    f"{held:g} {unit}" if held is not None else "",
                    k.weight or "",
                    k.ndc,
                )
            console.print(t)


def dosing_summary(d: Dosing) -> str:
    """One line: how the policy finds the right quantity, in its billing unit."""
    per = f"{d.per_kg.amount:g} {d.per_kg.unit}/kg" if d.per_kg else ""
    vial = f" in {d.vial.amount:g} {d.vial.unit} vials" if d.vial else ""
    code = f", billed as {d.billing_code}" if d.billing_code else ""
    if d.method == "table":
        return f"{per}{vial}: {d.quantity or 1:g} {d.unit} a dose, chosen by weight{code}"
    if d.method == "per_kg":
        return f"{per}{vial}, billed in {d.unit}{code}"
    if d.method == "fixed":
        return f"{d.quantity or 0:g} {d.unit} a dose{code}"
    return f"the reviewer decides the quantity (billed in {d.unit}){code}"
