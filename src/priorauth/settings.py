"""Every setting in one place, read from PRIORAUTH_* environment variables."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as e:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from e


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from e
    if not value > 0:
        raise ValueError(f"{name} must be more than 0, not {raw!r}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {raw!r}")


def _list(name: str) -> frozenset[str]:
    raw = os.environ.get(name, "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _audit_key() -> str:
    raw = os.environ.get("PRIORAUTH_AUDIT_KEY", "")
    if raw and len(raw) < 32:
        raise ValueError("PRIORAUTH_AUDIT_KEY must be at least 32 characters")
    return raw


_HOST = re.compile(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.?")


def _hosts_or_networks(name: str) -> tuple[str, ...]:
    """Comma-separated host names ("ehr.local", "*.corp.example") and IPs or CIDRs."""
    out = []
    for part in os.environ.get(name, "").split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            if not _HOST.fullmatch(entry):
                raise ValueError(
                    f"{name}: {entry!r} is neither a host name nor an IP address or CIDR"
                ) from None
        out.append(entry)
    return tuple(out)


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
    # Every request body, on every route (413 over it); forms (sign-in, the token
    # endpoint, the web app's posts) have a smaller limit of their own.
    max_body_bytes: int = 5 * 1024 * 1024
    max_form_bytes: int = 64 * 1024
    # Validate every $submit against the FHIR R4B models (fhir.resources) on top of
    # the intake's own contract checks. About 10 ms a request; off trades that for speed.
    fhir_validation: bool = True
    base_url: str = "http://127.0.0.1:8000"
    insurer_name: str = "priorauth payer"
    # The PAS version $inquire answers in when the inquiry does not say (a profile with
    # "|2.0.1" or "|2.2.1"): 2.2.1 answers Parameters, 2.0.1 one Bundle.
    pas_version: str = "2.2.1"
    # Approve at once (A1) what a policy does not send to the Medical Director and the
    # engine finds fully met; off: every request pends for a person (A4).
    auto_approve: bool = True
    notify_timeout_seconds: float = 5.0
    # Where the server's own requests (subscription notifications, CRD prefetch) may go:
    # public addresses only, plus these host names ("ehr.local", "*.corp.example") and
    # networks ("10.1.0.0/16", "127.0.0.1"). https only unless http is allowed here
    # or authentication is off (development mode).
    outbound_allow: tuple[str, ...] = ()
    outbound_allow_http: bool = False
    # The notification outbox: a failed delivery is retried after backoff, 2x backoff,
    # 4x ... (capped at an hour), and marked failed after max attempts.
    outbox_max_attempts: int = 8
    outbox_backoff_seconds: int = 30
    outbox_poll_seconds: int = 5
    # SMART Backend Services on every API endpoint. Off is a development mode that
    # must be asked for (PRIORAUTH_AUTH=off) and is announced with a warning.
    auth_enabled: bool = True
    # The one secret every key is derived from (access tokens, web sessions: one key per
    # purpose); every worker must share it. With authentication on it must be strong
    # (priorauth.keys.secret_problem). Generated per process when absent.
    secret_key: str = ""
    # The audit chain's HMAC key (PRIORAUTH_AUDIT_KEY); derived from secret_key when empty.
    # Kept out of the database so that whoever can write the database cannot re-chain it.
    audit_key: str = ""
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
    # Member identifiers are compared trimmed and case-insensitively; a payer whose
    # identifier system distinguishes case lists that system here.
    case_sensitive_id_systems: frozenset[str] = frozenset()
    # The payer's member identifier system, assumed when a request names a member
    # without one (Coverage.subscriberId carries no system).
    member_id_system: str = ""
    # Connections (`priorauth serve`): an idle keep-alive connection is closed after
    # `timeout_keep_alive` s; a request's line and headers must arrive within
    # `timeout_request_head` s (half-open and slowloris connections are closed), each
    # piece of its body within `timeout_request_body` s (408); headers are limited to
    # `max_header_bytes`; past `limit_concurrency` connections and requests at once
    # a worker answers 503.
    timeout_keep_alive: int = 5
    timeout_request_head: float = 10.0
    timeout_request_body: float = 30.0
    max_header_bytes: int = 16 * 1024
    limit_concurrency: int = 200
    # Web session cookies carry Secure: None = when base_url is https (PRIORAUTH_COOKIE_SECURE).
    cookie_secure: bool | None = None

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
            max_form_bytes=_int("PRIORAUTH_MAX_FORM_BYTES", cls.max_form_bytes),
            fhir_validation=_bool("PRIORAUTH_FHIR_VALIDATION", cls.fhir_validation),
            auth_enabled=_bool("PRIORAUTH_AUTH", cls.auth_enabled),
            secret_key=os.environ.get("PRIORAUTH_SECRET_KEY", "").strip(),
            secret_key_previous=os.environ.get("PRIORAUTH_SECRET_KEY_PREVIOUS", "").strip(),
            audit_key=_audit_key(),
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
            cookie_secure=_bool("PRIORAUTH_COOKIE_SECURE", False)
            if os.environ.get("PRIORAUTH_COOKIE_SECURE", "").strip()
            else None,
            api_docs=_bool("PRIORAUTH_API_DOCS", False)
            if os.environ.get("PRIORAUTH_API_DOCS", "").strip()
            else None,
            timeout_keep_alive=_int("PRIORAUTH_TIMEOUT_KEEP_ALIVE", cls.timeout_keep_alive),
            timeout_request_head=_float("PRIORAUTH_TIMEOUT_REQUEST_HEAD", cls.timeout_request_head),
            timeout_request_body=_float("PRIORAUTH_TIMEOUT_REQUEST_BODY", cls.timeout_request_body),
            max_header_bytes=_int("PRIORAUTH_MAX_HEADER_BYTES", cls.max_header_bytes),
            limit_concurrency=_int("PRIORAUTH_LIMIT_CONCURRENCY", cls.limit_concurrency),
            base_url=os.environ.get("PRIORAUTH_BASE_URL") or cls.base_url,
            insurer_name=os.environ.get("PRIORAUTH_INSURER_NAME") or cls.insurer_name,
            pas_version=os.environ.get("PRIORAUTH_PAS_VERSION") or cls.pas_version,
            auto_approve=_bool("PRIORAUTH_AUTO_APPROVE", cls.auto_approve),
            case_sensitive_id_systems=_list("PRIORAUTH_CASE_SENSITIVE_ID_SYSTEMS"),
            member_id_system=os.environ.get("PRIORAUTH_MEMBER_ID_SYSTEM", "").strip(),
            outbound_allow=_hosts_or_networks("PRIORAUTH_OUTBOUND_ALLOW"),
            outbound_allow_http=_bool("PRIORAUTH_OUTBOUND_ALLOW_HTTP", cls.outbound_allow_http),
            outbox_max_attempts=max(
                1, _int("PRIORAUTH_OUTBOX_MAX_ATTEMPTS", cls.outbox_max_attempts)
            ),
            outbox_backoff_seconds=max(
                1, _int("PRIORAUTH_OUTBOX_BACKOFF_SECONDS", cls.outbox_backoff_seconds)
            ),
            outbox_poll_seconds=max(
                1, _int("PRIORAUTH_OUTBOX_POLL_SECONDS", cls.outbox_poll_seconds)
            ),
        )
