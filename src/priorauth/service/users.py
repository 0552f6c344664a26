"""Reviewer accounts: create, verify passwords (argon2id), disable; sign-in and sign-out, and
their server-side sessions: each a use case with its audit record."""

from __future__ import annotations

import hashlib
import re
import secrets
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from priorauth.auth.actors import Actor
from priorauth.errors import PriorauthError
from priorauth.service.throttle import Limits, Throttle
from priorauth.settings import Settings
from priorauth.store.audit import Entry
from priorauth.store.models import UiSessionRow, UserRow

if TYPE_CHECKING:
    from priorauth.service.app_service import PriorAuthService

ROLES = {"intake": "Intake reviewer", "medical_director": "Medical Director"}
MIN_PASSWORD = 10
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,99}$")

# The published demo accounts of the quickstart: (username, password, role).
DEMO_USERS = (
    ("intake", "intake-demo-2026", "intake", "Ivy Intake"),
    ("director", "director-demo-2026", "medical_director", "Dr. Maya Director"),
)

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the username is unknown, so both failures take the same time.
_DUMMY_HASH = _hasher.hash("not a real password")


def use_hasher(hasher: PasswordHasher) -> None:
    """Hash and verify with `hasher` from now on (the tests' cheap parameters).

    Production never calls it. Hashes made with other parameters still verify, and are
    rehashed with these at the next sign-in, as after a change of the library's defaults.
    """
    global _hasher, _DUMMY_HASH  # noqa: PLW0603 - one hasher per process, set before use
    _hasher = hasher
    _DUMMY_HASH = hasher.hash("not a real password")


SEEN_EVERY = timedelta(seconds=60)


class UserError(PriorauthError, ValueError):
    """A user cannot be created as asked (bad name, role, password, or a duplicate)."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    active: bool

    @property
    def is_director(self) -> bool:
        return self.role == "medical_director"

    @property
    def role_label(self) -> str:
        return ROLES.get(self.role, self.role)


def _user(row: UserRow) -> User:
    return User(row.id, row.username, row.display_name, row.role, row.active)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(
    sessions: sessionmaker[Session],
    username: str,
    role: str,
    password: str,
    display_name: str | None = None,
    demo: bool = False,
) -> User:
    if not USERNAME.match(username):
        raise UserError("a username is 2-100 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")
    row = UserRow(
        username=username,
        display_name=(display_name or username).strip()[:200] or username,
        password_hash=hash_password(password),
        role=role,
        active=True,
        created_at=datetime.now(UTC),
        demo=demo,
    )
    with sessions() as s:
        s.add(row)
        try:
            s.commit()
        except IntegrityError as e:
            raise UserError(f"user {username!r} already exists") from e
        return _user(row)


def get_user(sessions: sessionmaker[Session], user_id: int) -> User | None:
    with sessions() as s:
        row = s.get(UserRow, user_id)
        return _user(row) if row is not None and row.active else None


def find_user(sessions: sessionmaker[Session], username: str) -> User | None:
    with sessions() as s:
        row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
        return _user(row) if row is not None else None


def display_names(sessions: sessionmaker[Session]) -> dict[str, str]:
    """username -> display name, to show who decided a case."""
    with sessions() as s:
        return dict(s.execute(select(UserRow.username, UserRow.display_name)).all())


def authenticate(
    sessions: sessionmaker[Session], username: str, password: str, *, allow_demo: bool = False
) -> User | None:
    """The active user with this password, else None. Upgrades outdated hashes.

    Demo accounts (published passwords) sign in only when `allow_demo`: in development mode.
    """
    with sessions() as s:
        row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
        if row is None or not row.active or (row.demo and not allow_demo):
            _verify(_DUMMY_HASH, password)
            return None
        if not _verify(row.password_hash, password):
            return None
        if _hasher.check_needs_rehash(row.password_hash):
            row.password_hash = hash_password(password)
            s.commit()
        return _user(row)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def ensure_demo_users(service: PriorAuthService) -> list[tuple[str, str, str]]:
    """Create the quickstart's demo accounts if absent; returns (username, password, role).

    They are flagged as demo accounts: they sign in in development mode only, and
    `priorauth serve` refuses to start with authentication on while they exist.
    """
    if service.settings.auth_enabled:
        raise UserError("demo users exist in development mode only (PRIORAUTH_AUTH=off)")
    out = []
    for username, password, role, name in DEMO_USERS:
        if find_user(service.sessions, username) is None:
            with suppress(UserError):  # created meanwhile by a concurrent start
                create_user(service.sessions, username, role, password, name, demo=True)
        out.append((username, password, role))
    return out


def all_users(sessions: sessionmaker[Session]) -> list[tuple[User, bool]]:
    """Every account by username, each with whether it is a demo account."""
    with sessions() as s:
        rows = s.scalars(select(UserRow).order_by(UserRow.username))
        return [(_user(r), bool(r.demo)) for r in rows]


def demo_users(sessions: sessionmaker[Session]) -> list[str]:
    """The usernames of the demo accounts present."""
    with sessions() as s:
        return list(s.scalars(select(UserRow.username).where(UserRow.demo.is_(True))))


def remove_demo_users(sessions: sessionmaker[Session]) -> list[str]:
    """Delete every demo account (their sessions go with them); returns their names."""
    with sessions() as s:
        rows = list(s.scalars(select(UserRow).where(UserRow.demo.is_(True))))
        for row in rows:
            s.execute(delete(UiSessionRow).where(UiSessionRow.user_id == row.id))
            s.delete(row)
        s.commit()
        return [r.username for r in rows]


def set_active(sessions: sessionmaker[Session], username: str, active: bool) -> bool:
    """Enable or disable a user; disabling ends every session at once. False if unknown."""
    with sessions() as s:
        row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
        if row is None:
            return False
        row.active = active
        if not active:
            s.execute(delete(UiSessionRow).where(UiSessionRow.user_id == row.id))
        s.commit()
        return True


# --- server-side sessions -------------------------------------------------------------


def _sid_hash(sid: str) -> str:
    # Stored hashed: reading the table gives no usable session id.
    return hashlib.sha256(sid.encode()).hexdigest()


def _sweep_and_open(s: Session, user_id: int, now: datetime, settings: Settings) -> str:
    """A new signed-in session's id (for the cookie); it is stored hashed."""
    # Sessions abandoned without signing out are swept here, once per sign-in.
    idle = now - timedelta(minutes=settings.session_idle_minutes)
    oldest = now - timedelta(hours=settings.session_hours)
    s.execute(
        delete(UiSessionRow).where(
            (UiSessionRow.last_seen < idle) | (UiSessionRow.created_at < oldest)
        )
    )
    sid = secrets.token_urlsafe(32)
    s.add(UiSessionRow(id=_sid_hash(sid), user_id=user_id, created_at=now, last_seen=now))
    return sid


def resolve_session(
    sessions: sessionmaker[Session], sid: str, now: datetime, settings: Settings
) -> int | None:
    """The user of a live session, else None (and an expired one is deleted)."""
    idle = timedelta(minutes=settings.session_idle_minutes)
    longest = timedelta(hours=settings.session_hours)
    with sessions() as s:
        row = s.get(UiSessionRow, _sid_hash(sid))
        if row is None:
            return None
        last, created = row.last_seen, row.created_at
        if now - last > idle or now - created > longest:
            s.delete(row)
            s.commit()
            return None
        if now - last > SEEN_EVERY:  # one write a minute, not one a request
            row.last_seen = now
            s.commit()
        return row.user_id


# --- the use cases: sign in, sign out ---------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    """What a sign-in came to: a user and their new session's id, or a refusal."""

    user: User | None
    sid: str | None = None
    locked_until: datetime | None = None  # refused before the password was even checked


def sign_in(service: PriorAuthService, username: str, password: str, source: str | None) -> SignIn:
    """Check a password under the sign-in throttle; on success open a session.

    Every attempt is audited: a refusal (never raising: the answer goes out even if its
    record cannot be written), or the success in the new session's own transaction.
    """
    username = username.strip()
    actor = Actor(username[:100] or "(blank)", "user", source)
    throttle = Throttle(service.sessions, Limits.of(service.settings), service.clock)
    until = throttle.blocked(username, source)
    if until is not None:
        # Counted, and audited once a minute per address: a flood writes no record each.
        now = service.clock().timestamp()
        closed = service.refusals.count(f"anonymous:{source or 'unknown'}", now)
        if closed:
            service.record_refusals(closed)
        return SignIn(None, locked_until=until)
    # Demo accounts (published passwords) sign in only in development mode.
    allow_demo = not service.settings.auth_enabled
    user = authenticate(service.sessions, username, password, allow_demo=allow_demo)
    entity = f"user/{actor.id}"
    if user is None:
        locked = throttle.failed(username, source)
        detail = {"locked": [k.split(":", 1)[0] for k in locked]} if locked else {}
        service.audit.record_refusal(actor, "sign-in", entity, None, **detail)
        return SignIn(None)
    throttle.succeeded(username)
    with service.write_lock, service.sessions() as s:
        sid = _sweep_and_open(s, user.id, service.clock(), service.settings)
        service.audit.append_in(s, [Entry(actor, "sign-in", "success", entity)])
        s.commit()
    return SignIn(user, sid)


def sign_out(
    service: PriorAuthService, sid: str | None, user: User | None, source: str | None
) -> None:
    """End a session; the sign-out of a signed-in user is audited in the same transaction."""
    with service.write_lock, service.sessions() as s:
        if sid is not None:
            s.execute(delete(UiSessionRow).where(UiSessionRow.id == _sid_hash(sid)))
        if user is not None:
            actor = Actor(user.username, "user", source)
            entry = Entry(actor, "sign-out", "success", f"user/{user.username}")
            service.audit.append_in(s, [entry])
        s.commit()


# --- what the web app reads, through the service ----------------------------------------


def session_user(service: PriorAuthService, sid: str) -> int | None:
    """The user of a live signed-in session, on the service's clock and settings."""
    return resolve_session(service.sessions, sid, service.clock(), service.settings)


def active_user(service: PriorAuthService, user_id: int) -> User | None:
    """The user, if still active: read on every request, so a deactivation takes effect."""
    return get_user(service.sessions, user_id)


def names(service: PriorAuthService) -> dict[str, str]:
    """username -> display name, to show who decided a case."""
    return display_names(service.sessions)
