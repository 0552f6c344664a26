"""Every exception priorauth raises on purpose, in one hierarchy.

    PriorauthError
    ├── InvalidRequest        a client's request cannot be read or breaks the contract
    │   └── InvalidClaims     a claims-history file cannot be read
    └── PolicyError           a policy cannot be used
        ├── PolicyInvalid     a policy file breaks the policy schema
        └── NoPolicyInForce   no version of the policy is in force on the review date

Adapters turn `InvalidRequest` into a 4xx with an OperationOutcome (HTTP) or a
one-line error with exit code 2 (CLI). Anything else escaping is a bug.
"""

from __future__ import annotations


class PriorauthError(Exception):
    """Base of every error priorauth raises on purpose."""


class InvalidRequest(PriorauthError):
    """The request is not JSON, not a PAS Bundle, or carries an impossible value.

    `where` names the place (a FHIR path or resource reference) when one is known,
    so that the caller can fix the request without reading a traceback.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class InvalidClaims(InvalidRequest):
    """A claims-history file (NDJSON of ExplanationOfBenefit) cannot be read."""


class PolicyError(PriorauthError):
    """A policy cannot be used."""


class PolicyInvalid(PolicyError):
    """A policy file does not match the policy schema."""


class NoPolicyInForce(PolicyError):
    """No version of the requested policy is in force on the review date."""
