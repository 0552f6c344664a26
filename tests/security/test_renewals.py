"""Approval terms as the policy states them: renewals and their limit, and no dosing table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from priorauth.demo.samples import hemgenix_request
from priorauth.policies import builtin, load_directory
from tests.security.test_lifetime import (  # noqa: F401  (make_api: the fixture)
    CERTIFICATION,
    _other_policy,
    _request_for,
    approve,
    case_id,
    make_api,
    refused,
    stored,
)

RENEWS = (
    ("  lifetime_limit: 1 ", "  # no lifetime limit "),
    ("  therapy_class: hemophilia-b-gene-therapy\n", "  therapy_class: acme-class\n"),
    (
        "  administrations: 1 ",
        "  renewal: {days: 30, administrations: 2, limit: 1}\n  administrations: 1 ",
    ),
)


def _renewal(bundle: dict[str, Any]) -> dict[str, Any]:
    claim = bundle["entry"][0]["resource"]
    claim["extension"] = [e for e in claim.get("extension", []) if e["url"] != CERTIFICATION]
    claim["extension"].append(
        {
            "url": CERTIFICATION,
            "valueCodeableConcept": {
                "coding": [{"system": "https://codesystem.x12.org/005010/1322", "code": "R"}]
            },
        }
    )
    return bundle


def test_a_renewal_gets_the_renewal_window_and_counts_against_the_renewal_limit(
    make_api: Any, tmp_path: Path
) -> None:
    (tmp_path / "renews.yaml").write_text(_other_policy("acme-renews", "J7995", *RENEWS))
    svc, client = make_api(load_directory(tmp_path, builtin()))
    first = case_id(client, _request_for("rn-0", "MRENEW", "J7995"))
    assert approve(client, first).status_code == 200
    row = stored(svc, first)
    assert row.auth_start is not None and row.auth_end is not None
    assert (row.auth_end - row.auth_start).days == 89  # the initial approval: 90 days
    assert row.lifetime_key is None  # the policy states no lifetime limit
    renewed = case_id(client, _renewal(_request_for("rn-1", "MRENEW", "J7995")))
    # The engine's recommendation carries the renewal's window too.
    ev = svc.case(renewed).evaluation
    assert ev is not None and ev.authorization is not None
    assert (ev.authorization[1] - ev.authorization[0]).days == 29
    assert approve(client, renewed).status_code == 200
    row = stored(svc, renewed)
    assert row.auth_start is not None and row.auth_end is not None
    assert (row.auth_end - row.auth_start).days == 29  # renewal.days: 30
    assert row.lifetime_key is not None and row.lifetime_key.startswith("acme-class/renewal|")
    again = case_id(client, _renewal(_request_for("rn-2", "MRENEW", "J7995")))
    refused(approve(client, again), 409, "renewed at most once")


def test_a_renewal_under_a_policy_without_renewals_counts_as_a_new_approval(
    make_api: Any,
) -> None:
    _, client = make_api()
    first = case_id(client, hemgenix_request(name="nr-0", member_id="MNORENEW"))
    assert approve(client, first).status_code == 200
    renewed = case_id(client, _renewal(hemgenix_request(name="nr-1", member_id="MNORENEW")))
    # IP0535 allows no renewal: the one-time lifetime approval is already used.
    refused(approve(client, renewed), 409, "at most once per lifetime")


def test_a_policy_without_a_dose_rule_leaves_the_quantity_to_the_reviewer(
    make_api: Any, tmp_path: Path
) -> None:
    text = _other_policy(
        "acme-no-table",
        "J7994",
        ("  unit: kit\n  method: table\n", "  unit: dose\n  method: none\n"),
        ("  lifetime_limit: 1 ", "  # no lifetime limit "),
        ("  therapy_class: hemophilia-b-gene-therapy\n", ""),
    )
    (tmp_path / "no-table.yaml").write_text(text)
    svc, client = make_api(load_directory(tmp_path, builtin()))
    cid = case_id(client, _request_for("nt-0", "MNOTABLE", "J7994"))
    case = svc.case(cid)
    assert case.evaluation is not None and case.evaluation.dose is None
    o = case.evaluation.finding("O")
    assert o is not None and o.status == "unknown" and "reviewer decides" in o.reason
    r = client.post(
        f"/api/cases/{cid}/decision", json={"decision": "approve-modified", "quantity": 2}
    )
    assert r.status_code == 200, r.text
    d = svc.case(cid).decision
    assert d is not None and (d.quantity, d.unit, d.product_ndc) == (2, "dose", None)
    r = client.post(
        f"/api/cases/{case_id(client, _request_for('nt-1', 'MNOTABLE2', 'J7994'))}/decision",
        json={"decision": "approve-modified"},
    )
    assert r.status_code == 422 and "product or the quantity" in r.text
