"""Predicate kinds: each turns one `check` of a policy file into a compiled function.

A compiler receives the criterion id, the validated check model and the
compile context, and returns `fn(facts, state) -> Raw`: the status, a number
dependents reuse, and the explanation (reason and evidence), which is built
only when someone reads it. Everything that can be worked out once per policy
(code sets, unit factors, windows, the dose rule) is worked out here, so
evaluation does only lookups and comparisons.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

from priorauth.core.dose import DoseRule
from priorauth.core.facts import Facts
from priorauth.core.model import Policy
from priorauth.core.result import Raw

CheckFn = Callable[[Facts, "State"], Raw]


class State:
    """Per-evaluation scratch space: the review date and the raw results so far."""

    __slots__ = ("as_of", "findings")

    def __init__(self, as_of: date, findings: dict[str, Raw] | None = None) -> None:
        self.as_of = as_of
        self.findings: dict[str, Raw] = {} if findings is None else findings

    def since(self, days: int) -> date:
        return self.as_of - timedelta(days=days)


@dataclass(frozen=True, slots=True)
class CompileContext:
    policy: Policy
    dose: DoseRule | None  # the policy's dosing, compiled
    product_ndcs: frozenset[str]  # 11-digit NDCs of every product the policy's dosing names


M = TypeVar("M")
Compiler = Callable[[str, Any, CompileContext], CheckFn]
COMPILERS: dict[str, Compiler] = {}
# Criterion ids a check reads the findings of, so they are evaluated first.
DEPENDENCIES: dict[str, Callable[[Any], list[str]]] = {}


# Fast paths the policy's generated code writes inline instead of calling a check:
# check function -> (template name, constants). The check stays the fallback for
# every case the template does not settle, so the two cannot disagree.
INLINE: weakref.WeakKeyDictionary[Callable[..., Raw], tuple[Any, ...]] = weakref.WeakKeyDictionary()


def compiler(
    kind: str, depends: Callable[[Any], list[str]] | None = None
) -> Callable[
    [Callable[[str, M, CompileContext], CheckFn]], Callable[[str, M, CompileContext], CheckFn]
]:
    """Register the compiler of one predicate kind."""

    def register(
        fn: Callable[[str, M, CompileContext], CheckFn],
    ) -> Callable[[str, M, CompileContext], CheckFn]:
        COMPILERS[kind] = fn
        if depends is not None:
            DEPENDENCIES[kind] = depends
        return fn

    return register


def _load_kinds() -> None:
    # Importing the modules registers their compilers.
    from priorauth.core.checks import (  # noqa: F401
        dosing,
        fhirpath,
        history,
        labs,
        negation,
        patient,
        plan,
        records,
        statements,
    )


_load_kinds()
