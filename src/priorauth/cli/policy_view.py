"""Text view of a policy: criteria tree with evidence kinds and checks, kits, approval terms."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from priorauth.core.model import (
    AgeCheck,
    Check,
    Criterion,
    FhirPathCheck,
    HasClaimsCheck,
    HasMedicationCheck,
    Policy,
)

_KIND = {
    "documentation": "documentation required",
    "claims": "claims-history verification",
    "attestation": "prescriber attestation",
    "md_verification": "Medical Director verification",
}


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
        check = escape(_summary(c.check)) if c.check else ""
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
        f"Approval: {a.units} unit(s) for {a.days} days"
        + (f", {a.lifetime_limit} per lifetime" if a.lifetime_limit else "")
        + f"; Medical Director reviews: {a.medical_director_review}."
    )
    if p.dosing:
        t = Table(title=f"Kits ({p.dosing.ml_per_kg:g} mL/kg, {p.dosing.vial_ml:g} mL vials)")
        t.add_column("Vials", justify="right")
        t.add_column("Body weight")
        t.add_column("NDC")
        for k in p.dosing.kits:
            t.add_row(str(k.vials), k.weight, k.ndc)
        console.print(t)
