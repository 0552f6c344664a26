"""Text rendering of a determination: a coloured checklist in the policy's own order."""

from __future__ import annotations

from typing import Any

from rich.console import Console
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
    "documentation": "documentation",
    "claims": "claims history",
    "attestation": "prescriber attestation",
    "md_verification": "Medical Director verification",
}


def _num(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def evidence_line(e: dict[str, Any]) -> str:
    """One piece of evidence as a reviewer reads it."""
    if "derived" in e:
        unit = f" {e['unit']}" if e.get("unit") else ""
        formula = f" = {e['formula']}" if e.get("formula") else ""
        return f"{e['derived']}: {_num(e['value'])}{unit}{formula}"
    if "link_id" in e:
        return f"{e['resource']}: {e['value']}"
    if "record" in e:
        title = f" {e['value']}" if e.get("value") else ""
        files = ", ".join(
            a.get("title") or a.get("url") or "inline content" for a in e.get("attachments", [])
        )
        attached = f"; attached: {files}" if files else ""
        status = e.get("status") or "no status"
        return f"{e['resource']}{title} ({status}) on {e['date'] or 'undated'}{attached}"
    if "loinc" in e or ("code" in e and "date" in e):
        if e.get("value") is not None:
            shown = f"{_num(e['value'])} {e.get('unit') or ''}".strip()
        else:
            shown = ", ".join(c.split("|")[1] for c in e.get("coded", [])) or "no value"
        uln = f" (ULN {_num(e['uln'])})" if e.get("uln") is not None else ""
        code = f"LOINC {e['loinc']}" if "loinc" in e else e["code"]
        return f"{e['resource']} {code}: {shown}{uln} on {e['date'] or 'undated'}"
    if "field" in e:
        return f"{e['resource']} {e['field']}: {e['value']}"
    if "codes" in e:
        return f"{e['resource']}: {', '.join(c.split('|')[1] for c in e['codes'])}"
    return str(e.get("resource", ""))


def render_text(d: dict[str, Any], console: Console) -> None:
    def line(*parts: str | tuple[str, str]) -> None:
        console.print(Text.assemble(*parts), soft_wrap=True)

    p = d["policy"]
    line(
        (f"{p['number']} {p['title']}", "bold"),
        f" · version {p['version']} · as of {d['as_of']} · ",
        "expedited review" if d["expedited"] else "standard review",
    )
    line()
    for cid, c in d["criteria"].items():
        label, style = _STYLE[c["status"]]
        depth = 0 if cid.startswith("NC") else cid.count(".")
        indent = "    " * depth
        kind = f"  [{_KIND[c['evidence_kind']]}]" if c.get("evidence_kind") else ""
        line(indent, (f"{label:<18}", style), (f"{cid:<8}", "bold"), c["text"], (kind, "cyan"))
        pad = indent + " " * 26
        line(pad, c["reason"])
        for e in c["evidence"]:
            line(pad, ("· " + evidence_line(e), "dim"))
    line()
    rec = d["recommendation"]
    line(("Recommendation: ", "bold"), (rec, f"bold {_REC[rec]}"))
    if d["medical_director_review"]:
        line("  The policy sends every review to the Medical Director, who decides.")
    dose, req = d["dose"], d["requested"]
    dose_text = dose["text"] if dose else "none worked out (the reviewer decides the quantity)"
    qty = _num(req["quantity"]) if req["quantity"] is not None else "—"
    unit = f" {req['unit']}" if req.get("unit") else ""
    asked = f"   asked for: NDC {req['ndc'] or '—'}, quantity {qty}{unit}"
    line(("Dose: ", "bold"), dose_text, asked)
    if d["authorization"]:
        a = d["authorization"]
        line(("Authorization window: ", "bold"), f"{a['start']} to {a['end']}")
    if d["reasons"]:
        line(("Unmet:", "bold red"))
        for r in d["reasons"]:
            line(f"  {r['id']}: {r['text']} — {r['reason']}")
    if d["missing"]:
        line(("Missing documentation:", "bold yellow"))
        for m in d["missing"]:
            line(f"  • {m}")
