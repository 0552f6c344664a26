"""Routing (contract section 7): payer, plan and the version in force on the date of service."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from priorauth.cli.main import app
from priorauth.demo.samples import hemgenix_request
from priorauth.errors import PolicyInvalid
from priorauth.intake.pas_bundle import read_bundle
from priorauth.policies import PolicyLibrary, builtin, load_directory, load_library
from tests.policies.test_policy_files import SHIPPED, _variant

NAIC = "urn:oid:2.16.840.1.113883.6.300"
CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
ACME_PAYERS = f"""
payers:
  - id: acme
    name: Acme Health
    identifiers: [{{system: "{NAIC}", value: "99999"}}]
"""
runner = CliRunner()


def _acme(text: str = SHIPPED, plans: str = "") -> str:
    out = text.replace("id: cigna-ip0535", "id: acme-hemgenix").replace(
        "payer: cigna", "payer: acme"
    )
    if plans:
        out = _variant(out, "payer: acme", f"payer: acme\n  plans: [{plans}]")
    return _variant(out, "{kind: min_age, years: 18}", "{kind: min_age, years: 21}")


def _resource(bundle: dict[str, Any], kind: str, name: str | None = None) -> dict[str, Any]:
    for e in bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] == kind and (name is None or r.get("name") == name):
            return r  # type: ignore[no-any-return]
    raise AssertionError(kind)


def _request(
    payer: str | None = None, plan: str | None = None, serviced: Any = "keep", **kw: Any
) -> dict[str, Any]:
    bundle = copy.deepcopy(hemgenix_request(**kw))
    if payer is not None:
        org = _resource(bundle, "Organization", "Example Health Plan")
        org["identifier"] = [{"system": NAIC, "value": payer}]
    if plan is not None:
        _resource(bundle, "Coverage")["class"] = [
            {"type": {"coding": [{"system": CLASS, "code": "plan"}]}, "value": plan}
        ]
    item = _resource(bundle, "Claim")["item"][0]
    if serviced is None:
        item.pop("servicedDate", None)
    elif isinstance(serviced, dict):
        item.pop("servicedDate", None)
        item["servicedPeriod"] = serviced
    elif serviced != "keep":
        item["servicedDate"] = serviced
    return bundle


@pytest.fixture
def two_payers(tmp_path: Path) -> PolicyLibrary:
    (tmp_path / "payers.yaml").write_text(ACME_PAYERS)
    (tmp_path / "acme.yaml").write_text(_acme())
    return load_directory(tmp_path, builtin())


def test_overlapping_policies_are_refused_at_load_naming_both_files(tmp_path: Path) -> None:
    """A second policy for the same payer and service must not take over by file name."""
    other = SHIPPED.replace("id: cigna-ip0535", "id: aaa-first-by-name")
    (tmp_path / "aaa.yaml").write_text(other)
    with pytest.raises(PolicyInvalid) as e:
        load_library([tmp_path])
    msg = str(e.value)
    assert "aaa.yaml" in msg and "cigna-ip0535-2026-03-12.yaml" in msg
    assert "HCPCS J1411" in msg and "payer cigna" in msg


def test_policies_of_disjoint_plans_or_periods_do_not_overlap(tmp_path: Path) -> None:
    (tmp_path / "gold.yaml").write_text(_acme(plans="ACME-GOLD"))
    silver = _acme(plans="ACME-SILVER").replace("id: acme-hemgenix", "id: acme-silver")
    (tmp_path / "silver.yaml").write_text(silver)
    (tmp_path / "payers.yaml").write_text(ACME_PAYERS)
    lib = load_library([tmp_path])
    assert {"acme-hemgenix", "acme-silver"} <= set(lib.versions)
    everyone = _acme().replace("id: acme-hemgenix", "id: acme-everyone")
    (tmp_path / "everyone.yaml").write_text(everyone)
    with pytest.raises(PolicyInvalid, match="plan ACME-GOLD"):
        load_library([tmp_path])


def test_routing_by_payer_identifier(two_payers: PolicyLibrary) -> None:
    acme = two_payers.route(read_bundle(_request(payer="99999")))
    assert acme is not None and acme.policy.policy.id == "acme-hemgenix"
    assert acme.payer == "acme" and "99999" in acme.payer_basis
    cigna = two_payers.route(read_bundle(_request(payer="67369")))
    assert cigna is not None and cigna.policy.policy.id == "cigna-ip0535"
    default = two_payers.route(read_bundle(_request()))
    assert default is not None and default.policy.policy.id == "cigna-ip0535"
    assert "default payer" in default.payer_basis
    # A payer nobody knows: no policy, so the request is pended for manual review.
    assert two_payers.route(read_bundle(_request(payer="12345"))) is None


def test_the_payer_decides_the_outcome(two_payers: PolicyLibrary) -> None:
    """Acme asks for 21 years; a 20-year-old is judged by whichever policy the payer has."""
    young = {"birth_date": date(2006, 1, 1)}
    for payer, status in (("99999", "not_met"), ("67369", "met")):
        facts = read_bundle(_request(payer=payer, **young))
        policy = two_payers.for_request(facts)
        assert policy is not None
        assert policy.evaluate(facts).findings["B"].status == status


def test_plan_specific_policy(tmp_path: Path) -> None:
    (tmp_path / "payers.yaml").write_text(ACME_PAYERS)
    (tmp_path / "gold.yaml").write_text(_acme(plans="ACME-GOLD"))
    lib = load_directory(tmp_path, builtin())
    gold = lib.route(read_bundle(_request(payer="99999", plan="ACME-GOLD")))
    assert gold is not None and gold.plan == "ACME-GOLD"
    assert lib.route(read_bundle(_request(payer="99999", plan="ACME-BRONZE"))) is None
    assert lib.route(read_bundle(_request(payer="99999"))) is None  # no class: no plan


def _two_versions(tmp_path: Path) -> PolicyLibrary:
    later = _variant(SHIPPED, 'version: "2026-03-12"', 'version: "2026-06-01"')
    later = _variant(later, "effective: 2026-03-12", "effective: 2026-06-01")
    later = _variant(later, "  days: 90 ", "  days: 60 ")
    (tmp_path / "cigna-ip0535-2026-06-01.yaml").write_text(later)
    return load_library([tmp_path])


@pytest.mark.parametrize(
    ("serviced", "version", "basis"),
    [
        ("2026-05-31", "2026-03-12", "date of service"),
        ("2026-06-01", "2026-06-01", "date of service"),
        ({"start": "2026-06-15", "end": "2026-06-16"}, "2026-06-01", "date of service"),
        (None, "2026-03-12", "Claim.created"),  # created 2026-05-04
    ],
)
def test_version_in_force_on_the_date_of_service(
    tmp_path: Path, serviced: Any, version: str, basis: str
) -> None:
    lib = _two_versions(tmp_path)
    facts = read_bundle(_request(serviced=serviced))
    route = lib.route(facts)
    assert route is not None and route.policy.policy.version == version
    assert basis in route.date_basis
    # The 30-day windows still count back from the review date, not the date of service.
    assert facts.as_of == date(2026, 5, 4)
    d = route.policy.evaluate(facts)
    # The platelet count, 9 days before the review date, is within its 30-day window, even
    # when the date of service is weeks later (counted from it, the count would be stale).
    assert d.as_of == date(2026, 5, 4) and d.findings["K"].status == "met"


def test_cli_names_the_version_and_why(tmp_path: Path) -> None:
    _two_versions(tmp_path)
    path = tmp_path / "req.json"
    path.write_text(json.dumps(_request(serviced="2026-06-10")))
    r = runner.invoke(app, ["evaluate", str(path), "--format", "json", "--policies", str(tmp_path)])
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)["policy"]
    assert got["version"] == "2026-06-01"
    assert got["selected"]["date_of_service"] == "2026-06-10"
    assert "in force on the date of service 2026-06-10" in got["selected"]["why"]


def test_cli_policy_option(tmp_path: Path) -> None:
    _two_versions(tmp_path)
    path = tmp_path / "req.json"
    path.write_text(json.dumps(_request(serviced="2026-06-10")))
    base = ["evaluate", str(path), "--format", "json", "--policies", str(tmp_path)]
    r = runner.invoke(app, [*base, "--policy", "cigna-ip0535@2026-03-12"])
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)["policy"]
    assert got["version"] == "2026-03-12" and "selected" not in got
    r = runner.invoke(app, [*base, "--policy", str(tmp_path / "cigna-ip0535-2026-06-01.yaml")])
    assert r.exit_code == 0 and json.loads(r.stdout)["policy"]["version"] == "2026-06-01"
    r = runner.invoke(app, [*base, "--policy", "cigna-ip0535@1999-01-01"])
    assert r.exit_code == 3 and "2026-03-12, 2026-06-01" in r.stderr
    r = runner.invoke(app, [*base, "--policy", "nobody"])
    assert r.exit_code == 3 and "no policy 'nobody'" in r.stderr


def test_cli_policy_list(tmp_path: Path) -> None:
    _two_versions(tmp_path)
    r = runner.invoke(app, ["policy", "list", "--policies", str(tmp_path)])
    assert r.exit_code == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if "cigna-ip0535" in line]
    assert len(rows) == 6  # five shipped versions and the one in tmp_path
    # The shipped 2026-03-12 version is retired by the one in tmp_path.
    current = next(r for r in rows if "│ 2026-03-12 │ 2026-03-12 │" in r)
    assert "2026-06-01" in current and "HCPCS J1411" in current and "all" in current


def test_overlap_is_a_one_line_cli_error(tmp_path: Path) -> None:
    (tmp_path / "aaa.yaml").write_text(SHIPPED.replace("id: cigna-ip0535", "id: aaa"))
    path = tmp_path / "req.json"
    path.write_text(json.dumps(_request()))
    r = runner.invoke(app, ["evaluate", str(path), "--policies", str(tmp_path)])
    assert r.exit_code != 0 and "both cover" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_policy_can_name_cpt_codes(tmp_path: Path) -> None:
    """Services are HCPCS, CPT or NDC: a CPT-coded request routes to a CPT policy."""
    cpt_policy = _acme().replace("  hcpcs: [J1411]\n", '  hcpcs: []\n  cpt: ["96365"]\n')
    cpt_policy = cpt_policy.replace("include_product_ndcs: true", "include_product_ndcs: false")
    (tmp_path / "payers.yaml").write_text(ACME_PAYERS)
    (tmp_path / "acme-infusion.yaml").write_text(cpt_policy)
    lib = load_directory(tmp_path, builtin())
    bundle = _request(payer="99999")
    coding = _resource(bundle, "Claim")["item"][0]["productOrService"]["coding"][0]
    coding.update({"system": "http://www.ama-assn.org/go/cpt", "code": "96365"})
    _resource(bundle, "Claim")["item"][0].pop("extension")  # no kit NDC asked for
    route = lib.route(read_bundle(bundle))
    assert route is not None and route.policy.policy.id == "acme-hemgenix"
    assert "CPT 96365" in route.policy.service_codes()
    # The same code as HCPCS (another system) does not match.
    coding["system"] = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
    assert lib.route(read_bundle(bundle)) is None
