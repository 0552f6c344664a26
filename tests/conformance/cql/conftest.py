"""The CQL conformance tests reuse the DTR API fixtures (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from tests.api.conftest import clock, db_url, service  # noqa: F401
from tests.dtr.conftest import app_client  # noqa: F401
