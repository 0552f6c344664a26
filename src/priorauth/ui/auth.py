"""Session cookies naming server-side sessions, session-bound CSRF tokens and role checks."""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from priorauth.service import users
from priorauth.service.errors import Forbidden, Unauthorized
from priorauth.service.users import User
from priorauth.settings import Settings

log = logging.getLogger("priorauth.ui")

SESSION_COOKIE = "priorauth_session"
SESSION_SECONDS = 8 * 3600  # the cookie's own life; the server-side session decides
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Unauthorized):
    """Nobody is signed in: a page sends the browser to the sign-in form."""

    def __init__(self) -> None:
        super().__init__("Please sign in.")


def secure_cookies(settings: Settings) -> bool:
    """PRIORAUTH_COOKIE_SECURE if set, else on when the service is served over https."""
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    return settings.base_url.lower().startswith("https://")


@dataclass
class UISession:
    user_id: int | None
    csrf: str
    new: bool = False  # not yet in the browser: the response must set the cookie
    sid: str | None = None  # a signed-in session's id, recorded in the ui_sessions table


class Auth:
    """Reads and writes the session cookie; one per app, kept on app.state.ui_auth.

    The cookie is signed with the web-session key (derived from the secret for this purpose
    only; the previous secret's key still verifies during a rotation). A signed-in cookie
    names a server-side session, so signing out, an idle timeout or disabling the user ends
    it at once; an anonymous cookie only carries the CSRF token of the sign-in form.
    """

    def __init__(self, keys: list[bytes], secure: bool) -> None:
        # itsdangerous signs with the last key and accepts any: oldest first.
        self._signer = URLSafeTimedSerializer(list(reversed(keys)), salt="priorauth.ui.session")
        self.secure = secure

    def session(self, request: Request) -> UISession:
        """The request's session, or a new anonymous one (which carries a CSRF token too)."""
        cached: UISession | None = getattr(request.state, "ui_session", None)
        if cached is not None:
            return cached
        sess = self._read(request, request.cookies.get(SESSION_COOKIE))
        if sess is None:
            sess = UISession(None, secrets.token_urlsafe(32), new=True)
        request.state.ui_session = sess
        return sess

    def _read(self, request: Request, cookie: str | None) -> UISession | None:
        if not cookie:
            return None
        svc = request.app.state.service
        try:
            data: Any = self._signer.loads(cookie, max_age=svc.settings.session_hours * 3600)
        except BadSignature:  # also an expired signature
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        sid = data.get("s")
        if sid is None:
            return UISession(None, data["c"])
        if not isinstance(sid, str):
            return None
        uid = users.session_user(svc, sid)
        if uid is None:  # signed out, idle too long or ended by an administrator
            return None
        return UISession(uid, data["c"], sid=sid)

    def start(self, request: Request, user_id: int, sid: str) -> UISession:
        """The cookie of a session opened at sign-in, with a new CSRF token: no token
        outlives a sign-in."""
        sess = UISession(user_id, secrets.token_urlsafe(32), new=True, sid=sid)
        request.state.ui_session = sess
        return sess

    def end(self, request: Request) -> str | None:
        """Sign out in the browser; returns the server-side session the service must end."""
        sid = self.session(request).sid
        request.state.ui_session = UISession(None, secrets.token_urlsafe(32), new=True)
        return sid

    def write(self, response: Response, sess: UISession) -> None:
        data: dict[str, Any] = {"c": sess.csrf}
        if sess.sid is not None:
            data["s"] = sess.sid
        response.set_cookie(
            SESSION_COOKIE,
            self._signer.dumps(data),
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
    user = users.active_user(request.app.state.service, sess.user_id)
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
        raise Forbidden("The form has expired or its security token is wrong. Reload and retry.")


def require_director(user: User) -> None:
    if not user.is_director:
        raise Forbidden("Only a Medical Director can decide a case.")
