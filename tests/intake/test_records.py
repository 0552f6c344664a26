"""Reading evidence beyond Observations (Procedures, reports, imaging, documents), any system."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from priorauth.core.evaluator import compile_policy
from priorauth.core.facts import Facts
from priorauth.demo.samples import hemgenix_request
from priorauth.errors import InvalidRequest
from priorauth.intake.pas_bundle import read_bundle
from priorauth.policies import parse_policy
from tests.intake.bundles import Bundle, add_entry, observation, patient_ref
from tests.policies.test_policy_files import SHIPPED

LAB = "http://lab.example.org/codes"


def _record(bundle: Bundle, kind: str, id: str, **fields: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": kind, "id": id, "subject": patient_ref(bundle)}
    res.update(fields)
    add_entry(bundle, res)
    return res


def _coded(system: str, code: str, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": system, "code": code}]}
    if text:
        concept["text"] = text
    return concept


# --- any code system ------------------------------------------------------------------


def test_a_result_coded_only_in_a_local_system_is_indexed_under_url_and_code() -> None:
    bundle = hemgenix_request(name="t-local")
    inhibitor = observation(bundle, "3185-6")
    inhibitor["code"] = _coded(LAB, "AAV5-TAB")
    facts = read_bundle(bundle)
    assert "3185-6" not in facts.observations
    (o,) = facts.observations[f"{LAB}|AAV5-TAB"]
    assert o.code == f"{LAB}|AAV5-TAB" and o.value == 0.0


def test_every_coding_is_indexed_and_loinc_stays_bare() -> None:
    bundle = hemgenix_request(name="t-both")
    alt = observation(bundle, "1742-6")
    alt["code"]["coding"].append({"system": LAB, "code": "ALT"})
    alt["code"]["coding"].append({"system": LAB, "code": "ALT"})  # repeated: indexed once
    alt["code"]["coding"].append({"code": "NOSYSTEM"})  # no system: cannot be named
    facts = read_bundle(bundle)
    assert facts.observations["1742-6"][0].ref == facts.observations[f"{LAB}|ALT"][0].ref
    assert len(facts.observations[f"{LAB}|ALT"]) == 1
    assert not [k for k in facts.observations if "NOSYSTEM" in k]


@pytest.mark.parametrize(
    ("systems", "token"),
    [
        ("", f"{LAB}|AAV5-TAB"),  # the URL itself
        (f'systems: {{acme-lab: "{LAB}"}}\n', "acme-lab|AAV5-TAB"),  # a policy's alias
    ],
)
def test_a_check_listing_url_and_code_finds_the_local_result(systems: str, token: str) -> None:
    text = SHIPPED.replace(
        'codes: ["loinc|3185-6"], window_days: 30}',
        f'codes: ["{token}"], window_days: 30}}',
    ).replace("codesets_from:", systems + "codesets_from:", 1)
    assert token in text
    policy = compile_policy(parse_policy(text))
    bundle = hemgenix_request(name="t-local-check")
    observation(bundle, "3185-6")["code"] = _coded(LAB, "AAV5-TAB")
    found = policy.evaluate(read_bundle(bundle)).findings["F.i"]
    assert found.status == "met", found.reason
    assert found.evidence[0].ref.startswith("Observation/")  # type: ignore[union-attr]
    # The LOINC check of the same criterion in the shipped policy no longer sees it.
    shipped = compile_policy(parse_policy(SHIPPED))
    assert shipped.evaluate(read_bundle(bundle)).findings["F.i"].status == "unknown"


# --- Procedure, DiagnosticReport, ImagingStudy, DocumentReference ------------------------


def test_records_are_read_with_codes_dates_titles_and_attachments() -> None:
    bundle = hemgenix_request(name="t-records")
    _record(
        bundle,
        "Procedure",
        "p1",
        status="completed",
        code=_coded("http://www.ama-assn.org/go/cpt", "76705", "Abdominal ultrasound"),
        performedPeriod={"start": "2026-03-01T09:00:00Z", "end": "2026-03-02"},
    )
    _record(
        bundle,
        "DiagnosticReport",
        "r1",
        status="final",
        code=_coded("http://loinc.org", "24558-9"),
        effectiveDateTime="2026-03-03",
        presentedForm=[{"contentType": "application/pdf", "url": "Binary/r1", "title": "US"}],
    )
    _record(
        bundle,
        "ImagingStudy",
        "i1",
        status="available",
        started="2026-03-04T10:00:00Z",
        description="Liver US",
        procedureCode=[_coded("http://snomed.info/sct", "45036003")],
    )
    _record(
        bundle,
        "DocumentReference",
        "d1",
        status="current",
        type=_coded("http://loinc.org", "11506-3", "Progress note"),
        category=[_coded(LAB, "notes")],
        date="2026-03-05T08:00:00Z",
        content=[{"attachment": {"contentType": "text/plain", "data": "aGk=", "title": "Note"}}],
    )
    facts = read_bundle(bundle)
    (p,) = facts.records["http://www.ama-assn.org/go/cpt|76705"]
    assert (p.resource_type, p.status, p.when, p.title) == (
        "Procedure",
        "completed",
        date(2026, 3, 2),
        "Abdominal ultrasound",
    )
    (r,) = facts.records["24558-9"]  # LOINC: the bare code, as for Observations
    assert r.when == date(2026, 3, 3) and r.attachments[0].url == "Binary/r1"
    (i,) = facts.records["http://snomed.info/sct|45036003"]
    assert i.title == "Liver US" and i.when == date(2026, 3, 4)
    (d,) = facts.records["11506-3"]
    assert facts.records[f"{LAB}|notes"] == (d,)
    assert d.title == "Progress note"  # no description: the type's text
    assert d.attachments[0].has_data and d.attachments[0].usable
    assert [x.ref for x in facts.records["DocumentReference"]] == [d.ref]
    assert [x.resource_type for x in facts.records["Procedure"]] == ["Procedure"]


def test_records_of_one_code_are_most_recent_first_undated_last() -> None:
    bundle = hemgenix_request(name="t-record-order")
    for id, when in (("a", "2025-01-01"), ("b", None), ("c", "2026-01-01")):
        fields: dict[str, Any] = {"status": "completed", "code": _coded(LAB, "X")}
        if when:
            fields["performedDateTime"] = when
        _record(bundle, "Procedure", id, **fields)
    facts = read_bundle(bundle)
    assert [r.ref.split("/")[-1] for r in facts.records[f"{LAB}|X"]] == ["c", "a", "b"]


def test_records_in_error_or_about_someone_else_are_set_aside() -> None:
    bundle = hemgenix_request(name="t-record-aside")
    _record(bundle, "Procedure", "err", status="entered-in-error", code=_coded(LAB, "X"))
    _record(bundle, "DocumentReference", "docerr", status="current", docStatus="entered-in-error")
    other = {"resourceType": "Patient", "id": "someone-else", "gender": "male"}
    add_entry(bundle, other)
    foreign = _record(bundle, "DiagnosticReport", "foreign", status="final", code=_coded(LAB, "X"))
    foreign["subject"] = {"reference": "urn:uuid:someone-else"}
    nobody = _record(bundle, "ImagingStudy", "nobody", status="available")
    del nobody["subject"]
    kept = _record(bundle, "Procedure", "draft", status="in-progress", code=_coded(LAB, "X"))
    facts = read_bundle(bundle)
    # Another status is kept with the record: the checks say which statuses count.
    assert [(r.ref, r.status) for r in facts.records[f"{LAB}|X"]] == [
        (f"Procedure/{kept['id']}", "in-progress")
    ]
    assert "DocumentReference" not in facts.records and "ImagingStudy" not in facts.records
    notes = "\n".join(facts.notes)
    assert notes.count("set aside: status entered-in-error") == 2
    assert "not the claim's patient" in notes
    assert "set aside: no patient identified" in notes


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", 7),
        ("performedDateTime", "yesterday"),
        ("content", {"attachment": {}}),
        ("code", "76705"),
    ],
)
def test_malformed_records_are_invalid_requests(field: str, value: Any) -> None:
    bundle = hemgenix_request(name="t-record-bad")
    kind = "DocumentReference" if field == "content" else "Procedure"
    fields: dict[str, Any] = {"status": "completed", field: value}
    _record(bundle, kind, "bad", **fields)
    with pytest.raises(InvalidRequest):
        read_bundle(bundle)


def test_a_bundle_without_records_has_none() -> None:
    assert read_bundle(hemgenix_request(name="t-none")).records == {}


# --- robustness: any change to a record reads or is refused, never crashes --------------


def _with_records() -> Bundle:
    bundle = hemgenix_request(name="t-records-fuzz")
    _record(
        bundle,
        "Procedure",
        "p",
        status="completed",
        code=_coded("http://www.ama-assn.org/go/cpt", "76705", "US"),
        performedPeriod={"start": "2026-03-01", "end": "2026-03-02"},
    )
    _record(
        bundle,
        "DiagnosticReport",
        "r",
        status="final",
        code=_coded("http://loinc.org", "24558-9"),
        effectiveDateTime="2026-03-03",
        presentedForm=[{"contentType": "application/pdf", "url": "Binary/r"}],
    )
    _record(
        bundle,
        "ImagingStudy",
        "i",
        status="available",
        started="2026-03-04",
        procedureCode=[_coded(LAB, "LIV-US")],
    )
    _record(
        bundle,
        "DocumentReference",
        "d",
        status="current",
        type=_coded("http://loinc.org", "11506-3"),
        context={"period": {"end": "2026-03-05"}},
        content=[{"attachment": {"contentType": "text/plain", "data": "aGk=", "title": "N"}}],
    )
    return bundle


_TEMPLATE = _with_records()
_FIRST_RECORD = next(
    i for i, e in enumerate(_TEMPLATE["entry"]) if e["resource"]["resourceType"] == "Procedure"
)


def _paths(node: Any, prefix: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_paths(value, (*prefix, i)))
    return out


_PATHS = [
    p
    for i in range(_FIRST_RECORD, len(_TEMPLATE["entry"]))
    for p in _paths(_TEMPLATE["entry"][i]["resource"], ("entry", i, "resource"))[1:]
    if p[3] not in ("resourceType", "id")
]
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-10, 10**6)
    | st.text(max_size=12)
    | st.sampled_from(["2026-13-01", "2026", "entered-in-error", "current", ""]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(derandomize=True)
@given(st.lists(st.tuples(st.integers(0, len(_PATHS) - 1), _JSON), min_size=1, max_size=3))
def test_any_record_mutation_reads_or_raises_invalid_request(
    changes: list[tuple[int, Any]],
) -> None:
    bundle = copy.deepcopy(_TEMPLATE)
    for index, value in changes:
        *parents, last = _PATHS[index]
        node: Any = bundle
        try:
            for part in parents:
                node = node[part]
            if isinstance(node, dict) and not isinstance(last, str):
                continue  # an earlier change made a list an object: not JSON's keys
            node[last] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this path
    result: Facts | InvalidRequest
    try:
        result = read_bundle(orjson.dumps(bundle))
    except InvalidRequest as error:
        result = error
    if isinstance(result, InvalidRequest):
        assert result.message
        assert "\n" not in str(result)
    else:
        for records in result.records.values():
            assert all(r.ref.split("/")[0] == r.resource_type for r in records)


def test_the_record_template_reads() -> None:
    assert len(read_bundle(_with_records()).records["DocumentReference"]) == 1
