"""The audit trail: who did what, chained by hash, append-only, verifiable, exportable."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.auditevent import AuditEvent
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from priorauth.auth import scopes as sc
from priorauth.cli.main import app as cli
from priorauth.demo.samples import hemgenix_request
from priorauth.service.app_service import PriorAuthService
from priorauth.store.audit import audit_event
from tests.security.conftest import PROVIDER_SCOPES, bearer, make_client, token

BUNDLE = hemgenix_request(name="audit-1", member_id="MAUDIT")


def _npi() -> str:
    ref = BUNDLE["entry"][0]["resource"]["provider"]["reference"]
    return next(e["resource"] for e in BUNDLE["entry"] if e["fullUrl"] == ref)["identifier"][0][
        "value"
    ]


def _activity(api: TestClient, svc: PriorAuthService) -> str:
    ehr = make_client(svc, "ehr", "ES384", PROVIDER_SCOPES, _npi())
    payer = make_client(svc, "payer-ui", "RS384", [sc.CASES_READ, sc.CASES_DECIDE], None)
    h = bearer(api, ehr)
    cid = api.post("/fhir/Claim/$submit", content=orjson.dumps(BUNDLE), headers=h).json()["entry"][
        0
    ]["resource"]["id"]
    api.get(f"/fhir/ClaimResponse/{cid}", headers=h)
    hp = bearer(api, payer)
    api.get(f"/api/cases/{cid}", headers=hp)
    api.post(
        f"/api/cases/{cid}/decision",
        headers=hp,
        json={"decision": "approve"},
    )
    api.get("/api/cases")  # no token: a failed access
    token(api, ehr, exp_in=-5)  # a failed token request
    return cid


def test_every_action_is_recorded_without_phi(api: TestClient, secured: PriorAuthService) -> None:
    cid = _activity(api, secured)
    rows = secured.audit.rows()
    seen = {(r.action, r.outcome) for r in rows}
    for expected in [
        ("token", "success"),
        ("token", "failure"),
        ("submit", "success"),
        ("evaluate", "success"),
        ("read", "success"),
        ("decide", "success"),
        ("access", "failure"),
    ]:
        assert expected in seen, expected
    decide = next(r for r in rows if r.action == "decide")
    assert decide.entity == f"case/{cid}" and decide.actor == "payer-ui"
    assert all(r.source for r in rows if r.actor_kind == "client")
    blob = orjson.dumps([r.detail for r in rows]).decode() + " ".join(r.entity or "" for r in rows)
    patient = next(
        e["resource"] for e in BUNDLE["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    for phi in ["MAUDIT", patient["birthDate"], patient["name"][0]["given"][0]]:
        assert phi not in blob


def test_chain_verifies_and_names_a_tampered_record(
    api: TestClient, secured: PriorAuthService, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _activity(api, secured)
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", db_url)
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0 and "intact" in ok.stdout
    # The database itself refuses to change a record.
    with secured.engine.begin() as c, pytest.raises(DBAPIError):
        c.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = 3"))
    # Someone with the database owner's rights removes the guard and edits record 3.
    with secured.engine.begin() as c:
        if secured.engine.dialect.name == "postgresql":
            c.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        else:
            c.execute(text("DROP TRIGGER audit_events_no_update"))
        c.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = 3"))
    bad = runner.invoke(cli, ["audit", "verify"])
    assert bad.exit_code == 1
    assert "record 3 was altered" in bad.stderr


def test_export_as_fhir_audit_events(api: TestClient, secured: PriorAuthService) -> None:
    _activity(api, secured)
    events = [audit_event(r) for r in secured.audit.rows()]
    assert len(events) >= 8
    for e in events:
        AuditEvent.model_validate(e)
    assert {e["outcome"] for e in events} == {"0", "4"}


def test_sign_ins_are_recorded(secured: PriorAuthService) -> None:
    import re

    from priorauth.api.app import create_app
    from priorauth.service.users import create_user

    # Demo accounts cannot sign in with authentication on: a real one.
    create_user(secured.sessions, "director", "medical_director", "director-real-2026")
    with TestClient(create_app(secured), base_url="http://testserver") as c:
        page = c.get("/ui/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        token = csrf.group(1)
        c.post("/ui/login", data={"username": "director", "password": "wrong", "csrf_token": token})
        c.post(
            "/ui/login",
            data={"username": "director", "password": "director-real-2026", "csrf_token": token},
        )
    signins = [(r.actor, r.outcome) for r in secured.audit.rows() if r.action == "sign-in"]
    assert signins == [("director", "failure"), ("director", "success")]


def test_a_submission_and_its_audit_record_commit_together(
    secured: PriorAuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the audit record cannot be written, the case is not stored (and so not acknowledged)."""
    from sqlalchemy import func, select

    from priorauth.store.models import AuditRow, CaseRow

    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(secured.audit, "append_in", broken)
    with pytest.raises(RuntimeError):
        secured.submit(orjson.dumps(hemgenix_request(name="atomic")))
    with secured.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseRow)) == 0
    monkeypatch.undo()
    record = secured.submit(orjson.dumps(hemgenix_request(name="atomic"))).record
    with secured.sessions() as s:
        actions = list(
            s.scalars(select(AuditRow.action).where(AuditRow.entity == f"case/{record.id}"))
        )
    assert actions[:2] == ["submit", "evaluate"]
