"""DTR conformance fixtures: the API on the test service, the IG package and the kit's payloads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from priorauth.api.app import create_app
from priorauth.service.app_service import PriorAuthService
from tests.api.conftest import clock, db_url, service  # noqa: F401
from tests.conftest import shared_dir


@pytest.fixture
def app_client(service: PriorAuthService) -> Iterator[TestClient]:
    app = create_app(service)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def dtr_ig() -> Path:
    return shared_dir("igs", "davinci-dtr-2.0.1")


@pytest.fixture
def crd_ig() -> Path:
    return shared_dir("igs", "davinci-crd-2.0.1")


@pytest.fixture
def kit() -> Any:
    folder = shared_dir("fixtures", "davinci-dtr")

    def load(name: str) -> Any:
        return json.loads((folder / name).read_text())

    return load
