"""The profile checker itself, on small hand-written profiles and resources: for each rule a
violation it must catch, and valid resources it must pass; then every IG example passes."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conformance.profiles.conftest import TARGET
from tests.conformance.profiles.validator import Packages, igs, validate
from tests.conftest import shared_dir

Json = dict[str, Any]
URL = "http://example.org/StructureDefinition/"
EXT = URL + "ext-flag"
OBS = URL + "obs"


def el(
    eid: str, lo: int = 0, hi: str = "*", *types: str | Json, base: str | None = None, **kw: Any
) -> Json:
    """An ElementDefinition: id, min, max, types (a code, or a full type), base max."""
    path = re.sub(r":[^.]+", "", eid)
    out: Json = {"id": eid, "path": path, "min": lo, "max": hi, "base": {"max": base or hi}}
    if types:
        out["type"] = [t if isinstance(t, dict) else {"code": t} for t in types]
    out.update(kw)
    return out


def sd(url: str, kind: str, typ: str, elements: list[Json], snapshot: bool = True) -> Json:
    out: Json = {
        "resourceType": "StructureDefinition",
        "url": url,
        "kind": kind,
        "type": typ,
        "derivation": "constraint",
    }
    out["snapshot" if snapshot else "differential"] = {"element": elements}
    return out


FLAG_EXTENSION = sd(
    EXT,
    "complex-type",
    "Extension",
    [
        el("Extension", 0, "*"),
        el("Extension.extension", 0, "0", "Extension"),
        el("Extension.url", 1, "1", "uri", fixedUri=EXT, base="1"),
        el(
            "Extension.value[x]",
            1,
            "1",
            "code",
            base="1",
            binding={"strength": "required", "valueSet": "http://example.org/ValueSet/flags"},
        ),
    ],
)

OBSERVATION = sd(
    OBS,
    "resource",
    "Observation",
    [
        el("Observation", 0, "*"),
        el("Observation.id", 0, "1", "id", base="1"),
        el("Observation.meta", 0, "1", "Meta", base="1"),
        el(
            "Observation.extension",
            0,
            "*",
            "Extension",
            slicing={"discriminator": [{"type": "value", "path": "url"}], "rules": "open"},
        ),
        el("Observation.extension:flag", 1, "1", {"code": "Extension", "profile": [EXT]}),
        el("Observation.status", 1, "1", "code", base="1", fixedCode="final"),
        el(
            "Observation.category",
            1,
            "*",
            "CodeableConcept",
            slicing={"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "closed"},
        ),
        el(
            "Observation.category:lab",
            1,
            "1",
            "CodeableConcept",
            patternCodeableConcept={"coding": [{"system": "http://cat", "code": "lab"}]},
        ),
        el(
            "Observation.category:vital",
            0,
            "1",
            "CodeableConcept",
            patternCodeableConcept={"coding": [{"system": "http://cat", "code": "vital"}]},
        ),
        el(
            "Observation.code",
            1,
            "1",
            "CodeableConcept",
            base="1",
            binding={"strength": "required", "valueSet": "http://example.org/ValueSet/codes"},
        ),
        el(
            "Observation.subject",
            1,
            "1",
            {
                "code": "Reference",
                "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Patient"],
            },
            base="1",
        ),
        el(
            "Observation.interpretation",
            0,
            "*",
            "CodeableConcept",
            binding={"strength": "required", "valueSet": "http://example.org/ValueSet/elsewhere"},
        ),
        el("Observation.value[x]", 0, "1", "Quantity", "string", base="1"),
        el("Observation.note", 0, "2", "Annotation"),
        el("Observation.component", 0, "*", "BackboneElement"),
        el("Observation.component.code", 1, "1", "CodeableConcept", base="1"),
        el("Observation.component.value[x]", 0, "1", "integer", base="1"),
    ],
)

VALUE_SETS = [
    {
        "resourceType": "ValueSet",
        "url": "http://example.org/ValueSet/flags",
        "compose": {
            "include": [{"system": "http://example.org/cs/flags", "concept": [{"code": "red"}]}]
        },
    },
    {
        "resourceType": "ValueSet",
        "url": "http://example.org/ValueSet/codes",
        "compose": {
            "include": [
                {"system": "http://example.org/cs/whole"},  # a CodeSystem in the packages
                {"system": "http://external.example/codes"},  # one that is not
            ]
        },
    },
    {
        "resourceType": "CodeSystem",
        "url": "http://example.org/cs/whole",
        "content": "complete",
        "concept": [{"code": "a", "concept": [{"code": "a.1"}]}, {"code": "b"}],
    },
]


@pytest.fixture
def packages() -> Packages:
    p = Packages()
    for r in [*VALUE_SETS, FLAG_EXTENSION, OBSERVATION]:
        p.add(r)
    return p


def good() -> Json:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "meta": {"profile": [OBS]},
        "extension": [
            {"url": EXT, "valueCode": "red"},
            {"url": "http://elsewhere.example/ext", "valueString": "other extensions are open"},
        ],
        "status": "final",
        "category": [
            {"coding": [{"system": "http://cat", "code": "lab", "display": "Lab"}], "text": "x"}
        ],
        "code": {"coding": [{"system": "http://example.org/cs/whole", "code": "a.1"}]},
        "subject": {"reference": "Patient/p1"},
        "valueQuantity": {"value": 1},
        "component": [{"code": {"text": "c"}, "valueInteger": 3}],
    }


def messages(resource: Json, packages: Packages) -> list[str]:
    return [str(v) for v in validate(resource, packages).violations]


def test_a_valid_resource_passes_and_names_what_it_checked(packages: Packages) -> None:
    report = validate(good(), packages)
    assert report.ok, report.text()
    assert report.profiles == [OBS, EXT]
    # The binding to a value set outside the packages is listed, not passed.
    interp = good() | {"interpretation": [{"coding": [{"system": "http://x", "code": "H"}]}]}
    report = validate(interp, packages)
    assert report.ok
    assert any("elsewhere" in i.message and i.rule == "binding" for i in report.not_checked)


def test_the_profile_can_be_named_instead_of_claimed(packages: Packages) -> None:
    resource = good()
    del resource["meta"]
    assert validate(resource, packages).profiles == []
    report = validate(resource, packages, OBS)
    assert report.ok and OBS in report.profiles
    assert validate(resource, packages, OBSERVATION).ok  # a StructureDefinition works too


def test_cardinality_min_and_max(packages: Packages) -> None:
    r = good()
    del r["subject"]
    r["note"] = [{"text": "1"}, {"text": "2"}, {"text": "3"}]
    r["component"][0].pop("code")
    report = validate(r, packages)
    assert {(v.path, v.rule) for v in report.violations} == {
        ("Observation.subject", "cardinality"),
        ("Observation.note", "cardinality"),
        ("Observation.component[0].code", "cardinality"),
    }
    assert "3 occurrence(s), the profile allows 0..2" in report.text()


def test_fixed_values(packages: Packages) -> None:
    r = good() | {"status": "preliminary"}
    [v] = validate(r, packages).violations
    assert (v.path, v.rule, v.element) == ("Observation.status", "fixed", "Observation.status")
    r = good()
    r["extension"][0]["url"] = EXT  # right url, but the extension's own fixed url checked too
    assert validate(r, packages).ok


def test_pattern_values_and_pattern_slices(packages: Packages) -> None:
    r = good()
    r["category"] = [{"coding": [{"system": "http://cat", "code": "vital"}]}]
    report = validate(r, packages)
    # No "lab" category: the required slice is missing (the closed slicing is met by "vital").
    assert [(v.path, v.rule) for v in report.violations] == [
        ("Observation.category:lab", "cardinality")
    ]
    r["category"].append({"coding": [{"system": "http://cat", "code": "other"}]})
    r["category"].append({"coding": [{"system": "http://cat", "code": "lab"}]})
    report = validate(r, packages)
    assert [(v.path, v.rule) for v in report.violations] == [("Observation.category[1]", "slicing")]


def test_a_pattern_on_an_element(packages: Packages) -> None:
    profile = json.loads(json.dumps(OBSERVATION))
    profile["url"] = OBS + "-p"
    for e in profile["snapshot"]["element"]:
        if e["id"] == "Observation.code":
            e["patternCodeableConcept"] = {
                "coding": [{"system": "http://example.org/cs/whole", "code": "b"}]
            }
    packages.add(profile)
    r = good()
    [v] = validate(r, packages, OBS + "-p").violations
    assert (v.path, v.rule) == ("Observation.code", "pattern")
    r["code"]["coding"].append({"system": "http://example.org/cs/whole", "code": "b"})
    assert validate(r, packages, OBS + "-p").ok  # a pattern allows more than it names


def test_slices_by_extension_url(packages: Packages) -> None:
    r = good()
    r["extension"] = r["extension"][1:]
    [v] = validate(r, packages).violations
    assert (v.path, v.rule) == ("Observation.extension:flag", "cardinality")
    r["extension"] = [{"url": EXT, "valueCode": "red"}, {"url": EXT, "valueCode": "red"}]
    [v] = validate(r, packages).violations
    assert "2 occurrence(s), the profile allows 1..1" in v.message


def test_required_bindings(packages: Packages) -> None:
    r = good()
    r["extension"][0]["valueCode"] = "blue"
    [v] = validate(r, packages).violations
    assert (v.rule, v.path) == ("binding", "Observation.extension[0].valueCode")
    assert v.profile == EXT and "'blue'" in v.message

    r = good()
    r["code"] = {"coding": [{"system": "http://example.org/cs/whole", "code": "zzz"}]}
    [v] = validate(r, packages).violations
    assert v.rule == "binding" and "http://example.org/cs/whole|zzz" in v.message
    # A code of a whole system the packages do not hold: the system is right, the code unknown.
    r["code"] = {"coding": [{"system": "http://external.example/codes", "code": "q"}]}
    report = validate(r, packages)
    assert report.ok and any(i.rule == "binding" for i in report.not_checked)
    # A system the value set does not include at all is a violation, external or not.
    r["code"] = {"coding": [{"system": "http://other.example", "code": "q"}]}
    assert validate(r, packages).rules() == {"binding"}
    r["code"] = {"text": "no coding at all"}
    assert validate(r, packages).rules() == {"binding"}


def test_unsupported_discriminators_are_listed_not_passed(packages: Packages) -> None:
    profile = json.loads(json.dumps(OBSERVATION))
    profile["url"] = OBS + "-exists"
    for e in profile["snapshot"]["element"]:
        if e["id"] == "Observation.category":
            e["slicing"] = {
                "discriminator": [{"type": "exists", "path": "text"}],
                "rules": "closed",
            }
    packages.add(profile)
    r = good()
    del r["meta"]  # only the profile under test (OBS's own slicing is closed)
    r["category"].append({"coding": [{"system": "http://nowhere", "code": "x"}]})
    report = validate(r, packages, OBS + "-exists")
    assert report.ok
    [gap] = [i for i in report.not_checked if i.rule == "slicing"]
    assert "exists:text" in gap.message and gap.element == "Observation.category"


def test_choice_types_and_json_shapes(packages: Packages) -> None:
    r = good()
    del r["valueQuantity"]
    r["valueBoolean"] = True
    r["status"] = ["final"]
    r["note"] = {"text": "n"}
    r["component"][0]["valueInteger"] = "3"
    r["category"] = []
    got = {(v.path, v.rule) for v in validate(r, packages).violations}
    assert {
        ("Observation.valueBoolean", "type"),
        ("Observation.status", "shape"),
        ("Observation.note", "shape"),
        ("Observation.component[0].valueInteger", "shape"),
        ("Observation.category", "shape"),
    } <= got


def test_unknown_elements(packages: Packages) -> None:
    r = good() | {"colour": "red"}
    r["component"][0]["extra"] = 1
    got = {(v.path, v.rule) for v in validate(r, packages).violations}
    assert got == {
        ("Observation.colour", "unknown-element"),
        ("Observation.component[0].extra", "unknown-element"),
    }


def test_reference_types(packages: Packages) -> None:
    r = good() | {"subject": {"reference": "Group/g1"}}
    [v] = validate(r, packages).violations
    assert (v.path, v.rule) == ("Observation.subject", "reference") and "Group" in v.message
    assert validate(
        good() | {"subject": {"reference": "https://ehr.example/fhir/Patient/1"}}, packages
    ).ok
    assert not validate(good() | {"subject": {"type": "Device", "display": "d"}}, packages).ok


def test_us_core_targets_are_known_by_name() -> None:
    packages = igs(shared_dir("igs"), *TARGET)
    us_core = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-"
    assert packages.type_of(us_core + "practitionerrole") == "PractitionerRole"
    assert packages.type_of(us_core + "patient") == "Patient"
    assert packages.type_of(us_core + "vital-signs") is None  # not a type's name: not checked


def bundle(*entries: tuple[str, Json]) -> Json:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": u, "resource": r} for u, r in entries],
    }


def test_bundle_entries_are_checked_and_references_resolved_inside(packages: Packages) -> None:
    patient = {"resourceType": "Patient", "id": "p1"}
    group = {"resourceType": "Group", "id": "g1"}
    obs = good() | {"subject": {"reference": "urn:uuid:1"}}
    assert validate(bundle(("urn:uuid:0", obs), ("urn:uuid:1", patient)), packages).ok
    report = validate(bundle(("urn:uuid:0", obs), ("urn:uuid:1", group)), packages)
    [v] = report.violations
    assert v.path == "Bundle.entry[0].resource.subject" and "Group" in v.message
    [v] = validate(bundle(("urn:uuid:0", obs)), packages).violations
    assert "not an entry of the Bundle" in v.message
    # The entry's own claims are checked whatever the Bundle claims.
    bad = good() | {"status": "amended"}
    [v] = validate(bundle(("urn:uuid:0", bad)), packages).violations
    assert v.path == "Bundle.entry[0].resource.status" and v.profile == OBS


def test_a_claimed_profile_outside_the_packages_is_listed(packages: Packages) -> None:
    r = good()
    r["meta"]["profile"].append(
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"
    )
    report = validate(r, packages)
    assert report.ok and report.profiles == [OBS, EXT]
    assert any("us-core-observation-lab" in i.message for i in report.not_checked)
    assert not validate({"resourceType": "Patient", "id": "x"}, packages, OBS).ok  # wrong type


def test_a_differential_only_profile_is_resolved_against_its_base(packages: Packages) -> None:
    child = {
        "resourceType": "StructureDefinition",
        "url": OBS + "-child",
        "kind": "resource",
        "type": "Observation",
        "baseDefinition": OBS,
        "derivation": "constraint",
        "differential": {
            "element": [
                {"id": "Observation.note", "path": "Observation.note", "min": 1},
                {
                    "id": "Observation.category:survey",
                    "path": "Observation.category",
                    "sliceName": "survey",
                    "min": 1,
                    "max": "1",
                    "patternCodeableConcept": {
                        "coding": [{"system": "http://cat", "code": "survey"}]
                    },
                },
            ]
        },
    }
    packages.add(child)
    r = good()
    del r["meta"]  # only the profile under test (OBS's own slicing is closed)
    report = validate(r, packages, child["url"])
    got = {(v.path, v.rule) for v in report.violations}
    assert got == {
        ("Observation.note", "cardinality"),
        ("Observation.category:survey", "cardinality"),
    }
    r["note"] = [{"text": "n"}]
    r["category"].append({"coding": [{"system": "http://cat", "code": "survey"}]})
    assert validate(r, packages, child["url"]).ok


def test_the_ig_packages_have_snapshots_and_resolve() -> None:
    """What the packages contain: every StructureDefinition has a snapshot."""
    folder = shared_dir("igs")
    for path in folder.glob("*/StructureDefinition-*.json"):
        assert json.loads(path.read_text(encoding="utf-8-sig")).get("snapshot"), path


@pytest.mark.parametrize(
    ("folders", "examples"),
    [(TARGET, TARGET), (("davinci-pas-2.0.1", *TARGET[1:]), ("davinci-pas-2.0.1",))],
    ids=["pas-2.2.1-crd-dtr", "pas-2.0.1"],
)
def test_every_ig_example_passes(folders: tuple[str, ...], examples: tuple[str, ...]) -> None:
    """No false positives: the IG's own examples pass. They exercise what a response seldom
    does: two Claim slices of one type (profile-claim / profile-claim-update, told apart by
    fit), an element allowing several resource profiles (the DTR package input's order)."""
    root = shared_dir("igs")
    packages = igs(root, *folders)
    skip = ("StructureDefinition-", "ValueSet-", "CodeSystem-", "ImplementationGuide-")
    checked = 0
    for path in sorted(p for folder in examples for p in root.glob(f"{folder}/*.json")):
        if path.name.startswith(skip) or not path.name[0].isupper():
            continue
        resource = json.loads(path.read_text(encoding="utf-8-sig"))
        report = validate(resource, packages)
        assert report.ok, f"{path.name}:\n{report.text()}"
        checked += len(report.profiles)
    assert checked > 50
