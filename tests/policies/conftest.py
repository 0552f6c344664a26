"""The UI fixtures, for the plan tests that read a letter."""

from tests.api.conftest import clock, db_url, service  # noqa: F401
from tests.ui.conftest import app, director  # noqa: F401
