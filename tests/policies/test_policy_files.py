"""Policy files: schema validation, version selection, and the shipped IP0535 data."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from priorauth.core.model import Policy
from priorauth.errors import NoPolicyInForce, PolicyInvalid
from priorauth.policies import PolicyLibrary, builtin, load_directory, parse_policy

DATA = Path(__file__).resolve().parents[2] / "src" / "priorauth" / "policies" / "data"
SHIPPED = (DATA / "cigna-ip0535-2026-03-12.yaml").read_text(encoding="utf-8")
SCHEMA = (
    Path(__file__).resolve().parents[2] / "src" / "priorauth" / "policies" / "policy.schema.json"
)


def test_committed_json_schema_matches_the_model() -> None:
    """Policy authors validate against policy.schema.json; it must not drift from the model."""
    assert json.loads(SCHEMA.read_text()) == Policy.model_json_schema()


def test_shipped_kit_table_is_the_policys_table_1() -> None:
    p = parse_policy(SHIPPED)
    assert p.dosing is not None
    assert (p.dosing.unit, p.dosing.method, p.dosing.quantity) == ("kit", "table", 1)
    kits = p.dosing.products
    assert [k.vials for k in kits] == list(range(10, 49))
    assert kits[0].ndc == "0053-0100-10" and kits[0].weight == "46 to 50 kg"
    assert kits[5].ndc == "0053-0150-15" and kits[5].weight == "71 to 75 kg"
    assert kits[-1].ndc == "0053-0480-48" and kits[-1].weight == "236 to 240 kg"
    assert p.approval.days == 90 and p.approval.lifetime_limit == 1
    assert p.approval.medical_director_review == "all"
    assert p.effective == date(2026, 3, 12)


def _variant(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    check: {kind: min_age, years: 18}\n", "", "a leaf has a check"),
        ("kind: min_age", "kind: telepathy", "does not match any of the expected tags"),
        ("  - id: B\n", "  - id: A\n", "appears twice"),
        ("weight_from: N\n          sex_from: A", "weight_from: Z\n          sex_from: A", "Z"),
        ("weight_from: N\n          sex_from: A", "weight_from: E\n          sex_from: A", "group"),
        ('version: "2026-03-12"\n', "", "version"),
        ("years: 18", "years: -1", "greater than or equal"),
        ('ndc: "0053-0100-10"', 'ndc: "53-100-10"', "is not a 4-4-2"),
        ("op: le\n      value: 2\n", "op: le\n", "exactly one of value or uln_multiple"),
    ],
)
def test_invalid_policy_files_are_refused(old: str, new: str, message: str) -> None:
    lib = PolicyLibrary()
    with pytest.raises(PolicyInvalid, match=message):
        lib.add(parse_policy(_variant(SHIPPED, old, new), "variant.yaml"))


def test_not_yaml_is_refused() -> None:
    with pytest.raises(PolicyInvalid, match="not YAML"):
        parse_policy("id: [unclosed", "broken.yaml")


def test_version_in_force_on_the_review_date(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(SHIPPED)
    later = _variant(SHIPPED, 'version: "2026-03-12"', 'version: "2027-01-01"')
    later = _variant(later, "effective: 2026-03-12", "effective: 2027-01-01")
    later = _variant(later, "  days: 90 ", "  days: 60 ")
    (tmp_path / "b.yaml").write_text(later)
    lib = load_directory(tmp_path)
    assert lib.in_force("cigna-ip0535", date(2026, 12, 31)).policy.approval.days == 90
    assert lib.in_force("cigna-ip0535", date(2027, 1, 1)).policy.approval.days == 60
    with pytest.raises(NoPolicyInForce, match="2026-03-11"):
        lib.in_force("cigna-ip0535", date(2026, 3, 11))


def test_retired_version_is_not_in_force(tmp_path: Path) -> None:
    retired = _variant(
        SHIPPED, "effective: 2026-03-12\n", "effective: 2026-03-12\nretired: 2026-06-01\n"
    )
    lib = PolicyLibrary()
    lib.add(parse_policy(retired))
    assert lib.in_force("cigna-ip0535", date(2026, 5, 31)).policy.version == "2026-03-12"
    with pytest.raises(NoPolicyInForce):
        lib.in_force("cigna-ip0535", date(2026, 6, 1))


def test_a_new_policy_is_a_data_file(tmp_path: Path) -> None:
    """Another payer's policy, written as data only, is loaded and judged by the same engine."""
    other = (
        SHIPPED.replace("id: cigna-ip0535", "id: acme-hemgenix")
        .replace("payer: Cigna", "payer: Acme")
        .replace("payer: cigna", "payer: acme")
    )
    other = _variant(other, "{kind: min_age, years: 18}", "{kind: min_age, years: 21}")
    (tmp_path / "acme.yaml").write_text(other)
    lib = load_directory(tmp_path, builtin())
    assert set(lib.versions) == set(builtin().versions) | {"acme-hemgenix"}
    from tests.core.factories import facts

    f = facts(patient={"birth_date": date(2006, 1, 1)})  # 20 years old
    assert lib.in_force("cigna-ip0535", f.as_of).evaluate(f).findings["B"].status == "met"
    assert lib.in_force("acme-hemgenix", f.as_of).evaluate(f).findings["B"].status == "not_met"


def test_every_shipped_code_list_names_its_system() -> None:
    """A bare code means the kind's default system; the shipped files say which, every time."""
    from priorauth.core.codes import code_lists, is_bare
    from priorauth.core.model import walk

    files = sorted(p for p in DATA.glob("*.yaml") if p.name != "payers.yaml")
    assert files
    for f in files:
        p = parse_policy(f.read_text(encoding="utf-8"), f.name)
        checked = 0
        for c in walk(p.criteria + p.exclusions):
            if c.check is None:
                continue
            for path, tokens, _ in code_lists(c.check.model_dump()):
                bare = [t for t in tokens if is_bare(t)]
                assert not bare, f"{f.name} {c.id} {path}: {bare}"
                checked += 1
        assert checked >= 5, f.name  # the lists were found, not skipped
    for name, codes in builtin().codesets.get("hemophilia-b", {}).items():
        if name != "hepatitis-b-c-antivirals":  # medication names, not codes
            assert all(not is_bare(t) for t in codes), name


def test_a_bare_code_and_its_system_form_judge_alike() -> None:
    """`loinc|3187-2` and `3187-2` compile to the same key: naming the systems changed nothing."""
    from priorauth.core.evaluator import CompiledPolicy
    from tests.core.factories import condition, facts, obs

    explicit = CompiledPolicy(parse_policy(SHIPPED))
    bare = CompiledPolicy(
        parse_policy(SHIPPED.replace('"loinc|', '"').replace('"icd10cm|', '"'), "bare.yaml")
    )
    for f in (
        facts(),
        facts(replace={"3187-2": [obs("3187-2", 4.0, "%")], "29463-7": None}),
        facts(diagnoses=("D68.1",), conditions=(condition("B18.1"),), taxonomies=("208D00000X",)),
    ):
        a, b = explicit.evaluate(f), bare.evaluate(f)
        assert a.recommendation == b.recommendation
        for cid, fa in a.findings.items():
            fb = b.findings[cid]
            assert (fa.status, fa.reason) == (fb.status, fb.reason), cid
