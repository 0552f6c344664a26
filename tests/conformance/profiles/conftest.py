"""Profile conformance: the IG packages of ../shared/igs, and a service to produce responses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from priorauth.api.app import create_app
from priorauth.service.app_service import PriorAuthService
from tests.api.conftest import clock, db_url, service  # noqa: F401
from tests.conformance.profiles.validator import Packages, igs
from tests.conftest import shared_dir

# PAS 2.2.1 is the target; CRD and DTR beside it (their profiles reference each other).
TARGET = ("davinci-pas-2.2.1", "davinci-crd-2.0.1", "davinci-dtr-2.0.1")


@pytest.fixture(scope="session")
def packages() -> Packages:
    return igs(shared_dir("igs"), *TARGET)


@pytest.fixture(scope="session")
def packages_pas201() -> Packages:
    """PAS 2.0.1, for the clients the issue asks to keep working."""
    return igs(shared_dir("igs"), "davinci-pas-2.0.1", "davinci-crd-2.0.1", "davinci-dtr-2.0.1")


@pytest.fixture
def client(service: PriorAuthService) -> Iterator[TestClient]:
    with TestClient(create_app(service), raise_server_exceptions=False) as c:
        yield c
