"""One error tree: every exception priorauth defines is a PriorauthError, and only the API knows
the HTTP status of each."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from starlette.exceptions import HTTPException

import priorauth
from priorauth.api.errors import STATUS, http_status, status_and_issue
from priorauth.auth.tokens import TokenError
from priorauth.errors import PriorauthError
from priorauth.service import errors as service_errors
from priorauth.service.errors import Conflict, NotFound, ServiceError


def defined_exceptions() -> list[type[BaseException]]:
    """Every public exception class defined in the package (scripts are skipped)."""
    found = []
    for info in pkgutil.walk_packages(priorauth.__path__, "priorauth."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found.append(obj)
    return found


def test_every_exception_is_in_the_tree() -> None:
    found = defined_exceptions()
    assert ServiceError in found and TokenError in found  # the walk sees the package
    # The API's body limit is Starlette's own HTTP error, raised and answered inside the API.
    outside = [
        e.__qualname__
        for e in found
        if not issubclass(e, PriorauthError) and not issubclass(e, HTTPException)
    ]
    assert outside == []


def test_errors_carry_no_http_status() -> None:
    for error in defined_exceptions():
        if issubclass(error, PriorauthError):
            assert not hasattr(error, "status"), error.__qualname__
            assert not hasattr(error, "status_code"), error.__qualname__


def test_every_refusal_of_a_use_case_has_its_status_in_the_one_table() -> None:
    refusals = [e for e in defined_exceptions() if issubclass(e, ServiceError)]
    listed = {e for e in refusals if e.__module__ == service_errors.__name__} - {ServiceError}
    assert len(listed) >= 7 and listed <= set(STATUS)
    for error in refusals:
        if error is ServiceError:
            continue
        status = http_status(error.__new__(error))
        assert 400 <= status < 500, (error.__qualname__, status)


def test_the_table_follows_the_class_tree() -> None:
    class Gone(NotFound):
        pass

    assert status_and_issue(Gone("x")) == (404, "not-found")
    assert status_and_issue(Conflict("x")) == (409, "conflict")
    assert http_status(ValueError("a bug")) == 500  # not a refusal: an internal error
    assert http_status(TokenError("invalid_client", "x")) == 401
    assert http_status(TokenError("invalid_scope", "x")) == 400
