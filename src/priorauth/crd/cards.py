"""CDS Hooks cards: what the engine found in the EHR's data, in words a prescriber acts on."""

from __future__ import annotations

import re
import uuid
from typing import Any

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.result import MET, NOT_MET, Determination

Json = dict[str, Any]
TOPIC_SYSTEM = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
SOURCE_LABEL = "priorauth payer"
# A card type of CRD's code system (ValueSet cardType: descendants of _cardType).
COVERAGE_INFO = ("coverage-info", "Coverage Information")
_URL = re.compile(r"https?://[^\s)\"'<>]+")


def _source(topic: tuple[str, str] = COVERAGE_INFO) -> Json:
    code, display = topic
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
        "source": _source(),
    }


def prior_auth_notice(policy: CompiledPolicy, product: str) -> Json:
    """order-select: the order needs prior authorization; documentation is asked at order-sign."""
    p = policy.policy
    return {
        "uuid": str(uuid.uuid4()),
        "summary": f"{product} needs prior authorization ({p.payer} {p.number})"[:140],
        "detail": f"{p.title}. The documentation it needs is listed when the order is signed.",
        "indicator": "info",
        "source": _source(),
    }


def policy_link(policy: CompiledPolicy, base_url: str) -> str:
    """This server's page of the policy version's text (criteria as the engine reads them)."""
    p = policy.policy
    return f"{base_url.rstrip('/')}/crd/policies/{p.id}/{p.version}"


def external_reference(policy: CompiledPolicy, base_url: str) -> Json:
    """An External Reference card (CRD cards.html#external-reference): the policy applied.

    Links are absolute: the version's text here, and the publisher's page when the policy's
    `source` names one.
    """
    p = policy.policy
    links = [
        {
            "label": f"{p.payer} {p.number}, version {p.version} (criteria)"[:80],
            "url": policy_link(policy, base_url),
            "type": "absolute",
        }
    ]
    published = _URL.search(p.source)
    if published:
        links.append(
            {
                "label": f"{p.payer} {p.number}: published policy"[:80],
                "url": published.group(0).rstrip(".,;"),
                "type": "absolute",
            }
        )
    return {
        "uuid": str(uuid.uuid4()),
        "summary": f"Coverage policy {p.payer} {p.number}, version {p.version}"[:140],
        "detail": (
            f"{p.title}: version {p.version}, effective {p.effective.isoformat()}. "
            f"Source: {p.source}"
        ),
        "indicator": "info",
        "source": _source(),
        "links": links,
    }


def policy_text(policy: CompiledPolicy) -> Json:
    """What the policy link shows: the version, its source, and every criterion's wording."""
    p = policy.policy
    return {
        "id": p.id,
        "payer": p.payer,
        "number": p.number,
        "title": p.title,
        "version": p.version,
        "effective": p.effective.isoformat(),
        "retired": p.retired.isoformat() if p.retired else None,
        "source": p.source,
        "documentation": p.documentation,
        "criteria": [{"id": cid, "text": c.text} for cid, c in policy.criteria.items()],
    }
