"""DTR asks the attestations of the history kinds, and `policy show` lists them."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from priorauth.cli.policy_view import show_policy
from priorauth.core.evaluator import compile_policy
from priorauth.coverage.questions import questions
from priorauth.dtr.questionnaire import build
from priorauth.policies import parse_policy
from tests.core.test_history_kinds import EXTRA
from tests.policies.test_policy_files import SHIPPED

CLAIMS_ASKED = EXTRA.replace(
    'codes: ["hcpcs|J7185"],', 'codes: ["hcpcs|J7185"], attestation: factor-claims,'
)
TEXT = SHIPPED.replace("\nexclusions:\n", "\n" + CLAIMS_ASKED + "\nexclusions:\n", 1)


def _items(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        out[item["linkId"]] = item
        out.update(_items(item.get("item", [])))
    return out


def test_the_history_attestations_are_questions() -> None:
    assert "attestation: factor-claims" in CLAIMS_ASKED
    policy = compile_policy(parse_policy(TEXT))
    asked = {q.link_id: q for q in questions(policy)}
    assert (asked["on-prophylaxis"].criterion.id, asked["on-prophylaxis"].kind) == (
        "Z.b",
        "boolean",
    )
    assert asked["on-prophylaxis"].favourable is True
    assert (asked["factor-claims"].criterion.id, asked["factor-claims"].favourable) == ("Z.c", True)
    items = _items(build(policy, "https://payer.example")["item"])
    assert items["on-prophylaxis"]["type"] == "boolean"
    assert items["factor-claims"]["type"] == "boolean"
    # the age range is read from the patient's birth date, like min_age
    assert items["doc-Z.a"]["type"] == "date"


def test_policy_show_renders_the_new_kinds() -> None:
    console = Console(record=True, width=400)
    show_policy(parse_policy(TEXT), console)
    out = console.export_text()
    assert "age 18-65 years at service" in out
    assert (
        "has_medication: prophylactic clotting factor, >= 365 days of use, "
        "else attestation on-prophylaxis" in out
    )
    assert (
        "has_claims: clotting factor, >= 1 claim(s), within 365 days, "
        "else attestation factor-claims" in out
    )
    assert "min_age" in out  # the other kinds as before
