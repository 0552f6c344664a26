"""DTR 2.0.1 package and Library read (issue 13 item 14): the Questionnaire's cqf-library resolves.

davinci-dtr-test-kit (payer server, questionnaire package group): the package Bundle carries
the Questionnaire and the Libraries it references; DTR dtr-std-questionnaire extension:cqf-library;
FHIR R4 read interaction (GET [base]/Library/[id]).
"""

from __future__ import annotations

import base64
import json

from fastapi.testclient import TestClient

from priorauth.dtr import cql
from tests.crd.ehr import order_sign

PACKAGE = "/fhir/Questionnaire/$questionnaire-package"


def _assertion(client: TestClient) -> str:
    body, _ = order_sign("cql-library")
    r = client.post("/cds-services/priorauth-order-sign", json=body)
    assert r.status_code == 200, r.text
    for action in r.json()["systemActions"]:
        for ext in action["resource"].get("extension", []):
            for part in ext.get("extension", []):
                if part["url"] == "coverage-assertion-id":
                    return str(part["valueString"])
    raise AssertionError("no coverage assertion")


def test_package_carries_the_library_its_questionnaire_references(app_client: TestClient) -> None:
    """Every cqf-library canonical of a packaged Questionnaire is a Library of the same Bundle,
    and GET /fhir/Library/{id} returns it."""
    params = {
        "resourceType": "Parameters",
        "parameter": [{"name": "context", "valueString": _assertion(app_client)}],
    }
    r = app_client.post(PACKAGE, json=params)
    assert r.status_code == 200, r.text
    for p in r.json()["parameter"]:
        entries = [e["resource"] for e in p["resource"]["entry"]]
        libraries = {
            f"{x['url']}|{x['version']}": x for x in entries if x["resourceType"] == "Library"
        }
        forms = [x for x in entries if x["resourceType"] == "Questionnaire"]
        assert forms and libraries
        for form in forms:
            refs = [e["valueCanonical"] for e in form["extension"] if e["url"] == cql.CQF_LIBRARY]
            assert refs and all(ref in libraries for ref in refs)
        for lib in libraries.values():
            got = app_client.get(f"/fhir/Library/{lib['id']}")
            assert got.status_code == 200, got.text
            assert got.json() == lib
            types = [c["contentType"] for c in lib["content"]]
            assert types == ["text/cql", "application/elm+json"]
            elm = json.loads(base64.b64decode(lib["content"][1]["data"]))
            assert elm["library"]["identifier"]["id"] == lib["name"]


def test_unknown_library_is_404_operation_outcome(app_client: TestClient) -> None:
    r = app_client.get("/fhir/Library/no-such-library")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"
