"""The policy schema: a coverage policy as data, validated when loaded.

A policy is a tree of criteria in the policy's own outline. A group combines
its children with `all`, `one`, `none` or `at_least` N; a leaf names one `check` (a predicate kind
with its parameters). Exclusions ("Conditions Not Covered") are checks whose
finding `applies` or `does_not_apply`. Dosing, code sets, windows and the
approval terms are data too. Adding a policy means writing a file; only a new
kind of predicate needs code (see `core/checks/`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from priorauth.core.codes import code_lists, ndc11, parse_code

EvidenceKind = Literal["documentation", "claims", "attestation", "md_verification", "benefit_plan"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- checks: one model per predicate kind -----------------------------------


def _product_ndcs(data: Any) -> Any:
    """Files written before 2026-12 say include_kit_ndcs for include_product_ndcs."""
    if isinstance(data, dict) and "include_kit_ndcs" in data:
        data = dict(data)
        data.setdefault("include_product_ndcs", data.pop("include_kit_ndcs"))
    return data


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

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _product_ndcs(data)

    label: str | None = Field(
        None, description="what the claims are of, in the policy's words (the sentences say it)"
    )
    hcpcs: list[str] = []
    ndc: list[str] = []
    include_product_ndcs: bool = Field(False, description="also every product NDC of `dosing`")
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
    window_days: int | None = Field(None, ge=0, description="None: any date")


class LabNegativeCheck(_Strict):
    kind: Literal["lab_negative"]
    codes: list[str] = Field(min_length=1)
    label: str
    units: Units | None = Field(None, description="None: a qualitative test (no cutoff)")
    window_days: int | None = Field(None, ge=0, description="None: any date")
    cutoff: float | None = Field(
        None, description="negative when value < cutoff (canonical unit); None: qualitative"
    )

    @model_validator(mode="after")
    def _cutoff_with_units(self) -> LabNegativeCheck:
        if (self.units is None) != (self.cutoff is None):
            raise ValueError("give units and cutoff together, or neither (a qualitative test)")
        return self


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


class DoseByWeightCheck(_Strict):
    """The right product and quantity by the policy's `dosing`: for the body weight, or fixed."""

    # dose_by_weight and kit_by_weight (the name before 2026-12) are the same kind.
    kind: Literal["dose", "dose_by_weight", "kit_by_weight"]
    weight_from: str | None = Field(
        None, description="criterion id whose value is the weight in kg (dosing by weight)"
    )
    height_from: str | None = Field(
        None, description="criterion id whose value is the height in cm (with bmi_cap)"
    )
    bmi_cap: float | None = Field(
        None,
        gt=0,
        description="dose by the weight at this body mass index when the patient's is higher",
    )

    @model_validator(mode="after")
    def _cap_with_height(self) -> DoseByWeightCheck:
        if (self.bmi_cap is None) != (self.height_from is None):
            raise ValueError("bmi_cap and height_from go together")
        if self.height_from is not None and self.weight_from is None:
            raise ValueError("a bmi_cap needs weight_from too")
        return self


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


# --- records kinds ---


RecordResource = Literal["Procedure", "DiagnosticReport", "ImagingStudy"]


class LabSeriesCheck(_Strict):
    """A series of results: the latest `count` in the window all negative, spaced apart."""

    kind: Literal["lab_series"]
    label: str
    codes: list[str] = Field(min_length=1, description="SYSTEM|CODE tokens (bare: LOINC)")
    units: Units
    cutoff: float = Field(description="negative when value < cutoff (canonical unit)")
    count: int = Field(2, ge=1, description="how many of the latest results must be negative")
    min_gap_days: int = Field(0, ge=0, description="consecutive results at least this far apart")
    window_days: int | None = Field(None, ge=0, description="None: any date")


class ClinicalRecordCheck(_Strict):
    """A current Procedure, DiagnosticReport or ImagingStudy with one of the codes."""

    kind: Literal["clinical_record"]
    label: str
    resources: list[RecordResource] = Field(
        ["Procedure", "DiagnosticReport", "ImagingStudy"], min_length=1
    )
    codes: list[str] = Field(min_length=1, description="SYSTEM|CODE tokens (bare: LOINC)")
    window_days: int | None = Field(None, ge=0, description="None: any date")
    attestation: str | None = Field(None, description="a linkId whose answer can stand in")


class DocumentCheck(_Strict):
    """A current DocumentReference with an attachment, of one of the types (or any)."""

    kind: Literal["document"]
    label: str
    codes: list[str] = Field(
        [], description="DocumentReference type/category SYSTEM|CODE tokens; empty: any document"
    )
    window_days: int | None = Field(None, ge=0, description="None: any date")
    attestation: str | None = Field(None, description="a linkId whose answer can stand in")


# --- end of records kinds ---


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
    | DoseByWeightCheck
    | ExclusionByCriterionCheck
    | HistoryOfPositiveCheck
    | NoHistoryOfPositiveCheck
    | BenefitPlanExclusionCheck
    | LabSeriesCheck
    | ClinicalRecordCheck
    | DocumentCheck
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


class Amount(_Strict):
    """A quantity with its unit, e.g. 2 mL (per kg) or an 8 mL vial."""

    amount: float = Field(gt=0)
    unit: str = Field(min_length=1)


class VialCount(_Strict):
    """Vials of one size in a product: `count` vials of `size` (in the vial unit)."""

    count: int = Field(gt=0)
    size: float = Field(gt=0)


class Product(_Strict):
    """One package a policy authorizes (a carton, a kit of vials, a vial), by its NDC."""

    ndc: str = Field(description="the NDC as printed: 4-4-2, 5-3-2, 5-4-1, or 11 digits")
    vials: int | list[VialCount] | None = Field(
        None, description="vials in the package: a count of the dosing vial, or counts by size"
    )
    weight: str | None = Field(None, description="the weight band as the policy's table prints it")
    label: str | None = Field(None, description="how letters and the reviewer app name it")

    @field_validator("ndc")
    @classmethod
    def _readable_ndc(cls, ndc: str) -> str:
        if ndc11(ndc) is None:
            raise ValueError(
                f"NDC {ndc!r} is not a 4-4-2, 5-3-2, 5-4-1 or 5-4-2 NDC, nor 11 digits"
            )
        return ndc


DosingMethod = Literal["table", "per_kg", "fixed", "none"]


class Dosing(_Strict):
    """The authorized service: its billing unit and how the right product and quantity are found.

    - `table`: the dose (per_kg * weight) is covered by the smallest product whose contents
      hold it; `quantity` packages are authorized (one package a dose, say).
    - `per_kg`: the quantity is per_kg * weight in the billing unit, rounded up to whole
      vials when `vial` is given, else to `increment` as `round` says.
    - `fixed`: `quantity` of the unit, whatever the weight.
    - `none`: no rule; the reviewer decides the quantity.
    """

    unit: str = Field("kit", min_length=1, description="the billing unit: kit, vial, mL, mg, dose")
    method: DosingMethod = "table"
    per_kg: Amount | None = Field(None, description="the dose per kg of body weight")
    vial: Amount | None = Field(None, description="the size of one vial")
    round: Literal["up", "nearest", "down"] = "up"
    increment: float = Field(1, gt=0, description="the billing unit's step (per_kg without vial)")
    quantity: float | None = Field(
        None,
        gt=0,
        description="fixed: the quantity; table and per_kg billed by the dose: units per dose",
    )
    billing_unit: Amount | None = Field(
        None, description="what one billing unit holds, e.g. 0.1 mg (HCPCS units)"
    )
    dose: Amount | None = Field(
        None, description="fixed: the dose, e.g. 12 mg (the quantity is dose / billing_unit)"
    )
    billing_code: str | None = Field(
        None, description="the code the quantity is billed under, as SYSTEM|CODE"
    )
    products: list[Product] = []
    accept: Literal["exact", "up_to"] = Field(
        "exact",
        description="exact: another quantity is modified to the right one; up_to: a request "
        'at or below it ("does not exceed 10 mg/kg") stands as asked',
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_kit_table(cls, data: Any) -> Any:
        # Files written before 2026-12 (the authorized-service model): ml_per_kg, vial_ml, kits.
        legacy = "kits"  # the table's name before 2026-12
        if isinstance(data, dict) and legacy in data and "products" not in data:
            data = dict(data)
            per_kg, vial = data.pop("ml_per_kg", None), data.pop("vial_ml", None)
            data["products"] = data.pop(legacy)
            data.setdefault("method", "table")
            data.setdefault("unit", "kit")  # every such table was billed so before 2026-12
            if per_kg is not None:
                data["per_kg"] = {"amount": per_kg, "unit": "mL"}
            if vial is not None:
                data["vial"] = {"amount": vial, "unit": "mL"}
        return data

    @model_validator(mode="after")
    def _complete(self) -> Dosing:
        m = self.method
        if m in ("table", "per_kg") and self.per_kg is None:
            raise ValueError(f"method {m} needs per_kg (the dose per kg of body weight)")
        if m == "fixed" and self.quantity is None:
            if self.dose is None or self.billing_unit is None:
                raise ValueError("method fixed needs quantity (or dose and billing_unit)")
            if self.dose.unit != self.billing_unit.unit:
                raise ValueError("dose and billing_unit must be in one unit")
        if (
            m == "fixed"
            and self.quantity is not None
            and self.dose is not None
            and self.billing_unit is not None
            and abs(self.quantity * self.billing_unit.amount - self.dose.amount) > 1e-9
        ):
            raise ValueError(
                f"quantity {self.quantity:g} of {self.billing_unit.amount:g} "
                f"{self.billing_unit.unit} is not the dose of {self.dose.amount:g} {self.dose.unit}"
            )
        if m == "table":
            if not self.products:
                raise ValueError("method table needs products")
            seen: dict[float, str] = {}
            for p in self.products:
                volume = self.contents(p)
                if volume is None:
                    raise ValueError(f"product {p.ndc}: give its vials (and the dosing vial size)")
                if volume in seen:
                    raise ValueError(
                        f"products {seen[volume]} and {p.ndc} hold the same dose "
                        f"({volume:g} {self.per_kg.unit if self.per_kg else ''}): "
                        "a weight could not choose between them"
                    )
                seen[volume] = p.ndc
        if self.per_kg and self.vial and self.per_kg.unit != self.vial.unit:
            raise ValueError(
                f"per_kg is in {self.per_kg.unit} but the vial in {self.vial.unit}: use one unit"
            )
        if self.billing_unit and self.per_kg and self.billing_unit.unit != self.per_kg.unit:
            raise ValueError(
                f"billing_unit is in {self.billing_unit.unit} but per_kg in "
                f"{self.per_kg.unit}: use one unit"
            )
        if (
            m == "per_kg"
            and self.vial is None
            and self.per_kg
            and self.per_kg.unit != self.unit
            and self.quantity is None
            and self.billing_unit is None
        ):
            raise ValueError(
                f"per_kg is in {self.per_kg.unit}, the billing unit is {self.unit}: "
                "give the vial size or the billing_unit, or dose in the billing unit"
            )
        if (
            m == "per_kg"
            and self.vial
            and self.unit not in (self.vial.unit, "vial")
            and self.quantity is None
            and self.billing_unit is None
        ):
            raise ValueError(
                f"the billing unit {self.unit} is neither the vial's unit ({self.vial.unit}) "
                "nor vial: give the quantity billed per dose"
            )
        return self

    def contents(self, p: Product) -> float | None:
        """What one product holds, in the dose unit (vials * vial size)."""
        if isinstance(p.vials, list):
            return sum(v.count * v.size for v in p.vials)
        if isinstance(p.vials, int) and self.vial is not None:
            return p.vials * self.vial.amount
        return None

    def vial_count(self, p: Product) -> int | None:
        if isinstance(p.vials, list):
            return sum(v.count for v in p.vials)
        return p.vials


class Service(_Strict):
    """How a request names the service this policy covers."""

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _product_ndcs(data)

    hcpcs: list[str] = []
    cpt: list[str] = Field([], description="CPT (HCPCS Level I) codes")
    ndc: list[str] = []
    include_product_ndcs: bool = Field(False, description="also every product NDC of `dosing`")
    names: list[str] = Field([], description="lower-case product names (for order-time checks)")


class AppliesTo(_Strict):
    """Which requests a policy governs: the payer, and the plans (empty: every plan).

    The service is the policy's `service` block. A request's payer is resolved from its
    Coverage.payor identifier through the payer registry (`payers.yaml`); its plans are
    the Coverage.class values of type plan or group.
    """

    payer: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="payer id in the registry")
    plans: list[str] = Field([], description="plan or group ids; empty: every plan")


class Renewal(_Strict):
    """A policy that allows renewals: each renewal's window and doses."""

    days: int = Field(gt=0)
    administrations: int = Field(1, gt=0)
    limit: int | None = Field(None, gt=0, description="renewals allowed; None: no limit stated")


class Approval(_Strict):
    days: int | None = Field(
        gt=0,
        description="the authorization window, counted from the decision; null when the "
        "policy states none (the payer's default from configuration applies)",
    )
    days_basis: Literal["policy", "payer default"] = Field(
        "policy", description="set by the loader: where `days` came from"
    )
    administrations: int = Field(
        1, gt=0, description="doses one approval authorizes (each of the dosing quantity)"
    )
    renewal: Renewal | None = Field(
        None, description="the terms of a renewal, where the policy allows one; None: no renewal"
    )
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
        "same class shares one count per member (e.g. two one-time treatments of one condition)",
    )
    medical_director_review: Literal["all", "denials", "none"]
    reviewer: str = Field(
        "medical director", description="who makes the final decision, e.g. a pharmacist"
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_units(cls, data: Any) -> Any:
        # `units` (packages per approval) was the name of `administrations` before 2026-12.
        if isinstance(data, dict) and "units" in data and "administrations" not in data:
            data = dict(data)
            data["administrations"] = data.pop("units")
        return data

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
    qualitative: Qualitative = Field(
        default_factory=lambda: Qualitative(
            negative_codes=[],
            positive_codes=[],
            negative_interpretations=[],
            positive_interpretations=[],
        ),
        description="codes that make a result negative or positive; none when left out",
    )
    systems: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")], str] = Field(
        {},
        description="code system aliases for SYSTEM|CODE tokens (alias -> system URL), "
        "added to the built-in ones (loinc, snomed, icd10cm, hcpcs, cpt, ndc, nucc, rxnorm)",
    )
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

    @model_validator(mode="after")
    def _codes_name_known_systems(self) -> Policy:
        for alias, url in self.systems.items():
            if ":" not in url:
                raise ValueError(f"systems: {alias} must name a system URL or URN, not {url!r}")
        for c in walk(self.criteria + self.exclusions):
            if c.check is None:
                continue
            for _, tokens, default in code_lists(c.check.model_dump()):
                for token in tokens:
                    try:
                        parse_code(token, default, self.systems)
                    except ValueError as e:
                        raise ValueError(f"{c.id}: {e}") from None
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
    administrations: int | None = Field(None, gt=0)
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
