"""The JSON shape of the FHIR elements priorauth reads, checked at the door.

Full FHIR model validation (fhir.resources) costs about 10 ms a bundle and can be
turned off; this check is always on and costs a walk over the elements named here:
the ones intake, CRD, DTR and the reviewer app read. An element of the wrong JSON
type (an array where FHIR has an object, a number where it has a string...) is an
InvalidRequest naming its FHIRPath, so a client's mistake is a 4xx and nothing stored
can later break a page. Elements not named here are not looked at (and not read).
Messages never echo values: they are patient data.
"""

from __future__ import annotations

from typing import Any

from priorauth.errors import InvalidRequest

# A spec is one of: a JSON kind below; a dict (an object: key -> spec of that
# element); a one-element list (an array of that spec); RESOURCE (a resource,
# checked by its own resourceType).
STRING, NUMBER, BOOLEAN, OBJECT = "string", "number", "boolean", "object"
RESOURCE = "resource"
Spec = Any

_KIND_WORDS = {
    STRING: "a JSON string",
    NUMBER: "a JSON number",
    BOOLEAN: "true or false",
    OBJECT: "a JSON object",
}

CODING: dict[str, Spec] = {"system": STRING, "version": STRING, "code": STRING, "display": STRING}
CONCEPT: dict[str, Spec] = {"coding": [CODING], "text": STRING}
IDENTIFIER: dict[str, Spec] = {"system": STRING, "value": STRING, "type": CONCEPT}
REFERENCE: dict[str, Spec] = {
    "reference": STRING,
    "type": STRING,
    "display": STRING,
    "identifier": IDENTIFIER,
}
PERIOD: dict[str, Spec] = {"start": STRING, "end": STRING}
QUANTITY: dict[str, Spec] = {"value": NUMBER, "unit": STRING, "system": STRING, "code": STRING}
NAME: dict[str, Spec] = {
    "use": STRING,
    "text": STRING,
    "family": STRING,
    "given": [STRING],
    "prefix": [STRING],
    "suffix": [STRING],
}
EXTENSION: dict[str, Spec] = {
    "url": STRING,
    "valueString": STRING,
    "valueCode": STRING,
    "valueBoolean": BOOLEAN,
    "valueReference": REFERENCE,
    "valueCodeableConcept": CONCEPT,
    "valueCoding": CODING,
    "valueQuantity": QUANTITY,
    "valueIdentifier": IDENTIFIER,
    "valuePeriod": PERIOD,
}
EXTENSION["extension"] = [EXTENSION]
META: dict[str, Spec] = {
    "versionId": STRING,
    "lastUpdated": STRING,
    "profile": [STRING],
    "tag": [CODING],
    "security": [CODING],
}
DOMAIN: dict[str, Spec] = {
    "resourceType": STRING,
    "id": STRING,
    "meta": META,
    "text": {"status": STRING, "div": STRING},
    "contained": [RESOURCE],
    "extension": [EXTENSION],
    "modifierExtension": [EXTENSION],
}
OBSERVATION_VALUE: dict[str, Spec] = {
    "code": CONCEPT,
    "valueQuantity": QUANTITY,
    "valueCodeableConcept": CONCEPT,
    "valueString": STRING,
    "valueBoolean": BOOLEAN,
    "interpretation": [CONCEPT],
    "referenceRange": [{"low": QUANTITY, "high": QUANTITY, "text": STRING}],
}
QR_ITEM: dict[str, Spec] = {"linkId": STRING, "text": STRING}
QR_ITEM["item"] = [QR_ITEM]
QR_ITEM["answer"] = [
    {
        "valueBoolean": BOOLEAN,
        "valueDecimal": NUMBER,
        "valueInteger": NUMBER,
        "valueDate": STRING,
        "valueDateTime": STRING,
        "valueString": STRING,
        "valueCoding": CODING,
        "valueQuantity": QUANTITY,
        "valueReference": REFERENCE,
        "item": [QR_ITEM],
        "extension": [EXTENSION],
    }
]
Q_ITEM: dict[str, Spec] = {"linkId": STRING, "text": STRING, "type": STRING}
Q_ITEM["item"] = [Q_ITEM]
PARAMETER: dict[str, Spec] = {
    "name": STRING,
    "resource": RESOURCE,
    "valueString": STRING,
    "valueCanonical": STRING,
    "valueBoolean": BOOLEAN,
}
PARAMETER["part"] = [PARAMETER]

RESOURCES: dict[str, dict[str, Spec]] = {
    "Bundle": {"type": STRING, "entry": [{"fullUrl": STRING, "resource": RESOURCE}]},
    "Parameters": {"parameter": [PARAMETER]},
    "Patient": {
        "identifier": [IDENTIFIER],
        "name": [NAME],
        "gender": STRING,
        "birthDate": STRING,
    },
    "Practitioner": {"identifier": [IDENTIFIER], "name": [NAME]},
    "PractitionerRole": {
        "identifier": [IDENTIFIER],
        "practitioner": REFERENCE,
        "organization": REFERENCE,
        "code": [CONCEPT],
        "specialty": [CONCEPT],
    },
    "Organization": {"identifier": [IDENTIFIER], "name": STRING, "type": [CONCEPT]},
    "Coverage": {
        "identifier": [IDENTIFIER],
        "status": STRING,
        "subscriberId": STRING,
        "subscriber": REFERENCE,
        "beneficiary": REFERENCE,
        "payor": [REFERENCE],
        "period": PERIOD,
        "class": [{"type": CONCEPT, "value": STRING, "name": STRING}],
    },
    "Claim": {
        "identifier": [IDENTIFIER],
        "status": STRING,
        "use": STRING,
        "type": CONCEPT,
        "priority": CONCEPT,
        "created": STRING,
        "patient": REFERENCE,
        "provider": REFERENCE,
        "insurer": REFERENCE,
        "related": [{"claim": REFERENCE, "relationship": CONCEPT, "reference": IDENTIFIER}],
        "insurance": [{"sequence": NUMBER, "focal": BOOLEAN, "coverage": REFERENCE}],
        "item": [
            {
                "sequence": NUMBER,
                "productOrService": CONCEPT,
                "quantity": QUANTITY,
                "extension": [EXTENSION],
            }
        ],
    },
    "MedicationRequest": {
        "identifier": [IDENTIFIER],
        "status": STRING,
        "intent": STRING,
        "subject": REFERENCE,
        "requester": REFERENCE,
        "insurance": [REFERENCE],
        "medicationCodeableConcept": CONCEPT,
        "medicationReference": REFERENCE,
        "authoredOn": STRING,
        "reasonCode": [CONCEPT],
        "dosageInstruction": [OBJECT],
        "dispenseRequest": {"quantity": QUANTITY},
    },
    "Medication": {"code": CONCEPT},
    "MedicationStatement": {
        "status": STRING,
        "subject": REFERENCE,
        "medicationCodeableConcept": CONCEPT,
        "medicationReference": REFERENCE,
        "effectiveDateTime": STRING,
        "effectivePeriod": PERIOD,
    },
    "Observation": {
        **OBSERVATION_VALUE,
        "status": STRING,
        "category": [CONCEPT],
        "subject": REFERENCE,
        "effectiveDateTime": STRING,
        "issued": STRING,
        "component": [OBSERVATION_VALUE],
    },
    "Condition": {
        "code": CONCEPT,
        "category": [CONCEPT],
        "clinicalStatus": CONCEPT,
        "verificationStatus": CONCEPT,
        "subject": REFERENCE,
        "onsetDateTime": STRING,
        "recordedDate": STRING,
    },
    "QuestionnaireResponse": {
        "questionnaire": STRING,
        "status": STRING,
        "subject": REFERENCE,
        "author": REFERENCE,
        "authored": STRING,
        "item": [QR_ITEM],
    },
    "Questionnaire": {"url": STRING, "version": STRING, "item": [Q_ITEM]},
}


def check_resource(value: Any, where: str) -> None:
    """InvalidRequest unless `value` is a resource whose known elements have FHIR's JSON shape."""
    check(value, RESOURCE, where)


def check(value: Any, spec: Spec, where: str) -> None:
    """InvalidRequest unless `value` has the shape `spec` (see the module's docstring)."""
    # A quick pass that builds no paths; only a failure pays for finding where it is.
    if not _ok(value, spec):
        _check(value, spec, where)
        raise InvalidRequest("does not have the FHIR JSON shape", where)  # not reached


_KIND_TYPES: dict[str, tuple[type, ...]] = {
    STRING: (str,),
    NUMBER: (int, float),
    BOOLEAN: (bool,),
    OBJECT: (dict,),
}


def _ok(value: Any, spec: Spec) -> bool:
    ts = type(spec)
    if ts is dict:
        return type(value) is dict and _ok_object(value, spec)
    if ts is list:
        if type(value) is not list:
            return False
        inner = spec[0]
        leaf = _KIND_TYPES.get(inner) if type(inner) is str else None
        if leaf is not None:
            return all(type(item) in leaf for item in value)
        return all(_ok(item, inner) for item in value)
    if spec == RESOURCE:
        if type(value) is not dict:
            return False
        kind = value.get("resourceType")
        if type(kind) is not str or not kind or not _ok_object(value, DOMAIN):
            return False
        own = RESOURCES.get(kind)
        return own is None or _ok_object(value, own)
    return type(value) in _KIND_TYPES[spec]


def _ok_object(value: dict[str, Any], spec: dict[str, Spec]) -> bool:
    # Leaves (most elements) are checked here, without a call each.
    for key, element in value.items():
        inner = spec.get(key)
        if inner is None:
            continue
        leaf = _KIND_TYPES.get(inner) if type(inner) is str else None
        if leaf is not None:
            if type(element) not in leaf:
                return False
        elif not _ok(element, inner):
            return False
    return True


def _check(value: Any, spec: Spec, where: str) -> None:
    if spec == RESOURCE:
        if type(value) is not dict:
            raise InvalidRequest("must be a FHIR resource (a JSON object)", where)
        kind = value.get("resourceType")
        if type(kind) is not str or not kind:
            raise InvalidRequest("resourceType must be a string", f"{where}.resourceType")
        _object(value, DOMAIN, where)
        own = RESOURCES.get(kind)
        if own is not None:
            _object(value, own, where)
    elif type(spec) is dict:
        if type(value) is not dict:
            raise InvalidRequest("must be a JSON object", where)
        _object(value, spec, where)
    elif type(spec) is list:
        if type(value) is not list:
            raise InvalidRequest("must be a JSON array", where)
        inner = spec[0]
        for i, item in enumerate(value):
            _check(item, inner, f"{where}[{i}]")
    elif not _is(value, spec):
        raise InvalidRequest(f"must be {_KIND_WORDS[spec]}", where)


def _object(value: dict[str, Any], spec: dict[str, Spec], where: str) -> None:
    # Only the keys present are looked at: most elements are optional.
    for key, element in value.items():
        inner = spec.get(key)
        if inner is not None:
            _check(element, inner, f"{where}.{key}")


def _is(value: Any, kind: str) -> bool:
    t = type(value)
    if kind == STRING:
        return t is str
    if kind == NUMBER:
        return t is int or t is float
    if kind == BOOLEAN:
        return t is bool
    return t is dict  # OBJECT
