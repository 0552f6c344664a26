"""Every setting in one place, read from PRIORAUTH_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as e:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from e


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {raw!r}")


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
    return raw


RATE_BACKENDS = ("memory", "database", "redis")


@dataclass(frozen=True)
class Settings:
    # SQLite in the working directory by default so the quickstart needs nothing;
    # PostgreSQL (postgresql+psycopg://...) in production.
    database_url: str = "sqlite:///priorauth.db"
    # Decision clocks. CMS-0062-P proposes 24 h (expedited) and 72 h (standard) for drugs.
    expedited_hours: int = 24
    standard_hours: int = 72
    max_body_bytes: int = 5 * 1024 * 1024
    # Validate every $submit against the FHIR R4B models (fhir.resources) on top of
    # the intake's own contract checks. About 10 ms a request; off trades that for speed.
    fhir_validation: bool = True
    base_url: str = "http://127.0.0.1:8000"
    insurer_name: str = "priorauth payer"
    notify_timeout_seconds: float = 5.0
    # SMART Backend Services on every API endpoint. Off is a development mode that
    # must be asked for (PRIORAUTH_AUTH=off) and is announced with a warning.
    auth_enabled: bool = True
    # The one secret every key is derived from (access tokens, web sessions: one key per
    # purpose); every worker must share it. With authentication on it must be strong
    # (priorauth.auth.keys.secret_problem). Generated per process when absent.
    secret_key: str = ""
    # During a rotation: the old secret, still accepted to verify (never to sign).
    secret_key_previous: str = ""
    # Per-client request budget: a bucket of `rate_burst` refilled at `rate_per_minute`.
    rate_per_minute: int = 1200
    rate_burst: int = 200
    # Per-address budget for requests without a valid token, checked before they are audited.
    anon_rate_per_minute: int = 60
    anon_rate_burst: int = 30
    # Where the budgets live: memory (one process), database or redis (shared by workers).
    rate_backend: str = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Sign-in throttle: failures per account and per address within the window lock them
    # for the lockout (an administrator lifts it early with `priorauth users unlock`).
    login_max_failures: int = 5
    login_address_max_failures: int = 20
    login_window_minutes: int = 15
    login_lockout_minutes: int = 15
    # Web sessions end after this long without a request, and at most after session_hours.
    session_idle_minutes: int = 30
    session_hours: int = 8
    # /docs, /redoc and /openapi.json: None = on in development mode (auth off) only.
    api_docs: bool | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def docs_enabled(self) -> bool:
        return (not self.auth_enabled) if self.api_docs is None else self.api_docs

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("PRIORAUTH_DATABASE_URL") or cls.database_url,
            expedited_hours=_int("PRIORAUTH_EXPEDITED_HOURS", cls.expedited_hours),
            standard_hours=_int("PRIORAUTH_STANDARD_HOURS", cls.standard_hours),
            max_body_bytes=_int("PRIORAUTH_MAX_BODY_BYTES", cls.max_body_bytes),
            fhir_validation=_bool("PRIORAUTH_FHIR_VALIDATION", cls.fhir_validation),
            auth_enabled=_bool("PRIORAUTH_AUTH", cls.auth_enabled),
            secret_key=os.environ.get("PRIORAUTH_SECRET_KEY", "").strip(),
            secret_key_previous=os.environ.get("PRIORAUTH_SECRET_KEY_PREVIOUS", "").strip(),
            rate_per_minute=_int("PRIORAUTH_RATE_PER_MINUTE", cls.rate_per_minute),
            rate_burst=_int("PRIORAUTH_RATE_BURST", cls.rate_burst),
            anon_rate_per_minute=_int("PRIORAUTH_ANON_RATE_PER_MINUTE", cls.anon_rate_per_minute),
            anon_rate_burst=_int("PRIORAUTH_ANON_RATE_BURST", cls.anon_rate_burst),
            rate_backend=_choice("PRIORAUTH_RATE_BACKEND", RATE_BACKENDS, cls.rate_backend),
            redis_url=os.environ.get("PRIORAUTH_REDIS_URL") or cls.redis_url,
            login_max_failures=_int("PRIORAUTH_LOGIN_MAX_FAILURES", cls.login_max_failures),
            login_address_max_failures=_int(
                "PRIORAUTH_LOGIN_ADDRESS_MAX_FAILURES", cls.login_address_max_failures
            ),
            login_window_minutes=_int("PRIORAUTH_LOGIN_WINDOW_MINUTES", cls.login_window_minutes),
            login_lockout_minutes=_int(
                "PRIORAUTH_LOGIN_LOCKOUT_MINUTES", cls.login_lockout_minutes
            ),
            session_idle_minutes=_int("PRIORAUTH_SESSION_IDLE_MINUTES", cls.session_idle_minutes),
            session_hours=_int("PRIORAUTH_SESSION_HOURS", cls.session_hours),
            api_docs=_bool("PRIORAUTH_API_DOCS", False)
            if os.environ.get("PRIORAUTH_API_DOCS", "").strip()
            else None,
            base_url=os.environ.get("PRIORAUTH_BASE_URL") or cls.base_url,
            insurer_name=os.environ.get("PRIORAUTH_INSURER_NAME") or cls.insurer_name,
        )
