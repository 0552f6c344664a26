"""Shared fixtures: the shipped policy compiled once, and the path to ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from priorauth.core.evaluator import CompiledPolicy
from priorauth.policies import PolicyLibrary, builtin

SHARED = Path(__file__).resolve().parents[2] / "shared"


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
