"""Organization isolation and identity: each attack of issue 9 (items 5-8), now refused."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
import sqlalchemy as sa
from alembic import command
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from priorauth.api.app import create_app
from priorauth.auth import scopes as sc
from priorauth.auth.actors import SYSTEM, Actor
from priorauth.cli.main import app as cli
from priorauth.coverage import assertions
from priorauth.demo.samples import hemgenix_request
from priorauth.policies import PolicyLibrary
from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import Forbidden
from priorauth.service.users import create_user, display_names
from priorauth.settings import Settings
from priorauth.store.db import _alembic_config, make_engine, session_factory, upgrade
from priorauth.store.models import ApiClientRow, CoverageAssertionRow
from priorauth.ui.letters import letter_for
from tests.crd.ehr import order_sign
from tests.security.conftest import (
    BASE,
    PROVIDER_SCOPES,
    Client,
    _jwk,
    bearer,
    make_client,
)

BUNDLE = hemgenix_request(name="iso-1")
NPI_A = next(
    e["resource"]
    for e in BUNDLE["entry"]
    if e["fullUrl"] == BUNDLE["entry"][0]["resource"]["provider"]["reference"]
)["identifier"][0]["value"]
NPI_B = "1999999999"
CASE_SCOPES = [sc.CASES_READ, sc.CASES_DECIDE]
runner = CliRunner()


def _submit(api: TestClient, h: dict[str, str], bundle: dict[str, Any] = BUNDLE) -> str:
    r = api.post("/fhir/Claim/$submit", content=orjson.dumps(bundle), headers=h)
    assert r.status_code == 201, r.text
    return str(r.json()["entry"][0]["resource"]["id"])


def _new_key(cid: str) -> tuple[Client, dict[str, Any]]:
    key = ec.generate_private_key(ec.SECP384R1())
    return Client(cid, key, "ES384", f"{cid}-key"), {
        "keys": [_jwk(key.public_key(), "ES384", f"{cid}-key")]
    }


# --- 5: the case API is the payer's ------------------------------------------------------


@pytest.fixture
def migrated(
    blank_db_url: str, clock: Any, library: PolicyLibrary
) -> Iterator[tuple[PriorAuthService, dict[str, Client]]]:
    """A database with clients registered before roles existed, then upgraded.

    "ehr-b" was registered with --org and the case scopes, as `clients add` allowed;
    "payer" without --org. The migration must make the one a provider and the other,
    explicitly, the payer's system.
    """
    db_url = blank_db_url
    command.upgrade(_alembic_config(db_url), "0003")
    engine = make_engine(db_url)
    clients = {}
    table = sa.table(
        "api_clients",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("jwks", sa.JSON),
        sa.column("scopes", sa.Text),
        sa.column("organization", sa.String),
        sa.column("active", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    rows = [
        ("ehr-a", PROVIDER_SCOPES, NPI_A),
        ("ehr-b", [*PROVIDER_SCOPES, *CASE_SCOPES], NPI_B),
        ("payer", CASE_SCOPES, None),
    ]
    with engine.begin() as conn:
        for cid, scopes, org in rows:
            clients[cid], jwks = _new_key(cid)
            conn.execute(
                table.insert().values(
                    id=cid,
                    name=cid,
                    jwks=jwks,
                    scopes=" ".join(scopes),
                    organization=org,
                    active=True,
                    created_at=datetime.now(UTC),
                )
            )
    upgrade(db_url)
    settings = Settings(database_url=db_url, base_url=BASE, rate_per_minute=600, rate_burst=500)
    svc = PriorAuthService(settings, engine, library, clock=clock)
    yield svc, clients
    svc.notifier.close()
    engine.dispose()


def test_migration_names_each_existing_clients_role(
    migrated: tuple[PriorAuthService, dict[str, Client]],
) -> None:
    svc, _ = migrated
    with svc.sessions() as s:
        roles = {r.id: (r.role, r.organization) for r in s.scalars(select(ApiClientRow))}
    assert roles == {
        "ehr-a": (sc.PROVIDER, NPI_A),
        "ehr-b": (sc.PROVIDER, NPI_B),
        "payer": (sc.PAYER_SYSTEM, None),
    }


def test_another_organizations_client_cannot_list_read_or_decide_cases(
    migrated: tuple[PriorAuthService, dict[str, Client]],
) -> None:
    svc, clients = migrated
    with TestClient(create_app(svc), base_url=BASE, raise_server_exceptions=False) as api:
        cid = _submit(api, bearer(api, clients["ehr-a"]))
        b = bearer(api, clients["ehr-b"], f"{sc.CASES_READ} {sc.CASES_DECIDE}")
        listed = api.get("/api/cases", headers=b)
        assert listed.status_code == 403, listed.text  # was 200 with A's case in it
        assert listed.json()["resourceType"] == "OperationOutcome"
        assert api.get(f"/api/cases/{cid}", headers=b).status_code == 403
        decided = api.post(f"/api/cases/{cid}/decision", headers=b, json={"decision": "approve"})
        assert decided.status_code == 403  # was 200: B decided A's case
        assert svc.case(cid).status == "pended"
        # The payer's own system still sees and decides every organization's cases.
        p = bearer(api, clients["payer"])
        assert cid in {c["id"] for c in api.get("/api/cases", headers=p).json()}
        ok = api.post(f"/api/cases/{cid}/decision", headers=p, json={"decision": "approve"})
        assert ok.status_code == 200, ok.text
    refused = [
        r
        for r in svc.audit.rows()
        if r.actor == "ehr-b" and r.action == "access" and r.outcome == "failure"
    ]
    assert len(refused) == 3 and all("payer-system" in r.detail["reason"] for r in refused)


def test_a_provider_client_cannot_be_given_the_case_scopes(secured: PriorAuthService) -> None:
    with pytest.raises(ValueError, match="case API"):
        make_client(secured, "ehr-b", "ES384", [*PROVIDER_SCOPES, sc.CASES_READ], NPI_B)


def test_a_provider_token_without_its_organization_is_refused(
    api: TestClient, secured: PriorAuthService
) -> None:
    forged = jwt.encode(
        {
            "iss": "priorauth",
            "sub": "ehr-x",
            "scope": sc.CLAIM_RESPONSE_READ,
            "role": sc.PROVIDER,
            "exp": int(time.time()) + 60,
        },
        secured.secret_key,
        algorithm="HS256",
    )
    r = api.get("/fhir/ClaimResponse/x", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


# --- 6: `clients add` says whose system a client is -------------------------------------


@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[str, Path]:
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", db_url)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(_new_key("cli")[1]))
    return db_url, path


def _clients(url: str) -> dict[str, tuple[str, str | None]]:
    engine = make_engine(url)
    with session_factory(engine)() as s:
        out = {r.id: (r.role, r.organization) for r in s.scalars(select(ApiClientRow))}
    engine.dispose()
    return out


def test_clients_add_without_org_or_payer_system_is_refused(cli_db: tuple[str, Path]) -> None:
    url, jwks = cli_db
    r = runner.invoke(
        cli, ["clients", "add", "anyone", "--jwks", str(jwks), "--scopes", sc.CLAIM_RESPONSE_READ]
    )
    assert r.exit_code == 2, r.output  # was 0: a client acting for every organization
    assert r.stderr.count("\n") == 1 and "--org" in r.stderr and "--payer-system" in r.stderr
    assert "Traceback" not in r.output
    assert _clients(url) == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", NPI_B, "--scopes", sc.CASES_READ], "case API"),
        (["--org", NPI_B, "--payer-system", "--scopes", sc.CASES_READ], "not both"),
    ],
)
def test_clients_add_refuses_mixed_roles(
    cli_db: tuple[str, Path], args: list[str], message: str
) -> None:
    url, jwks = cli_db
    r = runner.invoke(cli, ["clients", "add", "mixed", "--jwks", str(jwks), *args])
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert _clients(url) == {}


def test_clients_add_says_what_each_client_will_see(cli_db: tuple[str, Path]) -> None:
    url, jwks = cli_db
    provider = runner.invoke(
        cli,
        ["clients", "add", "ehr", "--jwks", str(jwks), "--org", NPI_A, "--scopes", sc.SUBMIT],
    )
    assert provider.exit_code == 0, provider.output
    assert f"provider system of organization {NPI_A}" in provider.stdout
    assert "that organization's requests only" in provider.stdout
    assert "submit PAS requests" in provider.stdout
    payer = runner.invoke(
        cli,
        [
            "clients",
            "add",
            "payer",
            "--jwks",
            str(jwks),
            "--payer-system",
            "--scopes",
            sc.CASES_DECIDE,
        ],
    )
    assert payer.exit_code == 0, payer.output
    assert "EVERY organization" in payer.stdout and "decide cases" in payer.stdout
    assert _clients(url) == {"ehr": (sc.PROVIDER, NPI_A), "payer": (sc.PAYER_SYSTEM, None)}


# --- 7: the decider is the authenticated identity ---------------------------------------


def _staff(svc: PriorAuthService) -> None:
    """Real (not demo) accounts: demo users exist in development mode only."""
    create_user(
        svc.sessions, "director", "medical_director", "a long enough pass", "Dr. Maya Director"
    )
    create_user(svc.sessions, "intake", "intake", "another long enough pass")


def test_a_client_cannot_decide_as_a_medical_director(
    api: TestClient, secured: PriorAuthService
) -> None:
    _staff(secured)  # "director" is Dr. Maya Director, a Medical Director
    ehr = make_client(secured, "ehr-a", "ES384", PROVIDER_SCOPES, NPI_A)
    payer = make_client(secured, "payer-ui", "RS384", CASE_SCOPES, None)
    cid = _submit(api, bearer(api, ehr))
    h = bearer(api, payer)
    url = f"/api/cases/{cid}/decision"
    posing = api.post(url, headers=h, json={"decision": "approve", "decided_by": "director"})
    assert posing.status_code == 422, posing.text  # was 200, and the letter named her
    assert "decided_by" in posing.json()["issue"][0]["diagnostics"]
    assert secured.case(cid).status == "pended"
    d = api.post(url, headers=h, json={"decision": "approve"})
    assert d.status_code == 200, d.text
    assert d.json()["decision"]["decided_by"] == "client/payer-ui"
    letter = letter_for(secured, secured.case(cid), display_names(secured.sessions))
    assert letter is not None
    assert letter.decided_by == "the payer system payer-ui (no named reviewer)"
    assert "Director" not in letter.decided_by


def test_only_a_medical_director_or_the_payer_system_decides(secured: PriorAuthService) -> None:
    _staff(secured)
    ids = [
        secured.submit(
            orjson.dumps(hemgenix_request(name=f"iso-d{i}", member_id=f"MD{i}"))
        ).record.id
        for i in range(2)
    ]
    provider = Actor("ehr-a", "client", organization=NPI_A, role=sc.PROVIDER)
    for who in (Actor("intake", "user"), Actor("nobody", "user"), provider, SYSTEM):
        with pytest.raises(Forbidden):
            secured.decide(ids[0], "approve", who=who)
    assert secured.case(ids[0]).status == "pended"
    record = secured.decide(ids[0], "approve", who=Actor("director", "user"))
    assert record.decision is not None and record.decision.decided_by == "director"
    letter = letter_for(secured, record, display_names(secured.sessions))
    assert letter is not None and letter.decided_by == "Dr. Maya Director, Medical Director"
    payer = Actor("payer-ui", "client", role=sc.PAYER_SYSTEM)
    decided = secured.decide(ids[1], "approve", who=payer)
    assert decided.decision is not None and decided.decision.decided_by == "client/payer-ui"
    actors = [(r.actor, r.outcome) for r in secured.audit.rows() if r.action == "decide"]
    assert actors.count(("director", "success")) == 1 and ("payer-ui", "success") in actors


# --- 8: a coverage assertion belongs to the organization that created it --------------


def _post(api: TestClient, path: str, body: Any, h: dict[str, str]) -> Any:
    return api.post(
        path, content=orjson.dumps(body), headers={**h, "Content-Type": "application/json"}
    )


def _package(context: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "context", "valueString": context}],
    }


def _next(context: str) -> dict[str, Any]:
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "in-progress",
        "extension": [
            {
                "url": f"{BASE}/fhir/StructureDefinition/coverage-assertion-id",
                "valueString": context,
            }
        ],
        "item": [],
    }
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "questionnaire-response", "resource": qr}],
    }


def test_another_organization_cannot_use_a_coverage_assertion(
    api: TestClient, secured: PriorAuthService
) -> None:
    scopes = [sc.CDS, sc.DTR]
    a = bearer(api, make_client(secured, "ehr-a", "ES384", scopes, NPI_A))
    b = bearer(api, make_client(secured, "ehr-b", "ES384", scopes, NPI_B))
    hook, _ = order_sign("iso-crd", drop_labs=("777-3",))
    r = _post(api, "/cds-services/priorauth-order-sign", hook, a)
    assert r.status_code == 200, r.text
    order = r.json()["systemActions"][0]["resource"]
    context = next(
        p["valueString"]
        for e in order["extension"]
        for p in e.get("extension", [])
        if p["url"] == "coverage-assertion-id"
    )
    unknown = uuid.uuid4().hex
    for path, body in [
        ("/fhir/Questionnaire/$questionnaire-package", _package),
        ("/fhir/Questionnaire/$next-question", _next),
    ]:
        theirs = _post(api, path, body(context), b)
        assert theirs.status_code == 404, (path, theirs.text)  # was 200 with A's patient
        never = _post(api, path, body(unknown), b)
        assert never.status_code == 404
        diagnostics = [x.json()["issue"][0]["diagnostics"] for x in (theirs, never)]
        assert diagnostics[0].replace(context, "ID") == diagnostics[1].replace(unknown, "ID")
        assert _post(api, path, body(context), a).status_code == 200, path
    with secured.sessions() as s:
        row = s.get(CoverageAssertionRow, context)
        assert row is not None and row.organization == NPI_A


def test_assertions_from_before_the_migration_are_the_payers_only(
    secured: PriorAuthService,
) -> None:
    with secured.sessions() as s:
        s.add(
            CoverageAssertionRow(
                id="legacy",
                created_at=datetime.now(UTC),
                member_id=None,
                policy_id=None,
                policy_version=None,
                order={"bundle": {}, "order": "MedicationRequest/x", "as_of": "2026-05-04"},
                coverage={},
                evaluation=None,
            )
        )
        s.commit()
        assert assertions.load(s, "legacy", NPI_A) is None
        found = assertions.load(s, "legacy", None)
        assert found is not None and found.organization is None
