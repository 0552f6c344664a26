"""CDS Hooks cards: what the engine found in the EHR's data, in words a prescriber acts on."""

from __future__ import annotations

import uuid
from typing import Any

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.result import MET, NOT_MET, Determination

Json = dict[str, Any]
TOPIC_SYSTEM = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
SOURCE_LABEL = "priorauth payer"


def _source(code: str, display: str) -> Json:
    return {
        "label": SOURCE_LABEL,
        "topic": {"system": TOPIC_SYSTEM, "code": code, "display": display},
    }


def instructions_card(
    policy: CompiledPolicy, det: Determination, *, final_denial: bool, product: str
) -> Json:
    """An Instructions card: criteria met, criteria failing, and exactly what is missing."""
    p = policy.policy
    met, failing = [], []
    for cid, finding in det.findings.items():
        if cid not in {c.id for c in p.criteria}:
            continue  # sub-criteria are summarized by their group
        line = f"{cid}: {policy.criteria[cid].text}"
        if finding.status == MET:
            met.append(line)
        elif finding.status == NOT_MET:
            failing.append(f"{line} — {finding.reason}")
    for cid, finding in det.exclusions.items():
        if finding.status == MET:
            failing.append(f"{cid}: {policy.criteria[cid].text} — {finding.reason}")
    sections = [f"Policy {p.payer} {p.number} ({p.title}), version {p.version}."]
    if met:
        sections.append("**Already met by the record:**\n" + "\n".join(f"- {m}" for m in met))
    if failing:
        sections.append("**Not met:**\n" + "\n".join(f"- {f}" for f in failing))
    if det.missing:
        sections.append("**Missing:**\n" + "\n".join(f"- {m}" for m in det.missing))
    if final_denial:
        summary = f"{product}: not covered under {p.number} on the record as it stands"
        indicator = "warning"
    elif det.missing or failing:
        summary = f"{product}: prior authorization needed; {len(det.missing)} item(s) missing"
        indicator = "warning" if failing else "info"
    else:
        summary = f"{product}: prior authorization needed; the record meets every criterion"
        indicator = "info"
    if not final_denial and (det.missing or failing):
        sections.append("Complete the payer's questionnaire (DTR) and submit the request.")
    return {
        "uuid": str(uuid.uuid4()),
        "summary": summary[:140],
        "detail": "\n\n".join(sections),
        "indicator": indicator,
        "source": _source("documentation", "Documentation Requirements"),
    }


def prior_auth_notice(policy: CompiledPolicy, product: str) -> Json:
    """order-select: the order needs prior authorization; documentation is asked at order-sign."""
    p = policy.policy
    return {
        "uuid": str(uuid.uuid4()),
        "summary": f"{product} needs prior authorization ({p.payer} {p.number})"[:140],
        "detail": f"{p.title}. The documentation it needs is listed when the order is signed.",
        "indicator": "info",
        "source": _source("prior-auth", "Prior Authorization"),
    }
