"""Reviewer accounts: create, look up and verify passwords (argon2id)."""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from priorauth.store.models import UserRow

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


class UserError(ValueError):
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


def authenticate(sessions: sessionmaker[Session], username: str, password: str) -> User | None:
    """The active user with this password, else None. Upgrades outdated hashes."""
    with sessions() as s:
        row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
        if row is None or not row.active:
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
    """Create the quickstart's demo accounts if absent; returns (username, password, role)."""
    out = []
    for username, password, role, name in DEMO_USERS:
        if find_user(service.sessions, username) is None:
            with suppress(UserError):  # created meanwhile by a concurrent start
                create_user(service.sessions, username, role, password, name)
        out.append((username, password, role))
    return out
