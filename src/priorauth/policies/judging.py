"""The one judging pipeline: request → facts → policy version (routing) → claims → evaluation.

$submit, CRD, DTR, `priorauth evaluate`, `priorauth demo`, `priorauth policy test` and
`priorauth.evaluate` all call `judge`. It lives with the library (not in coverage/, which
sits above the store) so that every one of them, the policy test runner included, imports
it downwards. It does no I/O of its own: the claims history comes through a callable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import ClaimsHistory, Facts
from priorauth.core.result import Determination
from priorauth.intake.pas_bundle import read_bundle
from priorauth.intake.request import PasRequest

if TYPE_CHECKING:
    from priorauth.policies import PolicyLibrary, Route

# The member's claims history, looked up once the request is known to be judged.
ClaimsLookup = Callable[[Facts], ClaimsHistory]

__all__ = ["ClaimsLookup", "Judged", "judge"]


@dataclass(frozen=True, slots=True)
class Judged:
    """What the pipeline found: the facts, the policy version and why, the determination.

    `determination` is None when no loaded policy covers the request (pended for manual
    review by the service; an error for the CLI and the public API).
    """

    facts: Facts
    policy: CompiledPolicy | None
    route: Route | None  # None when the caller named the policy, or none covers it
    determination: Determination | None

    @property
    def routing(self) -> dict[str, Any] | None:
        """Why this policy version was chosen (`policy.selected` of the stored JSON)."""
        return self.route.to_dict() if self.route is not None else None

    def to_dict(self) -> dict[str, Any] | None:
        """The `priorauth.determination/1` JSON object, or None when nothing was judged."""
        from priorauth.report import determination_to_dict

        if self.policy is None or self.determination is None:
            return None
        return determination_to_dict(self.determination, self.policy, self.routing)


def judge(
    request: PasRequest | bytes | str | dict[str, Any],
    library: PolicyLibrary | None,
    *,
    claims: ClaimsLookup | None = None,
    as_of: date | None = None,
    validate: bool = False,
    policy: CompiledPolicy | None = None,
) -> Judged:
    """Read the request once, route it (unless `policy` is given), add the claims, evaluate.

    Raises InvalidRequest when the request cannot be read; the claims look-up's own
    errors pass through. `library` may be None only when `policy` is given.
    """
    facts = read_bundle(request, as_of=as_of, validate=validate)
    route = None
    if policy is None:
        if library is None:
            raise ValueError("judge needs a library to route, or a policy")
        route = library.route(facts)
        if route is None:
            return Judged(facts, None, None, None)
        policy = route.policy
    if claims is not None:
        facts = dataclasses.replace(facts, claims=claims(facts))
    return Judged(facts, policy, route, policy.evaluate(facts))
