"""Render a case as a Da Vinci PAS response Bundle (ClaimResponse first), and OperationOutcomes."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, NamedTuple

from priorauth.core.codes import system_url
from priorauth.intake.references import BundleIndex
from priorauth.pas.notes import authorization_period, instant, missing_documents, process_notes
from priorauth.pas.records import CaseRecord, Identifier

PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
REVIEW_ACTION = PAS + "extension-reviewAction"
REVIEW_ACTION_CODE = PAS + "extension-reviewActionCode"
ITEM_ISSUE_DATE = PAS + "extension-itemPreAuthIssueDate"
ITEM_PERIOD = PAS + "extension-itemPreAuthPeriod"
ITEM_TRACE_NUMBER = PAS + "extension-itemTraceNumber"
INFO_CANCELLED = PAS + "modifierextension-infoCancelled"
LOINC = "http://loinc.org"
URI = "urn:ietf:rfc:3986"
# PAS 2.2.1 binds CommunicationRequest.payload.contentString to the LOINC attachment
# request codes (ValueSet pas-loinc-attachment-codes). The engine names what is missing in
# words, not by document type, so each request asks for the member's medical records.
ATTACHMENT_CODE = ("11503-0", "Medical records")
X12_ACTION = "https://codesystem.x12.org/005010/306"  # HCR01 action code
X12_REASON = "https://codesystem.x12.org/external/886"  # HCR03 review decision reason code
X12_REPORT_TYPE = "https://codesystem.x12.org/005010/755"  # PWK01
X12_TRANSMISSION = "https://codesystem.x12.org/005010/756"  # PWK02
NDC = "http://hl7.org/fhir/sid/ndc"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
X12_REJECT = "https://codesystem.x12.org/005010/901"  # AAA03 reject reason code
X12_FOLLOWUP = "https://codesystem.x12.org/005010/889"  # AAA04 follow-up action code
ERROR_PATH = PAS + "extension-errorPath"
ERROR_ELEMENT = PAS + "extension-errorElement"
ERROR_FOLLOWUP = PAS + "extension-errorFollowupAction"
INPUT_ERRORS = ("33", "Input Errors")
CORRECT_AND_RESUBMIT = ("C", "Please Correct and Resubmit")

# X12 306 per case status. "C" (Cancelled) answers a cancelled request (HCR01 = C).
ACTIONS: dict[str, tuple[str, str]] = {
    "pended": ("A4", "Pended"),
    "approved": ("A1", "Certified in total"),
    "modified": ("A6", "Modified"),
    "denied": ("A3", "Not Certified"),
    "cancelled": ("C", "Cancelled"),
}
# X12 886 (HCR03) reasons: a denial is a failed coverage criterion; a pend lacks documents
# (0U) or waits for the Medical Director (0V).
DENIAL_REASON = ("0F", "Not Medically Necessary")
PEND_MISSING_REASON = ("0U", "Additional Patient Information required")
PEND_REVIEW_REASON = ("0V", "Requires Medical Review")
_DISPOSITION = {
    "pended": "Pended for Medical Director review",
    "approved": "Certified in total",
    "modified": "Certified with modification",
    "denied": "Not certified",
    "cancelled": "Cancelled",
}
_CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
_DEFAULT_TYPE = {"coding": [{"system": _CLAIM_TYPE, "code": "professional"}]}
_MORE_INFORMATION = "Additional documentation is needed to complete the prior authorization review."
# FHIR R4 IssueType (http://hl7.org/fhir/issue-type).
ISSUE_TYPES = frozenset({
    "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown",
    "expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate",
    "multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension",
    "too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store",
    "exception", "timeout", "incomplete", "throttled", "informational",
})  # fmt: skip

__all__ = [
    "ProcessingError",
    "claim_response_bundle",
    "error_response_bundle",
    "inquiry_parameters",
    "operation_outcome",
]


class ProcessingError(NamedTuple):
    """A business error found while judging a request (PAS ClaimResponse.error)."""

    message: str
    where: str | None = None  # the reader's place: "Type/id.path"
    item_sequence: int | None = None
    reason: tuple[str, str] = INPUT_ERRORS  # X12 901 (AAA03)


def claim_response_bundle(
    case: CaseRecord, *, now: datetime, insurer_name: str = "priorauth payer", inquiry: bool = False
) -> dict[str, Any]:
    """The PAS response Bundle for a case: ClaimResponse, CommunicationRequest, copied parties.

    `inquiry` renders the $inquire flavour (PAS inquiry response profiles).
    Pure: the only inputs are the case (with its request Bundle) and `now`.
    """
    index = case.request.index  # the request's one index (decoded once, if stored)
    claim = _claim(index)
    parties = _Parties(index, claim)
    patient = parties.add(claim.get("patient"), lambda: _minimal_patient(case))
    insurer = parties.add(claim.get("insurer"), lambda: _minimal_org(insurer_name, None))
    requestor = parties.add(claim.get("provider"), lambda: _minimal_org(None, case.keys.submitter))
    parties.close()
    refs = _Refs(patient, insurer, requestor)

    response = _claim_response(case, claim, now, refs, inquiry=inquiry)
    entries = [{"fullUrl": _urn(case.id, "ClaimResponse"), "resource": response}]
    missing = missing_documents(case)
    if missing and not inquiry:
        # PAS 2.2.1: CommunicationRequest.payload is 0..1, so one request per document.
        response["communicationRequest"] = []
        for n, text in enumerate(missing, start=1):
            request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{case.id}/CommunicationRequest/{n}"))
            full_url = f"urn:uuid:{request_id}"
            response["communicationRequest"].append({"reference": full_url})
            comm = _communication_request(request_id, text, now, refs)
            entries.append({"fullUrl": full_url, "resource": comm})
    entries.extend({"fullUrl": url, "resource": r} for url, r in parties.entries)
    profile = "profile-pas-inquiry-response-bundle" if inquiry else "profile-pas-response-bundle"
    bundle_id = str(uuid.uuid4())
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [PAS + profile]},
        "identifier": _bundle_identifier(case, bundle_id),
        "type": "collection",
        "timestamp": instant(now),
        "entry": entries,
    }


def _bundle_identifier(case: CaseRecord, bundle_id: str) -> dict[str, Any]:
    """PAS 2.2.1 Bundle.identifier (1..1, the submitted transaction identifier): the
    request Bundle's own, echoed, else this response's id as a URI."""
    bundle = case.request.bundle
    sent = bundle.get("identifier") if isinstance(bundle, dict) else None
    if isinstance(sent, dict) and isinstance(sent.get("value"), str) and sent["value"].strip():
        return copy.deepcopy(sent)
    return {"system": URI, "value": f"urn:uuid:{bundle_id}"}


def error_response_bundle(
    index: BundleIndex,
    bundle: object,
    claim_identifier: Identifier,
    errors: list[ProcessingError],
    *,
    now: datetime,
    insurer_name: str = "priorauth payer",
) -> dict[str, Any]:
    """The PAS response Bundle for a request that is valid FHIR but cannot be judged.

    PAS 2.2.1 specification (spec-40 and "Prior Authorization Transaction Error Handling"):
    validation errors are an OperationOutcome; errors the payer finds while processing the
    request (X12 AAA) are ClaimResponse.error, with outcome "error". Nothing is stored: the
    provider corrects the request and resubmits it (follow-up action C).
    """
    claim = _claim(index)
    parties = _Parties(index, claim)
    patient = parties.add(claim.get("patient"), _anonymous_patient)
    insurer = parties.add(claim.get("insurer"), lambda: _minimal_org(insurer_name, None))
    requestor = parties.add(claim.get("provider"), lambda: _minimal_org(None, None))
    parties.close()
    claim_type = claim.get("type")
    response_id = str(uuid.uuid4())
    response: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": response_id,
        "meta": {"profile": [PAS + "profile-claimresponse"]},
        "identifier": [_request_identifier(claim, claim_identifier)],
        "status": "active",
        "type": copy.deepcopy(claim_type) if isinstance(claim_type, dict) else _DEFAULT_TYPE,
        "use": "preauthorization",
        "patient": {"reference": patient},
        "created": instant(now),
        "insurer": {"reference": insurer},
        "requestor": {"reference": requestor},
        "request": {"type": "Claim", "identifier": _identifier_json(claim_identifier)},
        "outcome": "error",
        "disposition": "The request could not be processed: correct it and resubmit",
        "error": [],
        "processNote": [],
    }
    for n, err in enumerate(errors, start=1):
        response["processNote"].append({"number": n, "type": "display", "text": str(err.message)})
        # errorElement's processNote ties the error to the note that says it in words.
        extensions: list[dict[str, Any]] = [
            {"url": ERROR_ELEMENT, "extension": [{"url": "processNote", "valuePositiveInt": n}]},
        ]
        path = _error_path(index, err.where)
        if path is not None:
            extensions.append({"url": ERROR_PATH, "valueString": path})
        extensions.append(
            {
                "url": ERROR_FOLLOWUP,
                "valueCodeableConcept": _coding(X12_FOLLOWUP, CORRECT_AND_RESUBMIT),
            }
        )
        error: dict[str, Any] = {"extension": extensions}
        if err.item_sequence is not None:
            error["itemSequence"] = err.item_sequence
        error["code"] = _coding(X12_REJECT, err.reason)
        response["error"].append(error)
    entries = [{"fullUrl": f"urn:uuid:{response_id}", "resource": response}]
    entries.extend({"fullUrl": url, "resource": r} for url, r in parties.entries)
    bundle_id = str(uuid.uuid4())
    sent = bundle.get("identifier") if isinstance(bundle, dict) else None
    identifier = (
        copy.deepcopy(sent)
        if isinstance(sent, dict) and isinstance(sent.get("value"), str) and sent["value"].strip()
        else {"system": URI, "value": f"urn:uuid:{bundle_id}"}
    )
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [PAS + "profile-pas-response-bundle"]},
        "identifier": identifier,
        "type": "collection",
        "timestamp": instant(now),
        "entry": entries,
    }


def _anonymous_patient() -> dict[str, Any]:
    return {"resourceType": "Patient", "id": str(uuid.uuid4())}


def _error_path(index: BundleIndex, where: str | None) -> str | None:
    """The reader's "Type/id.path" as the FHIRPath the errorPath extension wants (from
    Bundle); None when the place is not inside one of the request's entries."""
    if not where:
        return None
    for n, (resource, _) in enumerate(index.entries):
        cited = index.cite(resource)
        if where == cited:
            return f"Bundle.entry[{n}].resource"
        if where.startswith(cited + "."):
            return f"Bundle.entry[{n}].resource.{where[len(cited) + 1 :]}"
    return None


def inquiry_parameters(bundles: list[dict[str, Any]]) -> dict[str, Any]:
    """PAS 2.2.1 $inquire output (OperationDefinition Claim-inquiry): one "return"
    parameter per matching inquiry response Bundle; none at all when nothing matches."""
    out: dict[str, Any] = {"resourceType": "Parameters", "id": str(uuid.uuid4())}
    if bundles:
        out["parameter"] = [{"name": "return", "resource": b} for b in bundles]
    return out


def operation_outcome(
    code: str, diagnostics: str, *, severity: str = "error", expression: str | None = None
) -> dict[str, Any]:
    """A one-issue OperationOutcome; `code` is a FHIR IssueType code (ValueError otherwise)."""
    if code not in ISSUE_TYPES:
        raise ValueError(f"{code!r} is not a FHIR issue-type code")
    if severity not in ("fatal", "error", "warning", "information"):
        raise ValueError(f"{severity!r} is not a FHIR issue-severity code")
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _claim(index: BundleIndex) -> dict[str, Any]:
    """The request's Claim (the first entry); an empty dict when the stored request has none."""
    if index.entries and index.entries[0][0].get("resourceType") == "Claim":
        return index.entries[0][0]
    return {}


def _urn(key: str, kind: str) -> str:
    """urn:uuid for an id: the id itself when it is a UUID, else a stable UUID derived from it."""
    try:
        return f"urn:uuid:{uuid.UUID(key)}"
    except ValueError:
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{kind}/{key}')}"


class _Refs(NamedTuple):
    """The fullUrls of the parties a ClaimResponse names."""

    patient: str
    insurer: str
    requestor: str


class _Parties:
    """The request's resources a response repeats, under their request fullUrls, in order."""

    def __init__(self, index: BundleIndex, claim: dict[str, Any]) -> None:
        self.index, self.claim = index, claim
        self.entries: list[tuple[str, dict[str, Any]]] = []

    def add(self, reference: object, fallback: Callable[[], dict[str, Any]]) -> str:
        """Copy the resource a Claim reference points at (or `fallback()`); its fullUrl."""
        target = reference.get("reference") if isinstance(reference, dict) else None
        found = self.index.lookup(target) if isinstance(target, str) else None
        if found is None:
            resource = fallback()
            return self._keep(_urn(resource["id"], resource["resourceType"]), resource)
        return self._keep(self.index.full_url(found) or _fallback_url(found), found)

    def close(self) -> None:
        """Add whatever the copied resources reference inside the request, transitively."""
        pending = [r for _, r in self.entries]
        while pending:
            for target in _references(pending.pop()):
                found = self.index.lookup(target)
                if found is None:
                    continue
                full_url = self.index.full_url(found) or _fallback_url(found)
                if not self._has(full_url):
                    self._keep(full_url, found)
                    pending.append(found)

    def _has(self, full_url: str) -> bool:
        return any(url == full_url for url, _ in self.entries)

    def _keep(self, full_url: str, resource: dict[str, Any]) -> str:
        if not self._has(full_url):
            self.entries.append((full_url, copy.deepcopy(resource)))
        return full_url


def _fallback_url(resource: dict[str, Any]) -> str:
    rid = resource.get("id")
    return _urn(rid if isinstance(rid, str) else str(uuid.uuid4()), resource["resourceType"])


def _references(value: object) -> list[str]:
    """Every Reference.reference string inside a resource (contained ones excluded)."""
    found: list[str] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str) and not ref.startswith("#"):
                found.append(ref)
            stack.extend(v for k, v in node.items() if k != "contained")
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _minimal_patient(case: CaseRecord) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": f"{case.id}-patient"[:64]}
    if case.keys.member_id:
        patient["identifier"] = [{"value": case.keys.member_id}]
    return patient


def _minimal_org(name: str | None, identifier: Identifier | None) -> dict[str, Any]:
    seed = name or (identifier.key() if identifier else "organization")
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"Organization/{seed}")),
    }
    if identifier is not None:
        org["identifier"] = [_identifier_json(identifier)]
    if name is not None:
        org["name"] = name
    return org


def _identifier_json(identifier: Identifier) -> dict[str, Any]:
    out = {"value": identifier.value}
    if identifier.system:
        out = {"system": identifier.system, **out}
    return out


def _coding(system: str, code_display: tuple[str, str]) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code_display[0], "display": code_display[1]}]}


def _period(period: tuple[date, date]) -> dict[str, str]:
    return {"start": period[0].isoformat(), "end": period[1].isoformat()}


def _review_action(case: CaseRecord, action: tuple[str, str]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"url": REVIEW_ACTION_CODE, "valueCodeableConcept": _coding(X12_ACTION, action)},
        {"url": "number", "valueString": case.auth_number},
    ]
    reason = None
    if action[0] == "A3":
        reason = DENIAL_REASON
    elif action[0] == "A4":
        reason = PEND_MISSING_REASON if missing_documents(case) else PEND_REVIEW_REASON
    if reason is not None:
        parts.append({"url": "reasonCode", "valueCodeableConcept": _coding(X12_REASON, reason)})
    return {
        "category": {"coding": [{"system": ADJUDICATION, "code": "submitted"}]},
        "extension": [{"url": REVIEW_ACTION, "extension": parts}],
    }


def _item_extensions(issued: date | None, period: tuple[date, date] | None) -> list[Any]:
    out: list[dict[str, Any]] = []
    if issued is not None:
        out.append({"url": ITEM_ISSUE_DATE, "valueDate": issued.isoformat()})
    if period is not None:
        out.append({"url": ITEM_PERIOD, "valuePeriod": _period(period)})
    return out


def _claim_items(claim: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(sequence, item) of each Claim.item, the sequence as _sequences reads it."""
    items = claim.get("item")
    out: list[tuple[int, dict[str, Any]]] = []
    for n, item in enumerate(items if isinstance(items, list) else [], start=1):
        if isinstance(item, dict):
            seq = item.get("sequence")
            ok = isinstance(seq, int) and not isinstance(seq, bool) and seq > 0
            out.append((seq if ok else n, item))  # type: ignore[arg-type]
    return out


def _trace_numbers(claim: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """Claim.item itemTraceNumber identifiers by item sequence, echoed on ClaimResponse.item."""
    found: dict[int, list[dict[str, Any]]] = {}
    for seq, item in _claim_items(claim):
        for ext in item.get("extension") or []:
            if isinstance(ext, dict) and ext.get("url") == ITEM_TRACE_NUMBER:
                value = ext.get("valueIdentifier")
                if isinstance(value, dict):
                    found.setdefault(seq, []).append(value)
    return found


def _cancelled_items(claim: dict[str, Any]) -> set[int]:
    """Sequences of the items carrying modifierExtension infoCancelled = true."""
    return {
        seq
        for seq, item in _claim_items(claim)
        if any(
            isinstance(ext, dict)
            and ext.get("url") == INFO_CANCELLED
            and ext.get("valueBoolean") is True
            for ext in item.get("modifierExtension") or []
        )
    }


def _sequences(claim: dict[str, Any]) -> list[int]:
    """Claim.item[].sequence (position + 1 where a sequence is unusable); [1] without items."""
    items = claim.get("item")
    items = items if isinstance(items, list) else []
    out: list[int] = []
    for n, item in enumerate(items, start=1):
        seq = item.get("sequence") if isinstance(item, dict) else None
        value = seq if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 else n
        if value not in out:
            out.append(value)
    return out or [1]


def _claim_response(
    case: CaseRecord, claim: dict[str, Any], now: datetime, refs: _Refs, *, inquiry: bool
) -> dict[str, Any]:
    decision = case.decision
    decided = decision is not None and case.status in ("approved", "modified", "denied")
    issued = decision.decided_at.date() if decided and decision is not None else None
    period = authorization_period(case)
    action = ACTIONS[case.status]
    identifier = _request_identifier(claim, case.keys.claim_identifier)
    claim_type = claim.get("type")
    profile = "profile-claiminquiryresponse" if inquiry else "profile-claimresponse"

    response: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": case.id,
        "meta": {"profile": [PAS + profile]},
        "identifier": [identifier],
        # PAS fixes ClaimResponse.status to "active" (PASClaimResponseBase); a cancelled
        # request is told by reviewActionCode "C", not by the status.
        "status": "active",
        "type": copy.deepcopy(claim_type) if isinstance(claim_type, dict) else _DEFAULT_TYPE,
        "use": "preauthorization",
        "patient": {"reference": refs.patient},
        "created": instant(now),
        "insurer": {"reference": refs.insurer},
        "requestor": {"reference": refs.requestor},
        "request": {"type": "Claim", "identifier": _identifier_json(case.keys.claim_identifier)},
        "outcome": "complete",
        "disposition": _DISPOSITION[case.status],
        "preAuthRef": case.auth_number,
    }
    if period is not None:
        response["preAuthPeriod"] = _period(period)
    notes = process_notes(case)
    sequences = _sequences(claim)
    traces = _trace_numbers(claim)
    cancelled = _cancelled_items(claim)
    items = []
    for seq in sequences:
        item: dict[str, Any] = {"itemSequence": seq}
        extensions = [
            {"url": ITEM_TRACE_NUMBER, "valueIdentifier": copy.deepcopy(t)}
            for t in traces.get(seq, [])
        ]
        if seq not in cancelled:
            extensions.extend(_item_extensions(issued, period))
        if extensions:
            item["extension"] = extensions
        if notes:
            item["noteNumber"] = list(range(1, len(notes) + 1))
        # An item the provider cancelled (infoCancelled, a modifier) is answered as cancelled.
        item_action = ACTIONS["cancelled"] if seq in cancelled else action
        item["adjudication"] = [_review_action(case, item_action)]
        items.append(item)
    response["item"] = items
    if (
        case.status == "modified"
        and decision is not None
        and (decision.product_ndc or decision.quantity is not None)
    ):
        added: dict[str, Any] = {"itemSequence": sequences}
        if extensions := _item_extensions(issued, period):
            added["extension"] = extensions
        added["productOrService"] = _authorized_product(case, claim)
        if decision.quantity is not None:
            added["quantity"] = {"value": decision.quantity}
            if decision.unit:
                added["quantity"]["unit"] = decision.unit
        added["adjudication"] = [_review_action(case, ACTIONS["approved"])]
        response["addItem"] = [added]
    if notes:
        response["processNote"] = [
            {"number": n, "type": "display", "text": text} for n, text in enumerate(notes, 1)
        ]
    return response


def _request_identifier(claim: dict[str, Any], keys: Identifier) -> dict[str, Any]:
    """Claim.identifier[0] as sent (assigner and extensions kept), when it is the keyed one."""
    identifiers = claim.get("identifier")
    first = identifiers[0] if isinstance(identifiers, list) and identifiers else None
    if isinstance(first, dict) and first.get("value") == keys.value:
        return copy.deepcopy(first)
    return _identifier_json(keys)


def _communication_request(
    request_id: str, missing: str, now: datetime, refs: _Refs
) -> dict[str, Any]:
    """The PAS request for one missing document: its identifier (the X12 attachment control
    number), a LOINC attachment code as its one payload, and the engine's words as a note."""
    return {
        "resourceType": "CommunicationRequest",
        "id": request_id,
        "meta": {"profile": [PAS + "profile-communicationrequest"]},
        "identifier": [{"system": URI, "value": f"urn:uuid:{request_id}"}],
        "status": "active",
        "category": [
            {
                **_coding(X12_REPORT_TYPE, ("M1", "Medical Record Attachment")),
                "text": "Additional documentation",
            }
        ],
        "medium": [_coding(X12_TRANSMISSION, ("EL", "Electronically Only"))],
        "subject": {"reference": refs.patient},
        "payload": [{"contentString": ATTACHMENT_CODE[0]}],
        "note": [{"text": missing}],
        "authoredOn": instant(now),
        "requester": {"reference": refs.insurer},
        "recipient": [{"reference": refs.requestor}],
        "sender": {"reference": refs.requestor},
        "reasonCode": [{"text": _MORE_INFORMATION}],
    }


def _authorized_product(case: CaseRecord, claim: dict[str, Any]) -> dict[str, Any]:
    """The product the modification authorizes: its NDC, else the policy's billing code,
    else what the claim asked for (the quantity then says what changed)."""
    decision = case.decision
    if decision is not None and decision.product_ndc:
        return {"coding": [{"system": NDC, "code": decision.product_ndc}]}
    dose = case.evaluation.dose if case.evaluation else None
    if dose is not None and dose.code:
        system, _, code = dose.code.partition("|")
        return {"coding": [{"system": system_url(system), "code": code}]}
    items = claim.get("item")
    first = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}
    asked = first.get("productOrService")
    return asked if isinstance(asked, dict) else {"text": "as requested"}
