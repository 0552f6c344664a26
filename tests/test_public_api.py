"""The public Python API: `evaluate`, `load_policies`, `to_dict` and the exported types."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from types import MappingProxyType

import orjson
import pytest

import priorauth
from priorauth.demo.samples import Lab, claims_ndjson, hemgenix_request
from priorauth.policies import builtin
from priorauth.report import determination_to_dict

SHIPPED = Path(priorauth.__file__).parent / "policies" / "data"
PRIOR_GENE_THERAPY = ("http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "J1414")


def test_bundle_as_bytes_text_or_object_gives_one_determination() -> None:
    bundle = hemgenix_request(name="api")
    raw = orjson.dumps(bundle)
    forms = (raw, raw.decode(), bytearray(raw), bundle, MappingProxyType(bundle))
    results = [priorauth.evaluate(b) for b in forms]
    assert all(isinstance(d, priorauth.Determination) for d in results)
    assert {d.recommendation for d in results} == {"approve"}
    assert len({orjson.dumps(priorauth.to_dict(d)) for d in results}) == 1
    assert orjson.dumps(bundle) == raw  # the caller's object is left as it was


@pytest.mark.parametrize(
    ("kwargs", "recommendation", "unmet"),
    [
        ({"ndc": "0053-0170-17"}, "approve-modified", []),
        ({"labs": {"1920-8": Lab(150, "U/L", uln=48, days_before=3)}}, "deny", ["I.ii"]),
        ({"labs": {"777-3": None}}, "pend", []),
    ],
)
def test_each_recommendation_with_its_reasons(
    kwargs: dict, recommendation: str, unmet: list[str]
) -> None:
    d = priorauth.evaluate(orjson.dumps(hemgenix_request(name="api", **kwargs)))
    assert d.recommendation == recommendation
    assert [r.id for r in d.reasons] == unmet
    assert d.policy_id == "cigna-ip0535" and d.as_of == date(2026, 5, 4)


def _claims_forms(tmp_path: Path) -> list[object]:
    text = claims_ndjson("MAPI", PRIOR_GENE_THERAPY)
    path = tmp_path / "claims.ndjson"
    path.write_text(text)
    return [text.encode(), text, path, [json.loads(line) for line in text.splitlines()]]


def test_claims_as_bytes_text_path_or_objects(tmp_path: Path) -> None:
    bundle = orjson.dumps(hemgenix_request(name="api", member_id="MAPI"))
    assert priorauth.evaluate(bundle).findings["C"].status != "not_met"
    for claims in _claims_forms(tmp_path):
        d = priorauth.evaluate(bundle, claims=claims)  # type: ignore[arg-type]
        assert d.recommendation == "deny", type(claims)
        assert d.findings["C"].status == "not_met"


def test_another_members_claims_do_not_count(tmp_path: Path) -> None:
    bundle = orjson.dumps(hemgenix_request(name="api", member_id="SOMEONE-ELSE"))
    d = priorauth.evaluate(bundle, claims=claims_ndjson("MAPI", PRIOR_GENE_THERAPY))
    assert d.findings["C"].status != "not_met"


def test_as_of_overrides_the_review_date() -> None:
    bundle = orjson.dumps(hemgenix_request(name="api", labs={"777-3": None}))
    d = priorauth.evaluate(bundle, as_of=date(2026, 6, 30))
    assert d.as_of == date(2026, 6, 30)
    assert priorauth.to_dict(d)["as_of"] == "2026-06-30"


def test_to_dict_is_the_documented_json() -> None:
    bundle = hemgenix_request(name="api")
    d = priorauth.evaluate(bundle)
    lib = builtin()
    policy = lib.in_force("cigna-ip0535", d.as_of)
    assert priorauth.to_dict(d) == determination_to_dict(d, policy)
    assert priorauth.to_dict(d)["schema"] == "priorauth.determination/1"


@pytest.mark.parametrize(
    ("bundle", "error"),
    [
        (b"{nope", priorauth.InvalidRequest),
        ('{"resourceType": "Patient"}', priorauth.InvalidRequest),
        ({"resourceType": "Bundle"}, priorauth.InvalidRequest),
        ([1, 2], priorauth.InvalidRequest),
        (None, priorauth.InvalidRequest),
    ],
)
def test_a_bad_bundle_raises_invalid_request(bundle: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        priorauth.evaluate(bundle)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "claims",
    [b'{"resourceType": "Patient"}\n', "not json\n", [{"resourceType": "Patient"}], [{1, 2}]],
)
def test_bad_claims_raise_invalid_claims(claims: object) -> None:
    bundle = orjson.dumps(hemgenix_request(name="api"))
    with pytest.raises(priorauth.InvalidClaims):
        priorauth.evaluate(bundle, claims=claims)  # type: ignore[arg-type]


def test_an_unreadable_claims_path_raises_invalid_claims(tmp_path: Path) -> None:
    bundle = orjson.dumps(hemgenix_request(name="api"))
    with pytest.raises(priorauth.InvalidClaims, match="cannot read"):
        priorauth.evaluate(bundle, claims=tmp_path / "missing.ndjson")


def test_a_request_no_policy_covers_raises_no_policy_in_force() -> None:
    b = hemgenix_request(name="other")
    item = b["entry"][0]["resource"]["item"][0]
    item["productOrService"]["coding"][0]["code"] = "J7201"
    item.pop("extension")
    with pytest.raises(priorauth.NoPolicyInForce, match="no loaded policy"):
        priorauth.evaluate(b)
    # Its date of service (2024-05-22) comes before the first version of the policy.
    early = hemgenix_request(name="early", as_of=date(2024, 5, 1))
    with pytest.raises(priorauth.PolicyError):
        priorauth.evaluate(early)


def test_validate_checks_the_fhir_models() -> None:
    b = hemgenix_request(name="api")
    b["entry"][0]["resource"]["notAFhirElement"] = 1
    assert priorauth.evaluate(b).recommendation == "approve"  # the engine does not read it
    with pytest.raises(priorauth.InvalidRequest):
        priorauth.evaluate(b, validate=True)


def _later_version(tmp_path: Path) -> Path:
    """The shipped policy again, as a version taking effect on 2026-06-01."""
    text = (SHIPPED / "cigna-ip0535-2026-03-12.yaml").read_text()
    text = text.replace('version: "2026-03-12"', 'version: "2026-06-01"')
    text = text.replace("effective: 2026-03-12", "effective: 2026-06-01")
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "later.yaml").write_text(text)
    return folder


def test_load_policies_adds_files_and_folders_to_the_shipped_ones(tmp_path: Path) -> None:
    folder = _later_version(tmp_path)
    for where in (folder, folder / "later.yaml", str(folder)):
        lib = priorauth.load_policies(where)
        assert isinstance(lib, priorauth.PolicyLibrary)
        versions = [v.policy.version for v in lib.versions["cigna-ip0535"]]
        assert versions[-2:] == ["2026-03-12", "2026-06-01"]
    bundle = orjson.dumps(hemgenix_request(name="api"))  # date of service 2026-05-25
    early = priorauth.evaluate(bundle, policies=lib)
    # The version in force on the date of service (2026-06-10), not on the review date.
    later = orjson.dumps(hemgenix_request(name="api", as_of=date(2026, 5, 20)))
    late = priorauth.evaluate(later, policies=lib)
    assert (early.policy_version, late.policy_version) == ("2026-03-12", "2026-06-01")
    assert priorauth.to_dict(late, lib)["policy"]["version"] == "2026-06-01"
    with pytest.raises(priorauth.NoPolicyInForce):
        priorauth.to_dict(late)  # the shipped library has no such version


def test_load_policies_without_the_shipped_ones(tmp_path: Path) -> None:
    lib = priorauth.load_policies(_later_version(tmp_path), shipped=False)
    assert [v.policy.version for v in lib.versions["cigna-ip0535"]] == ["2026-06-01"]
    assert priorauth.load_policies(shipped=False).versions == {}


def test_an_invalid_policy_file_raises_policy_invalid(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\npayer: [unclosed\n")
    with pytest.raises(priorauth.PolicyInvalid, match=r"bad\.yaml"):
        priorauth.load_policies(bad)
    bad.write_text("id: x\n")
    with pytest.raises(priorauth.PolicyInvalid, match=r"bad\.yaml"):
        priorauth.load_policies(bad)


def test_all_names_resolve_and_others_do_not() -> None:
    for name in priorauth.__all__:
        assert getattr(priorauth, name) is not None, name
        assert name in dir(priorauth)
    assert issubclass(priorauth.InvalidClaims, priorauth.InvalidRequest)
    assert issubclass(priorauth.NoPolicyInForce, priorauth.PriorauthError)
    with pytest.raises(AttributeError):
        _ = priorauth.read_bundle  # type: ignore[attr-defined]


def test_import_is_cheap_and_evaluate_needs_no_service_stack() -> None:
    """`import priorauth` loads no third-party package; evaluate() loads no SQL, HTTP or FHIR
    model library, nor the FHIRPath engine (checked in a fresh interpreter, not timed)."""
    probe = """
import json, sys
import priorauth
after_import = sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "orjson", "yaml"))
from priorauth.demo.samples import hemgenix_request
priorauth.evaluate(hemgenix_request(name="probe"))
heavy = ("sqlalchemy", "fastapi", "starlette", "fhir", "typer", "rich", "jinja2", "httpx",
         "fhirpathpy")
after_evaluate = sorted({m.split(".")[0] for m in sys.modules} & set(heavy))
print(json.dumps([after_import, after_evaluate]))
"""
    r = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [[], []]
