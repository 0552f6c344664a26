"""The CapabilityStatement claims only what is implemented (issue 13 item 11; PAS 2.2.1
spec-55: servers supporting subscriptions expose it in their CapabilityStatement)."""

from __future__ import annotations

from fastapi.testclient import TestClient

_METHOD = {"create": "POST", "read": "GET", "update": "PUT", "delete": "DELETE"}


def _routes(client: TestClient) -> set[tuple[str, str]]:
    """(method, path) of every documented route (the app's own OpenAPI document)."""
    spec = client.get("/openapi.json").json()
    return {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops}


def test_every_claimed_interaction_and_operation_has_a_route(client: TestClient) -> None:
    """Each interaction and operation of /fhir/metadata is a route of the server."""
    statement = client.get("/fhir/metadata").json()
    routes = _routes(client)
    paths = {path for _, path in routes}
    for resource in statement["rest"][0]["resource"]:
        kind = resource["type"]
        for interaction in resource.get("interaction", []):
            method = _METHOD[interaction["code"]]
            path = f"/fhir/{kind}" if method == "POST" else None
            found = (
                (method, path) in routes
                if path
                else any(
                    m == method and p.startswith(f"/fhir/{kind}/{{") and p.count("/") == 3
                    for m, p in routes
                )
            )
            assert found, (kind, interaction["code"])
        for operation in resource.get("operation", []):
            name = operation["name"]
            assert any(p.startswith(f"/fhir/{kind}") and p.endswith(f"${name}") for p in paths), (
                kind,
                name,
            )


def test_only_json_is_claimed_and_xml_is_415(client: TestClient) -> None:
    """format [json]: an XML body is refused with 415 and an OperationOutcome."""
    assert client.get("/fhir/metadata").json()["format"] == ["json"]
    r = client.post(
        "/fhir/Claim/$submit",
        content=b"<Bundle xmlns='http://hl7.org/fhir'/>",
        headers={"Content-Type": "application/fhir+xml"},
    )
    assert r.status_code == 415
    assert r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["code"] == "not-supported"
