"""priorauth: a prior authorization engine that judges coverage policies from FHIR.

The public API is what `__all__` lists; every other module is private and may change::

    import priorauth

    determination = priorauth.evaluate(bundle_bytes, claims=ndjson_bytes)
    determination.recommendation            # "approve", "approve-modified", "deny" or "pend"
    priorauth.to_dict(determination)        # the `priorauth.determination/1` JSON object

Names are imported on first use, so `import priorauth` stays cheap (the CLI depends on it).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Determination",
    "Finding",
    "InvalidClaims",
    "InvalidRequest",
    "NoPolicyInForce",
    "PolicyError",
    "PolicyInvalid",
    "PolicyLibrary",
    "PriorauthError",
    "Recommendation",
    "__version__",
    "evaluate",
    "load_policies",
    "to_dict",
]

# name -> the private module that defines it
_LAZY = {
    "evaluate": "priorauth._api",
    "load_policies": "priorauth._api",
    "to_dict": "priorauth._api",
    "PolicyLibrary": "priorauth.policies",
    "Determination": "priorauth.core.result",
    "Finding": "priorauth.core.result",
    "Recommendation": "priorauth.core.result",
    "PriorauthError": "priorauth.errors",
    "InvalidRequest": "priorauth.errors",
    "InvalidClaims": "priorauth.errors",
    "PolicyError": "priorauth.errors",
    "PolicyInvalid": "priorauth.errors",
    "NoPolicyInForce": "priorauth.errors",
}

if TYPE_CHECKING:
    from priorauth._api import evaluate, load_policies, to_dict
    from priorauth.core.result import Determination, Finding, Recommendation
    from priorauth.errors import (
        InvalidClaims,
        InvalidRequest,
        NoPolicyInForce,
        PolicyError,
        PolicyInvalid,
        PriorauthError,
    )
    from priorauth.policies import PolicyLibrary


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'priorauth' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
