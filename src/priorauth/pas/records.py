"""Plain records the PAS adapter turns into FHIR, and reads out of FHIR requests.

The store produces `CaseRecord`s; `pas.response` renders them. Nothing here
knows about SQL or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from priorauth.intake.request import PasRequest
from priorauth.intake.summary import RequestSummary
from priorauth.report.evaluation import Evaluation

CaseStatus = Literal["pended", "approved", "modified", "denied", "cancelled"]
DecisionKind = Literal["approve", "approve-modified", "deny"]


@dataclass(frozen=True, slots=True)
class Identifier:
    system: str | None
    value: str

    def key(self) -> str:
        return f"{self.system or ''}|{self.value}"


@dataclass(frozen=True, slots=True)
class RequestKeys:
    """What identifies a PAS submission and what it asks to do (read from the Claim)."""

    claim_identifier: Identifier  # Claim.identifier[0]
    submitter: Identifier  # the requesting organization (Claim.provider's identifier, NPI)
    member_id: str | None
    service_codes: tuple[str, ...]  # productOrService codes of the items
    certification: str  # X12 1322 code from extension-certificationType; "I" (initial) when absent
    related: Identifier | None  # Claim.related[0].claim identifier (an earlier submission)
    expedited: bool
    # The system of the identifier member_id was read from (None: the request names none).
    member_system: str | None = None


# A decision by a payer-system client is recorded as "client/<client id>"; one by a person,
# under the signed-in Medical Director's username (which cannot contain "/").
CLIENT_DECIDER = "client/"


@dataclass(frozen=True, slots=True)
class Decision:
    kind: DecisionKind
    decided_at: datetime
    decided_by: str  # the authenticated decider: a username, or CLIENT_DECIDER + client id
    reason: str | None  # the Medical Director's words (required for a denial)
    criteria: tuple[str, ...] = ()  # unmet criterion ids cited by a denial
    product_ndc: str | None = None  # the product authorized, where the policy names products
    product_vials: int | None = None
    quantity: float | None = None  # the quantity authorized, in `unit`
    unit: str | None = None  # the policy's billing unit (kit, mL, mg ...)
    auth_start: date | None = None
    auth_end: date | None = None


@dataclass(frozen=True, slots=True)
class CaseRecord:
    id: str  # also the ClaimResponse id
    status: CaseStatus
    keys: RequestKeys
    auth_number: str  # the number carried in reviewAction.number and preAuthRef
    received_at: datetime
    due_at: datetime
    policy_id: str | None  # None: no loaded policy covers the service (manual review)
    recommendation: str | None
    evaluation: Evaluation | None  # the stored priorauth.determination/1, typed
    request: PasRequest  # the request Bundle as received (decoded when first read)
    decision: Decision | None = None
    updated_at: datetime | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    # The provider asked to withdraw (cancel) after the decision: the decision stands.
    withdrawal_requested_at: datetime | None = None
    voided: Voided | None = None  # a Medical Director voided the approval
    # Who and what the request is about, in words, as stored at submission.
    summary: RequestSummary = field(default_factory=RequestSummary)


@dataclass(frozen=True, slots=True)
class Voided:
    """A Medical Director's voiding of an approval: when, by whom, why."""

    at: datetime
    by: str
    reason: str
