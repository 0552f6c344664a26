"""Clinical evidence of a PAS bundle: observations, records, conditions, medications, answers."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from priorauth.core.codes import code_key
from priorauth.core.facts import (
    LOINC,
    Attachment,
    Attestation,
    Condition,
    Medication,
    Observation,
    Record,
)
from priorauth.errors import InvalidRequest
from priorauth.intake.references import BundleIndex, Resource, contained
from priorauth.intake.values import (
    as_list,
    as_object,
    at,
    codings,
    number,
    parse_date,
)

_COUNTING_STATUS = frozenset({"final", "amended", "corrected"})
_ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})
_NOT_TRUE = frozenset({"entered-in-error", "refuted"})
_QR_STATUS = frozenset({"completed", "amended"})
_BODY_WEIGHT = "29463-7"
_POUNDS = frozenset({"[lb_av]", "lb", "lbs"})
_LB_TO_KG = 0.45359237
_MAX_KG = 700.0
_NONE: frozenset[Any] = frozenset()
_UNDATED = (date.min, "")

Answer = bool | int | float | str

_new_observation = Observation
_new_attestation = Attestation


class Evidence:
    """Sorts each clinical resource into Facts, or sets it aside with a note."""

    def __init__(self, index: BundleIndex, patient: Resource, requested: set[int]) -> None:
        self.index = index
        self.patient = patient
        self.requested = requested  # id() of the MedicationRequests the claim asks for
        self.notes: list[str] = []
        self.conditions: list[Condition] = []
        self.medications: list[Medication] = []
        self.attestations: dict[str, Attestation] = {}
        self._observations: dict[str, list[tuple[tuple[date, str], Observation]]] = {}
        self._records: list[tuple[tuple[date, str], Record]] = []
        self._attested_on: dict[str, date] = {}

    def read(self) -> None:
        readers = {
            "Observation": self._observation,
            "Condition": self._condition,
            "MedicationStatement": self._medication,
            "MedicationRequest": self._medication,
            "QuestionnaireResponse": self._questionnaire_response,
            "Procedure": self._record,
            "DiagnosticReport": self._record,
            "ImagingStudy": self._record,
            "DocumentReference": self._record,
        }
        mine = self.index.keys_of(self.patient)
        for resource, ref in self.index.entries:
            reader = readers.get(resource["resourceType"])
            if reader is None or id(resource) in self.requested:
                continue
            # The policy requires patient-specific documentation: evidence that
            # cannot be tied to the claim's patient is not evidence for this claim.
            try:
                # The usual case first: a subject reference that names the patient.
                subject = resource.get("subject")
                target = subject.get("reference") if type(subject) is dict else None
                if type(target) is str and target in mine:
                    reader(resource, ref)
                    continue
                reason = self._foreign(resource, ref)
                if reason is not None:
                    self.notes.append(f"{ref} set aside: {reason}")
                    continue
                reader(resource, ref)
            except (AttributeError, TypeError, KeyError, IndexError) as exc:
                # An element of the wrong JSON type that no explicit check names.
                raise InvalidRequest(
                    f"unexpected FHIR structure ({type(exc).__name__})", ref
                ) from exc

    def observations(self) -> dict[str, tuple[Observation, ...]]:
        """Code key (see core.codes.code_key) -> results, most recent first, undated last."""
        out: dict[str, tuple[Observation, ...]] = {}
        for code, found in self._observations.items():
            if len(found) == 1:
                out[code] = (found[0][1],)
                continue
            # Stable and keyed on (date, raw timestamp): same-day results keep
            # their time order, identical stamps keep bundle order.
            found.sort(key=_stamp, reverse=True)
            out[code] = tuple([obs for _, obs in found])
        return out

    def records(self) -> dict[str, tuple[Record, ...]]:
        """Code key (and resource type) -> records, most recent first, undated last."""
        if not self._records:
            return {}
        self._records.sort(key=_record_stamp, reverse=True)
        out: dict[str, list[Record]] = {}
        for _, r in self._records:
            out.setdefault(r.resource_type, []).append(r)
            for key in r.codes:
                out.setdefault(key, []).append(r)
        return {k: tuple(v) for k, v in out.items()}

    def _record(self, resource: Resource, ref: str) -> None:
        kind = resource["resourceType"]
        status = resource.get("status")
        if status is not None and type(status) is not str:
            raise InvalidRequest("must be a code", at(ref, "status"))
        doc_status = resource.get("docStatus") if kind == "DocumentReference" else None
        if status == "entered-in-error" or doc_status == "entered-in-error":
            self.notes.append(f"{ref} set aside: status entered-in-error")
            return
        fields, dates = _RECORD_SHAPE[kind]
        concepts: list[Any] = []
        for name in fields:
            value = resource.get(name)
            for concept in value if type(value) is list else () if value is None else (value,):
                if type(concept) is not dict:
                    raise InvalidRequest("must be a CodeableConcept", at(ref, name))
                concepts.append(concept)
        keys: set[str] = set()
        title = None
        for concept in concepts:
            for system, code in codings(concept):
                if system:
                    keys.add(code_key(system, code))
            if title is None:
                title = _text_of(concept)
        stamp = self._dated(resource, ref, dates)
        attachments: list[Attachment] = []
        if kind == "DocumentReference":
            title = _string(resource.get("description")) or title
            for i, content in enumerate(as_list(resource.get("content"), ref, "content")):
                found = as_object(content, ref, f"content[{i}]").get("attachment")
                if found is not None:
                    attachments.append(_attachment(found, ref, f"content[{i}].attachment"))
        elif kind == "DiagnosticReport":
            forms = as_list(resource.get("presentedForm"), ref, "presentedForm")
            for i, found in enumerate(forms):
                attachments.append(_attachment(found, ref, f"presentedForm[{i}]"))
        elif kind == "ImagingStudy":
            title = _string(resource.get("description")) or title
        if title is None and attachments:
            title = next((a.title for a in attachments if a.title), None)
        when = stamp[0] if stamp[0] is not date.min else None
        record = Record(ref, kind, frozenset(keys), when, status, title, tuple(attachments))
        self._records.append((stamp, record))

    def _dated(self, resource: Resource, ref: str, paths: tuple[str, ...]) -> tuple[date, str]:
        """The first present date of `paths` ("a.b" reads an element of an object)."""
        for path in paths:
            raw: Any = resource
            walked: list[str] = []
            for part in path.split("."):
                if raw is None:
                    break
                raw = as_object(raw, ref, ".".join(walked)).get(part) if walked else raw.get(part)
                walked.append(part)
            if raw is None:
                continue
            parsed = parse_date(raw, ref, path)
            if parsed is None:
                self.notes.append(f"{ref}: date is only a year or month, so it is undated")
                return _UNDATED
            return (parsed, raw)
        return _UNDATED

    def _foreign(self, resource: Resource, ref: str) -> str | None:
        subject = resource.get("subject")
        if subject is None:
            return "no patient identified"
        target = as_object(subject, ref, "subject").get("reference")
        if type(target) is str:
            found = self.index.lookup(target)
            if found is self.patient:
                return None
            if found is None:
                return f"its subject {target} is not in the bundle"
            return f"its subject is {self.index.cite(found)}, not the claim's patient"
        ident = subject.get("identifier")
        if type(ident) is dict and type(ident.get("value")) is str:
            for mine in self.patient.get("identifier") or ():
                if (
                    type(mine) is dict
                    and mine.get("value") == ident["value"]
                    and mine.get("system") == ident.get("system")
                ):
                    return None
        return "no patient identified"

    def _observation(self, obs: Resource, ref: str) -> None:
        # The hot path of intake (a dozen per request): type checks are inlined,
        # the usual shapes (one coding, a float value, a full effectiveDateTime)
        # are read without helper calls, and error paths are built only on failure.
        get = obs.get
        status = get("status")
        if type(status) is not str or status not in _COUNTING_STATUS:
            self.notes.append(f"{ref} set aside: status {_shown(status)}")
            return
        effective = get("effectiveDateTime")
        stamp = None
        if (
            type(effective) is str
            and len(effective) == 10
            and effective[4] == "-"
            and effective[7] == "-"
            and "issued" not in obs
            and "effectivePeriod" not in obs
        ):
            try:
                stamp = (date.fromisoformat(effective), effective)
            except ValueError:
                stamp = None  # _when names the error
        if stamp is None:
            stamp = self._when(obs, ref)
        concept = get("code")
        if type(concept) is not dict or type(coding_list := concept.get("coding")) is not list:
            raise InvalidRequest("must be a CodeableConcept with codings", at(ref, "code"))
        # Every coding is indexed under its code key (core.codes.code_key, inlined):
        # the bare code for LOINC, "SYSTEM-URL|code" for any other system.
        if len(coding_list) == 1:
            coding = coding_list[0]
            if type(coding) is dict and type(code := coding.get("code")) is str:
                system = coding.get("system")
                if system == LOINC:
                    keys = [code]
                else:
                    keys = [f"{system}|{code}"] if type(system) is str and system else []
            else:
                keys = []
        else:
            keys = []
            for coding in coding_list:
                if (
                    type(coding) is dict
                    and type(code := coding.get("code")) is str
                    and type(system := coding.get("system")) is str
                    and system
                ):
                    key = code if system == LOINC else f"{system}|{code}"
                    if key not in keys:
                        keys.append(key)
        value = unit = comparator = None
        quantity = get("valueQuantity")
        if quantity is not None:
            if type(quantity) is not dict:
                raise InvalidRequest("must be a JSON object", at(ref, "valueQuantity"))
            qget = quantity.get
            unit = qget("code") or qget("unit")
            comparator = qget("comparator")
            value = qget("value")
            if value is not None:
                if type(value) is not float:
                    value = number(value, ref, "valueQuantity.value")
                if not 0 <= value < math.inf:
                    raise InvalidRequest("must not be negative", at(ref, "valueQuantity.value"))
                if _BODY_WEIGHT in keys:
                    kg = value * _LB_TO_KG if type(unit) is str and unit in _POUNDS else value
                    if not 0 < kg <= _MAX_KG:
                        raise InvalidRequest(
                            "body weight must be above 0 and at most 700 kg",
                            at(ref, "valueQuantity.value"),
                        )
            if type(unit) is not str:
                unit = None
            if type(comparator) is not str:
                comparator = None
        uln = uln_unit = None
        ranges = get("referenceRange")
        if ranges:
            if type(ranges) is not list:
                raise InvalidRequest("must be a JSON array", at(ref, "referenceRange"))
            first = ranges[0]
            if type(first) is not dict:
                as_object(first, ref, "referenceRange[0]")
            high = first.get("high")
            if type(high) is dict and "value" in high:
                uln = high["value"]
                if type(uln) is not float:
                    uln = number(uln, ref, "referenceRange[0].high.value")
                elif not -math.inf < uln < math.inf:
                    number(uln, ref, "referenceRange[0].high.value")
                uln_unit = high.get("code") or high.get("unit")
                if type(uln_unit) is not str:
                    uln_unit = None
        concept = get("valueCodeableConcept")
        coded = frozenset(codings(concept)) if concept is not None else _NONE
        interpretation = _NONE
        if get("interpretation"):
            interpretation = frozenset(
                code
                for concept in as_list(obs["interpretation"], ref, "interpretation")
                for _, code in codings(concept)
            )
        when = stamp[0] if stamp[0] is not date.min else None
        found_by_code = self._observations
        for code in keys:
            # Positional: the fields' order (ref, code, when, value, unit, coded,
            # interpretation, uln, uln_unit, comparator); keywords cost twice as much.
            result = _new_observation(
                ref, code, when, value, unit, coded, interpretation, uln, uln_unit, comparator
            )
            found = found_by_code.get(code)
            if found is None:
                found_by_code[code] = [(stamp, result)]
            else:
                found.append((stamp, result))

    def _when(self, obs: Resource, ref: str) -> tuple[date, str]:
        """Sort key of the clinically relevant date, (date.min, "") when undated.

        effectiveDateTime, else effectivePeriod.end, else issued; every present
        date must parse, even one a preferred date overrides.
        """
        effective = obs.get("effectiveDateTime")
        chosen: tuple[date, str] | None = None
        partial = False
        period = obs.get("effectivePeriod")
        for path, raw in (
            ("effectiveDateTime", effective),
            ("effectivePeriod.end", period.get("end") if type(period) is dict else None),
            ("issued", obs.get("issued")),
        ):
            if raw is not None:
                parsed = parse_date(raw, ref, path)
                if chosen is None:
                    partial = parsed is None
                    chosen = (parsed or date.min, raw if parsed else "")
        if partial:
            self.notes.append(f"{ref}: date is only a year or month, so the result is undated")
        return chosen or _UNDATED

    def _condition(self, condition: Resource, ref: str) -> None:
        # A refuted or mistaken diagnosis must not count for or against coverage.
        for _, code in codings(condition.get("verificationStatus")):
            if code in _NOT_TRUE:
                self.notes.append(f"{ref} set aside: verificationStatus {code}")
                return
        clinical = codings(condition.get("clinicalStatus"))
        active = not clinical or any(code in _ACTIVE_CLINICAL for _, code in clinical)
        self.conditions.append(Condition(ref, codings(condition.get("code")), active))

    def _medication(self, med: Resource, ref: str) -> None:
        names: list[str] = []
        concept = med.get("medicationCodeableConcept")
        reference = med.get("medicationReference")
        if type(reference) is dict:
            target = reference.get("reference")
            if type(target) is str:
                found = contained(med, target) if target[:1] == "#" else self.index.lookup(target)
                if found is not None:
                    concept = found.get("code")
            if type(reference.get("display")) is str:
                names.append(reference["display"])
        if type(concept) is dict:
            if type(concept.get("text")) is str:
                names.insert(0, concept["text"])
            names.extend(
                coding["display"]
                for coding in concept.get("coding") or ()
                if type(coding) is dict and type(coding.get("display")) is str
            )
        joined = " | ".join(name.lower() for name in names)
        status = med.get("status")
        start, end = self._use(med, ref)
        self.medications.append(
            Medication(
                ref,
                joined,
                status == "active",
                codings(concept),
                start,
                end,
                status if type(status) is str else None,
            )
        )

    def _use(self, med: Resource, ref: str) -> tuple[date | None, date | None]:
        """The documented period of use: start and end, each None when not stated.

        MedicationStatement: effectivePeriod, else effectiveDateTime. MedicationRequest:
        dispenseRequest.validityPeriod, else authoredOn. A date that cannot be read
        leaves the use undated (a note says so) rather than refusing the request: the
        evidence is history, and an unreadable date only weakens it.
        """
        if med.get("resourceType") == "MedicationStatement":
            period, path, single, single_path = (
                med.get("effectivePeriod"),
                "effectivePeriod",
                med.get("effectiveDateTime"),
                "effectiveDateTime",
            )
        else:
            dispense = med.get("dispenseRequest")
            period = dispense.get("validityPeriod") if type(dispense) is dict else None
            path = "dispenseRequest.validityPeriod"
            single, single_path = med.get("authoredOn"), "authoredOn"
        try:
            if type(period) is dict and (period.get("start") or period.get("end")):
                start = period.get("start")
                end = period.get("end")
                return (
                    parse_date(start, ref, f"{path}.start") if start else None,
                    parse_date(end, ref, f"{path}.end") if end else None,
                )
            if single:
                when = parse_date(single, ref, single_path)
                return when, when
        except InvalidRequest:
            self.notes.append(f"{ref}: a date of use cannot be read, so the use is undated")
        return None, None

    def _questionnaire_response(self, qr: Resource, ref: str) -> None:
        status = qr.get("status")
        if type(status) is not str or status not in _QR_STATUS:
            self.notes.append(f"{ref} set aside: status {_shown(status)}")
            return
        authored = qr.get("authored")
        when = parse_date(authored, ref, "authored") if authored is not None else None
        answers: dict[str, Answer] = {}
        _collect(qr.get("item"), ref, answers)
        rank = when or date.min
        for link_id, value in answers.items():
            # Several QuestionnaireResponses: the most recently authored answer
            # wins; on a tie (or no dates) the earlier one in the bundle stays.
            if link_id in self.attestations and rank <= self._attested_on[link_id]:
                continue
            self.attestations[link_id] = _new_attestation(
                ref=f"{ref}#{link_id}", link_id=link_id, value=value, when=when
            )
            self._attested_on[link_id] = rank


# Per resource type: the CodeableConcept elements whose codings index it, and where its
# date is, in order of preference.
_RECORD_SHAPE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Procedure": (("code",), ("performedDateTime", "performedPeriod.end", "performedPeriod.start")),
    "DiagnosticReport": (("code",), ("effectiveDateTime", "effectivePeriod.end", "issued")),
    "ImagingStudy": (("procedureCode",), ("started",)),
    "DocumentReference": (("type", "category"), ("date", "context.period.end")),
}


def _record_stamp(pair: tuple[tuple[date, str], Record]) -> tuple[date, str]:
    return pair[0]


def _string(value: object) -> str | None:
    return value if type(value) is str and value else None


def _text_of(concept: dict[str, Any]) -> str | None:
    text = _string(concept.get("text"))
    if text is not None:
        return text
    for coding in concept.get("coding") or ():
        if type(coding) is dict and (shown := _string(coding.get("display"))) is not None:
            return shown
    return None


def _attachment(raw: Any, ref: str, path: str) -> Attachment:
    a = as_object(raw, ref, path)
    return Attachment(
        _string(a.get("contentType")),
        _string(a.get("url")),
        _string(a.get("title")),
        _string(a.get("data")) is not None,
    )


def _shown(status: object) -> str:
    """A status for a note: a code as sent, never a free-form value."""
    if type(status) is str and status.replace("-", "").isalpha() and len(status) <= 32:
        return status
    return "missing" if status is None else "invalid"


def _stamp(pair: tuple[tuple[date, str], Observation]) -> tuple[date, str]:
    return pair[0]


def _collect(items: Any, ref: str, out: dict[str, Answer]) -> None:
    """First answer of every linkId, depth first through item.item and answer.item."""
    if type(items) is not list:
        items = as_list(items, ref, "item")
    for item in items:
        if type(item) is not dict:
            as_object(item, ref, "item")
        link_id = item.get("linkId")
        answers = item.get("answer")
        if answers:
            if type(answers) is not list:
                raise InvalidRequest("must be a JSON array", at(ref, f"item[{link_id}].answer"))
            for answer in answers:
                if type(answer) is not dict:
                    raise InvalidRequest(
                        "must be a JSON object", at(ref, f"item[{link_id}].answer")
                    )
                # The usual answer, a yes/no, is read inline.
                value = answer.get("valueBoolean")
                if type(value) is not bool:
                    value = _answer_value(answer, ref, link_id)
                if value is not None and type(link_id) is str and link_id not in out:
                    out[link_id] = value
                if "item" in answer:
                    _collect(answer["item"], ref, out)
        if "item" in item:
            _collect(item["item"], ref, out)


def _answer_value(answer: dict[str, Any], ref: str, link_id: object) -> Answer | None:
    if "valueBoolean" in answer:
        value = answer["valueBoolean"]
        if type(value) is bool:
            return value
        problem = "valueBoolean must be JSON true or false"
    elif "valueInteger" in answer:
        value = answer["valueInteger"]
        if type(value) is int:
            return value
        problem = "valueInteger must be a JSON integer"
    elif "valueDecimal" in answer:
        return number(answer["valueDecimal"], ref, f"item[{link_id}].answer.valueDecimal")
    else:
        for key in ("valueString", "valueDate", "valueDateTime"):
            if key in answer:
                value = answer[key]
                if type(value) is str:
                    return value
                problem = f"{key} must be a string"
                break
        else:
            coding = answer.get("valueCoding")
            if type(coding) is dict and type(coding.get("code")) is str:
                return str(coding["code"])
            return None
    raise InvalidRequest(problem, at(ref, f"item[{link_id}].answer"))
