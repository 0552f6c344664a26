"""Sign-in, sessions, CSRF and the Medical Director role, checked on the server."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from priorauth.service.app_service import PriorAuthService
from priorauth.settings import Settings
from priorauth.store.models import UserRow
from priorauth.ui.auth import SESSION_COOKIE, secure_cookies
from tests.ui.conftest import DENY_LABS, INTAKE, csrf_of, submit

DENIAL = {"decision": "deny", "criteria": ["I.ii"], "reason": "AST is 3.1 times the ULN."}


def test_pages_need_a_sign_in(anon: TestClient, service: PriorAuthService) -> None:
    cid = submit(service, name="auth-anon")
    for path in ("/ui/queue", f"/ui/cases/{cid}", f"/ui/cases/{cid}/letter"):
        r = anon.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=")
    r = anon.get("/ui/queue", headers={"HX-Request": "true"})
    assert r.headers["HX-Redirect"].startswith("/ui/login")


def test_sign_in_sets_a_hardened_session_cookie(anon: TestClient) -> None:
    token = csrf_of(anon.get("/ui/login").text)
    r = anon.post(
        "/ui/login",
        data={
            "username": INTAKE[0],
            "password": INTAKE[1],
            "csrf_token": token,
            "next": "/ui/metrics",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/ui/metrics"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    for flag in ("HttpOnly", "Path=/ui", "SameSite=lax"):
        assert flag.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # served over http in this test
    # a new CSRF token after signing in: the anonymous one no longer works
    assert csrf_of(anon.get("/ui/queue").text) != token


def test_wrong_password_and_unknown_user_are_refused_alike(anon: TestClient) -> None:
    token = csrf_of(anon.get("/ui/login").text)
    for user, pw in (("intake", "wrong-password!"), ("nobody", "whatever-pass")):
        r = anon.post("/ui/login", data={"username": user, "password": pw, "csrf_token": token})
        assert r.status_code == 401 and "The username or password is wrong." in r.text
    assert anon.get("/ui/queue").status_code == 303


def test_sign_in_without_csrf_token_is_refused(anon: TestClient) -> None:
    anon.get("/ui/login")
    r = anon.post("/ui/login", data={"username": INTAKE[0], "password": INTAKE[1]})
    assert r.status_code == 403


def test_next_never_leaves_the_app(anon: TestClient) -> None:
    token = csrf_of(anon.get("/ui/login?next=https://evil.example/").text)
    r = anon.post(
        "/ui/login",
        data={
            "username": INTAKE[0],
            "password": INTAKE[1],
            "csrf_token": token,
            "next": "//evil.example/ui/",
        },
    )
    assert r.headers["location"] == "/ui/queue"


def test_an_intake_reviewer_cannot_decide_even_by_posting_the_form(
    intake: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, token = intake
    cid = submit(service, name="auth-intake", labs=DENY_LABS)
    page = client.get(f"/ui/cases/{cid}").text
    assert "Only a Medical Director can decide this case." in page
    assert "/decision" not in page
    # a valid session and CSRF token, but the wrong role
    for body in (DENIAL, {"decision": "approve"}):
        r = client.post(f"/ui/cases/{cid}/decision", data={**body, "csrf_token": token})
        assert r.status_code == 403
        assert "Only a Medical Director can decide" in r.text
    assert service.case(cid).status == "pended"


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_a_decision_without_the_right_csrf_token_is_refused(
    director: tuple[TestClient, str], service: PriorAuthService, token: str | None
) -> None:
    client, _ = director
    cid = submit(service, name="auth-csrf", labs=DENY_LABS)
    data = DENIAL if token is None else {**DENIAL, "csrf_token": token}
    r = client.post(f"/ui/cases/{cid}/decision", data=data)
    assert r.status_code == 403 and "security token" in r.text
    assert service.case(cid).status == "pended"


def test_csrf_token_in_the_htmx_header_is_accepted(
    director: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, token = director
    cid = submit(service, name="auth-header", labs=DENY_LABS)
    r = client.post(f"/ui/cases/{cid}/decision", data=DENIAL, headers={"X-CSRF-Token": token})
    assert r.status_code == 303
    assert service.case(cid).status == "denied"


def test_a_token_from_another_session_is_refused(
    app: FastAPI, director: tuple[TestClient, str], service: PriorAuthService
) -> None:
    _, stolen = director
    cid = submit(service, name="auth-cross", labs=DENY_LABS)
    with TestClient(app, follow_redirects=False) as other:
        from tests.ui.conftest import DIRECTOR, sign_in

        sign_in(other, DIRECTOR)
        r = other.post(f"/ui/cases/{cid}/decision", data={**DENIAL, "csrf_token": stolen})
        assert r.status_code == 403


def test_a_deactivated_user_is_signed_out(
    intake: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, _ = intake
    assert client.get("/ui/queue").status_code == 200
    with service.sessions() as s:
        row = s.query(UserRow).filter_by(username=INTAKE[0]).one()
        row.active = False
        s.commit()
    assert client.get("/ui/queue").status_code == 303


def test_a_forged_cookie_is_ignored(anon: TestClient) -> None:
    anon.cookies.set(SESSION_COOKIE, "eyJ1IjoxLCJjIjoieCJ9.forged.sig", path="/ui")
    assert anon.get("/ui/queue").status_code == 303


def test_sign_out_ends_the_session(intake: tuple[TestClient, str]) -> None:
    client, token = intake
    r = client.post("/ui/logout", data={"csrf_token": token})
    assert r.status_code == 303
    assert client.get("/ui/queue").status_code == 303


def test_secure_cookies_follow_the_base_url_unless_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PRIORAUTH_COOKIE_SECURE", raising=False)
    monkeypatch.setenv("PRIORAUTH_BASE_URL", "https://pa.example.org")
    assert secure_cookies(Settings.from_env()) is True
    monkeypatch.setenv("PRIORAUTH_BASE_URL", "http://127.0.0.1:8000")
    assert secure_cookies(Settings.from_env()) is False
    monkeypatch.setenv("PRIORAUTH_COOKIE_SECURE", "true")
    assert secure_cookies(Settings.from_env()) is True
    monkeypatch.setenv("PRIORAUTH_COOKIE_SECURE", "maybe")
    with pytest.raises(ValueError, match="PRIORAUTH_COOKIE_SECURE"):
        Settings.from_env()


def test_pages_are_not_cached_and_refuse_framing(intake: tuple[TestClient, str]) -> None:
    client, _ = intake
    r = client.get("/ui/queue")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in r.headers["content-security-policy"]


def test_install_twice_changes_nothing_but_the_cookie_flag(
    app: FastAPI, service: PriorAuthService
) -> None:
    from priorauth.ui import install

    routes = len(app.routes)
    install(app, service, secure_cookie=True)
    assert len(app.routes) == routes and app.state.ui_auth.secure is True
    with TestClient(app, follow_redirects=False) as c:
        assert "secure" in c.get("/ui/login").headers["set-cookie"].lower()
