"""The PAS conformance tests share the API tests' service and client (SQLite by default)."""

from __future__ import annotations

import json
from typing import Any

from tests.api.conftest import client, clock, db_url, service  # noqa: F401
from tests.conftest import shared_dir


def kit_fixture(name: str) -> Any:
    """One of the Inferno PAS kit's payloads (../shared/fixtures/davinci-pas)."""
    return json.loads((shared_dir("fixtures", "davinci-pas") / name).read_text())


def ig_example(name: str) -> Any:
    """An example of the PAS 2.2.1 IG package (../shared/igs/davinci-pas-2.2.1)."""
    return json.loads((shared_dir("igs", "davinci-pas-2.2.1") / name).read_text())
