"""The one-approval-per-member rule: revisions, member identity, withdrawals, voids, classes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from priorauth.api.app import create_app
from priorauth.auth import scopes as sc
from priorauth.auth.actors import Actor
from priorauth.demo.samples import hemgenix_request
from priorauth.errors import PolicyInvalid
from priorauth.pas.members import member_key
from priorauth.pas.request import read_inquiry, read_keys
from priorauth.policies import PolicyLibrary, builtin, load_directory, parse_policy
from priorauth.service.app_service import PriorAuthService
from priorauth.service.users import ensure_demo_users
from priorauth.settings import Settings
from priorauth.store.db import make_engine, upgrade
from priorauth.store.models import AuditRow, CaseRow
from priorauth.ui import install
from tests.api.conftest import Clock, claim_response, post_fhir
from tests.security.conftest import Client, bearer, make_client
from tests.ui.conftest import DIRECTOR, INTAKE, MD, csrf_of, sign_in

SUBMIT, INQUIRE = "/fhir/Claim/$submit", "/fhir/Claim/$inquire"
CERTIFICATION = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-certificationType"
PAYER_SYSTEM = "http://example.org/payer/member-id"
SHIPPED = (
    Path(__file__).resolve().parents[2] / "src/priorauth/policies/data/cigna-ip0535-2026-03-12.yaml"
).read_text(encoding="utf-8")


# --- fixtures and helpers ---------------------------------------------------------------

PAYER = Actor("payer", "client", role=sc.PAYER_SYSTEM)  # the payer's own system


def _service(db_url: str, clock: Clock, library: PolicyLibrary, **settings: Any) -> Any:
    engine = make_engine(db_url)
    svc = PriorAuthService(
        Settings(database_url=db_url, auth_enabled=False, rate_burst=100_000, **settings),
        engine,
        library,
        clock=clock,
    )
    return svc, engine


@pytest.fixture
def make_api(db_url: str, clock: Clock, library: PolicyLibrary) -> Iterator[Any]:
    """Build a service (settings, policy library) and a client for it; torn down after."""
    made: list[tuple[PriorAuthService, Any, TestClient]] = []

    def build(
        given: PolicyLibrary | None = None, **settings: Any
    ) -> tuple[PriorAuthService, TestClient]:
        svc, engine = _service(db_url, clock, given or library, **settings)
        client = TestClient(create_app(svc), raise_server_exceptions=False)
        client.__enter__()
        made.append((svc, engine, client))
        return svc, client

    yield build
    for svc, engine, client in made:
        client.__exit__(None, None, None)
        svc.notifier.close()
        engine.dispose()


@pytest.fixture
def svc_client(make_api: Any) -> tuple[PriorAuthService, TestClient]:
    return make_api()  # type: ignore[no-any-return]


def submit(client: TestClient, bundle: dict[str, Any]) -> Any:
    return post_fhir(client, SUBMIT, bundle)


def case_id(client: TestClient, bundle: dict[str, Any]) -> str:
    r = submit(client, bundle)
    assert r.status_code == 201, r.text
    return str(claim_response(r)["id"])


def approve(client: TestClient, cid: str) -> Any:
    # The one place these tests decide: the decision API's body is another change's.
    return client.post(f"/api/cases/{cid}/decision", json={"decision": "approve"})


def _claim(bundle: dict[str, Any]) -> dict[str, Any]:
    return bundle["entry"][0]["resource"]  # type: ignore[no-any-return]


def follow_up(
    original: dict[str, Any], bundle: dict[str, Any], ident: str, code: str
) -> dict[str, Any]:
    """`bundle` sent as a revision (S) or cancellation (3) of `original`."""
    out = copy.deepcopy(bundle)
    claim = _claim(out)
    claim["identifier"] = [{"system": "urn:test", "value": ident}]
    claim["related"] = [{"claim": {"identifier": _claim(original)["identifier"][0]}}]
    claim["extension"] = [e for e in claim.get("extension", []) if e["url"] != CERTIFICATION]
    claim["extension"].append(
        {
            "url": CERTIFICATION,
            "valueCodeableConcept": {
                "coding": [{"system": "https://codesystem.x12.org/005010/1322", "code": code}]
            },
        }
    )
    return out


def stored(svc: PriorAuthService, cid: str) -> CaseRow:
    with svc.sessions() as s:
        row = s.get(CaseRow, cid)
        assert row is not None
        return row


def actions(svc: PriorAuthService) -> list[tuple[str, str]]:
    with svc.sessions() as s:
        return [(r.action, r.outcome) for r in s.scalars(select(AuditRow).order_by(AuditRow.id))]


def refused(r: Any, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert words in body["issue"][0]["diagnostics"]


# --- 1. revisions -------------------------------------------------------------------------


def test_a_revision_carrying_another_members_bundle_is_refused(
    svc_client: tuple[PriorAuthService, TestClient],
) -> None:
    svc, client = svc_client
    original = hemgenix_request(name="rev-a", member_id="MREVA")
    cid = case_id(client, original)
    other = follow_up(original, hemgenix_request(name="rev-b", member_id="MREVB"), "R-2", "S")
    refused(submit(client, other), 422, "another member")
    row = stored(svc, cid)
    assert orjson.loads(row.request_bundle) == original  # nothing of B's was stored
    assert row.member_key == f"{PAYER_SYSTEM}|mreva"
    assert actions(svc)[-1] == ("revise", "failure")
    # and B, approved on a request of its own, still has exactly one approval to give
    assert approve(client, cid).status_code == 200
    assert approve(client, case_id(client, hemgenix_request(name="rev-b2", member_id="MREVB")))


def test_a_revision_from_another_organization_is_refused(
    svc_client: tuple[PriorAuthService, TestClient],
) -> None:
    svc, client = svc_client
    original = hemgenix_request(name="rev-org", member_id="MREVORG")
    cid = case_id(client, original)
    theirs = follow_up(original, original, "R-ORG", "S")
    for entry in theirs["entry"]:
        if entry["resource"]["resourceType"] == "Organization" and entry["resource"].get(
            "identifier"
        ):
            entry["resource"]["identifier"][0]["value"] = "1999999999"
    # Another organization's revision finds nothing to revise: no case is created either.
    refused(submit(client, theirs), 422, "refers to no known request")
    with svc.sessions() as s:
        assert len(list(s.scalars(select(CaseRow)))) == 1
    assert stored(svc, cid).claim_identifier.endswith("PA-rev-org")


def test_a_revision_for_another_service_is_refused(
    svc_client: tuple[PriorAuthService, TestClient],
) -> None:
    svc, client = svc_client
    original = hemgenix_request(name="rev-svc", member_id="MREVSVC")
    cid = case_id(client, original)
    other = follow_up(original, original, "R-SVC", "S")
    other["entry"][0]["resource"]["item"][0]["productOrService"]["coding"][0]["code"] = "J3590"
    req = next(e for e in other["entry"] if e["resource"]["resourceType"] == "MedicationRequest")
    del req["resource"]["medicationCodeableConcept"]["coding"]
    refused(submit(client, other), 422, "another service")
    assert stored(svc, cid).service_codes == "J1411"
    assert actions(svc)[-1] == ("revise", "failure")


def test_a_revision_without_claim_related_is_refused(
    svc_client: tuple[PriorAuthService, TestClient],
) -> None:
    _, client = svc_client
    original = hemgenix_request(name="rev-norel")
    bundle = follow_up(original, original, "R-NOREL", "S")
    del _claim(bundle)["related"]
    refused(submit(client, bundle), 422, "Claim.related")


def test_an_approved_case_cannot_be_revised_out_of_its_lifetime_record(
    svc_client: tuple[PriorAuthService, TestClient],
) -> None:
    svc, client = svc_client
    original = hemgenix_request(name="rev-appr", member_id="MREVAPPR")
    cid = case_id(client, original)
    assert approve(client, cid).status_code == 200
    refused(submit(client, follow_up(original, original, "R-APPR", "S")), 409, "approved")
    assert stored(svc, cid).status == "approved" and stored(svc, cid).lifetime_key
    second = case_id(client, hemgenix_request(name="rev-appr-2", member_id="MREVAPPR"))
    refused(approve(client, second), 409, "lifetime")


def test_revisions_and_cancellations_are_audited_under_their_own_actions(
    svc_client: tuple[PriorAuthService, TestClient],
) -> None:
    svc, client = svc_client
    original = hemgenix_request(name="rev-audit", member_id="MREVAUDIT")
    cid = case_id(client, original)
    revision = follow_up(original, original, "R-AUDIT", "S")
    r = submit(client, revision)
    assert r.status_code == 200, r.text
    assert claim_response(r)["id"] == cid
    assert ("revise", "success") in actions(svc)
    assert [a for a, _ in actions(svc)].count("submit") == 1  # the original only
    r = submit(client, follow_up(revision, revision, "C-AUDIT", "3"))
    assert r.status_code == 200, r.text
    assert actions(svc)[-1] == ("cancel", "success")
    assert stored(svc, cid).status == "cancelled"


# --- 2. member identity ---------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["m123abc", " M123ABC ", "M123ABC\t", "Ｍ123ＡＢＣ"])
def test_member_ids_differing_in_case_or_spaces_are_one_member(
    svc_client: tuple[PriorAuthService, TestClient], variant: str
) -> None:
    _, client = svc_client
    first = case_id(client, hemgenix_request(name="norm-1", member_id="M123ABC"))
    second = case_id(client, hemgenix_request(name="norm-2", member_id=variant))
    assert approve(client, first).status_code == 200
    refused(approve(client, second), 409, "lifetime")


def test_a_case_sensitive_identifier_system_keeps_case(make_api: Any) -> None:
    _, client = make_api(case_sensitive_id_systems=frozenset({PAYER_SYSTEM}))
    first = case_id(client, hemgenix_request(name="cs-1", member_id="MCASE"))
    other_member = case_id(client, hemgenix_request(name="cs-2", member_id="mcase"))
    same_member = case_id(client, hemgenix_request(name="cs-3", member_id=" MCASE "))
    assert approve(client, first).status_code == 200
    assert approve(client, other_member).status_code == 200
    refused(approve(client, same_member), 409, "lifetime")


def test_inquiry_finds_the_case_under_a_differently_written_member_id(
    svc_client: tuple[PriorAuthService, TestClient],
) -> None:
    _, client = svc_client
    cid = case_id(client, hemgenix_request(name="inq-norm", member_id="MINQ42"))
    inquiry = hemgenix_request(name="inq-norm", member_id=" minq42")
    _claim(inquiry)["identifier"] = [{"system": "urn:test:inquiry", "value": "Q-NORM"}]
    r = post_fhir(client, INQUIRE, inquiry)
    assert r.status_code == 200, r.text
    assert claim_response(r)["id"] == cid


@pytest.mark.parametrize(("sensitive", "criterion_c"), [(False, "not_met"), (True, "met")])
def test_claims_history_is_found_under_a_differently_written_member_id(
    make_api: Any, sensitive: bool, criterion_c: str
) -> None:
    """A prior gene therapy claim of "MCLM1" counts against a request for " mclm1"."""
    from priorauth.demo.samples import claims_ndjson
    from priorauth.intake.claims import read_claims
    from priorauth.store.claims import import_claims

    systems = frozenset({PAYER_SYSTEM}) if sensitive else frozenset()
    svc, client = make_api(case_sensitive_id_systems=systems)
    ndjson = claims_ndjson(
        "MCLM1", ("http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "J1411")
    )
    with svc.sessions() as s:
        import_claims(s, read_claims(ndjson.splitlines()))
    cid = case_id(client, hemgenix_request(name="claims-norm", member_id=" mclm1"))
    evaluation = stored(svc, cid).evaluation
    assert evaluation is not None
    assert evaluation["criteria"]["C"]["status"] == criterion_c


def test_a_very_long_identifier_system_is_stored_not_a_server_error(
    svc_client: tuple[PriorAuthService, TestClient],
) -> None:
    _, client = svc_client
    bundles = []
    for n in range(2):
        bundle = hemgenix_request(name=f"long-sys-{n}", member_id="MLONG")
        patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        patient["resource"]["identifier"][0]["system"] = "urn:long:" + "s" * 2000
        bundles.append(case_id(client, bundle))
    assert approve(client, bundles[0]).status_code == 200
    refused(approve(client, bundles[1]), 409, "lifetime")


def test_member_key_normalisation() -> None:
    assert member_key("urn:p ", " AB1 ") == "urn:p|ab1"
    assert member_key("urn:p", "ab1") == member_key("urn:p", "Ａｂ１")
    assert member_key("urn:p", "AB1", case_sensitive_systems={"urn:p"}) == "urn:p|AB1"
    assert member_key(None, "AB1", default_system="urn:payer") == "urn:payer|ab1"
    assert member_key("urn:p", "  ") is None and member_key("urn:p", None) is None
    assert member_key("urn:p", "AB1") != member_key("urn:q", "AB1")
    long_a, long_b = member_key("urn:" + "x" * 900, "AB1"), member_key("urn:" + "y" * 900, "AB1")
    assert long_a and long_b and len(long_a) <= 300 and long_a != long_b
    assert long_a == member_key("urn:" + "x" * 900, " ab1 ")


def test_the_member_key_reads_the_identifier_system() -> None:
    bundle = hemgenix_request(name="keys-sys", member_id="MSYS")
    keys = read_keys(bundle)
    # Coverage.subscriberId takes the system of the Patient's identifier of the same value.
    assert (keys.member_system, keys.member_id) == (PAYER_SYSTEM, "MSYS")
    assert read_inquiry(bundle).member_system == PAYER_SYSTEM
    patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["resource"]["identifier"][0]["value"] = "OTHER"
    assert read_keys(bundle).member_system is None


# --- 3. cancellation after a decision, and voiding ---------------------------------------------


def test_cancelling_an_approved_case_requests_withdrawal_and_keeps_the_lifetime_record(
    svc_client: tuple[PriorAuthService, TestClient],
) -> None:
    svc, client = svc_client
    original = hemgenix_request(name="wd-1", member_id="MWD")
    cid = case_id(client, original)
    assert approve(client, cid).status_code == 200
    held = stored(svc, cid).lifetime_key
    r = submit(client, follow_up(original, original, "C-WD", "3"))
    assert r.status_code == 200, r.text
    cr = claim_response(r)
    assert cr["disposition"] == "Certified in total"
    assert any("Withdrawal requested" in n["text"] for n in cr["processNote"])
    row = stored(svc, cid)
    assert (row.status, row.lifetime_key) == ("approved", held)
    assert row.withdrawal_requested_at is not None
    assert actions(svc)[-1] == ("cancel", "success")
    history = client.get(f"/api/cases/{cid}").json()
    assert history["withdrawal_requested_at"]
    assert [h["kind"] for h in history["history"]][-1] == "withdrawal_requested"
    # the member is not freed for another approval
    second = case_id(client, hemgenix_request(name="wd-2", member_id="MWD"))
    refused(approve(client, second), 409, "lifetime")


def test_a_cancellation_naming_another_member_is_refused(
    svc_client: tuple[PriorAuthService, TestClient],
) -> None:
    svc, client = svc_client
    original = hemgenix_request(name="wd-other", member_id="MWDO")
    cid = case_id(client, original)
    cancel = follow_up(original, hemgenix_request(name="x", member_id="MWDX"), "C-X", "3")
    refused(submit(client, cancel), 422, "another member")
    assert stored(svc, cid).status == "pended"
    assert actions(svc)[-1] == ("cancel", "failure")


def test_a_medical_director_voids_an_approval_with_a_reason_and_frees_the_member(
    svc_client: tuple[PriorAuthService, TestClient],
) -> None:
    svc, client = svc_client
    cid = case_id(client, hemgenix_request(name="void-1", member_id="MVOID"))
    second = case_id(client, hemgenix_request(name="void-2", member_id="MVOID"))
    # nothing to void before an approval; no reason, no void
    refused(client.post(f"/api/cases/{cid}/void", json={"reason": "x"}), 409, "only an approval")
    assert approve(client, cid).status_code == 200
    assert client.post(f"/api/cases/{cid}/void", json={"reason": ""}).status_code == 422
    refused(client.post(f"/api/cases/{cid}/void", json={"reason": "   "}), 422, "reason")
    refused(client.post("/api/cases/nope/void", json={"reason": "x"}), 404, "no case")
    r = client.post(f"/api/cases/{cid}/void", json={"reason": "dosed elsewhere; entered twice"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert r.json()["voided"]["reason"] == "dosed elsewhere; entered twice"
    assert stored(svc, cid).lifetime_key is None
    assert ("void", "success") in actions(svc)
    with svc.sessions() as s:
        voids = list(s.scalars(select(AuditRow).where(AuditRow.action == "void")))
        assert [(v.outcome, v.entity) for v in voids][-1] == ("success", f"case/{cid}")
        assert [v.outcome for v in voids].count("failure") == 3  # each refusal is recorded
    cr = client.get(f"/fhir/ClaimResponse/{cid}").json()
    assert "voided by the payer" in cr["processNote"][0]["text"]
    # the member can now be approved on another request
    assert approve(client, second).status_code == 200


def test_voiding_through_the_api_needs_the_decision_scope(
    db_url: str, clock: Clock, tmp_path: Path, library: PolicyLibrary
) -> None:
    engine = make_engine(db_url)
    settings = Settings(database_url=db_url, base_url="http://testserver")
    svc = PriorAuthService(settings, engine, library, clock=clock)
    try:
        reader: Client = make_client(svc, "reader", "ES384", [sc.CASES_READ], None)
        cid = svc.submit(orjson.dumps(hemgenix_request(name="void-scope"))).record.id
        svc.decide(cid, "approve", who=PAYER)
        with TestClient(
            create_app(svc), base_url="http://testserver", raise_server_exceptions=False
        ) as api:
            r = api.post(
                f"/api/cases/{cid}/void", json={"reason": "x"}, headers=bearer(api, reader)
            )
            assert r.status_code == 403
            assert api.post(f"/api/cases/{cid}/void", json={"reason": "x"}).status_code == 401
        assert stored(svc, cid).status == "approved"
    finally:
        svc.notifier.close()
        engine.dispose()


def test_the_case_page_lets_a_medical_director_void_an_approval(
    svc_client: tuple[PriorAuthService, TestClient],
) -> None:
    svc, _ = svc_client
    app = create_app(svc)
    install(app, svc, secure_cookie=False)
    ensure_demo_users(svc)
    bundle = hemgenix_request(name="ui-void", member_id="MUIV")
    cid = svc.submit(orjson.dumps(bundle)).record.id
    svc.decide(cid, "approve", who=MD)
    svc.submit(orjson.dumps(follow_up(bundle, bundle, "C-UI", "3")))  # asks to withdraw
    page = f"/ui/cases/{cid}"
    # One client (the app's lifespan closes the notifier on exit), two sign-ins.
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as browser:
        token = sign_in(browser, INTAKE)
        assert "Void the approval" not in browser.get(page).text
        r = browser.post(f"{page}/void", data={"reason": "x", "csrf_token": token})
        assert r.status_code == 403
        browser.cookies.clear()
        sign_in(browser, DIRECTOR)
        html = browser.get(page).text
        assert "Void the approval" in html
        assert "Approved (withdrawal requested)" in html and 'id="withdrawal-note"' in html
        assert "withdrawal requested" in browser.get("/ui/queue?status=decided").text
        token = csrf_of(html)
        assert browser.post(f"{page}/void", data={"reason": "x"}).status_code == 403  # no CSRF
        empty = browser.post(f"{page}/void", data={"reason": " ", "csrf_token": token})
        assert empty.status_code == 422 and "needs a reason" in empty.text
        assert stored(svc, cid).status == "approved"
        ok = browser.post(f"{page}/void", data={"reason": "entered twice", "csrf_token": token})
        assert ok.status_code == 303, ok.text
        html = browser.get(page).text
        assert "Approval voided" in html and "entered twice" in html
        assert "voided on 2026-05-04: entered twice" in browser.get(f"{page}/letter").text
    assert stored(svc, cid).lifetime_key is None
    assert ("void", "success") in actions(svc)


# --- 4. the therapy class and the policy's frequency ---------------------------------------------


def _variant(text: str, *swaps: tuple[str, str]) -> str:
    for old, new in swaps:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def _other_policy(pid: str, hcpcs: str, *swaps: tuple[str, str]) -> str:
    """Another payer's policy for a service named by its own code, otherwise the same rules."""
    return _variant(
        SHIPPED,
        ("id: cigna-ip0535", f"id: {pid}"),
        ("hcpcs: [J1411]", f"hcpcs: [{hcpcs}]"),
        ("include_product_ndcs: true", "include_product_ndcs: false"),
        *swaps,
    )


def _request_for(name: str, member: str, hcpcs: str) -> dict[str, Any]:
    bundle = hemgenix_request(name=name, member_id=member, ndc=None)
    _claim(bundle)["item"][0]["productOrService"]["coding"][0]["code"] = hcpcs
    return bundle


def test_the_lifetime_rule_spans_every_policy_of_the_therapy_class(
    make_api: Any, tmp_path: Path
) -> None:
    (tmp_path / "same-class.yaml").write_text(_other_policy("acme-same-class", "J7999"))
    (tmp_path / "other-class.yaml").write_text(
        _other_policy(
            "acme-other-class",
            "J7998",
            ("therapy_class: hemophilia-b-gene-therapy", "therapy_class: some-other-class"),
        )
    )
    svc, client = make_api(load_directory(tmp_path, builtin()))
    first = case_id(client, hemgenix_request(name="cls-1", member_id="MCLASS"))
    same = case_id(client, _request_for("cls-2", "MCLASS", "J7999"))
    other = case_id(client, _request_for("cls-3", "mclass", "J7998"))
    assert stored(svc, same).policy_id == "acme-same-class"
    assert stored(svc, other).policy_id == "acme-other-class"
    assert approve(client, first).status_code == 200
    refused(approve(client, same), 409, "hemophilia-b-gene-therapy")
    assert approve(client, other).status_code == 200  # another class counts on its own


def test_the_lifetime_limit_follows_the_policys_stated_frequency(
    make_api: Any, tmp_path: Path
) -> None:
    (tmp_path / "twice.yaml").write_text(
        _other_policy("acme-twice", "J7997", ("lifetime_limit: 1 ", "lifetime_limit: 2 "))
    )
    (tmp_path / "unlimited.yaml").write_text(
        _other_policy(
            "acme-unlimited",
            "J7996",
            ("  lifetime_limit: 1 ", "  # no lifetime limit "),
            ("  therapy_class: hemophilia-b-gene-therapy\n", ""),
        )
    )
    svc, client = make_api(load_directory(tmp_path, builtin()))
    twice = [case_id(client, _request_for(f"tw-{n}", "MTWICE", "J7997")) for n in range(3)]
    assert [approve(client, c).status_code for c in twice[:2]] == [200, 200]
    refused(approve(client, twice[2]), 409, "at most 2 times")
    many = [case_id(client, _request_for(f"un-{n}", "MMANY", "J7996")) for n in range(3)]
    assert [approve(client, c).status_code for c in many] == [200, 200, 200]
    assert all(stored(svc, c).lifetime_key is None for c in many)


def test_a_lifetime_limit_must_name_its_therapy_class() -> None:
    lib = PolicyLibrary()
    text = _variant(SHIPPED, ("  therapy_class: hemophilia-b-gene-therapy\n", ""))
    with pytest.raises(PolicyInvalid, match="therapy_class"):
        lib.add(parse_policy(text, "no-class.yaml"))
    assert parse_policy(SHIPPED).approval.therapy_class == "hemophilia-b-gene-therapy"


def test_migration_0004_rekeys_the_approvals_already_stored(
    blank_db_url: str, clock: Clock, library: PolicyLibrary
) -> None:
    """Approvals stored under the old raw "policy|member" key still count after the upgrade,
    including two the raw comparison let through ("M77 " and "m77")."""
    from alembic import command
    from sqlalchemy import MetaData, Table

    from priorauth.store.db import _alembic_config

    db_url = blank_db_url
    command.upgrade(_alembic_config(db_url), "0003")
    engine = make_engine(db_url)
    cases = Table("cases", MetaData(), autoload_with=engine)
    now = clock()
    with engine.begin() as c:
        for n, member in enumerate(["M77 ", "m77"]):
            bundle = hemgenix_request(name=f"old-{n}", member_id=member)
            c.execute(
                cases.insert().values(
                    id=f"old-{n}",
                    auth_number=f"PA-OLD-{n}",
                    submitter="http://hl7.org/fhir/sid/us-npi|1234567893",
                    claim_identifier=f"urn:old|{n}",
                    member_id=member,
                    service_codes="J1411",
                    policy_id="cigna-ip0535",
                    policy_version="2026-03-12",
                    status="approved",
                    expedited=False,
                    received_at=now,
                    due_at=now,
                    updated_at=now,
                    request_bundle=orjson.dumps(bundle),
                    keys={},
                    decision="approve",
                    lifetime_key=f"cigna-ip0535|{member}",
                )
            )
    engine.dispose()
    upgrade(db_url)
    svc, engine = _service(db_url, clock, library)
    try:
        keys = {i: stored(svc, i).lifetime_key for i in ("old-0", "old-1")}
        prefix = f"hemophilia-b-gene-therapy|{PAYER_SYSTEM}|m77"
        assert keys == {"old-0": f"{prefix}|1", "old-1": f"{prefix}|2"}
        assert stored(svc, "old-0").member_key == f"{PAYER_SYSTEM}|m77"
        with TestClient(create_app(svc), raise_server_exceptions=False) as client:
            refused(
                approve(client, case_id(client, hemgenix_request(name="new", member_id="M77"))),
                409,
                "lifetime",
            )
    finally:
        svc.notifier.close()
        engine.dispose()
