"""Every exception priorauth raises on purpose, in one hierarchy (where each is defined).

    PriorauthError
    ├── InvalidRequest              a client's request cannot be read or breaks the contract
    │   ├── InvalidClaims           a claims-history file cannot be read
    │   └── UnusableContent         a well-formed request holds a value that cannot be judged
    ├── PolicyError                 a policy cannot be used
    │   ├── PolicyInvalid           a policy file breaks the policy schema
    │   └── NoPolicyInForce         no version of the policy is in force on the review date
    ├── ServiceError                a use case refused (service/errors.py)
    │   ├── BadRequest              not JSON, not a PAS bundle
    │   ├── Unprocessable           breaks the guide's or the contract's rules
    │   ├── NotFound                no such case or subscription
    │   ├── Conflict                the case's state does not allow it
    │   ├── Forbidden               the caller may not do this
    │   ├── Unauthorized            the caller is not known
    │   │   └── LoginRequired       nobody is signed in to the web app (ui/auth.py)
    │   ├── TooManyRequests         the caller's budget is spent
    │   └── PrefetchUnavailable     a CDS Hooks prefetch is missing (crd/hooks.py)
    ├── TokenError                  an OAuth error at the token endpoint (auth/tokens.py)
    ├── UserError                   a reviewer account cannot be made as asked (service/users.py)
    ├── OutboundRefused             an outbound address is not allowed (service/outbound.py)
    │   └── UnresolvableHost        its host name does not resolve (perhaps for now)
    ├── CaseConflict                the case's state does not allow it (store/cases.py)
    │   └── LifetimeLimitReached    the member's lifetime approvals are used up
    ├── SchemaOutOfDate             the database needs `priorauth db upgrade` (store/db.py)
    └── WeakSecret                  a secret too weak for authentication on (keys.py)

None carries an HTTP status: the API maps each class to one in a single table
(api/errors.py), which the web app's pages use too; the CLI turns `InvalidRequest` into a
one-line error with exit code 2. Anything else escaping is a bug.
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


class UnusableContent(InvalidRequest):
    """A request valid as FHIR carries a value the payer cannot judge (PAS: a business
    error, answered by a ClaimResponse with `error`, not an OperationOutcome).

    `item_sequence` names the Claim.item concerned, when one is.
    """

    def __init__(self, message: str, where: str | None = None, item_sequence: int | None = None):
        super().__init__(message, where)
        self.item_sequence = item_sequence


class PolicyError(PriorauthError):
    """A policy cannot be used."""


class PolicyInvalid(PolicyError):
    """A policy file does not match the policy schema."""


class NoPolicyInForce(PolicyError):
    """No version of the requested policy is in force on the review date."""
