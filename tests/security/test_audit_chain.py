"""Attacks on the audit trail (cut, wiped, re-chained, truncated, over-long); unrecorded reads."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner, Result

from priorauth.api.app import create_app
from priorauth.cli.main import app as cli
from priorauth.demo.samples import hemgenix_request
from priorauth.keys import AUDIT_PURPOSE, DEV_AUDIT_KEY, audit_key, derive_key
from priorauth.policies import PolicyLibrary
from priorauth.service.app_service import PriorAuthService
from priorauth.service.users import create_user
from priorauth.settings import Settings
from priorauth.store.audit import GENESIS, TRUNCATED, _fields, audit_event
from priorauth.store.db import make_engine, upgrade
from priorauth.store.models import AuditHeadRow, AuditRow
from tests.api.conftest import Clock, service  # noqa: F401
from tests.databases import Databases
from tests.security.conftest import BASE, PROVIDER_SCOPES, bearer, make_client

KEY = "k" * 16 + "-audit-key-for-these-tests"  # PRIORAUTH_AUDIT_KEY of the server under attack


@pytest.fixture
def keyed(
    db_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch, library: PolicyLibrary
) -> Iterator[PriorAuthService]:
    """A service whose chain is keyed with KEY, some activity in it, and the CLI set up alike."""
    for name in ("PRIORAUTH_SECRET_KEY", "PRIORAUTH_AUDIT_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", db_url)
    monkeypatch.setenv("PRIORAUTH_AUDIT_KEY", KEY)
    engine = make_engine(db_url)
    settings = Settings(database_url=db_url, auth_enabled=False, audit_key=KEY)
    svc = PriorAuthService(settings, engine, library, clock=clock)
    for n in range(2):
        case_id = svc.submit(orjson.dumps(hemgenix_request(name=f"chain-{n}"))).record.id
        svc.case(case_id, who=svc_actor())
    create_user(svc.sessions, "dr.real", "medical_director", "a long enough password")
    svc.decide(case_id, "approve", who=svc_actor("dr.real"))
    svc.case(case_id, who=svc_actor())
    yield svc
    svc.notifier.close()
    engine.dispose()


def svc_actor(name: str = "reviewer") -> Any:
    from priorauth.auth.actors import Actor

    return Actor(name, "user", "10.0.0.7")


def audit(*args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", *args])


def head_now() -> str:
    r = audit("head")
    assert r.exit_code == 0, r.output
    return r.stdout.strip()


def drop_guards(engine: Engine) -> None:
    """What someone with the database owner's rights can do: remove every trigger."""
    with engine.begin() as c:
        if engine.dialect.name == "postgresql":
            for trigger, table in [
                ("audit_events_append_only", "audit_events"),
                ("audit_events_no_truncate", "audit_events"),
                ("audit_head_forward_only", "audit_head"),
                ("audit_head_no_truncate", "audit_head"),
            ]:
                c.execute(text(f"DROP TRIGGER {trigger} ON {table}"))
        else:
            for trigger in [
                "audit_events_no_update",
                "audit_events_no_delete",
                "audit_head_no_delete",
                "audit_head_forward_only",
            ]:
                c.execute(text(f"DROP TRIGGER {trigger}"))


def hash_of(engine: Engine, record: int) -> str:
    with engine.connect() as c:
        return str(c.scalar(text("SELECT hash FROM audit_events WHERE id = :i"), {"i": record}))


# --- item 9: the chain ---------------------------------------------------------------


def test_an_untouched_chain_verifies_and_holds_its_exported_head(keyed: PriorAuthService) -> None:
    head = head_now()
    seq, _, hash_ = head.partition(":")
    assert int(seq) == len(keyed.audit.rows()) >= 8 and len(hash_) == 64
    ok = audit("verify", "--expect-head", head)
    assert ok.exit_code == 0 and "holds the expected head" in ok.stdout
    assert "PRIORAUTH_AUDIT_KEY" in ok.stdout  # it says which key it checked with
    # An older head stays valid as the chain grows: it is a prefix.
    keyed.audit.record(svc_actor(), "search", "success", "cases?status=pended")
    assert audit("verify", "--expect-head", head).exit_code == 0
    assert audit("verify", "--expect-head", "not-a-head").exit_code == 2


def test_the_database_refuses_to_cut_rewind_delete_or_truncate(keyed: PriorAuthService) -> None:
    engine = keyed.engine
    attempts = [
        "DELETE FROM audit_events WHERE id > 5",
        "DELETE FROM audit_events",
        "UPDATE audit_head SET last_id = 5",
        "UPDATE audit_head SET last_hash = '" + GENESIS + "'",
        "DELETE FROM audit_head",
    ]
    if engine.dialect.name == "postgresql":
        attempts += [
            "TRUNCATE audit_events",
            "TRUNCATE audit_head",
            "TRUNCATE audit_events, audit_head",
        ]
    for sql in attempts:
        with engine.begin() as c, pytest.raises(DBAPIError):
            c.execute(text(sql))
    assert audit("verify").exit_code == 0


def test_cutting_the_last_records_and_rewinding_the_head_is_detected(
    keyed: PriorAuthService,
) -> None:
    kept = head_now()
    fifth = hash_of(keyed.engine, 5)
    drop_guards(keyed.engine)
    with keyed.engine.begin() as c:
        c.execute(text("DELETE FROM audit_events WHERE id > 5"))
        c.execute(text("UPDATE audit_head SET last_id = 5, last_hash = :h"), {"h": fifth})
    bad = audit("verify", "--expect-head", kept)
    assert bad.exit_code == 1
    assert "the chain is shorter than the exported head: it ends at record 5" in bad.stderr
    # Without the head kept elsewhere, what is left is a valid chain of 5: the README says so.
    assert audit("verify").exit_code == 0


def test_wiping_every_record_and_resetting_the_head_is_detected(keyed: PriorAuthService) -> None:
    kept = head_now()
    drop_guards(keyed.engine)
    with keyed.engine.begin() as c:
        c.execute(text("DELETE FROM audit_events"))
        c.execute(text("UPDATE audit_head SET last_id = 0, last_hash = :h"), {"h": GENESIS})
    bad = audit("verify", "--expect-head", kept)
    assert bad.exit_code == 1 and "it ends at record 0" in bad.stderr


def test_deleting_the_head_row_is_detected(keyed: PriorAuthService) -> None:
    drop_guards(keyed.engine)
    with keyed.engine.begin() as c:
        c.execute(text("DELETE FROM audit_head"))
    bad = audit("verify")
    assert bad.exit_code == 1 and "head record is missing" in bad.stderr


def _rechain(engine: Engine, digest: Callable[[str, dict[str, Any]], str]) -> int:
    """Re-attribute the decision to another director and recompute every link after it."""
    with engine.begin() as c:
        decide = c.scalar(text("SELECT id FROM audit_events WHERE action = 'decide'"))
        c.execute(text("UPDATE audit_events SET actor = 'dr.mallory' WHERE id = :i"), {"i": decide})
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        prev = GENESIS
        for row in s.scalars(select(AuditRow).order_by(AuditRow.id)):
            row.prev_hash, row.hash = prev, digest(prev, _fields(row))
            prev = row.hash
            s.flush()
        head = s.get(AuditHeadRow, 1)
        assert head is not None
        head.last_hash = prev
        s.commit()
    return int(decide)


def _sha256(prev: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256(
        prev.encode() + orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


def _hmac_with(key: bytes) -> Callable[[str, dict[str, Any]], str]:
    def digest(prev: str, fields: dict[str, Any]) -> str:
        body = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        return hmac.new(key, prev.encode() + body, hashlib.sha256).hexdigest()

    return digest


@pytest.mark.parametrize(
    "guess",
    [
        pytest.param(_sha256, id="unkeyed-sha256"),
        pytest.param(_hmac_with(DEV_AUDIT_KEY.encode()), id="the-development-key"),
        pytest.param(_hmac_with(derive_key("changeme", AUDIT_PURPOSE)), id="a-guessed-secret"),
    ],
)
def test_reattributing_a_decision_and_recomputing_the_chain_is_detected(
    keyed: PriorAuthService, guess: Callable[[str, dict[str, Any]], str]
) -> None:
    drop_guards(keyed.engine)
    decide = _rechain(keyed.engine, guess)
    bad = audit("verify")
    assert bad.exit_code == 1
    assert "record 1 was altered" in bad.stderr  # the very first link needs the key
    assert decide > 1


def test_truncate_on_postgresql(keyed: PriorAuthService) -> None:
    if keyed.engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's; SQLite's DELETE without WHERE is refused above")
    kept = head_now()
    # Row triggers do not fire on TRUNCATE; with only the statement trigger gone it passes...
    with keyed.engine.begin() as c:
        c.execute(text("DROP TRIGGER audit_events_no_truncate ON audit_events"))
        c.execute(text("TRUNCATE audit_events"))
    bad = audit("verify")
    assert bad.exit_code == 1 and "records after 0 were removed" in bad.stderr
    # ...and with the head's guard dropped too and the head reset, the kept head shows it.
    with keyed.engine.begin() as c:
        c.execute(text("DROP TRIGGER audit_head_no_truncate ON audit_head"))
        c.execute(text("TRUNCATE audit_head"))
        c.execute(text("INSERT INTO audit_head VALUES (1, 0, :h)"), {"h": GENESIS})
    assert audit("verify").exit_code == 0
    bad = audit("verify", "--expect-head", kept)
    assert bad.exit_code == 1 and "it ends at record 0" in bad.stderr


def test_the_chain_verifies_whatever_the_database_session_time_zone(
    keyed: PriorAuthService, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL hands timestamps back in the session's zone; the hash is over UTC."""
    if keyed.engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps no time zone")
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", db_url + "%20-cTimeZone%3DAsia/Kolkata")
    ok = audit("verify")
    assert ok.exit_code == 0, ok.output


def test_a_chain_written_with_another_key_does_not_verify(
    keyed: PriorAuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIORAUTH_AUDIT_KEY", "another-key-" + "x" * 30)
    bad = audit("verify")
    assert bad.exit_code == 1 and "record 1 was altered" in bad.stderr
    monkeypatch.setenv("PRIORAUTH_AUDIT_KEY", "short")
    assert audit("verify").exit_code == 2


def test_the_audit_key_comes_from_outside_the_database() -> None:
    assert audit_key(KEY, "")[0] == KEY.encode()
    derived, origin = audit_key("", "a-long-configured-secret-0123456789")
    assert derived == derive_key("a-long-configured-secret-0123456789", AUDIT_PURPOSE)
    assert "PRIORAUTH_SECRET_KEY" in origin
    # Per purpose: the audit key is not the secret, nor the key of another purpose.
    assert derived not in (
        b"a-long-configured-secret-0123456789",
        derive_key("a-long-configured-secret-0123456789", "tokens"),
    )
    key, origin = audit_key("", "")
    assert key == DEV_AUDIT_KEY.encode() and "INSECURE" in origin


@pytest.mark.parametrize("tampered", [False, True], ids=["intact", "tampered"])
def test_the_migration_rekeys_an_intact_unkeyed_chain_only(
    blank_db_url: str, monkeypatch: pytest.MonkeyPatch, tampered: bool
) -> None:
    """Re-keying must never launder a record edited before the upgrade."""
    from alembic import command

    from priorauth.store.db import _alembic_config

    for name in ("PRIORAUTH_SECRET_KEY", "PRIORAUTH_AUDIT_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRIORAUTH_AUDIT_KEY", KEY)
    db_url = blank_db_url
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", db_url)
    command.upgrade(_alembic_config(db_url), "0003")
    engine = make_engine(db_url)
    # Three records as release 0003 wrote them: SHA-256, no key.
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    with Session(engine) as s:
        prev = GENESIS
        for n in (1, 2, 3):
            row = AuditRow(id=n, at=datetime(2026, 11, 30, 9, n, tzinfo=UTC), actor="ehr",
                           actor_kind="client", action="submit", outcome="success",
                           entity=f"case/{n}", source="10.0.0.1", detail={"created": True},
                           prev_hash=prev, hash="")  # fmt: skip
            row.hash = _sha256(prev, _fields(row))
            prev = row.hash
            if tampered and n == 2:
                row.actor = "mallory"
            s.add(row)
        s.flush()
        s.execute(text("UPDATE audit_head SET last_id = 3, last_hash = :h"), {"h": prev})
        s.commit()
    engine.dispose()
    if tampered:
        with pytest.raises(RuntimeError, match="audit trail is broken at record 2"):
            upgrade(db_url)
        return
    upgrade(db_url)
    ok = audit("verify")
    assert ok.exit_code == 0 and "3 records" in ok.stdout


# --- item 11: over-long ids and paths; a failing audit store on a refusal --------------


@pytest.fixture
def secured_api(
    db_url: str, clock: Clock, library: PolicyLibrary
) -> Iterator[tuple[TestClient, PriorAuthService]]:
    engine = make_engine(db_url)
    settings = Settings(database_url=db_url, base_url=BASE, rate_burst=1000)
    svc = PriorAuthService(settings, engine, library, clock=clock)
    with TestClient(create_app(svc), base_url=BASE, raise_server_exceptions=False) as c:
        yield c, svc
    svc.notifier.close()
    engine.dispose()


def test_an_over_long_id_or_path_is_refused_and_recorded_truncated(
    secured_api: tuple[TestClient, PriorAuthService],
) -> None:
    api, svc = secured_api
    ehr = make_client(svc, "ehr", "ES384", PROVIDER_SCOPES, "1234567893")
    h = bearer(api, ehr)
    long_id = "x" * 3000
    assert api.get(f"/fhir/ClaimResponse/{long_id}", headers=h).status_code == 404
    assert api.get(f"/api/cases/{long_id}").status_code == 401
    assert api.get(f"/fhir/Subscription/{long_id}", headers=h).status_code == 404
    rows = [r for r in svc.audit.rows() if r.outcome == "failure"]
    entities = [r.entity or "" for r in rows]
    assert len(entities) == 3
    for e in entities:
        assert e.endswith(TRUNCATED) and len(e) == 1000
    assert entities[0].startswith("case/xxx") and entities[1].startswith("GET /api/cases/xxx")
    assert svc.audit.verify().intact


def test_a_refusal_goes_out_even_when_its_record_cannot_be_written(
    secured_api: tuple[TestClient, PriorAuthService],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, svc = secured_api
    ehr = make_client(svc, "ehr", "ES384", PROVIDER_SCOPES, "1234567893")
    h = bearer(api, ehr)

    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(svc.audit, "record", broken)
    with caplog.at_level(logging.ERROR, logger="priorauth.audit"):
        assert api.get("/fhir/ClaimResponse/nope", headers=h).status_code == 404
        assert api.get("/api/cases").status_code == 401
        assert api.post("/fhir/Claim/$submit", content=b"{", headers=h).status_code == 400
        r = api.post("/auth/token", data={"grant_type": "client_credentials"})
        assert r.status_code in (400, 401)
    lost = [m for m in caplog.messages if m.startswith("AUDIT RECORD LOST")]
    assert len(lost) == 4
    # A success that discloses PHI still needs its record: no record, no answer.
    case_id = svc.submit(orjson.dumps(hemgenix_request(name="no-record-no-read"))).record.id
    r = api.get(f"/fhir/ClaimResponse/{case_id}", headers=h)
    assert r.status_code == 500 and case_id not in r.text


# --- item 10: PHI access that left no record -----------------------------------------


def _actions(svc: PriorAuthService) -> list[tuple[str, str, str | None]]:
    return [(r.action, r.outcome, r.entity) for r in svc.audit.rows()]


def test_the_queue_in_every_status_is_recorded(service: PriorAuthService) -> None:
    from priorauth.service.users import ensure_demo_users
    from priorauth.ui import install
    from tests.ui.conftest import INTAKE, sign_in

    app = create_app(service)
    install(app, service, secure_cookie=False)
    ensure_demo_users(service)
    service.submit(orjson.dumps(hemgenix_request(name="queue")))
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        csrf = sign_in(c, INTAKE)
        for status in ("all", "decided", "cancelled"):
            assert c.get(f"/ui/queue?status={status}").status_code == 200
        assert c.post("/ui/logout", data={"csrf_token": csrf}).status_code == 303
    seen = _actions(service)
    for status in ("all", "decided", "cancelled"):
        assert ("search", "success", f"cases?status={status}") in seen
    assert ("sign-out", "success", "user/intake") in seen
    signout = next(r for r in service.audit.rows() if r.action == "sign-out")
    assert signout.actor == "intake" and signout.actor_kind == "user"


def test_crd_order_sign_and_dtr_are_recorded(service: PriorAuthService) -> None:
    from tests.crd.ehr import order_sign

    with TestClient(create_app(service), raise_server_exceptions=False) as c:
        hook, _ = order_sign("audited", drop_labs=("777-3",))
        r = c.post("/cds-services/priorauth-order-sign", content=orjson.dumps(hook))
        assert r.status_code == 200, r.text
        ext = r.json()["systemActions"][0]["resource"]["extension"]
        assertion = next(
            p["valueString"]
            for e in ext
            for p in e.get("extension", [])
            if p["url"] == "coverage-assertion-id"
        )
        params = {
            "resourceType": "Parameters",
            "parameter": [{"name": "context", "valueString": assertion}],
        }
        r = c.post("/fhir/Questionnaire/$questionnaire-package", content=orjson.dumps(params))
        assert r.status_code == 200, r.text
        prefill = r.json()["parameter"][0]["resource"]["entry"][-1]["resource"]
        nq = {"resourceType": "Parameters",
              "parameter": [{"name": "questionnaire-response", "resource": prefill}]}  # fmt: skip
        assert (
            c.post("/fhir/Questionnaire/$next-question", content=orjson.dumps(nq)).status_code
            == 200
        )
        gone = {
            "resourceType": "Parameters",
            "parameter": [{"name": "context", "valueString": "nope"}],
        }
        assert (
            c.post(
                "/fhir/Questionnaire/$questionnaire-package", content=orjson.dumps(gone)
            ).status_code
            == 404
        )
    seen = _actions(service)
    entity = f"coverage-assertion/{assertion}"
    assert ("order-sign", "success", entity) in seen
    assert ("dtr-package", "success", entity) in seen
    assert ("dtr-next-question", "success", entity) in seen
    assert ("dtr-package", "failure", None) in seen
    assert all(r.actor == "development" for r in service.audit.rows() if r.action == "order-sign")


def test_subscription_read_and_delete_are_recorded(service: PriorAuthService) -> None:
    from priorauth.service.outbound import OutboundPolicy
    from tests.api.receiver import subscription

    # No DNS here: the endpoint's name resolves to a public address for the test.
    service.outbound = OutboundPolicy(resolver=lambda host, port: ["93.184.216.34"])
    sub = subscription("https://ehr.example.org/notify", "1234567893")
    with TestClient(create_app(service), raise_server_exceptions=False) as c:
        created = c.post("/fhir/Subscription", content=orjson.dumps(sub))
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        assert c.get(f"/fhir/Subscription/{sid}").status_code == 200
        assert c.delete(f"/fhir/Subscription/{sid}").status_code == 204
        assert c.get(f"/fhir/Subscription/{sid}").status_code == 404
    seen = _actions(service)
    entity = f"subscription/{sid}"
    assert ("read", "success", entity) in seen
    assert ("unsubscribe", "success", entity) in seen
    assert ("read", "failure", entity) in seen


def test_any_action_is_recorded_and_exported_with_a_sensible_code(
    service: PriorAuthService,
) -> None:
    from fhir.resources.R4B.auditevent import AuditEvent

    who = svc_actor()
    for action in ("revise", "cancel", "unsubscribe", "sign-out", "access", "read", "x" * 90):
        service.audit.record(who, action, "success", "case/1")
    events = {e["subtype"][0]["code"]: e for e in map(audit_event, service.audit.rows())}
    for e in events.values():
        AuditEvent.model_validate(e)
    assert events["revise"]["action"] == "U" and events["cancel"]["action"] == "U"
    assert events["unsubscribe"]["action"] == "D" and events["read"]["action"] == "R"
    assert events["sign-out"]["type"]["code"] == "110114"
    assert events["access"]["type"]["code"] == "110113"
    assert any(code.endswith(TRUNCATED) for code in events)


def test_serve_without_a_secret_keys_the_chain_with_the_fixed_development_key(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, databases: Databases
) -> None:
    """Its throwaway token secret must not key the chain, or verify fails after a restart."""
    import uvicorn

    url = databases.migrated("sqlite", tmp_path)
    for name in ("PRIORAUTH_SECRET_KEY", "PRIORAUTH_AUDIT_KEY"):
        monkeypatch.setenv(name, "")  # restored afterwards, whatever serve sets
        monkeypatch.delenv(name)
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", url)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)
    assert CliRunner().invoke(cli, ["serve"]).exit_code == 0
    settings = Settings.from_env()
    assert audit_key(settings.audit_key, settings.secret_key)[0] == DEV_AUDIT_KEY.encode()
