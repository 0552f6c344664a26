"""Logs are JSON lines and carry no PHI through a whole case: submit, read, decide, notify."""

from __future__ import annotations

import io
import logging

import orjson
import pytest
from fastapi.testclient import TestClient

from priorauth.demo.samples import hemgenix_request
from priorauth.observability import JsonFormatter
from priorauth.service.app_service import PriorAuthService
from tests.api.conftest import client, service  # noqa: F401


def test_a_whole_case_logs_no_phi(client: TestClient, service: PriorAuthService) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.DEBUG)
    try:
        bundle = hemgenix_request(name="logs", member_id="MLOGS123")
        r = client.post("/fhir/Claim/$submit", content=orjson.dumps(bundle))
        cid = r.json()["entry"][0]["resource"]["id"]
        client.get(f"/api/cases/{cid}")
        client.post(f"/api/cases/{cid}/decision", json={"decision": "approve"})
        client.post("/fhir/Claim/$submit", content=b"{broken")
        service.notifier.flush()
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    lines = [ln for ln in stream.getvalue().splitlines() if ln.strip()]
    assert lines, "the flow logged nothing"
    records = [orjson.loads(ln) for ln in lines]  # every line is JSON
    assert any(cid in rec["msg"] for rec in records)
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    text = stream.getvalue()
    for phi in [
        "MLOGS123",
        patient["birthDate"],
        patient["name"][0]["given"][0],
        "88.0",
        "0053-0180-18",
    ]:
        assert phi not in text, phi


@pytest.mark.parametrize("exc", [ValueError("member MLOGS123 born 1979-11-23")])
def test_exceptions_are_logged_by_type_only(exc: Exception) -> None:
    try:
        raise exc
    except ValueError:
        record = logging.LogRecord(
            "priorauth", logging.ERROR, __file__, 1, "failed", None, __import__("sys").exc_info()
        )
    line = JsonFormatter().format(record)
    assert orjson.loads(line)["exception"] == "ValueError"
    assert "MLOGS123" not in line
