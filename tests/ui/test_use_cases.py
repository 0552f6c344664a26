"""The web app's use cases in the service: one transaction and one audit record each."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from priorauth.auth.actors import Actor
from priorauth.service import reviews, users
from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import Conflict, NotFound, Unprocessable
from priorauth.store.models import AuditRow
from tests.ui.conftest import DENY_LABS, INTAKE, MD, submit

REVIEWER = Actor("intake", "user", "10.0.0.7")


def audit(service: PriorAuthService) -> list[AuditRow]:
    with service.sessions() as s:
        return list(s.scalars(select(AuditRow).order_by(AuditRow.id)))


def test_a_documentation_request_commits_with_its_one_audit_record(
    service: PriorAuthService,
) -> None:
    cid = submit(service, name="uc-doc", labs={"777-3": None})
    before = len(audit(service))
    reviews.request_documentation(service, cid, ["a recent CBC"], "  please  ", REVIEWER)
    new = audit(service)[before:]
    assert [(r.action, r.outcome, r.entity, r.actor) for r in new] == [
        ("doc-request", "success", f"case/{cid}", "intake")
    ]
    history = service.case(cid, with_history=True).history
    asked = [h for h in history if h["kind"] == "documentation_requested"]
    assert len(asked) == 1 and asked[0]["actor"] == "intake"
    assert asked[0]["items"] == ["a recent CBC"] and asked[0]["note"] == "please"


def test_no_audit_record_no_documentation_request(
    service: PriorAuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = submit(service, name="uc-doc-lost", labs={"777-3": None})

    def broken(*a: Any, **k: Any) -> Any:
        raise RuntimeError("the audit store is down")

    monkeypatch.setattr(service.audit, "append_in", broken)
    with pytest.raises(RuntimeError):
        reviews.request_documentation(service, cid, ["a recent CBC"], None, REVIEWER)
    monkeypatch.undo()
    history = service.case(cid, with_history=True).history
    assert not [h for h in history if h["kind"] == "documentation_requested"]


def test_a_refused_documentation_request_is_audited_as_a_failure(
    app: Any, service: PriorAuthService
) -> None:
    cid = submit(service, name="uc-doc-decided", labs=DENY_LABS)
    service.decide(cid, "deny", "criterion I.ii is not met", ("I.ii",), who=MD)
    before = len(audit(service))
    with pytest.raises(Conflict):
        reviews.request_documentation(service, cid, ["x"], None, REVIEWER)
    with pytest.raises(NotFound):
        reviews.request_documentation(service, "no-such-case", ["x"], None, REVIEWER)
    with pytest.raises(Unprocessable):
        reviews.request_documentation(service, cid, [], "   ", REVIEWER)
    refused = [(r.action, r.outcome, r.detail.get("reason")) for r in audit(service)[before:]]
    assert refused == [
        ("doc-request", "failure", "conflict"),
        ("doc-request", "failure", "not-found"),
        ("doc-request", "failure", "invalid"),
    ]


def test_the_lists_come_from_the_service_and_their_search_is_audited(
    app: Any, service: PriorAuthService
) -> None:
    open_id = submit(service, name="uc-open", labs={"777-3": None})
    denied_id = submit(service, name="uc-denied", labs=DENY_LABS)
    service.decide(denied_id, "deny", "criterion I.ii is not met", ("I.ii",), who=MD)
    before = len(audit(service))
    decided = [r.id for r in reviews.cases(service, "decided", REVIEWER)]
    assert denied_id in decided and open_id not in decided
    assert open_id in [r.id for r in reviews.cases(service, "open", REVIEWER)]
    every = {r.id for r in reviews.cases(service, "all", REVIEWER)}
    assert {open_id, denied_id} <= every
    searches = [(r.action, r.entity) for r in audit(service)[before:]]
    assert searches == [
        ("search", "cases?status=decided"),
        ("search", "cases?status=pended"),
        ("search", "cases?status=all"),
    ]
    with pytest.raises(Unprocessable):
        reviews.cases(service, "everything", REVIEWER)


def test_sign_in_opens_a_session_with_its_audit_record_and_sign_out_ends_it(
    app: Any, service: PriorAuthService
) -> None:
    before = len(audit(service))
    refused = users.sign_in(service, INTAKE[0], "not the password", "10.0.0.8")
    assert refused.user is None and refused.sid is None and refused.locked_until is None
    signed = users.sign_in(service, f"  {INTAKE[0]} ", INTAKE[1], "10.0.0.8")
    assert signed.user is not None and signed.sid is not None
    assert users.session_user(service, signed.sid) == signed.user.id
    users.sign_out(service, signed.sid, signed.user, "10.0.0.8")
    assert users.session_user(service, signed.sid) is None
    records = [(r.action, r.outcome, r.actor) for r in audit(service)[before:]]
    assert records == [
        ("sign-in", "failure", "intake"),
        ("sign-in", "success", "intake"),
        ("sign-out", "success", "intake"),
    ]


def test_a_refused_page_answers_with_the_api_table_status(
    intake: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, token = intake
    cid = submit(service, name="uc-page", labs=DENY_LABS)
    service.decide(cid, "deny", "criterion I.ii is not met", ("I.ii",), who=MD)
    r = client.post(
        f"/ui/cases/{cid}/documentation-request", data={"items": ["x"], "csrf_token": token}
    )
    assert r.status_code == 409 and "text/html" in r.headers["content-type"]
    assert "documentation can only be requested for an open case" in r.text
    missing = client.get("/ui/cases/no-such-case")
    assert missing.status_code == 404 and "There is no case no-such-case." in missing.text
    assert client.post("/ui/logout", data={"csrf_token": "forged"}).status_code == 403
