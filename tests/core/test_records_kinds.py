"""The records kinds (lab_series, clinical_record, document) and optional windows, at the edges."""

from __future__ import annotations

from functools import cache

import pytest

from priorauth.core.evaluator import CompiledPolicy, compile_policy
from priorauth.core.facts import Attachment, Facts, Observation, Record
from priorauth.core.result import Finding
from priorauth.errors import PolicyInvalid
from priorauth.policies import parse_policy
from priorauth.report import evidence_to_dict
from tests.core.factories import NEGATIVE, POSITIVE, facts, obs, record, with_records
from tests.policies.test_policy_files import SHIPPED

LAB = "http://lab.example.org/codes"
CPT = "http://www.ama-assn.org/go/cpt"
BETHESDA = '{canonical: "[beth\'U]/mL", factors: {"[beth\'U]/mL": 1, "BU": 1}}'


@cache
def with_z(check: str, systems: str = "") -> CompiledPolicy:
    """The shipped policy with one more criterion Z holding `check` (YAML flow mapping)."""
    z = (
        "  - id: Z\n    text: Criterion under test.\n    evidence: documentation\n"
        f"    check: {check}\n    request: Z's evidence.\n    question: Is Z so?\n"
    )
    text = SHIPPED.replace("\nexclusions:\n", "\n" + z + "\nexclusions:\n", 1)
    text = text.replace("codesets_from:", systems + "codesets_from:", 1)
    return compile_policy(parse_policy(text))


def z(check: str, f: Facts, systems: str = "") -> Finding:
    found = with_z(check, systems).evaluate(f).findings["Z"]
    assert found.reason, "Z has no reason"
    return found


def results(*rs: Observation) -> Facts:
    return facts(observations=[*rs])


# --- codes that name their system -------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "systems", "key", "expected"),
    [
        ('["3185-6"]', "", "3185-6", "met"),  # bare: LOINC
        ('["loinc|3185-6"]', "", "3185-6", "met"),
        ('["http://loinc.org|3185-6"]', "", "3185-6", "met"),
        (f'["{LAB}|AAV5-TAB"]', "", f"{LAB}|AAV5-TAB", "met"),
        ('["acme|AAV5-TAB"]', f'systems: {{acme: "{LAB}"}}\n', f"{LAB}|AAV5-TAB", "met"),
        ('["snomed|AAV5-TAB"]', "", f"{LAB}|AAV5-TAB", "unknown"),  # another system's code
        (f'["{LAB}|AAV5-TAB"]', "", "AAV5-TAB", "unknown"),  # a bare key is LOINC's
    ],
)
def test_a_code_is_found_under_its_system(
    codes: str, systems: str, key: str, expected: str
) -> None:
    check = f"{{kind: lab_present, label: Antibody, codes: {codes}, window_days: 30}}"
    assert z(check, results(obs(key, 1.0, "1")), systems).status == expected


def test_an_unknown_alias_does_not_load() -> None:
    with pytest.raises(PolicyInvalid, match="unknown code system 'acme'"):
        with_z('{kind: lab_present, label: Antibody, codes: ["acme|X"], window_days: 30}')


def test_a_sentence_names_codes_by_system() -> None:
    check = f'{{kind: lab_present, label: Antibody, codes: ["loinc|3185-6", "{LAB}|T"]}}'
    reason = z(check, results()).reason
    assert reason == f"No Antibody (LOINC 3185-6; {LAB}|T) of any date."


# --- optional windows -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "days", "expected"),
    [
        ("30", 30, "met"),
        ("30", 31, "unknown"),
        ("null", 31, "met"),
        ("null", 4000, "met"),
        ("null", None, "met"),  # undated: no window to be outside of
        ("null", -1, "unknown"),  # after the review date
    ],
)
def test_lab_present_window_is_optional(window: str, days: int | None, expected: str) -> None:
    check = f'{{kind: lab_present, label: Titer, codes: ["loinc|3185-6"], window_days: {window}}}'
    assert z(check, results(obs("3185-6", 0.1, "BU", days=days))).status == expected


@pytest.mark.parametrize(
    ("window", "result", "expected"),
    [
        ("30", obs("3185-6", 0.1, "BU", days=40), "unknown"),
        ("null", obs("3185-6", 0.1, "BU", days=4000), "met"),
        ("null", obs("3185-6", 0.7, "BU", days=4000), "not_met"),
        ("null", obs("3185-6", coded=NEGATIVE, days=4000), "met"),
        ("null", obs("3185-6", 0.1, "BU", days=-3), "unknown"),
    ],
)
def test_lab_negative_window_is_optional(window: str, result: Observation, expected: str) -> None:
    check = (
        f'{{kind: lab_negative, label: Titer, codes: ["loinc|3185-6"], units: {BETHESDA}, '
        f"cutoff: 0.6, window_days: {window}}}"
    )
    found = z(check, results(result))
    assert found.status == expected
    if expected == "unknown" and window == "null":
        assert found.reason == "No Titer result of any date."


# --- lab_series -------------------------------------------------------------------------

SERIES = (
    f'{{kind: lab_series, label: Inhibitor, codes: ["loinc|3204-8"], units: {BETHESDA}, '
    "cutoff: 0.6, count: 2, min_gap_days: 7, window_days: 365}"
)


def neg(days: int | None, value: float = 0.2, unit: str = "BU") -> Observation:
    return obs("3204-8", value, unit, days=days)


@pytest.mark.parametrize(
    ("series", "expected", "in_reason"),
    [
        ([neg(9), neg(16)], "met", "are negative"),  # exactly 7 days apart
        ([neg(9), neg(15)], "unknown", "6 days apart"),  # 6: ask for another test
        ([neg(9)], "unknown", "only 1 found"),  # count 2, one result
        ([], "unknown", "none found"),
        ([neg(9), neg(16, 0.6)], "not_met", "positive"),  # at the cutoff: positive
        ([neg(9, 0.8), neg(16)], "not_met", "positive"),  # the latest is positive
        ([neg(9), neg(16), neg(30, 5.0)], "met", "are negative"),  # an older positive: not latest
        ([neg(9), neg(16, unit="mg")], "unknown", "cannot be read"),  # units unreadable
        ([neg(9), neg(366)], "unknown", "only 1 found"),  # outside the 365-day window
        ([neg(9), neg(365)], "met", "are negative"),  # on the window's first day
        ([neg(9), neg(None), neg(16)], "met", "are negative"),  # undated: not in a series
        ([neg(9), neg(-10)], "unknown", "only 1 found"),  # after the review date
        ([neg(9), obs("3204-8", coded=NEGATIVE, days=20)], "met", "are negative"),
        ([neg(9), obs("3204-8", coded=POSITIVE, days=20)], "not_met", "positive"),
    ],
)
def test_lab_series(series: list[Observation], expected: str, in_reason: str) -> None:
    found = z(SERIES, results(*series))
    assert found.status == expected, found.reason
    assert in_reason in found.reason
    # The evidence is the latest results judged, each shown with its date.
    shown = [evidence_to_dict(e) for e in found.evidence]
    assert all(e["resource"].startswith("Observation/") and "date" in e for e in shown)


def test_lab_series_count_one_and_no_window() -> None:
    check = SERIES.replace("count: 2", "count: 1").replace("window_days: 365", "window_days: null")
    one = z(check, results(neg(4000)))
    assert one.status == "met"
    assert one.reason.startswith("The latest result of Inhibitor of any date is negative")
    assert z(check, results(neg(4000, 0.9), neg(5000))).status == "not_met"


# --- clinical_record ------------------------------------------------------------------

RECORD = (
    "{kind: clinical_record, label: hepatic ultrasound, "
    f'codes: ["loinc|24558-9", "cpt|76705", "{LAB}|LIV-US"], window_days: 183}}'
)
ATTESTED = RECORD.replace("}", ", attestation: liver-imaging-done}")


def judge_records(check: str, *records: Record, answer: bool | None = None) -> Finding:
    answers = {} if answer is None else {"liver-imaging-done": answer}
    return z(check, with_records(facts(answers=answers), *records))


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([record("DiagnosticReport", "24558-9", days=183)], "met"),
        ([record("DiagnosticReport", "24558-9", days=184)], "unknown"),
        ([record("Procedure", f"{CPT}|76705", days=9)], "met"),
        ([record("ImagingStudy", f"{LAB}|LIV-US", days=9)], "met"),
        ([record("Procedure", f"{CPT}|76705", status="in-progress")], "unknown"),
        ([record("DiagnosticReport", "24558-9", status="preliminary")], "unknown"),
        ([record("DiagnosticReport", "24558-9", status="amended")], "met"),
        ([record("ImagingStudy", f"{LAB}|LIV-US", status="registered")], "unknown"),
        ([record("Procedure", f"{CPT}|99999")], "unknown"),  # another code
        ([record("DiagnosticReport", "24558-9", days=None)], "unknown"),  # undated, windowed
        ([record("DiagnosticReport", "24558-9", days=-2)], "unknown"),  # after the review date
        ([record("DocumentReference", "24558-9")], "unknown"),  # not a listed resource type
        ([], "unknown"),  # absence alone is never not_met
        (
            [
                record("Procedure", f"{CPT}|76705", status="in-progress", days=2),
                record("DiagnosticReport", "24558-9", days=100),
            ],
            "met",
        ),
    ],
)
def test_clinical_record(records: list[Record], expected: str) -> None:
    found = judge_records(RECORD, *records)
    assert found.status == expected, found.reason
    if expected == "met":
        (e,) = found.evidence
        assert isinstance(e, Record)
        shown = evidence_to_dict(e)
        assert shown["resource"] == e.ref
        assert shown["date"] and shown["record"] in (
            "Procedure",
            "DiagnosticReport",
            "ImagingStudy",
        )


@pytest.mark.parametrize(
    ("records", "answer", "expected"),
    [
        ([], None, "unknown"),
        ([], True, "met"),
        ([], False, "not_met"),  # only the prescriber's "no" makes absence not_met
        ([record("DiagnosticReport", "24558-9")], False, "met"),  # the record decides first
        ([record("DiagnosticReport", "24558-9", days=300)], True, "met"),
    ],
)
def test_clinical_record_attestation_stands_in(
    records: list[Record], answer: bool | None, expected: str
) -> None:
    assert judge_records(ATTESTED, *records, answer=answer).status == expected


def test_clinical_record_resources_limit_the_types() -> None:
    only = RECORD.replace("codes:", "resources: [Procedure], codes:")
    assert judge_records(only, record("DiagnosticReport", "24558-9")).status == "unknown"
    assert judge_records(only, record("Procedure", "24558-9")).status == "met"


def test_clinical_record_reasons_say_what_is_missing() -> None:
    old = judge_records(RECORD, record("DiagnosticReport", "24558-9", days=300, title="US"))
    assert "the latest is DiagnosticReport/" in old.reason and "(US)" in old.reason
    draft = judge_records(RECORD, record("Procedure", f"{CPT}|76705", status="in-progress"))
    assert "has status in-progress" in draft.reason
    none = judge_records(RECORD)
    assert none.reason == (
        f"No current hepatic ultrasound (LOINC 24558-9; CPT 76705; {LAB}|LIV-US) within 183 days."
    )


# --- document ---------------------------------------------------------------------------

PDF = Attachment("application/pdf", "Binary/notes", "Chart notes")
DOC = '{kind: document, label: chart notes, codes: ["loinc|11506-3"]}'
ANY_DOC = "{kind: document, label: chart notes, window_days: 30}"


@pytest.mark.parametrize(
    ("check", "records", "expected"),
    [
        (DOC, [record("DocumentReference", "11506-3", attachments=(PDF,))], "met"),
        (DOC, [record("DocumentReference", "11506-3", days=5000, attachments=(PDF,))], "met"),
        (DOC, [record("DocumentReference", "11506-3")], "unknown"),  # no attachment
        (
            DOC,
            [
                record(
                    "DocumentReference",
                    "11506-3",
                    attachments=(Attachment("text/plain", None, "t"),),
                )
            ],
            "unknown",  # a description of content, not the content
        ),
        (
            DOC,
            [
                record(
                    "DocumentReference",
                    "11506-3",
                    attachments=(Attachment(None, None, None, True),),
                )
            ],
            "met",  # inline data
        ),
        (
            DOC,
            [record("DocumentReference", "11506-3", status="superseded", attachments=(PDF,))],
            "unknown",
        ),
        (DOC, [record("DocumentReference", "18842-5", attachments=(PDF,))], "unknown"),
        (DOC, [record("DiagnosticReport", "11506-3", attachments=(PDF,))], "unknown"),
        (ANY_DOC, [record("DocumentReference", attachments=(PDF,), days=30)], "met"),
        (ANY_DOC, [record("DocumentReference", attachments=(PDF,), days=31)], "unknown"),
        (ANY_DOC, [record("DocumentReference", "18842-5", attachments=(PDF,))], "met"),
        (ANY_DOC, [], "unknown"),
    ],
)
def test_document(check: str, records: list[Record], expected: str) -> None:
    found = z(check, with_records(facts(), *records))
    assert found.status == expected, found.reason


def test_document_evidence_lists_the_attachment() -> None:
    doc = record("DocumentReference", "11506-3", title="Progress note", attachments=(PDF,))
    found = z(DOC, with_records(facts(), doc))
    assert found.reason == (
        f"chart notes: {doc.ref} (Progress note) on {doc.when}, of any date, "
        "attached: Chart notes (application/pdf)."
    )
    (shown,) = [evidence_to_dict(e) for e in found.evidence]
    assert shown == {
        "resource": doc.ref,
        "record": "DocumentReference",
        "codes": ["http://loinc.org|11506-3"],
        "status": "current",
        "value": "Progress note",
        "date": doc.when.isoformat() if doc.when else None,
        "attachments": [
            {
                "title": "Chart notes",
                "content_type": "application/pdf",
                "url": "Binary/notes",
                "inline": False,
            }
        ],
    }


def test_document_attestation() -> None:
    check = DOC.replace("}", ", attestation: notes-on-file}")
    assert z(check, facts(answers={"notes-on-file": True})).status == "met"
    assert z(check, facts(answers={"notes-on-file": False})).status == "not_met"
    assert z(check, facts()).status == "unknown"


@pytest.mark.parametrize(
    ("result", "expected", "in_reason"),
    [
        (obs(f"{LAB}|AAV5-TAB", coded=NEGATIVE), "met", "is negative"),
        (obs(f"{LAB}|AAV5-TAB", coded=POSITIVE), "not_met", "is positive"),
        # A number, with no cutoff in the policy: neither, for a person to read.
        (obs(f"{LAB}|AAV5-TAB", 0.2, "{index}"), "unknown", "neither negative nor positive"),
    ],
)
def test_lab_negative_of_a_qualitative_test_needs_no_units(
    result: Observation, expected: str, in_reason: str
) -> None:
    check = f'{{kind: lab_negative, label: AAV5 antibody, codes: ["{LAB}|AAV5-TAB"]}}'
    found = z(check, results(result))
    assert (found.status, in_reason in found.reason) == (expected, True), found.reason


def test_lab_negative_units_and_cutoff_go_together() -> None:
    with pytest.raises(PolicyInvalid, match="units and cutoff together"):
        with_z('{kind: lab_negative, label: T, codes: ["loinc|3185-6"], cutoff: 0.6}')
