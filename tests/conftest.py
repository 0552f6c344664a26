"""Shared fixtures: the shipped policy compiled once, the path to ../shared, hypothesis profiles."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from priorauth.core.evaluator import CompiledPolicy
from priorauth.policies import PolicyLibrary, builtin
from tests.databases import Databases

SHARED = Path(__file__).resolve().parents[2] / "shared"

# How hard the property tests search, chosen per run rather than per test:
#   dev   (default) a quick look while working;
#   ci    what .ci/run uses (HYPOTHESIS_PROFILE=ci);
#   fuzz  a long search: HYPOTHESIS_PROFILE=fuzz uv run pytest -m slow -s
# No deadline: a busy machine makes examples slow, and timing is not what these tests check.
_QUIET = [HealthCheck.too_slow]
settings.register_profile("dev", max_examples=50, deadline=None, suppress_health_check=_QUIET)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=_QUIET, print_blob=True
)
settings.register_profile(
    "fuzz", max_examples=5_000, deadline=None, suppress_health_check=_QUIET, print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


_connect = socket.create_connection


def _loopback_only(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
    """Tests talk to this machine only: a connection anywhere else fails at once, unsent.

    The server's own requests (Subscription handshakes and notifications, CRD prefetch)
    are tested against loopback receivers; an endpoint that resolves to a public address
    in a test must never become real traffic.
    """
    host = str(address[0])
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConnectionRefusedError(f"tests connect to loopback only, not {host}")
    return _connect(address, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def _no_outside_network() -> Iterator[None]:
    socket.create_connection = _loopback_only
    yield
    socket.create_connection = _connect


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> None:
    """argon2id at its smallest cost: the tests check which hash is stored, not its price.

    Production keeps the library's parameters (a hash costs ~0.1-0.5 s of CPU, and the UI
    fixtures hash the demo passwords for every test).
    """
    from argon2 import PasswordHasher

    from priorauth.service.users import use_hasher

    use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """Migrated once per test process; see tests/databases.py."""
    dbs = Databases(tmp_path_factory.mktemp("databases"))
    yield dbs
    dbs.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, databases: Databases) -> str:
    """A database at the newest migration, with nothing in it but what the migrations seed."""
    return databases.migrated(request.param, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_db_url(request: pytest.FixtureRequest, tmp_path: Path, databases: Databases) -> str:
    """A database with nothing in it: for the tests of the migrations themselves."""
    return databases.blank(request.param, tmp_path)


@pytest.fixture(scope="session")
def library() -> PolicyLibrary:
    return builtin()


@pytest.fixture(scope="session")
def ip0535(library: PolicyLibrary) -> CompiledPolicy:
    return library.versions["cigna-ip0535"][-1]


def shared_dir(*parts: str) -> Path:
    """A folder under ../shared, or skip the test when it is not beside the checkout."""
    path = SHARED.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"{path} is absent (../shared is not beside this checkout)")
    return path
