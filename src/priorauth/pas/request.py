"""Read the keys of a Da Vinci PAS request or inquiry Bundle: who asks, for whom, for what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from priorauth.errors import InvalidRequest
from priorauth.intake.pas_bundle import CERTIFICATION_TYPE
from priorauth.intake.references import BundleIndex
from priorauth.intake.request import PasRequest
from priorauth.intake.values import MAX_MEMBER_ID
from priorauth.pas.records import Identifier, RequestKeys

NPI = "http://hl7.org/fhir/sid/us-npi"
PAS_PROFILE = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
ITEM_TRACE_NUMBER = PAS_PROFILE + "extension-itemTraceNumber"
NOT_APPLICABLE = "not-applicable"  # data-absent-reason, in an inquiry's productOrService

_EXPEDITED = frozenset({"stat", "urgent"})
# What the case table's columns hold (store/models.py; a test keeps them in step): a
# longer key is refused here, with a 4xx, never by the database (PostgreSQL enforces).
MAX_IDENTIFIER = 200  # "system|value" of the Claim identifier and of the submitter
MAX_SERVICE_CODES = 20
MAX_SERVICE_CODE = 19  # 20 codes of 19 characters and their spaces fit in 400
_CLAIM = "Bundle.entry[0].resource"

Resource = dict[str, Any]

__all__ = ["InquiryKeys", "read_inquiry", "read_keys", "trace_numbers", "unwrap_inquiry"]


@dataclass(frozen=True, slots=True)
class InquiryKeys:
    """What a PAS $inquire names: the member, the asking organization, the services, the Claim."""

    member_id: str | None
    submitter: Identifier  # the requesting organization (Claim.provider's identifier, NPI)
    service_codes: tuple[str, ...]
    claim_identifier: Identifier | None  # Claim.identifier[0] of the inquiry, when it has one
    member_system: str | None = None  # the system of the member's identifier, when named
    trace_numbers: tuple[str, ...] = ()  # the items' itemTraceNumber values
    version: str | None = None  # the PAS version the inquiry's profiles name ("2.0.1")


def read_keys(request: PasRequest | dict[str, Any]) -> RequestKeys:
    """The keys of a PAS $submit request Bundle; InvalidRequest when it is not one."""
    claim, index = _claim_of(request)
    identifier = _claim_identifier(claim)
    if identifier is None:
        raise InvalidRequest("the Claim has no identifier (Claim.identifier[0])", _CLAIM)
    member = _member(claim, index)
    keys = RequestKeys(
        claim_identifier=identifier,
        submitter=_submitter(claim, index),
        member_id=member.value if member else None,
        service_codes=_service_codes(claim),
        certification=_certification(claim),
        related=_related(claim, index),
        expedited=_expedited(claim),
        member_system=member.system if member else None,
    )
    _fits(keys.claim_identifier, keys.submitter, keys.related, keys.member_id, keys.service_codes)
    return keys


def read_inquiry(request: PasRequest | dict[str, Any]) -> InquiryKeys:
    """The keys of a PAS $inquire Bundle; InvalidRequest when it is not one.

    An inquiry must name the asking organization and at least one of the Claim
    identifier and the member, or there is nothing to look up.
    """
    claim, index = _claim_of(request)
    identifier = _claim_identifier(claim)
    member = _member(claim, index)
    member_id = member.value if member else None
    submitter = _submitter(claim, index)
    if identifier is None and member_id is None:
        raise InvalidRequest(
            "the inquiry names neither a Claim identifier nor a member (Coverage.subscriberId "
            "or Patient.identifier)",
            _CLAIM,
        )
    # PAS 2.2.1 (ValueSet X12278RequestedServiceType): "not-applicable" asks for no
    # particular service; it is no service code.
    codes = tuple(c for c in _service_codes(claim) if c != NOT_APPLICABLE)
    keys = InquiryKeys(
        member_id=member_id,
        submitter=submitter,
        service_codes=codes,
        claim_identifier=identifier,
        member_system=member.system if member else None,
        trace_numbers=_trace_numbers(claim),
        version=_declared_version(request),
    )
    _fits(keys.claim_identifier, keys.submitter, None, keys.member_id, keys.service_codes)
    return keys


def unwrap_inquiry(body: object) -> tuple[object, bool]:
    """The inquiry Bundle of an $inquire body, and whether it came as Parameters: the
    operation's one input parameter ("resource") may be sent in a Parameters resource."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        return body, False
    for parameter in _items(body.get("parameter")):
        if isinstance(parameter, dict) and parameter.get("name") == "resource":
            return parameter.get("resource"), True
    raise InvalidRequest("the Parameters carry no 'resource' parameter (the inquiry Bundle)")


def _declared_version(request: PasRequest | dict[str, Any]) -> str | None:
    """The PAS version of the first versioned PAS profile on the Bundle or its Claim."""
    bundle = request.bundle if isinstance(request, PasRequest) else request
    if not isinstance(bundle, dict):
        return None
    holders = [bundle]
    entries = _items(bundle.get("entry"))
    if entries and isinstance(entries[0], dict) and isinstance(entries[0].get("resource"), dict):
        holders.append(entries[0]["resource"])
    for holder in holders:
        meta = holder.get("meta")
        for profile in _items(meta.get("profile") if isinstance(meta, dict) else None):
            if isinstance(profile, str) and profile.startswith(PAS_PROFILE) and "|" in profile:
                return profile.rsplit("|", 1)[1] or None
    return None


def trace_numbers(request: PasRequest) -> tuple[str, ...]:
    """The itemTraceNumber values of a stored request's Claim (none when it has no Claim)."""
    try:
        claim, _ = _claim_of(request)
    except InvalidRequest:
        return ()
    return _trace_numbers(claim)


def _trace_numbers(claim: Resource) -> tuple[str, ...]:
    """The values of Claim.item[].extension itemTraceNumber, in order."""
    found: list[str] = []
    for item in _items(claim.get("item")):
        for ext in _items(item.get("extension") if isinstance(item, dict) else None):
            if isinstance(ext, dict) and ext.get("url") == ITEM_TRACE_NUMBER:
                identifier = _identifier(ext.get("valueIdentifier"))
                if identifier is not None and identifier.value not in found:
                    found.append(identifier.value)
    return tuple(found)


def _fits(
    claim: Identifier | None,
    submitter: Identifier,
    related: Identifier | None,
    member_id: str | None,
    codes: tuple[str, ...],
) -> None:
    """InvalidRequest when a key is longer than what the case table keeps."""
    for identifier, where in (
        (claim, f"{_CLAIM}.identifier[0]"),
        (submitter, f"{_CLAIM}.provider"),
        (related, f"{_CLAIM}.related[0].claim"),
    ):
        if identifier is not None and len(identifier.key()) > MAX_IDENTIFIER:
            raise InvalidRequest(
                f"the identifier (system and value) is longer than {MAX_IDENTIFIER} characters",
                where,
            )
    if member_id is not None and len(member_id) > MAX_MEMBER_ID:
        raise InvalidRequest(
            f"the member id is longer than {MAX_MEMBER_ID} characters",
            "Coverage.subscriberId or Patient.identifier",
        )
    if len(codes) > MAX_SERVICE_CODES:
        raise InvalidRequest(
            f"more than {MAX_SERVICE_CODES} distinct service codes", f"{_CLAIM}.item"
        )
    if any(len(c) > MAX_SERVICE_CODE for c in codes):
        raise InvalidRequest(
            f"a service code is longer than {MAX_SERVICE_CODE} characters",
            f"{_CLAIM}.item.productOrService",
        )


def _claim_of(data: PasRequest | dict[str, Any]) -> tuple[Resource, BundleIndex]:
    """The Claim and the request's one index (a dict is wrapped, for tests and tools)."""
    request = data if isinstance(data, PasRequest) else PasRequest(None, data)
    bundle = request.bundle
    if not isinstance(bundle, dict):
        raise InvalidRequest("the request body is not a JSON object (a FHIR Bundle)")
    if bundle.get("resourceType") != "Bundle":
        raise InvalidRequest("resourceType must be Bundle", "Bundle")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise InvalidRequest("the Bundle has no entry; a PAS request starts with a Claim", "Bundle")
    first = entries[0]
    claim = first.get("resource") if isinstance(first, dict) else None
    if not isinstance(claim, dict) or claim.get("resourceType") != "Claim":
        raise InvalidRequest("the first entry of a PAS request must be a Claim", _CLAIM)
    use = claim.get("use")
    if use is not None and use != "preauthorization":
        raise InvalidRequest("Claim.use must be preauthorization", f"{_CLAIM}.use")
    return claim, request.index


def _text(value: object) -> str | None:
    """A non-blank string, or None."""
    return value if isinstance(value, str) and value.strip() else None


def _items(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _identifier(value: object) -> Identifier | None:
    """An Identifier element with a value; a malformed system is dropped, not trusted."""
    if not isinstance(value, dict) or (text := _text(value.get("value"))) is None:
        return None
    return Identifier(system=_text(value.get("system")), value=text)


def _best_identifier(resource: Resource) -> Identifier | None:
    """The resource's NPI when it has one, else its first usable identifier."""
    found = [i for i in map(_identifier, _items(resource.get("identifier"))) if i is not None]
    for identifier in found:
        if identifier.system == NPI:
            return identifier
    return found[0] if found else None


def _claim_identifier(claim: Resource) -> Identifier | None:
    identifiers = _items(claim.get("identifier"))
    if not identifiers:
        return None
    identifier = _identifier(identifiers[0])
    if identifier is None:
        raise InvalidRequest("Claim.identifier[0] has no value", f"{_CLAIM}.identifier[0]")
    return identifier


def _submitter(claim: Resource, index: BundleIndex) -> Identifier:
    """The requesting organization: Claim.provider, through PractitionerRole.organization."""
    provider = claim.get("provider")
    found = _provider_identifier(provider, index, claim)
    if found is None:
        raise InvalidRequest(
            "Claim.provider must resolve to an Organization, PractitionerRole or Practitioner "
            "in the bundle that carries an identifier (NPI), or carry Reference.identifier",
            f"{_CLAIM}.provider",
        )
    return found


def _provider_identifier(
    reference: object, index: BundleIndex, claim: Resource
) -> Identifier | None:
    target = index.find(reference, claim)
    found: Identifier | None = None
    if target is not None:
        kind = target.get("resourceType")
        if kind == "PractitionerRole":
            organization = target.get("organization")
            org = index.find(organization, claim)
            found = _best_identifier(org) if org is not None else None
            if found is None and isinstance(organization, dict):
                found = _identifier(organization.get("identifier"))
            if found is None:
                practitioner = index.find(target.get("practitioner"), claim)
                found = _best_identifier(practitioner) if practitioner is not None else None
            if found is None:
                found = _best_identifier(target)
        elif kind in ("Organization", "Practitioner"):
            found = _best_identifier(target)
    if found is None and isinstance(reference, dict):
        found = _identifier(reference.get("identifier"))
    return found


def _member(claim: Resource, index: BundleIndex) -> Identifier | None:
    """Coverage.subscriberId, else the Patient's MB identifier, else any Patient identifier.

    A subscriberId has no system of its own: it takes the system of the Patient's
    identifier with the same value, when the Patient carries one.
    """
    patient = index.find(claim.get("patient"), claim)
    identifiers: list[dict[str, Any]] = []
    if patient is not None and patient.get("resourceType") == "Patient":
        identifiers = [i for i in _items(patient.get("identifier")) if isinstance(i, dict)]
    insurance = _items(claim.get("insurance"))
    if insurance and isinstance(insurance[0], dict):
        coverage = index.find(insurance[0].get("coverage"), claim)
        if coverage is not None and coverage.get("resourceType") == "Coverage":
            subscriber_id = _text(coverage.get("subscriberId"))
            if subscriber_id is not None:
                wanted = subscriber_id.strip().casefold()
                for identifier in identifiers:
                    value = _text(identifier.get("value"))
                    if value is not None and value.strip().casefold() == wanted:
                        return Identifier(_text(identifier.get("system")), subscriber_id)
                return Identifier(None, subscriber_id)
    for identifier in identifiers:
        if "MB" in _codes(identifier.get("type")) and _text(identifier.get("value")):
            return _identifier(identifier)
    for identifier in identifiers:
        if _text(identifier.get("value")):
            return _identifier(identifier)
    return None


def _codes(concept: object) -> list[str]:
    """The codes of a CodeableConcept's codings, in order."""
    if not isinstance(concept, dict):
        return []
    codings = _items(concept.get("coding"))
    return [c["code"] for c in codings if isinstance(c, dict) and _text(c.get("code"))]


def _service_codes(claim: Resource) -> tuple[str, ...]:
    """Every productOrService code of the items, in order, without repeats."""
    codes: dict[str, None] = {}
    for item in _items(claim.get("item")):
        if isinstance(item, dict):
            codes.update(dict.fromkeys(_codes(item.get("productOrService"))))
    return tuple(codes)


def _certification(claim: Resource) -> str:
    """X12 1322 certification type: Claim.extension, else the first item's, else "I" (initial).

    PAS 2.x puts extension-certificationType on Claim; the PAS example bundles
    (and PAS 1.x) carry it on Claim.item, so the items are the fallback.
    """
    holders = [claim, *(i for i in _items(claim.get("item")) if isinstance(i, dict))]
    for holder in holders:
        for ext in _items(holder.get("extension")):
            if isinstance(ext, dict) and ext.get("url") == CERTIFICATION_TYPE:
                codes = _codes(ext.get("valueCodeableConcept"))
                if codes:
                    return codes[0]
    return "I"


def _related(claim: Resource, index: BundleIndex) -> Identifier | None:
    """Claim.related[0].claim: its identifier, or the identifier of the Claim it references."""
    related = _items(claim.get("related"))
    reference = related[0].get("claim") if related and isinstance(related[0], dict) else None
    if not isinstance(reference, dict):
        return None
    found = _identifier(reference.get("identifier"))
    if found is None:
        target = index.find(reference, claim)
        if target is not None and target.get("resourceType") == "Claim":
            identifiers = _items(target.get("identifier"))
            found = _identifier(identifiers[0]) if identifiers else None
    return found


def _expedited(claim: Resource) -> bool:
    return any(code in _EXPEDITED for code in _codes(claim.get("priority")))
