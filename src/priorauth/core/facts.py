"""Facts: what a request and the claims history say, in the engine's own terms.

Intake adapters (FHIR bundle, claims NDJSON) build these; the evaluator only
reads them. They are plain slotted dataclasses, not frozen ones: a request
builds a few dozen of them, and a frozen dataclass's __init__ costs about
twice as much. Nothing mutates a fact after intake. Facts keep a reference to
the FHIR resource they came from (`ref`, e.g. "Observation/abc"), so every
finding can cite its evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

# A coding is (system, code). Systems the engine cares about:
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
CPT = "http://www.ama-assn.org/go/cpt"
NDC = "http://hl7.org/fhir/sid/ndc"
NUCC = "http://nucc.org/provider-taxonomy"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

Coding = tuple[str, str]


@dataclass(slots=True)
class Observation:
    """One laboratory result or vital sign that counts (status final/amended/corrected)."""

    ref: str
    code: str  # the code key it was indexed under (core.codes.code_key: bare for LOINC)
    when: date | None  # effectiveDateTime, else effectivePeriod.end, else issued
    value: float | None = None  # valueQuantity.value
    unit: str | None = None  # UCUM code, else the unit text
    coded: frozenset[Coding] = frozenset()  # valueCodeableConcept codings
    interpretation: frozenset[str] = frozenset()  # interpretation codes (N, NEG, POS, ...)
    uln: float | None = None  # referenceRange[0].high.value
    uln_unit: str | None = None
    # valueQuantity.comparator ("<", "<=", ">=", ">"): the value is a bound, not a measurement
    comparator: str | None = None


@dataclass(slots=True)
class Attachment:
    """One attachment of a document: what it is and where its content is."""

    content_type: str | None
    url: str | None
    title: str | None
    has_data: bool = False  # the content is inline (Attachment.data)

    @property
    def usable(self) -> bool:
        """It carries its content (a url or inline data), not only a description."""
        return self.url is not None or self.has_data


@dataclass(slots=True)
class Record:
    """A Procedure, DiagnosticReport, ImagingStudy or DocumentReference about the patient.

    Entered-in-error ones are set aside by intake; any other status is kept (the
    checks say which count as current).
    """

    ref: str
    resource_type: str
    codes: frozenset[str]  # code keys (core.codes.code_key) of its codings
    when: date | None  # the date it was performed / is effective / was written
    status: str | None
    title: str | None = None  # code text, description or attachment title
    attachments: tuple[Attachment, ...] = ()


@dataclass(slots=True)
class Condition:
    ref: str
    codes: tuple[Coding, ...]
    active: bool  # clinicalStatus active/recurrence/relapse, or no clinicalStatus at all


@dataclass(slots=True)
class Medication:
    """A MedicationStatement or MedicationRequest other than the one requested."""

    ref: str
    names: str  # lower-cased medication text and codings' displays, joined
    active: bool
    codes: tuple[Coding, ...] = ()  # the medication's codings (RxNorm, NDC, ...)
    # The documented use: MedicationStatement.effective[x]; MedicationRequest
    # dispenseRequest.validityPeriod, else authoredOn (start and end alike). None: not stated.
    start: date | None = None
    end: date | None = None
    status: str | None = None  # the resource's status code, as sent


@dataclass(slots=True)
class Attestation:
    """One prescriber answer from a completed/amended QuestionnaireResponse."""

    ref: str  # "QuestionnaireResponse/x#linkId"
    link_id: str
    value: bool | int | float | str
    when: date | None = None


@dataclass(slots=True)
class Patient:
    ref: str
    member_id: str | None
    birth_date: date | None
    sex_for_clinical_use: str | None = None  # e.g. "male-typical"
    birth_sex: str | None = None  # US Core birth sex: "M" / "F" / "UNK"
    gender: str | None = None  # administrative gender


@dataclass(slots=True)
class Prescriber:
    ref: str
    taxonomies: tuple[str, ...] = ()  # NUCC provider taxonomy codes


@dataclass(slots=True)
class RequestedItem:
    """One Claim.item: what is asked for."""

    sequence: int
    codes: tuple[Coding, ...]  # productOrService codings
    quantity: float | None
    ndc: str | None = None  # NDC of the referenced MedicationRequest
    medication_request: str | None = None  # "MedicationRequest/x"
    serviced: date | None = None  # servicedDate, else servicedPeriod.start
    unit: str | None = None  # quantity.code, else quantity.unit (the billing unit asked in)


@dataclass(slots=True)
class ClaimLine:
    """One paid claim line from the payer's claims history."""

    ref: str  # "ExplanationOfBenefit/x"
    codes: tuple[Coding, ...]
    when: date | None = None


@dataclass(slots=True)
class ClaimsHistory:
    """The payer's claims for one member. `available` is True when it holds any claim."""

    member_id: str
    lines: tuple[ClaimLine, ...] = ()
    claim_count: int = 0

    @property
    def available(self) -> bool:
        return self.claim_count > 0


@dataclass(slots=True)
class Facts:
    """Everything the evaluator may look at for one request."""

    claim_ref: str
    as_of: date  # review date: Claim.created (date part) unless overridden
    expedited: bool
    patient: Patient
    prescriber: Prescriber | None
    items: tuple[RequestedItem, ...]
    claim_diagnoses: tuple[Coding, ...] = ()
    conditions: tuple[Condition, ...] = ()
    # code key (core.codes.code_key: the bare code for LOINC, else "SYSTEM-URL|code")
    # -> results, most recent first (undated last)
    observations: dict[str, tuple[Observation, ...]] = field(default_factory=dict)
    medications: tuple[Medication, ...] = ()
    attestations: dict[str, Attestation] = field(default_factory=dict)
    claims: ClaimsHistory | None = None  # None: no claims source was consulted
    notes: tuple[str, ...] = ()  # what intake set aside and why (e.g. entered-in-error)
    # Routing (contract section 7): Claim.created, the Coverage.payor identifier
    # (system, value) when it carries one, and the Coverage.class plan / group values.
    created: date | None = None
    payer: Coding | None = None
    plans: tuple[str, ...] = ()
    # Procedures, DiagnosticReports, ImagingStudies and DocumentReferences: code key ->
    # records, most recent first (undated last); the key "<resourceType>" (e.g.
    # "DocumentReference") holds every record of that type, coded or not.
    records: dict[str, tuple[Record, ...]] = field(default_factory=dict)
    renewal: bool = False  # the request renews an earlier authorization (X12 1322 "R")
    # The decoded request Bundle, read only by the `fhirpath` kind (the escape hatch);
    # None when the facts were not read from a bundle. Never modified.
    bundle: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
