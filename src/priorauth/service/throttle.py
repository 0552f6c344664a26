"""Sign-in throttle: failed sign-ins per account and per address lock them for a while.

Kept in the database (`login_throttle`) so every worker process sees the same counts.
A locked account or address is refused before its password is even checked, so guessing
costs the attacker the lockout and the server no argon2 work. An administrator lifts an
account's lock with `priorauth users unlock NAME` (and an address's with `--address`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from priorauth.settings import Settings
from priorauth.store.models import LoginThrottleRow


@dataclass(frozen=True)
class Limits:
    account_failures: int = 5
    address_failures: int = 20
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.login_max_failures,
            settings.login_address_max_failures,
            timedelta(minutes=settings.login_window_minutes),
            timedelta(minutes=settings.login_lockout_minutes),
        )


def account_key(username: str) -> str:
    # Case folded: "Director" and "director" share one budget.
    return "user:" + username.strip().lower()[:150]


def address_key(address: str | None) -> str:
    return "addr:" + (address or "unknown")[:150]


class Throttle:
    """Counts failures in the database; `blocked` says until when an attempt is refused."""

    def __init__(
        self, sessions: sessionmaker[Session], limits: Limits, clock: Callable[[], datetime]
    ) -> None:
        self.sessions, self.limits, self.clock = sessions, limits, clock

    def blocked(self, username: str, address: str | None) -> datetime | None:
        """The end of the lockout on this account or address, or None when it may try."""
        now = self.clock()
        keys = [account_key(username), address_key(address)]
        with self.sessions() as s:
            rows = s.scalars(select(LoginThrottleRow).where(LoginThrottleRow.key.in_(keys)))
            ends = [r.locked_until for r in rows]
        live = [e for e in ends if e is not None and e > now]
        return max(live) if live else None

    def failed(self, username: str, address: str | None) -> list[str]:
        """Count one failure on the account and the address; returns the keys it locked."""
        locked = []
        for key, most in (
            (account_key(username), self.limits.account_failures),
            (address_key(address), self.limits.address_failures),
        ):
            if self._count(key, most):
                locked.append(key)
        return locked

    def _count(self, key: str, most: int) -> bool:
        now = self.clock()
        for attempt in range(3):
            try:
                with self.sessions() as s:
                    row = s.get(LoginThrottleRow, key, with_for_update=True)
                    if row is None:
                        row = LoginThrottleRow(
                            key=key, failures=0, window_start=now, locked_until=None
                        )
                        s.add(row)
                    start = row.window_start or now
                    until = row.locked_until
                    if now - start > self.limits.window and (until is None or until <= now):
                        row.failures, row.window_start, row.locked_until = 0, now, None
                        until = None
                    row.failures += 1
                    newly = row.failures >= most and (until is None or until <= now)
                    if newly:
                        row.locked_until = now + self.limits.lockout
                    s.commit()
                    return newly
            except IntegrityError:  # another worker counted the first failure at the same time
                if attempt == 2:
                    raise
        return False  # pragma: no cover

    def succeeded(self, username: str) -> None:
        """A right password (while not locked) clears the account's failures, not the address's."""
        self._clear(account_key(username))

    def unlock(self, username: str | None = None, address: str | None = None) -> bool:
        """Lift the lock (and forget the failures) of an account or an address."""
        key = account_key(username) if username is not None else address_key(address)
        return self._clear(key)

    def _clear(self, key: str) -> bool:
        with self.sessions() as s:
            gone = s.execute(delete(LoginThrottleRow).where(LoginThrottleRow.key == key))
            s.commit()
            return bool(getattr(gone, "rowcount", 0))
