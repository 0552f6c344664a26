"""DTR tests reuse the API service fixtures (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from priorauth.api.app import create_app
from priorauth.service.app_service import PriorAuthService
from tests.api.conftest import clock, db_url, service  # noqa: F401


@pytest.fixture
def app_client(service: PriorAuthService) -> Iterator[TestClient]:
    app = create_app(service)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
