"""Text rendering of a determination: a coloured checklist in the policy's order."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

_STYLE = {
    "met": ("✔ met", "green"),
    "not_met": ("✘ not met", "red"),
    "unknown": ("? unknown", "yellow"),
    "applies": ("✘ applies", "red"),
    "does_not_apply": ("✔ does not apply", "green"),
}
_REC = {"approve": "green", "approve-modified": "cyan", "deny": "red", "pend": "yellow"}
_KIND = {
    "documentation": "doc",
    "claims": "claims",
    "attestation": "attest",
    "md_verification": "MD",
}


def _evidence_line(e: dict[str, Any]) -> str:
    if "derived" in e:
        unit = f" {e['unit']}" if e.get("unit") else ""
        return f"{e['derived']}: {e['value']}{unit}"
    if "link_id" in e:
        return f"{e['resource']} = {e['value']}"
    if "loinc" in e:
        val = e.get("value")
        shown = f"{val:g} {e.get('unit') or ''}".strip() if val is not None else ",".join(
            c.split("|")[1] for c in e.get("coded", [])
        )
        uln = f" (ULN {e['uln']:g})" if e.get("uln") is not None else ""
        return f"{e['resource']}: {shown}{uln} on {e['date'] or 'undated'}"
    if "field" in e:
        return f"{e['resource']} {e['field']}: {e['value']}"
    return str(e.get("resource", ""))


def render_text(d: dict[str, Any], console: Console) -> None:
    p = d["policy"]
    console.print(
        Text.assemble(
            ("Policy ", "bold"), f"{p['number']} {p['title']} (version {p['version']})",
            ("  as of ", "bold"), d["as_of"], ("  expedited" if d["expedited"] else "  standard"),
        )
    )
    t = Table(show_lines=False, expand=True)
    t.add_column("Id", no_wrap=True)
    t.add_column("Criterion (policy wording)", ratio=3)
    t.add_column("Kind", no_wrap=True)
    t.add_column("Status", no_wrap=True)
    t.add_column("Reason and evidence", ratio=4)
    for cid, c in d["criteria"].items():
        label, style = _STYLE[c["status"]]
        depth = cid.count(".") if not cid.startswith("NC") else 0
        body = Text(c["reason"])
        for e in c["evidence"]:
            body.append("\n  · " + _evidence_line(e), style="dim")
        t.add_row(
            "  " * depth + cid, c["text"], _KIND.get(c["evidence_kind"] or "", ""),
            Text(label, style=style), body,
        )
    console.print(t)
    rec = d["recommendation"]
    console.print(Text.assemble(("Recommendation: ", "bold"), (rec, f"bold {_REC[rec]}")))
    if d["medical_director_review"]:
        console.print("  The policy sends this review to the Medical Director for the decision.")
    kit, req = d["kit"], d["requested"]
    kit_line = f"{kit['vials']} vials, NDC {kit['ndc']}" if kit else "none (no kit for this weight)"
    asked = f"NDC {req['ndc'] or '—'}, quantity {req['quantity'] if req['quantity'] is not None else '—'}"
    console.print(f"Kit: {kit_line}   asked for: {asked}")
    if d["authorization"]:
        a = d["authorization"]
        console.print(f"Authorization window: {a['start']} to {a['end']}")
    if d["reasons"]:
        console.print(Text("Unmet:", style="bold red"))
        for r in d["reasons"]:
            console.print(f"  {r['id']}: {r['text']} — {r['reason']}")
    if d["missing"]:
        console.print(Text("Missing documentation:", style="bold yellow"))
        for m in d["missing"]:
            console.print(f"  • {m}")
