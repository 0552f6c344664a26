"""The production checklist of docs/deploy.md, checked before the server starts.

Each check gives a Finding: ok, warn (starts, but say so) or refuse (does not start).
`priorauth serve` prints every finding and exits 2 on a refusal; the app factory that
plain `uvicorn` runs refuses on the same findings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from priorauth.keys import HOW_TO_GENERATE, secret_problem
from priorauth.settings import Settings
from priorauth.store.models import ApiClientRow, UserRow

OK, WARN, REFUSE = "ok", "warn", "refuse"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True)
class Finding:
    check: str
    level: str  # ok | warn | refuse
    message: str

    def line(self) -> str:
        return f"{self.level:<6} {self.check}: {self.message}"


def preflight(settings: Settings, engine: Engine | None, workers: int = 1) -> list[Finding]:
    """Every check of the production checklist, in the order docs/deploy.md lists them."""
    out = [_mode(settings), *_secret(settings, workers), _tls(settings), _database(settings)]
    out.append(_outbound(settings))
    if engine is not None:
        with Session(engine) as s:
            out += _clients_and_users(settings, s)
    out += [_docs(settings), _rate_limit(settings, workers)]
    return out


def refusals(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == REFUSE]


def _mode(settings: Settings) -> Finding:
    if not settings.auth_enabled:
        return Finding(
            "mode",
            WARN,
            "development mode: authentication is OFF (PRIORAUTH_AUTH=off), every caller has "
            "every scope and demo users may sign in; never use it with real data",
        )
    return Finding("mode", OK, "authentication is on")


def _secret(settings: Settings, workers: int) -> list[Finding]:
    secret, previous = settings.secret_key, settings.secret_key_previous
    out = []
    if not secret:
        if not settings.auth_enabled:
            out.append(Finding("secret", OK, "development mode: a random key for this start"))
        elif workers > 1:
            out.append(
                Finding(
                    "secret",
                    REFUSE,
                    f"PRIORAUTH_SECRET_KEY is not set and {workers} workers would each have "
                    "their own key (a token from one fails on the others): set it, e.g. "
                    f"from {HOW_TO_GENERATE}",
                )
            )
        else:
            out.append(
                Finding(
                    "secret",
                    WARN,
                    "PRIORAUTH_SECRET_KEY is not set: a random key for this process, so "
                    "tokens and sessions end when it restarts",
                )
            )
    else:
        problem = secret_problem(secret)
        if problem is None:
            out.append(Finding("secret", OK, "PRIORAUTH_SECRET_KEY is set and strong"))
        else:
            level = REFUSE if settings.auth_enabled else WARN
            out.append(
                Finding(
                    "secret",
                    level,
                    f"PRIORAUTH_SECRET_KEY is too weak ({problem}): generate one with "
                    f"{HOW_TO_GENERATE}",
                )
            )
    if previous:
        problem = secret_problem(previous)
        if problem and settings.auth_enabled:
            out.append(
                Finding("secret-rotation", REFUSE, f"PRIORAUTH_SECRET_KEY_PREVIOUS: {problem}")
            )
        else:
            out.append(
                Finding(
                    "secret-rotation",
                    WARN,
                    "PRIORAUTH_SECRET_KEY_PREVIOUS is accepted for verification: remove it "
                    f"once {settings.session_hours} h have passed since the rotation",
                )
            )
    return out


def _tls(settings: Settings) -> Finding:
    url = urlsplit(settings.base_url)
    if url.scheme == "https":
        return Finding("tls", OK, f"served as {settings.base_url}")
    if not settings.auth_enabled or (url.hostname or "") in LOOPBACK:
        return Finding(
            "tls",
            WARN,
            f"PRIORAUTH_BASE_URL is {settings.base_url}: plain http, fit for loopback only",
        )
    return Finding(
        "tls",
        REFUSE,
        f"PRIORAUTH_BASE_URL is {settings.base_url}: tokens, sessions and PHI would cross the "
        "network in clear; terminate TLS in front and set an https:// base URL",
    )


def _database(settings: Settings) -> Finding:
    scheme = settings.database_url.split(":", 1)[0]
    if scheme.startswith("postgresql"):
        return Finding("database", OK, "PostgreSQL")
    level = WARN if settings.auth_enabled else OK
    return Finding(
        "database",
        level,
        f"{scheme}: the quickstart's database; use PostgreSQL in production "
        "(PRIORAUTH_DATABASE_URL=postgresql+psycopg://...)",
    )


def _outbound(settings: Settings) -> Finding:
    allowed: Any = getattr(settings, "outbound_allow", None)
    if allowed is None:
        allowed = os.environ.get("PRIORAUTH_OUTBOUND_ALLOW", "")
    if isinstance(allowed, str):
        allowed = [a for a in allowed.replace(",", " ").split() if a]
    if allowed:
        return Finding(
            "outbound",
            WARN,
            "subscription endpoints and CRD fhirServer may reach these private hosts "
            f"(PRIORAUTH_OUTBOUND_ALLOW): {', '.join(map(str, allowed))}",
        )
    return Finding("outbound", OK, "no private or loopback address may be called back")


def _clients_and_users(settings: Settings, s: Session) -> list[Finding]:
    out = []
    demo = list(s.scalars(select(UserRow.username).where(UserRow.demo.is_(True))))
    if demo and settings.auth_enabled:
        out.append(
            Finding(
                "demo-users",
                REFUSE,
                f"demo users with published passwords are present ({', '.join(demo)}): "
                "run `priorauth users remove-demo`",
            )
        )
    elif demo:
        out.append(Finding("demo-users", WARN, f"demo users present: {', '.join(demo)}"))
    else:
        out.append(Finding("demo-users", OK, "no demo users"))
    if not settings.auth_enabled:
        return out
    clients = list(s.scalars(select(ApiClientRow).where(ApiClientRow.active.is_(True))))
    unbound = sorted(c.id for c in clients if not c.organization)
    if not clients:
        out.append(Finding("clients", WARN, "no active API client: `priorauth clients add`"))
    elif unbound:
        out.append(
            Finding(
                "clients",
                WARN,
                f"{len(clients)} active clients; these see every organization's cases: "
                f"{', '.join(unbound)}",
            )
        )
    else:
        out.append(Finding("clients", OK, f"{len(clients)} active clients"))
    real = UserRow.active.is_(True) & UserRow.demo.is_(False)
    roles = set(s.scalars(select(UserRow.role).where(real)))
    if "medical_director" not in roles:
        out.append(
            Finding(
                "users",
                WARN,
                "no active Medical Director: nobody can decide in the web app "
                "(`priorauth users add NAME --role medical_director`)",
            )
        )
    else:
        out.append(Finding("users", OK, "a Medical Director can sign in"))
    return out


def _docs(settings: Settings) -> Finding:
    if not settings.docs_enabled:
        return Finding("api-docs", OK, "/docs, /redoc and /openapi.json are off")
    level = WARN if settings.auth_enabled else OK
    return Finding("api-docs", level, "/docs, /redoc and /openapi.json are served to anyone")


def _rate_limit(settings: Settings, workers: int) -> Finding:
    backend = settings.rate_backend
    if backend == "redis":
        from priorauth.service.ratelimit import redis_client

        try:
            redis_client(settings.redis_url).ping()
        except Exception as e:
            return Finding(
                "rate-limit",
                REFUSE,
                f"PRIORAUTH_RATE_BACKEND=redis but {_redacted(settings.redis_url)} does not "
                f"answer ({type(e).__name__})",
            )
        return Finding("rate-limit", OK, "budgets shared by every worker in Redis")
    if backend == "database":
        return Finding("rate-limit", OK, "budgets shared by every worker in the database")
    if workers > 1:
        return Finding(
            "rate-limit",
            WARN,
            f"budgets in memory: each of the {workers} workers has its own; set "
            "PRIORAUTH_RATE_BACKEND=database or redis",
        )
    return Finding("rate-limit", OK, "budgets in memory (one worker)")


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"
