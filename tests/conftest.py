"""Shared fixtures: the shipped policy compiled once, the path to ../shared, hypothesis profiles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from priorauth.core.evaluator import CompiledPolicy
from priorauth.policies import PolicyLibrary, builtin

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
