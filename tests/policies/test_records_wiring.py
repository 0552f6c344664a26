"""The records kinds beyond the core: DTR questions and pre-fill, policy show, lint, prefetch."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from priorauth.cli.main import app
from priorauth.cli.policy_view import show_policy
from priorauth.core.evaluator import compile_policy
from priorauth.coverage.questions import questions
from priorauth.crd.prefetch import observation_codes
from priorauth.dtr import expressions
from priorauth.dtr.questionnaire import build
from priorauth.policies import parse_policy
from tests.policies.test_policy_files import SHIPPED

LAB = "http://lab.example.org/codes"
BETHESDA = '{canonical: "[beth\'U]/mL", factors: {"[beth\'U]/mL": 1}}'
KINDS = {
    "ZA": (
        '{kind: lab_series, label: Inhibitor, codes: ["acme|INH"], units: '
        + BETHESDA
        + ", cutoff: 0.6, count: 2, min_gap_days: 7, window_days: 365}"
    ),
    "ZB": (
        '{kind: clinical_record, label: hepatic ultrasound, codes: ["cpt|76705"], '
        "window_days: 183, attestation: liver-imaging-done}"
    ),
    "ZC": (
        '{kind: document, label: chart notes, codes: ["loinc|11506-3"], '
        "attestation: chart-notes-on-file}"
    ),
}


def _text(extra: str = "") -> str:
    zs = "".join(
        f"  - id: {cid}\n    text: Criterion {cid}.\n    evidence: documentation\n"
        f"    check: {check}\n    request: {cid}'s evidence.\n"
        + (f"    question: Is {cid} on file?\n" if "attestation" in check else "")
        for cid, check in KINDS.items()
    )
    text = SHIPPED.replace("\nexclusions:\n", "\n" + zs + "\nexclusions:\n", 1)
    return text.replace("codesets_from:", f'systems: {{acme: "{LAB}"}}\ncodesets_from:', 1) + extra


POLICY = compile_policy(parse_policy(_text()))


def test_dtr_asks_the_attestation_of_a_records_kind() -> None:
    asked = {q.link_id: q for q in questions(POLICY)}
    assert asked["liver-imaging-done"].criterion.id == "ZB"
    assert asked["chart-notes-on-file"].criterion.id == "ZC"
    assert asked["liver-imaging-done"].kind == "boolean"
    assert asked["liver-imaging-done"].favourable is True
    form = build(POLICY, "http://payer.example")
    link_ids = set()

    def walk(items: list[dict]) -> None:  # type: ignore[type-arg]
        for item in items:
            link_ids.add(item["linkId"])
            walk(item.get("item", []))

    walk(form["item"])
    assert {"liver-imaging-done", "chart-notes-on-file"} <= link_ids


def test_lab_series_prefill_and_prefetch_use_the_named_system() -> None:
    z1 = POLICY.criteria["ZA"]
    pre = expressions.prefill(z1, POLICY.policy.systems)
    assert pre is not None
    _, var, _ = pre
    assert var is not None
    assert f"code={LAB}|INH" in var["valueExpression"]["expression"]
    # A shipped LOINC code keeps its query token; the local code is asked in its system.
    codes = observation_codes([POLICY])
    assert "http://loinc.org|3187-2" in codes and f"{LAB}|INH" in codes


def test_policy_show_renders_the_records_kinds() -> None:
    out = StringIO()
    show_policy(POLICY.policy, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "lab_series: latest 2 < 0.6 [beth'U]/mL, 7 days apart in 365 days" in text
    assert "clinical_record: Procedure/DiagnosticReport/ImagingStudy cpt|76705" in text
    assert "document: loinc|11506-3" in text


runner = CliRunner()


def test_policy_check_warns_for_a_bare_code_list(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_text().replace('codes: ["loinc|3187-2"]', 'codes: ["3187-2"]'))
    r = runner.invoke(app, ["policy", "check", str(path)])
    lines = [line for line in r.stdout.splitlines() if "warning:" in line]
    assert r.exit_code == 0, r.stdout  # a warning does not fail the check
    (warning,) = lines
    assert ": D: warning: code list does not name its system: write 'loinc|3187-2'" in warning
    assert "1 warning(s)" in r.stdout


def test_policy_check_validates_codes_in_their_named_system(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_text().replace('"cpt|76705"', '"icd10cm|76705"'))
    r = runner.invoke(app, ["policy", "check", str(path)])
    assert r.exit_code == 1
    assert "ZB: 76705 is not an ICD-10-CM code or prefix" in r.stdout
