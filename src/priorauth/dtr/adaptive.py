"""Which questions can still change the determination, judged by the engine itself."""

from __future__ import annotations

from typing import Any

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import Facts
from priorauth.core.result import NOT_MET, UNKNOWN, Determination
from priorauth.coverage.judging import answered, final_denial
from priorauth.coverage.questions import Question, questions

Json = dict[str, Any]


def _parents(policy: CompiledPolicy) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}

    def visit(c: Any, chain: list[str]) -> None:
        out[c.id] = chain
        for ch in c.children:
            visit(ch, [*chain, c.id])

    for c in policy.policy.criteria + policy.policy.exclusions:
        visit(c, [])
    return out


def open_questions(
    policy: CompiledPolicy, facts: Facts, det: Determination, limit: int | None = None
) -> list[Question]:
    """Unanswered questions whose answer would decide a criterion that is still open.

    A criterion is open when it and every group above it are `unknown`; the
    engine is asked what each possible answer would make of it.
    """
    if det.recommendation != "pend":
        return []
    status = {**det.findings, **det.exclusions}
    parents = _parents(policy)
    out = []
    for q in questions(policy):
        cid = q.criterion.id
        if q.link_id in facts.attestations or status[cid].status != UNKNOWN:
            continue
        if any(status[p].status != UNKNOWN for p in parents[cid]):
            continue
        candidates = (q.favourable, 0) if q.kind == "integer" else (True, False)
        for value in candidates:
            after = policy.evaluate(answered(facts, q.link_id, value))
            if {**after.findings, **after.exclusions}[cid].status != UNKNOWN:
                out.append(q)
                break
        if limit is not None and len(out) >= limit:
            break  # the adaptive form asks one question at a time
    return out


def payer_answers(policy: CompiledPolicy, facts: Facts, det: Determination) -> dict[str, bool]:
    """The payer's claims history as pre-filled answers, for the prescriber to confirm."""
    out: dict[str, bool] = {}
    for q in questions(policy):
        check = q.criterion.check
        if check is None or check.kind != "no_prior_claims" or q.link_id in facts.attestations:
            continue
        finding = det.findings.get(q.criterion.id) or det.exclusions.get(q.criterion.id)
        if finding is not None and finding.status == NOT_MET:
            out[q.link_id] = False  # a paid gene-therapy claim is on file
        elif facts.claims is not None and facts.claims.available:
            out[q.link_id] = True  # claims on file, none for the listed codes
    return out


def response_items(
    form_items: list[Json], answers: dict[str, Any], every_item: bool = False
) -> list[Json]:
    """QuestionnaireResponse items for the answers, nested as the form nests them.

    `every_item`: the unanswered questions too (a draft for the EHR's DTR to fill in).
    """
    out: list[Json] = []
    for item in form_items:
        link = item["linkId"]
        if item["type"] == "group":
            inner = response_items(item.get("item", []), answers, every_item)
            if inner:
                out.append({"linkId": link, "text": item.get("text"), "item": inner})
        elif link not in answers:
            if every_item:
                out.append({"linkId": link, "text": item.get("text")})
        else:
            value = answers[link]
            key = {"boolean": "valueBoolean", "integer": "valueInteger", "decimal": "valueDecimal"}
            out.append(
                {
                    "linkId": link,
                    "text": item.get("text"),
                    "answer": [{key.get(item["type"], "valueString"): value}],
                }
            )
    return out


def form_links(items: list[Json]) -> list[str]:
    return [i["linkId"] for i in walk_items(items)]


def walk_items(items: list[Json]) -> list[Json]:
    out = []
    for item in items:
        out.append(item)
        out.extend(walk_items(item.get("item", [])))
    return out


__all__ = [
    "answered",
    "final_denial",
    "form_links",
    "open_questions",
    "payer_answers",
    "response_items",
    "walk_items",
]
