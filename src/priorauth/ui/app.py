"""Mount the reviewer web app on the API's FastAPI app: templates, static files, errors, sign-in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from priorauth.keys import UI_SESSION
from priorauth.service import users
from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import ServiceError
from priorauth.ui.auth import (
    Auth,
    LoginRequired,
    auth_of,
    check_csrf,
    current_user,
    secure_cookies,
)

HERE = Path(__file__).parent
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html", "svg"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
# Pages carry PHI: never cached; scripts and styles only from this origin.
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}

router = APIRouter(prefix="/ui", include_in_schema=False)


def service_of(request: Request) -> PriorAuthService:
    return request.app.state.service  # type: ignore[no-any-return]


def now_of(request: Request) -> datetime:
    return service_of(request).clock()


def render(request: Request, name: str, code: int = 200, **ctx: Any) -> HTMLResponse:
    """A page, with the session cookie set if the session is new."""
    sess = auth_of(request).session(request)
    html = templates.get_template(name).render(
        request=request, user=current_user(request), csrf=sess.csrf, **ctx
    )
    response = HTMLResponse(html, code)
    finish(response, request)
    return response


def finish(response: Response, request: Request) -> Response:
    auth = auth_of(request)
    sess = auth.session(request)
    if sess.new:
        auth.write(response, sess)
    response.headers.update(HEADERS)
    return response


def _safe_next(target: str | None) -> str:
    # Only back into this app: no open redirect to another site.
    if target and target.startswith("/ui/") and not target.startswith("//"):
        return target
    return "/ui/queue"


@router.get("", include_in_schema=False)
@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/ui/queue", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "")))
    svc = service_of(request)
    source = request.client.host if request.client else None
    result = await run_in_threadpool(users.sign_in, svc, username, password, source)
    if result.locked_until is not None:
        return render(
            request,
            "login.html",
            429,
            next=target,
            error=(
                "Too many failed sign-ins. Try again after "
                f"{result.locked_until.astimezone(UTC):%H:%M} UTC, or ask an administrator "
                "to unlock the account."
            ),
            username=username,
        )
    if result.user is None or result.sid is None:
        return render(
            request,
            "login.html",
            401,
            next=target,
            error="The username or password is wrong.",
            username=username,
        )
    auth_of(request).start(request, result.user.id, result.sid)
    return finish(RedirectResponse(target, status_code=303), request)


@router.post("/logout")
async def logout(request: Request) -> Response:
    check_csrf(request, await request.form())
    user = await run_in_threadpool(current_user, request)
    sid = auth_of(request).end(request)
    source = request.client.host if request.client else None
    await run_in_threadpool(users.sign_out, service_of(request), sid, user, source)
    response = RedirectResponse("/ui/login", status_code=303)
    auth_of(request).clear(response)
    response.headers.update(HEADERS)
    return response


def status_of(request: Request, exc: ServiceError) -> int:
    """The HTTP status of a refusal, from the API's one table (handed over by create_app)."""
    table: Callable[[BaseException], int] | None = getattr(request.app.state, "http_status", None)
    return table(exc) if table is not None else 500


async def error_page(request: Request, exc: ServiceError, status: int) -> Response:
    """A refused page as HTML: the sign-in form when nobody is signed in."""
    if isinstance(exc, LoginRequired):
        target = f"/ui/login?next={request.url.path}"
        if request.headers.get("hx-request"):
            return finish(Response(status_code=200, headers={"HX-Redirect": target}), request)
        if request.method == "GET":
            return finish(RedirectResponse(target, status_code=303), request)
    return render(request, "error.html", status, message=exc.message, status=status)


def install(app: FastAPI, service: PriorAuthService, *, secure_cookie: bool | None = None) -> None:
    """Add the web app under /ui. Cookies are Secure when served over https (or if asked)."""
    from priorauth.ui import pages

    app.state.service = service
    secure = secure_cookies(service.settings) if secure_cookie is None else secure_cookie
    if getattr(app.state, "ui_auth", None) is not None:  # installed already (by create_app)
        app.state.ui_auth.secure = secure
        return
    app.state.ui_auth = Auth(service.keys.verifying(UI_SESSION), secure)
    app.include_router(router)
    app.include_router(pages.router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    # The app's handler of ServiceError renders this page for paths under /ui.
    app.state.error_page = error_page
