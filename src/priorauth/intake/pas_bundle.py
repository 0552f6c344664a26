"""Read a Da Vinci PAS request Bundle (FHIR R4 JSON) into Facts, per the data contract."""

from __future__ import annotations

from datetime import date
from typing import Any

from priorauth.core.facts import (
    NDC,
    NUCC,
    ClaimsHistory,
    Facts,
    Patient,
    Prescriber,
    RequestedItem,
)
from priorauth.errors import InvalidRequest, UnusableContent
from priorauth.intake.clinical import Evidence
from priorauth.intake.references import BundleIndex, Resource, contained
from priorauth.intake.request import PasRequest
from priorauth.intake.shapes import check_resource
from priorauth.intake.values import (
    MAX_MEMBER_ID,
    as_list,
    as_objects,
    at,
    codes_in,
    codings,
    first_code,
    number,
    parse_date,
)

CERTIFICATION_TYPE = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-certificationType"
)
_RENEWAL = "R"  # X12 1322 certification type: renewal
REQUESTED_SERVICE = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-requestedService"
)
SEX_FOR_CLINICAL_USE = "http://hl7.org/fhir/StructureDefinition/patient-sexParameterForClinicalUse"
BIRTH_SEX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
_EXPEDITED = frozenset({"stat", "urgent"})
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"

__all__ = ["read_bundle", "validate_bundle"]


def read_bundle(
    data: PasRequest | bytes | str | dict[str, Any],
    *,
    as_of: date | None = None,
    validate: bool = False,
    claims: ClaimsHistory | None = None,
) -> Facts:
    """The Facts of one PAS request Bundle.

    `as_of` overrides the review date (default: Claim.created). `validate` also
    checks the whole Bundle against the FHIR R4B models (slow: for intake
    endpoints, not the hot path). `claims` is stored as Facts.claims; callers
    usually look it up by `facts.patient.member_id` and `dataclasses.replace`.
    A PasRequest is read through its own index; bytes, text or a dict are parsed
    into one first. Raises InvalidRequest when the request cannot be read or breaks
    the contract.
    """
    request = PasRequest.parse(data)
    bundle = request.bundle
    _check_bundle(bundle)
    if validate:
        validate_bundle(bundle)
    try:
        index = request.index
        index.check()
        facts = _read(index, as_of, claims, bundle)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        # A field of an unexpected JSON type deep inside a resource; the explicit
        # checks name the common ones, the shape check most others, and this keeps
        # the rest a client error.
        check_resource(bundle, "Bundle")
        raise InvalidRequest(
            f"the bundle does not have the FHIR R4 structure expected ({type(exc).__name__})"
        ) from exc
    return facts


def validate_bundle(bundle: dict[str, Any]) -> None:
    """Validate against fhir.resources R4B; the first failure becomes one InvalidRequest line."""
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        errors = exc.errors()
        if not errors:
            raise InvalidRequest("not a valid FHIR R4 Bundle", "Bundle") from exc
        first = errors[0]
        where = "Bundle" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]
        )
        # The message only, never `input`: the input is patient data.
        msg = str(first["msg"]).split("\n", 1)[0]
        raise InvalidRequest(f"FHIR validation failed: {msg}", where) from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidRequest(f"FHIR validation failed ({type(exc).__name__})", "Bundle") from exc


def _check_bundle(bundle: Any) -> list[Any]:
    if type(bundle) is not dict:
        raise InvalidRequest("the request must be a JSON object (a FHIR Bundle)")
    if bundle.get("resourceType") != "Bundle":
        raise InvalidRequest("resourceType must be Bundle", "Bundle.resourceType")
    if bundle.get("type") != "collection":
        raise InvalidRequest("a PAS request Bundle has type collection", "Bundle.type")
    entries = bundle.get("entry")
    if not entries:
        raise InvalidRequest("the Bundle has no entries", "Bundle.entry")
    if type(entries) is not list:
        raise InvalidRequest("must be a JSON array", "Bundle.entry")
    return entries


def _read(
    index: BundleIndex, as_of: date | None, claims: ClaimsHistory | None, bundle: dict[str, Any]
) -> Facts:
    claim, cref = index.entries[0]
    if claim["resourceType"] != "Claim":
        raise InvalidRequest("the first entry of a PAS request must be a Claim", "Bundle.entry[0]")
    if claim.get("use") != "preauthorization":
        raise InvalidRequest("Claim.use must be preauthorization", at(cref, "use"))

    created = claim.get("created")
    if created is None:
        raise InvalidRequest("Claim.created is missing", at(cref, "created"))
    created_on = parse_date(created, cref, "created")
    if created_on is None:
        raise InvalidRequest("Claim.created must be a full date", at(cref, "created"))

    patient = index.resolve(claim.get("patient"), cref, "patient")
    if patient is None:
        raise InvalidRequest("Claim.patient has no reference", at(cref, "patient"))
    if patient["resourceType"] != "Patient":
        raise InvalidRequest("Claim.patient must reference a Patient", at(cref, "patient"))

    items, requested, requester = _items(claim, cref, index, patient)
    provider = index.resolve(claim.get("provider"), cref, "provider")
    _check_references(claim, cref, index, "careTeam", "provider")
    _check_references(claim, cref, index, "supportingInfo", "valueReference")

    notes: list[str] = []
    person = _patient(claim, cref, patient, index, notes)
    evidence = Evidence(index, patient, requested)
    evidence.read()
    notes.extend(evidence.notes)

    priority = codings(claim.get("priority"))
    payer, plans = _coverage_route(claim, cref, index)
    return Facts(
        claim_ref=cref,
        as_of=as_of or created_on,
        expedited=any(code in _EXPEDITED for _, code in priority),
        patient=person,
        prescriber=_prescriber(requester or provider, index),
        items=items,
        claim_diagnoses=tuple(
            coding
            for dx in as_objects(claim.get("diagnosis"), cref, "diagnosis")
            for coding in codings(dx.get("diagnosisCodeableConcept"))
        ),
        conditions=tuple(evidence.conditions),
        observations=evidence.observations(),
        records=evidence.records(),
        medications=tuple(evidence.medications),
        attestations=evidence.attestations,
        claims=claims,
        notes=tuple(notes),
        created=created_on,
        payer=payer,
        plans=plans,
        renewal=_renewal(claim),
        bundle=bundle,
    )


def _renewal(claim: Resource) -> bool:
    """The request renews an earlier authorization (X12 1322 "R" on the Claim, or on its
    first item as PAS 1.x and the PAS examples carry it)."""
    items = claim.get("item")
    holders = [claim, *(items[:1] if type(items) is list else [])]
    for holder in holders:
        extensions = holder.get("extension") if type(holder) is dict else None
        for ext in extensions if type(extensions) is list else ():
            if type(ext) is dict and ext.get("url") == CERTIFICATION_TYPE:
                return any(code == _RENEWAL for _, code in codings(ext.get("valueCodeableConcept")))
    return False


def _coverage_route(
    claim: Resource, cref: str, index: BundleIndex
) -> tuple[tuple[str, str] | None, tuple[str, ...]]:
    """The payer identifier and plan / group ids of the claim's first Coverage (section 7)."""
    insurance = as_objects(claim.get("insurance"), cref, "insurance")
    if not insurance:
        return None, ()
    coverage = index.resolve(insurance[0].get("coverage"), cref, "insurance[0].coverage")
    if coverage is None or coverage["resourceType"] != "Coverage":
        return None, ()
    cov = index.cite(coverage)
    payer = None
    for ref in as_objects(coverage.get("payor"), cov, "payor"):
        # A payor outside the bundle is the payer's own business, not a broken request.
        target = ref.get("reference")
        org = index.lookup(target) if type(target) is str else None
        sources = [ref.get("identifier")]
        if org is not None:
            sources.extend(as_objects(org.get("identifier"), index.cite(org), "identifier"))
        for ident in sources:
            if type(ident) is dict and type(ident.get("system")) is str:
                value = ident.get("value")
                if type(value) is str and value.strip():
                    payer = (ident["system"], value.strip())
                    break
        if payer is not None:
            break
    plans: list[str] = []
    for part in as_objects(coverage.get("class"), cov, "class"):
        kinds = {code for system, code in codings(part.get("type")) if system == COVERAGE_CLASS}
        value = part.get("value")
        if kinds & {"plan", "group"} and type(value) is str and value.strip():
            plans.append(value.strip())
    return payer, tuple(plans)


def _check_references(
    claim: Resource, cref: str, index: BundleIndex, element: str, field: str
) -> None:
    """Every `Claim.<element>[].<field>` reference must resolve inside the bundle."""
    for i, part in enumerate(as_objects(claim.get(element), cref, element)):
        reference = part.get(field)
        if reference is None:
            continue
        # Resolve cheaply first; the error path names the element precisely.
        target = reference.get("reference") if type(reference) is dict else reference
        if type(target) is not str or index.lookup(target) is None:
            index.resolve(reference, cref, f"{element}[{i}].{field}")


def _items(
    claim: Resource, cref: str, index: BundleIndex, patient: Resource
) -> tuple[tuple[RequestedItem, ...], set[int], Resource | None]:
    """Claim items, the id() of the MedicationRequests they ask for, and the first requester."""
    items: list[RequestedItem] = []
    requested: set[int] = set()
    requester: Resource | None = None
    for i, item in enumerate(as_objects(claim.get("item"), cref, "item")):
        path = f"item[{i}]"
        sequence = item.get("sequence")
        if type(sequence) is not int or sequence < 1:
            raise InvalidRequest("must be a positive integer", at(cref, f"{path}.sequence"))
        quantity = unit = None
        if type(item.get("quantity")) is dict and "value" in item["quantity"]:
            quantity = number(item["quantity"]["value"], cref, f"{path}.quantity.value")
            if quantity <= 0:
                raise UnusableContent(
                    "must be greater than 0", at(cref, f"{path}.quantity.value"), sequence
                )
            stated = item["quantity"].get("code") or item["quantity"].get("unit")
            unit = stated if type(stated) is str and stated.strip() else None
        serviced = None
        if item.get("servicedDate") is not None:
            serviced = parse_date(
                item["servicedDate"], cref, f"{path}.servicedDate", time_allowed=False
            )
        elif type(item.get("servicedPeriod")) is dict and item["servicedPeriod"].get("start"):
            serviced = parse_date(
                item["servicedPeriod"]["start"], cref, f"{path}.servicedPeriod.start"
            )
        ndc = mr_ref = None
        for ext in as_list(item.get("extension"), cref, f"{path}.extension"):
            if type(ext) is not dict or ext.get("url") != REQUESTED_SERVICE:
                continue
            service = index.resolve(
                ext.get("valueReference"), cref, f"{path}.extension[requestedService]"
            )
            if service is None or service["resourceType"] != "MedicationRequest":
                break
            mr_ref = index.cite(service)
            requested.add(id(service))
            ndc = _ndc(service, index)
            subject = service.get("subject")
            if (
                type(subject) is dict
                and type(subject.get("reference")) is str
                and index.lookup(subject["reference"]) is not patient
            ):
                raise UnusableContent(
                    "the requested MedicationRequest's subject is not the claim's patient",
                    at(mr_ref, "subject"),
                    sequence,
                )
            found = index.resolve(service.get("requester"), mr_ref, "requester")
            requester = requester or found
            break
        product = codings(item.get("productOrService"))
        if ndc is None:
            # An item billed by NDC names its product itself.
            ndc = next((code for system, code in product if system == NDC), None)
        items.append(RequestedItem(sequence, product, quantity, ndc, mr_ref, serviced, unit))
    return tuple(items), requested, requester


def _ndc(request: Resource, index: BundleIndex) -> str | None:
    concept = request.get("medicationCodeableConcept")
    reference = request.get("medicationReference")
    if concept is None and type(reference) is dict and type(reference.get("reference")) is str:
        target = reference["reference"]
        medication = contained(request, target) if target[:1] == "#" else index.lookup(target)
        concept = medication.get("code") if medication is not None else None
    found = codes_in(concept, NDC)
    return found[0] if found else None


def _patient(
    claim: Resource, cref: str, patient: Resource, index: BundleIndex, notes: list[str]
) -> Patient:
    ref = index.cite(patient)
    member_id = None
    insurance = as_objects(claim.get("insurance"), cref, "insurance")
    if insurance:
        coverage = index.resolve(insurance[0].get("coverage"), cref, "insurance[0].coverage")
        if coverage is not None and type(coverage.get("subscriberId")) is str:
            member_id = coverage["subscriberId"] or None
    if member_id is None:
        for ident in as_objects(patient.get("identifier"), ref, "identifier"):
            if any(code == "MB" for _, code in codings(ident.get("type"))):
                value = ident.get("value")
                if type(value) is str and value:
                    member_id = value
                    break
    if member_id is not None and len(member_id) > MAX_MEMBER_ID:
        raise InvalidRequest(
            f"the member id is longer than {MAX_MEMBER_ID} characters", at(ref, "identifier")
        )

    birth_date = None
    if patient.get("birthDate") is not None:
        birth_date = parse_date(patient["birthDate"], ref, "birthDate", time_allowed=False)
        if birth_date is None:
            notes.append(f"{ref}: birthDate is only a year or month, so age is not known")

    sex_for_clinical_use = birth_sex = None
    for ext in as_objects(patient.get("extension"), ref, "extension"):
        url = ext.get("url")
        if url == SEX_FOR_CLINICAL_USE and sex_for_clinical_use is None:
            sex_for_clinical_use = _extension_code(ext)
        elif url == BIRTH_SEX and birth_sex is None:
            birth_sex = _extension_code(ext)
    gender = patient.get("gender")
    return Patient(
        ref=ref,
        member_id=member_id,
        birth_date=birth_date,
        sex_for_clinical_use=sex_for_clinical_use,
        birth_sex=birth_sex,
        gender=gender if type(gender) is str else None,
    )


def _extension_code(ext: dict[str, Any]) -> str | None:
    """valueCode, valueCodeableConcept, valueCoding, or a complex extension's "value" part."""
    code = ext.get("valueCode")
    if type(code) is str:
        return code
    code = first_code(ext.get("valueCodeableConcept"))
    if code is not None:
        return code
    coding = ext.get("valueCoding")
    if type(coding) is dict and type(coding.get("code")) is str:
        return str(coding["code"])
    for part in ext.get("extension") or ():
        if type(part) is dict and part.get("url") == "value":
            return _extension_code(part)
    return None


def _prescriber(who: Resource | None, index: BundleIndex) -> Prescriber | None:
    """The prescriber and its NUCC taxonomies; an Organization has none."""
    if who is None:
        return None
    ref = index.cite(who)
    taxonomies: list[str] = []
    practitioner: Resource | None = who if who["resourceType"] == "Practitioner" else None
    if who["resourceType"] == "PractitionerRole":
        for concept in as_objects(who.get("specialty"), ref, "specialty"):
            taxonomies.extend(codes_in(concept, NUCC))
        practitioner = index.resolve(who.get("practitioner"), ref, "practitioner")
    if practitioner is not None and practitioner["resourceType"] == "Practitioner":
        pref = index.cite(practitioner)
        for qualification in as_objects(practitioner.get("qualification"), pref, "qualification"):
            taxonomies.extend(codes_in(qualification.get("code"), NUCC))
    return Prescriber(ref, tuple(dict.fromkeys(taxonomies)))
