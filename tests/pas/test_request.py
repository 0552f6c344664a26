"""Reading the keys of PAS request and inquiry Bundles (pas.request)."""

from __future__ import annotations

import contextlib
import copy
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from priorauth.errors import InvalidRequest
from priorauth.pas.records import Identifier
from priorauth.pas.request import CERTIFICATION_TYPE, NPI, read_inquiry, read_keys
from tests.conftest import shared_dir

HEMGENIX_MEMBERS = {
    "approve.json": "MC9F4989BF",
    "approve-modified.json": "MC8DB2D4ED",
    "deny.json": "MB722A3542",
    "pend.json": "M3DD18AC2B",
}
HEMGENIX_NPI = Identifier(NPI, "1234567893")


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _hemgenix(name: str = "approve.json") -> dict[str, Any]:
    data: dict[str, Any] = _load(shared_dir("examples", "hemgenix") / name)
    return data


def _claim(bundle: dict[str, Any]) -> dict[str, Any]:
    claim: dict[str, Any] = bundle["entry"][0]["resource"]
    return claim


def _entry(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(e for e in bundle["entry"] if e["resource"]["resourceType"] == kind)


def _fixture_bodies() -> list[tuple[str, Any]]:
    folder = shared_dir("fixtures", "davinci-pas")
    bodies: list[tuple[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        data = _load(path)
        bodies.append((path.name, data))
        if isinstance(data, list):  # the must_support files hold a list of bundles
            bodies.extend((f"{path.name}[{n}]", b) for n, b in enumerate(data))
    return bodies


# --- the Da Vinci PAS fixtures --------------------------------------------------------


def test_every_fixture_reads_or_is_refused_as_invalid_request() -> None:
    read, refused = [], []
    for name, body in _fixture_bodies():
        for reader in (read_keys, read_inquiry):
            try:
                reader(body)
                read.append(name)
            except InvalidRequest:
                refused.append(name)
    assert "approval_pa_submit_request.json" in read
    assert "pa_inquire_request.json" in read
    assert "nonconformant_pas_bundle_v110.json" in refused
    assert "response_pended.json" in refused  # a response is not a request
    assert "must_support_pa_submit_request.json" in refused  # a JSON array, not a Bundle
    assert "must_support_pa_submit_request.json[0]" in read


def test_pas_submit_fixture_keys() -> None:
    keys = read_keys(
        _load(shared_dir("fixtures", "davinci-pas") / "approval_pa_submit_request.json")
    )
    assert keys.claim_identifier == Identifier(
        "http://davinci-pas.org/PATIENT_EVENT_TRACE_NUMBER", "111099"
    )
    assert keys.submitter == Identifier(NPI, "8189991234")  # UMOExample's NPI, not its EIN
    assert keys.member_id == "12345678901"
    assert keys.service_codes == ("3",)
    assert keys.certification == "I"  # carried on Claim.item in this fixture
    assert keys.related is None
    assert keys.expedited is False


@pytest.mark.parametrize(
    "name", ["pa_inquire_request.json", "conformant_pas_inquire_bundle_v110.json"]
)
def test_pas_inquiry_fixture_keys(name: str) -> None:
    keys = read_inquiry(_load(shared_dir("fixtures", "davinci-pas") / name))
    assert keys.submitter == Identifier(NPI, "8189991234")
    assert keys.member_id == "12345678901"
    assert keys.claim_identifier is not None
    assert keys.claim_identifier.value == "111099"


def test_must_support_inquiry_lists_every_item_code() -> None:
    bundles = _load(shared_dir("fixtures", "davinci-pas") / "must_support_pa_inquire_request.json")
    keys = read_inquiry(bundles[0])
    assert keys.service_codes == ("G0154", "B4185")


def test_refused_fixtures_say_why() -> None:
    folder = shared_dir("fixtures", "davinci-pas")
    with pytest.raises(InvalidRequest, match="no entry"):
        read_keys(_load(folder / "nonconformant_pas_bundle_v110.json"))
    with pytest.raises(InvalidRequest, match="must be a Claim"):
        read_keys(_load(folder / "response_denial.json"))
    with pytest.raises(InvalidRequest, match="not a JSON object"):
        read_keys(_load(folder / "must_support_pa_submit_request.json"))


# --- the Hemgenix examples -----------------------------------------------------------


@pytest.mark.parametrize(("name", "member"), sorted(HEMGENIX_MEMBERS.items()))
def test_hemgenix_examples(name: str, member: str) -> None:
    keys = read_keys(_hemgenix(name))
    assert keys.member_id == member
    assert keys.submitter == HEMGENIX_NPI
    assert keys.service_codes == ("J1411",)
    assert keys.claim_identifier.system == "http://example.org/provider/claim-trace"
    assert keys.certification == "I"
    assert keys.related is None
    assert keys.expedited is False


def test_certification_type_related_and_priority_are_read() -> None:
    bundle = _hemgenix()
    claim = _claim(bundle)
    claim["extension"] = [
        {
            "url": CERTIFICATION_TYPE,
            "valueCodeableConcept": {
                "coding": [{"system": "https://codesystem.x12.org/005010/1322", "code": "R"}]
            },
        }
    ]
    claim["related"] = [
        {
            "claim": {
                "identifier": {"system": "http://example.org/provider/claim-trace", "value": "PA-1"}
            }
        }
    ]
    claim["priority"] = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "stat"}
        ]
    }
    keys = read_keys(bundle)
    assert keys.certification == "R"
    assert keys.related == Identifier("http://example.org/provider/claim-trace", "PA-1")
    assert keys.expedited is True


def test_related_by_reference_to_a_claim_in_the_bundle() -> None:
    bundle = _hemgenix()
    earlier = {
        "resourceType": "Claim",
        "id": "earlier",
        "identifier": [{"system": "urn:x", "value": "PA-0"}],
    }
    bundle["entry"].append({"fullUrl": "urn:uuid:earlier", "resource": earlier})
    _claim(bundle)["related"] = [{"claim": {"reference": "urn:uuid:earlier"}}]
    assert read_keys(bundle).related == Identifier("urn:x", "PA-0")


def test_provider_practitioner_role_answers_with_its_organization() -> None:
    bundle = _hemgenix()
    role = _entry(bundle, "PractitionerRole")
    _claim(bundle)["provider"] = {"reference": role["fullUrl"]}
    assert read_keys(bundle).submitter == HEMGENIX_NPI


def test_provider_practitioner_answers_with_its_npi() -> None:
    bundle = _hemgenix()
    practitioner = _entry(bundle, "Practitioner")
    _claim(bundle)["provider"] = {"reference": practitioner["fullUrl"]}
    assert read_keys(bundle).submitter == Identifier(NPI, "1588667638")


def test_provider_by_relative_reference_and_identifier_only() -> None:
    bundle = _hemgenix()
    org = _entry(bundle, "Organization")  # the insurer has no identifier; the provider does
    provider = next(
        e
        for e in bundle["entry"]
        if e["resource"].get("identifier") and e["resource"]["resourceType"] == "Organization"
    )
    _claim(bundle)["provider"] = {"reference": f"Organization/{provider['resource']['id']}"}
    assert read_keys(bundle).submitter == HEMGENIX_NPI
    _claim(bundle)["provider"] = {"identifier": {"system": NPI, "value": "1999999984"}}
    assert read_keys(bundle).submitter == Identifier(NPI, "1999999984")
    _claim(bundle)["provider"] = {"reference": org["fullUrl"]}  # an Organization without identifier
    with pytest.raises(InvalidRequest, match=r"Claim\.provider|provider"):
        read_keys(bundle)


def test_member_id_fallbacks() -> None:
    bundle = _hemgenix()
    del _claim(bundle)["insurance"]
    assert read_keys(bundle).member_id == "MC9F4989BF"  # the Patient's MB identifier
    patient = _entry(bundle, "Patient")["resource"]
    patient["identifier"] = [{"system": "urn:mrn", "value": "MRN-1"}]
    assert read_keys(bundle).member_id == "MRN-1"
    del patient["identifier"]
    assert read_keys(bundle).member_id is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: ["not", "a", "bundle"], "not a JSON object"),
        (lambda b: {**b, "resourceType": "Parameters"}, "resourceType must be Bundle"),
        (lambda b: {**b, "entry": []}, "no entry"),
        (lambda b: {**b, "entry": b["entry"][1:]}, "must be a Claim"),
        (lambda b: _without(b, "identifier"), "no identifier"),
        (lambda b: _without(b, "provider"), "provider"),
        (lambda b: _with(b, "provider", {"reference": "Organization/elsewhere"}), "provider"),
        (lambda b: _with(b, "use", "claim"), "preauthorization"),
    ],
)
def test_not_a_pas_request(mutate: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        read_keys(mutate(_hemgenix()))


def _without(bundle: dict[str, Any], key: str) -> dict[str, Any]:
    del _claim(bundle)[key]
    return bundle


def _with(bundle: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    _claim(bundle)[key] = value
    return bundle


def test_inquiry_needs_a_claim_identifier_or_a_member() -> None:
    bundle = _hemgenix()
    del _claim(bundle)["identifier"]
    keys = read_inquiry(bundle)
    assert keys.claim_identifier is None
    assert keys.member_id == "MC9F4989BF"
    del _claim(bundle)["insurance"]
    del _entry(bundle, "Patient")["resource"]["identifier"]
    with pytest.raises(InvalidRequest, match="neither"):
        read_inquiry(bundle)


# --- any JSON value: InvalidRequest or a result, never another exception --------------

_KEYS = [
    "resourceType", "entry", "resource", "fullUrl", "id", "identifier", "system", "value",
    "provider", "reference", "insurance", "coverage", "subscriberId", "patient", "item",
    "productOrService", "coding", "code", "extension", "url", "valueCodeableConcept",
    "related", "claim", "priority", "type", "organization", "practitioner", "use",
    "contained", "sequence",
]  # fmt: skip
_WORDS = [
    "Bundle", "Claim", "Coverage", "Patient", "Organization", "PractitionerRole",
    "Practitioner", "preauthorization", "urgent", "MB", NPI, CERTIFICATION_TYPE, "a",
    "Organization/a", "Patient/a", "Coverage/a", "Claim/a", "urn:uuid:a", "#a", "",
]  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(_WORDS)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=4), inner, max_size=6)
    ),
    max_leaves=40,
)


def _either(body: Any) -> None:
    for reader in (read_keys, read_inquiry):
        with contextlib.suppress(InvalidRequest):
            reader(body)


@given(_JSON)
def test_arbitrary_json_never_raises_anything_but_invalid_request(body: Any) -> None:
    _either(body)


@given(_JSON)
def test_arbitrary_claim_never_raises_anything_but_invalid_request(claim: Any) -> None:
    _either({"resourceType": "Bundle", "entry": [{"resource": claim}]})


_PATHS = [
    ("identifier",), ("identifier", 0), ("identifier", 0, "value"), ("provider",),
    ("provider", "reference"), ("insurance",), ("insurance", 0), ("insurance", 0, "coverage"),
    ("patient",), ("item",), ("item", 0), ("item", 0, "productOrService"),
    ("item", 0, "productOrService", "coding"), ("priority",), ("priority", "coding"),
    ("extension",), ("related",), ("use",),
]  # fmt: skip


@functools.cache
def _approve() -> dict[str, Any]:
    return _hemgenix()


@given(st.sampled_from(_PATHS), _JSON, st.sampled_from(["claim", "bundle", "entry", "party"]))
def test_a_real_request_with_any_value_anywhere(
    path: tuple[Any, ...], value: Any, where: str
) -> None:
    bundle = copy.deepcopy(_approve())
    others = len(bundle["entry"]) - 1
    if where == "bundle":
        bundle[str(path[0])] = value
    elif where == "entry":
        bundle["entry"][1 + len(path) % others] = value
    elif where == "party":
        bundle["entry"][1 + len(path) % 6]["resource"][str(path[-1])] = value
    else:
        node: Any = _claim(bundle)
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    _either(bundle)
