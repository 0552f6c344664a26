"""`priorauth policy check`: each lint, with the file, line and criterion it names."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from priorauth.cli.main import app
from priorauth.policies.lint import loinc_ok
from tests.policies.test_policy_files import DATA, SHIPPED, _variant

runner = CliRunner()


def _check(tmp_path: Path, text: str, name: str = "p.yaml") -> tuple[int, list[str]]:
    path = tmp_path / name
    path.write_text(text)
    r = runner.invoke(app, ["policy", "check", str(path)])
    return r.exit_code, r.stdout.splitlines()


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_the_shipped_files_are_clean() -> None:
    files = sorted(str(p) for p in DATA.glob("*.yaml") if p.name != "payers.yaml")
    r = runner.invoke(app, ["policy", "check", *files])
    assert r.exit_code == 0, r.stdout
    assert f"{len(files)} file(s) checked: no problems\n" == r.stdout.splitlines()[-1] + "\n"
    assert len(files) >= 9  # IP0535's five versions and the other payers' policies


@pytest.mark.parametrize(
    ("old", "new", "criterion", "message", "at"),
    [
        # weight_from pointing at the platelet count: "231 kg needs 12 vials" went unnoticed
        (
            "check: {kind: dose_by_weight, weight_from: N}",
            "check: {kind: dose_by_weight, weight_from: K}",
            "O",
            "weight_from names K, which does not measure a body weight in kg",
            "weight_from: K",
        ),
        (
            "weight_from: N\n          sex_from: A",
            "weight_from: N\n          sex_from: B",
            "L.i",
            "sex_from names B, which is not a sex check",
            "sex_from: B",
        ),
        (
            "check: {kind: attestation, link_id: no-uncontrolled-hiv, expect: true}",
            "check: {kind: attestation, link_id: fix-exposure-days, expect: true}",
            "H",
            "linkId fix-exposure-days is asked as boolean here but as number in E.i",
            "link_id: fix-exposure-days, expect",
        ),
        (
            'codes: ["loinc|3187-2"]',
            'codes: ["loinc|3187-3"]',
            "D",
            "3187-3 is not a valid LOINC code",
            None,
        ),
        (
            'codes: ["icd10cm|D67"]',
            'codes: ["icd10cm|67D"]',
            "DX",
            "67D is not an ICD-10-CM code",
            None,
        ),
        (
            'codes: ["loinc|777-3"]\n      units: {canonical: "10*9/L", factors: '
            '{"10*9/L": 1, "10*3/uL": 1, "10*3/mm3": 1}}\n',
            'codes: ["loinc|777-3"]\n',
            "K",
            "an absolute threshold needs units",
            None,
        ),
        (
            'codes: ["loinc|777-3"]\n      units: {canonical: "10*9/L", factors: '
            '{"10*9/L": 1, "10*3/uL": 1, "10*3/mm3": 1}}\n      window_days: 30',
            'codes: ["loinc|777-3"]\n      units: {canonical: "10*9/L", factors: '
            '{"10*9/L": 1, "10*3/uL": 1, "10*3/mm3": 1}}\n      window_days: 0',
            "K",
            "a window must be at least one day",
            None,
        ),
    ],
)
def test_each_lint_names_file_line_and_criterion(
    tmp_path: Path,
    old: str,
    new: str,
    criterion: str,
    message: str,
    at: str | None,
) -> None:
    text = _variant(SHIPPED, old, new).replace("id: cigna-ip0535", "id: lint-test")
    text = text.replace("payer: cigna", "payer: lint")
    code, out = _check(tmp_path, text)
    assert code == 1
    hits = [line for line in out if message in line]
    assert hits, out
    file, line, cid, _ = hits[0].split(":", 3)
    assert file.endswith("p.yaml") and cid.strip() == criterion
    if at is not None:
        assert int(line) == _line_of(text, at)


def test_every_schema_error_at_once_with_lines(tmp_path: Path) -> None:
    text = _variant(SHIPPED, "{kind: min_age, years: 18}", "{kind: min_age, years: -1}")
    text = _variant(text, 'ndc: "0053-0100-10"', 'ndc: "53-100-10"')
    code, out = _check(tmp_path, text)
    assert code == 1
    assert any(": B: criteria." in line and "greater than or equal" in line for line in out), out
    kit = [line for line in out if "dosing.products.0.ndc" in line]
    assert kit and int(kit[0].split(":")[1]) == _line_of(text, 'ndc: "53-100-10"')


def test_overlap_with_the_library_is_reported(tmp_path: Path) -> None:
    text = SHIPPED.replace("id: cigna-ip0535", "id: copycat")
    code, out = _check(tmp_path, text)
    assert code == 1 and any("both cover HCPCS J1411" in line for line in out), out


def test_not_yaml(tmp_path: Path) -> None:
    code, out = _check(tmp_path, "id: [unclosed\n")
    assert code == 1 and "not YAML" in out[0] and out[0].startswith(str(tmp_path))


@pytest.mark.parametrize(
    ("code", "ok"),
    [("3187-2", True), ("29463-7", True), ("1742-6", True), ("3187-3", False), ("x-1", False)],
)
def test_loinc_check_digit(code: str, ok: bool) -> None:
    assert loinc_ok(code) is ok


def test_a_malformed_codeset_reference_is_a_finding_not_a_traceback(tmp_path: Path) -> None:
    text = _variant(
        SHIPPED,
        "hcpcs: {codeset: hemophilia-b-gene-therapy-hcpcs}",
        "hcpcs: {codeset: [J1411]}",
    )
    code, out = _check(tmp_path, text)
    assert code == 1 and "codeset reference names one list" in out[0], out


@pytest.mark.parametrize(
    ("combine", "n", "message"),
    [
        ("at_least", 4, "at_least is 4, but must be 1 to 3"),
        ("at_least", None, "combine: at_least needs at_least: N"),
        ("none", 1, "at_least is given without combine: at_least"),
    ],
)
def test_a_bad_at_least_names_file_line_and_criterion(
    tmp_path: Path, combine: str, n: int | None, message: str
) -> None:
    from tests.core.test_combinators import policy_text

    text = policy_text(combine, n).replace("id: cigna-ip0535", "id: lint-test")
    code, out = _check(tmp_path, text)
    assert code == 1
    hits = [line for line in out if message in line]
    assert hits, out
    file, line, cid, _ = hits[0].split(":", 3)
    assert file.endswith("p.yaml") and cid.strip() == "Z"
    assert int(line) == _line_of(text, "  - id: Z\n")
