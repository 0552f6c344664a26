"""The policy schema: a coverage policy as data, validated when loaded.

A policy is a tree of criteria in the policy's own outline. A group combines
its children with `all`, `one`, `none` or `at_least` N; a leaf names one `check` (a predicate kind
with its parameters). Exclusions ("Conditions Not Covered") are checks whose
finding `applies` or `does_not_apply`. Kits, code sets, windows and the
approval terms are data too. Adding a policy means writing a file; only a new
kind of predicate needs code (see `core/checks/`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EvidenceKind = Literal["documentation", "claims", "attestation", "md_verification", "benefit_plan"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- checks: one model per predicate kind -----------------------------------


class Units(_Strict):
    """Accepted units and the factor that converts each to the canonical unit."""

    canonical: str
    factors: dict[str, float]


class DiagnosisCheck(_Strict):
    kind: Literal["diagnosis"]
    codes: list[str] = Field(min_length=1, description="ICD-10-CM codes; 'X12.*' is a prefix")


class SexCheck(_Strict):
    kind: Literal["sex"]
    expected: str
    clinical_use: dict[str, str] = Field(description="sexParameterForClinicalUse code -> sex")
    birth_sex: dict[str, str] = Field(description="US Core birth sex code -> sex")
    gender: dict[str, str] = Field(description="administrative gender -> sex (fallback)")


class MinAgeCheck(_Strict):
    kind: Literal["min_age"]
    years: int = Field(ge=0)


class NoPriorClaimsCheck(_Strict):
    kind: Literal["no_prior_claims"]
    label: str | None = Field(
        None, description="what the claims are of, in the policy's words (the sentences say it)"
    )
    hcpcs: list[str] = []
    ndc: list[str] = []
    include_kit_ndcs: bool = False
    attestation: str | None = None
    attestation_required_when_clean: bool = Field(
        description="True: a clean claims history still needs the prescriber's confirmation"
    )


Op = Literal["le", "lt", "ge", "gt"]


class LabThresholdCheck(_Strict):
    kind: Literal["lab_threshold"]
    codes: list[str] = Field(min_length=1)
    label: str
    units: Units | None = Field(None, description="None when judged as a multiple of the ULN")
    window_days: int | None = Field(None, ge=0, description="None: any date")
    pick: Literal["latest", "lowest", "highest"] = "latest"
    op: Op
    value: float | None = None
    uln_multiple: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_threshold(self) -> LabThresholdCheck:
        if (self.value is None) == (self.uln_multiple is None):
            raise ValueError("give exactly one of value or uln_multiple")
        if self.value is not None and self.units is None:
            raise ValueError("an absolute threshold needs units")
        return self


class LabPresentCheck(_Strict):
    kind: Literal["lab_present"]
    codes: list[str] = Field(min_length=1)
    label: str
    units: Units | None = None
    window_days: int = Field(ge=0)


class LabNegativeCheck(_Strict):
    kind: Literal["lab_negative"]
    codes: list[str] = Field(min_length=1)
    label: str
    units: Units
    window_days: int = Field(ge=0)
    cutoff: float = Field(description="negative when value < cutoff (canonical unit)")


class Panel(_Strict):
    name: str
    codes: list[str] = Field(min_length=1)
    viral_load: list[str] = Field([], description="codes whose quantity > 0 means detected")


class InfectionScreenCheck(_Strict):
    kind: Literal["infection_screen"]
    panels: list[Panel] = Field(min_length=1)
    conditions: list[str] = []
    label: str | None = Field(
        None, description="what the listed conditions are, in the policy's words"
    )


class NoMedicationCheck(_Strict):
    kind: Literal["no_medication"]
    names: list[str] = Field(min_length=1)
    attestation: str | None = None


class NoConditionCheck(_Strict):
    kind: Literal["no_condition"]
    codes: list[str] = Field(min_length=1)
    attestation: str | None = None


class AttestationCheck(_Strict):
    kind: Literal["attestation"]
    link_id: str
    expect: bool | None = None
    at_least: float | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> AttestationCheck:
        if (self.expect is None) == (self.at_least is None):
            raise ValueError("give exactly one of expect or at_least")
        return self


class PrescriberSpecialtyCheck(_Strict):
    kind: Literal["prescriber_specialty"]
    taxonomies: list[str] = Field(min_length=1)
    label: str | None = Field(None, description="the specialty the policy asks for, in its words")
    attestation: str | None = None


class CreatinineClearanceCheck(_Strict):
    kind: Literal["creatinine_clearance"]
    measured_codes: list[str]
    measured_units: Units = Field(description="canonical mL/min")
    threshold: float = Field(description="mL/min; met when >= threshold")
    window_days: int = Field(ge=0)
    creatinine_codes: list[str]
    creatinine_units: Units = Field(description="canonical mg/dL")
    weight_from: str = Field(description="criterion id whose value is the weight in kg")
    sex_from: str = Field(description="criterion id; the female factor applies when not met")
    female_factor: float


class KitByWeightCheck(_Strict):
    kind: Literal["kit_by_weight"]
    weight_from: str


class ExclusionByCriterionCheck(_Strict):
    kind: Literal["excluded_when_not_met"]
    criterion: str


class HistoryOfPositiveCheck(_Strict):
    kind: Literal["history_of_positive"]
    codes: list[str] = Field(min_length=1)
    units: Units
    cutoff: float = Field(description="positive when value >= cutoff (canonical unit)")
    attestation: str | None = None


class NoHistoryOfPositiveCheck(_Strict):
    """A criterion "no history of X": met when history_of_positive finds nothing (inverted)."""

    kind: Literal["no_history_of_positive"]
    codes: list[str] = Field(min_length=1)
    units: Units
    cutoff: float = Field(description="positive when value >= cutoff (canonical unit)")
    attestation: str | None = Field(
        None, description="a linkId whose true answer says the history exists"
    )


class BenefitPlanExclusionCheck(_Strict):
    """The member's benefit plan excludes the service: always applies (set by a plan file)."""

    kind: Literal["benefit_plan_exclusion"]
    document: str = Field(description="the plan document that excludes it")


# --- history kinds ---


class AgeCheck(_Strict):
    """Whole years of age in an inclusive range, at the review date or the date of service."""

    kind: Literal["age"]
    min_years: int | None = Field(None, ge=0, description="inclusive; None: no lower bound")
    max_years: int | None = Field(None, ge=0, description="inclusive; None: no upper bound")
    at: Literal["review", "service"] = Field(
        "review",
        description="review: the review date; service: the earliest serviced date of the "
        "claim's items (else the review date)",
    )

    @model_validator(mode="after")
    def _a_range(self) -> AgeCheck:
        if self.min_years is None and self.max_years is None:
            raise ValueError("give min_years, max_years or both")
        if (
            self.min_years is not None
            and self.max_years is not None
            and self.min_years > self.max_years
        ):
            raise ValueError("min_years is above max_years")
        return self


class HasMedicationCheck(_Strict):
    """A history of a medication on record (MedicationStatement / MedicationRequest)."""

    kind: Literal["has_medication"]
    label: str = Field(min_length=1, description="the medication in the policy's words")
    names: list[str] = Field([], description="lower-case name fragments")
    codes: list[str] = Field([], description="SYSTEM|CODE, e.g. rxnorm|..., ndc|...")
    lookback_days: int | None = Field(
        None, ge=1, description="only use within this many days before the review date"
    )
    min_duration_days: int | None = Field(
        None, ge=1, description="days from the first documented start to the last end of use"
    )
    attestation: str | None = None

    @model_validator(mode="after")
    def _names_or_codes(self) -> HasMedicationCheck:
        if not self.names and not self.codes:
            raise ValueError("give names, codes or both")
        return self


class HasClaimsCheck(_Strict):
    """Paid claims for a service in the payer's claims history."""

    kind: Literal["has_claims"]
    label: str = Field(min_length=1, description="what the claims are of, in the policy's words")
    codes: list[str] = Field(min_length=1, description="SYSTEM|CODE, e.g. hcpcs|J7185, ndc|...")
    lookback_days: int | None = Field(
        None, ge=1, description="only claims within this many days before the review date"
    )
    min_count: int = Field(1, ge=1, description="claims (ExplanationOfBenefit) needed")
    min_span_days: int | None = Field(
        None, ge=1, description="days from the first to the last matching claim"
    )
    attestation: str | None = None


class FhirPathCheck(_Strict):
    """The escape hatch: a FHIRPath expression over the request Bundle (shipped policies: no)."""

    kind: Literal["fhirpath"]
    label: str = Field(min_length=1, description="what the expression establishes")
    expression: str = Field(min_length=1, description="FHIRPath, evaluated on the Bundle")


Check = Annotated[
    DiagnosisCheck
    | SexCheck
    | MinAgeCheck
    | NoPriorClaimsCheck
    | LabThresholdCheck
    | LabPresentCheck
    | LabNegativeCheck
    | InfectionScreenCheck
    | NoMedicationCheck
    | NoConditionCheck
    | AttestationCheck
    | PrescriberSpecialtyCheck
    | CreatinineClearanceCheck
    | KitByWeightCheck
    | ExclusionByCriterionCheck
    | HistoryOfPositiveCheck
    | NoHistoryOfPositiveCheck
    | BenefitPlanExclusionCheck
    # --- history kinds ---
    | AgeCheck
    | HasMedicationCheck
    | HasClaimsCheck
    | FhirPathCheck,
    Field(discriminator="kind"),
]


# --- the policy -------------------------------------------------------------


class Criterion(_Strict):
    id: str = Field(pattern=r"^[A-Z]{1,2}(\.[0-9a-z]+)*$")
    text: str = Field(min_length=1, description="the policy's own wording")
    evidence: EvidenceKind | None = None
    combine: Literal["all", "one", "none", "at_least"] | None = None
    at_least: Annotated[int, Field(strict=True)] | None = Field(
        None, description="with combine: at_least, how many children must be met (1 to all)"
    )
    children: list[Criterion] = []
    check: Check | None = None
    request: str | None = Field(None, description="what to ask for when this is unknown")
    question: str | None = Field(
        None, description="how a form (DTR) asks for this criterion's attestation, when it has one"
    )
    key: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="a stable name that follows the criterion across versions (ids shift)",
    )
    reconstructed: date | None = Field(
        None,
        description="set when the wording is reconstructed from the revision table row of "
        "this date, not quoted from the policy text",
    )
    source: str | None = Field(
        None, description="set on criteria a benefit plan adds or replaces: the plan document"
    )

    @model_validator(mode="after")
    def _leaf_or_group(self) -> Criterion:
        if self.children:
            if self.check is not None or self.combine is None:
                raise ValueError(f"{self.id}: a group has children and a combine, no check")
        elif self.check is None or self.combine is not None:
            raise ValueError(f"{self.id}: a leaf has a check and no combine")
        elif self.evidence is None:
            raise ValueError(f"{self.id}: a leaf names its evidence kind")
        if self.combine == "at_least":
            n = len(self.children)
            if self.at_least is None:
                raise ValueError(f"{self.id}: combine: at_least needs at_least: N (1 to {n})")
            if not 1 <= self.at_least <= n:
                raise ValueError(
                    f"{self.id}: at_least is {self.at_least}, but must be 1 to {n} "
                    f"(the number of children)"
                )
        elif self.at_least is not None:
            raise ValueError(f"{self.id}: at_least is given without combine: at_least")
        return self


class Kit(_Strict):
    vials: int = Field(gt=0)
    ndc: str = Field(pattern=r"^\d{4}-\d{4}-\d{2}$")
    weight: str = Field(description="the weight band as the policy's table prints it")


class Dosing(_Strict):
    ml_per_kg: float = Field(gt=0)
    vial_ml: float = Field(gt=0)
    kits: list[Kit] = Field(min_length=1)


class Service(_Strict):
    """How a request names the service this policy covers."""

    hcpcs: list[str] = []
    cpt: list[str] = Field([], description="CPT (HCPCS Level I) codes")
    ndc: list[str] = []
    include_kit_ndcs: bool = False
    names: list[str] = Field([], description="lower-case product names (for order-time checks)")


class AppliesTo(_Strict):
    """Which requests a policy governs: the payer, and the plans (empty: every plan).

    The service is the policy's `service` block. A request's payer is resolved from its
    Coverage.payor identifier through the payer registry (`payers.yaml`); its plans are
    the Coverage.class values of type plan or group.
    """

    payer: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="payer id in the registry")
    plans: list[str] = Field([], description="plan or group ids; empty: every plan")


class Approval(_Strict):
    days: int | None = Field(
        gt=0,
        description="the authorization window, counted from the decision; null when the "
        "policy states none (the payer's default from configuration applies)",
    )
    days_basis: Literal["policy", "payer default"] = Field(
        "policy", description="set by the loader: where `days` came from"
    )
    units: int = Field(1, gt=0, description="units authorized (kits)")
    lifetime_limit: int | None = Field(
        None,
        gt=0,
        description="approvals a member may hold in a lifetime for the therapy class; "
        "None: no lifetime limit",
    )
    therapy_class: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="the class the lifetime limit counts across: every policy naming the "
        "same class shares one count per member (e.g. two gene therapies for one disease)",
    )
    medical_director_review: Literal["all", "denials", "none"]
    reviewer: str = Field(
        "medical director", description="who makes the final decision, e.g. a pharmacist"
    )

    @model_validator(mode="after")
    def _class_with_limit(self) -> Approval:
        if self.lifetime_limit is not None and self.therapy_class is None:
            raise ValueError("a lifetime_limit counts per therapy_class: name the class")
        return self


class Qualitative(_Strict):
    """Codes that make a result negative or positive (SNOMED CT and interpretation codes)."""

    negative_codes: list[str]
    positive_codes: list[str]
    negative_interpretations: list[str]
    positive_interpretations: list[str]


class Policy(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    payer: str
    number: str
    title: str
    version: str
    effective: date
    retired: date | None = None
    source: str
    supersedes: str | None = Field(None, description="the version this one replaces")
    documentation: str | None = Field(
        None, description="the policy's documentation instructions, as worded in this version"
    )
    applies_to: AppliesTo
    service: Service
    approval: Approval
    dosing: Dosing | None = None
    qualitative: Qualitative
    codesets_from: list[str] = Field(
        [], description="shared code-set files (codesets/NAME.yaml) this policy draws on"
    )
    codesets: dict[str, list[str]] = Field(
        {}, description="named lists; a list written {codeset: NAME} is taken from here"
    )
    criteria: list[Criterion] = Field(min_length=1, description="ALL of these must be met")
    exclusions: list[Criterion] = []

    @model_validator(mode="after")
    def _ids_unique(self) -> Policy:
        seen: set[str] = set()
        for c in walk(self.criteria + self.exclusions):
            if c.id in seen:
                raise ValueError(f"criterion id {c.id} appears twice")
            seen.add(c.id)
        return self


def walk(criteria: list[Criterion]) -> list[Criterion]:
    """Every criterion of the trees, in the policy's order (parents before children)."""
    out: list[Criterion] = []
    for c in criteria:
        out.append(c)
        out.extend(walk(c.children))
    return out


# --- benefit plan documents -----------------------------------------------------


class ApprovalOverride(_Strict):
    days: int | None = Field(None, gt=0)
    units: int | None = Field(None, gt=0)
    lifetime_limit: int | None = Field(None, gt=0)
    medical_director_review: Literal["all", "denials", "none"] | None = None
    reviewer: str | None = None


class PolicyOverride(_Strict):
    """What one plan document changes in one policy (every version of it)."""

    policy: str = Field(description="the policy id the override applies to")
    exclude: str | None = Field(
        None, description="the plan excludes the service outright: the plan's own wording"
    )
    add: list[Criterion] = Field([], description="criteria the plan adds (ALL must be met)")
    replace: list[Criterion] = Field(
        [], description="criteria that replace the policy's criterion of the same id"
    )
    approval: ApprovalOverride | None = None


class PlanDocument(_Strict):
    """A benefit plan document: it supersedes the coverage policies where they conflict."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(description="the plan document as a letter cites it")
    payer: str
    plans: list[str] = Field(min_length=1, description="the plan / group ids it governs")
    effective: date
    retired: date | None = None
    overrides: list[PolicyOverride] = Field(min_length=1)
