"""DTR 2.0.1 CQL pre-population (issue 13 item 14): the generated Libraries, run by cql-execution.

The reference JavaScript engine (cql-execution + cql-exec-fhir, FHIR 4.0.1) runs each policy
version's generated ELM over every shipped test case request and the demo requests; every
pre-filled expression must equal what the Python engine reads for the same criterion.
DTR requirement: Questionnaire `cqf-library` (dtr-std-questionnaire) and Library content with
CQL and ELM (CQL IG, CQLLibrary profile; davinci-dtr-test-kit payer questionnaire-package tests
check the package Bundle carries the Libraries its Questionnaires reference).
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest

from priorauth.dtr import cql
from priorauth.dtr.questionnaire import build
from priorauth.policies import PolicyLibrary
from tests.conformance.cql.harness import (
    facts_of,
    in_ci,
    node_missing,
    python_value,
    requests,
    run_elm,
    versions,
)


@pytest.fixture(scope="module")
def engine() -> None:
    why = node_missing()
    if why is None:
        return
    if in_ci():
        pytest.fail(f"CI=true but the reference CQL engine cannot run: {why}")
    pytest.skip(f"reference CQL engine unavailable: {why}")


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) or isinstance(got, float):
        if got is None or want is None:
            return got is want
        return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-12)
    return bool(got == want)


def test_library_per_policy_version(library: PolicyLibrary) -> None:
    """CQL IG conformance 4.1/4.2: a logic-library with text/cql and application/elm+json,
    one define per pre-filled item, name and version as the CQL library declaration says."""
    for policy in versions(library):
        lib = cql.library(policy, "http://payer.example")
        assert lib["resourceType"] == "Library"
        assert lib["type"]["coding"][0]["code"] == "logic-library"
        assert lib["url"] == f"http://payer.example/fhir/Library/{policy.policy.id}"
        assert lib["version"] == policy.policy.version
        content = {c["contentType"]: base64.b64decode(c["data"]).decode() for c in lib["content"]}
        text, elm = content["text/cql"], json.loads(content["application/elm+json"])
        assert text.startswith(f"library {lib['name']} version '{policy.policy.version}'")
        assert elm["library"]["identifier"] == {"id": lib["name"], "version": lib["version"]}
        names = [s["name"] for s in elm["library"]["statements"]["def"]]
        assert names[0] == "Patient"
        for name in names[1:]:
            assert f'define "{name}":' in text
        assert len(names) == len(set(names)) > 1


def _walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for item in items for i in (item, *_walk(item.get("item", [])))]


def test_questionnaire_references_its_library(library: PolicyLibrary) -> None:
    """dtr-std-questionnaire: extension:cqf-library; SDC initialExpression text/cql-identifier
    naming a define of that Library, for every item the Library pre-fills."""
    for policy in versions(library):
        form = cql.attach(build(policy, "http://payer.example"), policy, "http://payer.example")
        lib = cql.library(policy, "http://payer.example")
        canonical = f"{lib['url']}|{lib['version']}"
        assert {"url": cql.CQF_LIBRARY, "valueCanonical": canonical} in form["extension"]
        defines = {name for _, _, name, _ in cql.prefills(policy)}
        used = {
            ext["valueExpression"]["expression"]
            for item in _walk(form["item"])
            for ext in item.get("extension", [])
            if ext["url"] == cql.INITIAL_EXPRESSION
            and ext["valueExpression"]["language"] == "text/cql-identifier"
        }
        assert used == defines


def test_cql_execution_equals_the_python_engine(engine: None, library: PolicyLibrary) -> None:
    """Every pre-filled define, run by cql-execution over every test case and demo request,
    equals the Python engine's reading of the same criterion in the same request."""
    policies = versions(library)
    cases = requests()
    runs = [(cql.elm(p), r.bundle) for r in cases for p in policies]
    results, _ = run_elm(runs)
    mismatches = []
    checked = 0
    i = 0
    for r in cases:
        facts = facts_of(r)
        for p in policies:
            got = results[i]
            i += 1
            for c, _, name, _ in cql.prefills(p):
                want = python_value(c, facts, p.policy.systems)
                checked += 1
                if not _same(got.get(name), want):
                    mismatches.append(
                        f"{r.name} {p.policy.id} {p.policy.version} {c.id} ({c.check.kind}): "
                        f"cql-execution {got.get(name)!r}, python {want!r}"
                    )
    assert not mismatches, "\n".join(mismatches)
    assert checked > 500
