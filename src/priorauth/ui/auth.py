"""Signed session cookies, session-bound CSRF tokens and role checks for the web app."""

from __future__ import annotations

import functools
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from priorauth.ui.users import User, get_user

log = logging.getLogger("priorauth.ui")

SESSION_COOKIE = "priorauth_session"
SESSION_SECONDS = 8 * 3600  # one working shift; then sign in again
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SECRET_ENV = "PRIORAUTH_SECRET_KEY"
SECURE_ENV = "PRIORAUTH_COOKIE_SECURE"


class UIError(Exception):
    """An error the web app shows as an HTML page with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LoginRequired(UIError):
    def __init__(self) -> None:
        super().__init__(401, "Please sign in.")


def secret_key() -> str:
    """PRIORAUTH_SECRET_KEY, else one random key per process (sessions end on restart)."""
    configured = os.environ.get(SECRET_ENV, "").strip()
    return configured or _process_secret()


@functools.cache
def _process_secret() -> str:
    log.warning(
        "%s is not set: using a random key for this process; sessions end when it "
        "restarts and are not shared between workers",
        SECRET_ENV,
    )
    return secrets.token_urlsafe(32)


def secure_cookies(base_url: str) -> bool:
    """PRIORAUTH_COOKIE_SECURE if set, else on when the service is served over https."""
    raw = os.environ.get(SECURE_ENV, "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    if raw:
        raise ValueError(f"{SECURE_ENV} must be true or false, not {raw!r}")
    return base_url.lower().startswith("https://")


@dataclass
class UISession:
    user_id: int | None
    csrf: str
    new: bool = False  # not yet in the browser: the response must set the cookie


class Auth:
    """Reads and writes the session cookie; one per app, kept on app.state.ui_auth."""

    def __init__(self, secret: str, secure: bool) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="priorauth.ui.session")
        self.secure = secure

    def session(self, request: Request) -> UISession:
        """The request's session, or a new anonymous one (which carries a CSRF token too)."""
        cached: UISession | None = getattr(request.state, "ui_session", None)
        if cached is not None:
            return cached
        sess = self._read(request.cookies.get(SESSION_COOKIE))
        if sess is None:
            sess = UISession(None, secrets.token_urlsafe(32), new=True)
        request.state.ui_session = sess
        return sess

    def _read(self, cookie: str | None) -> UISession | None:
        if not cookie:
            return None
        try:
            data: Any = self._signer.loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:  # also an expired signature
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        uid = data.get("u")
        return UISession(uid if isinstance(uid, int) else None, data["c"])

    def start(self, request: Request, user_id: int | None) -> UISession:
        """A fresh session (new CSRF token), e.g. at sign-in: no token outlives a sign-in."""
        sess = UISession(user_id, secrets.token_urlsafe(32), new=True)
        request.state.ui_session = sess
        return sess

    def write(self, response: Response, sess: UISession) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self._signer.dumps({"u": sess.user_id, "c": sess.csrf}),
            max_age=SESSION_SECONDS,
            path="/ui",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path="/ui", httponly=True, samesite="lax", secure=self.secure
        )


def auth_of(request: Request) -> Auth:
    return request.app.state.ui_auth  # type: ignore[no-any-return]


def current_user(request: Request) -> User | None:
    """The signed-in user, read again from the database so a deactivation takes effect."""
    sess = auth_of(request).session(request)
    if sess.user_id is None:
        return None
    cached: User | None = getattr(request.state, "ui_user", None)
    if cached is not None:
        return cached
    user = get_user(request.app.state.service.sessions, sess.user_id)
    request.state.ui_user = user
    return user


def require_user(request: Request) -> User:
    user = current_user(request)
    if user is None:
        raise LoginRequired()
    return user


def check_csrf(request: Request, form: FormData) -> None:
    """Refuse a state-changing request whose token does not match the session's."""
    sess = auth_of(request).session(request)
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if sess.new or not isinstance(sent, str) or not hmac.compare_digest(sent, sess.csrf):
        raise UIError(403, "The form has expired or its security token is wrong. Reload and retry.")


def require_director(user: User) -> None:
    if not user.is_director:
        raise UIError(403, "Only a Medical Director can decide a case.")
