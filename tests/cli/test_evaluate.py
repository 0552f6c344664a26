"""`priorauth evaluate` and `policy show`: outcomes, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from priorauth.cli.main import app
from priorauth.demo.samples import Lab, claims_ndjson, hemgenix_request

runner = CliRunner()


def _write(tmp_path: Path, name: str, data: object) -> Path:
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else orjson.dumps(data))
    return p


def evaluate(*args: str) -> tuple[int, dict | str, str]:
    r = runner.invoke(app, ["evaluate", *args])
    out = r.stdout
    try:
        return r.exit_code, json.loads(out), r.stderr
    except json.JSONDecodeError:
        return r.exit_code, out, r.stderr


@pytest.mark.parametrize(
    ("kwargs", "recommendation"),
    [
        ({}, "approve"),
        ({"ndc": "0053-0170-17"}, "approve-modified"),
        ({"labs": {"1920-8": Lab(150, "U/L", uln=48, days_before=3)}}, "deny"),
        ({"labs": {"777-3": None}}, "pend"),
    ],
)
def test_each_recommendation_exits_0(tmp_path: Path, kwargs: dict, recommendation: str) -> None:
    path = _write(tmp_path, "req.json", hemgenix_request(name="cli", **kwargs))
    code, out, _ = evaluate(str(path), "--format", "json")
    assert code == 0
    assert isinstance(out, dict)
    assert out["recommendation"] == recommendation
    named = out["policy"]
    assert {k: named[k] for k in ("id", "number", "version", "payer", "effective")} == {
        "id": "cigna-ip0535",
        "number": "IP0535",
        "version": "2026-03-12",
        "payer": "Cigna",
        "effective": "2026-03-12",
    }
    assert named["selected"]["date_of_service"] == "2026-05-25"
    assert "default payer" in named["selected"]["payer_basis"]
    assert set(out["criteria"]["NC.1"]) >= {"status", "reason", "evidence"}
    assert out["criteria"]["NC.1"]["status"] in ("applies", "does_not_apply", "unknown")
    if recommendation.startswith("approve"):
        assert out["authorization"]["start"] == "2026-05-04"
        assert out["kit"] == {"vials": 18, "ndc": "0053-0180-18"}
    else:
        assert out["authorization"] is None


def test_text_output_is_a_checklist(tmp_path: Path) -> None:
    path = _write(tmp_path, "req.json", hemgenix_request(name="cli", labs={"777-3": None}))
    code, out, _ = evaluate(str(path))
    assert code == 0 and isinstance(out, str)
    for needle in [
        "Recommendation: pend",
        "I.ii",
        "Aspartate aminotransferase",
        "777-3",
        "Dose: 1 kit, NDC 0053-0180-18 (18 vials)",
        "Missing documentation",
    ]:
        assert needle in out, needle


def test_claims_option_and_as_of(tmp_path: Path) -> None:
    req = _write(tmp_path, "req.json", hemgenix_request(name="cli", member_id="MCLAIMS"))
    claims = _write(
        tmp_path,
        "claims.ndjson",
        claims_ndjson(
            "MCLAIMS", ("http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "J1414")
        ).encode(),
    )
    code, out, _ = evaluate(str(req), "--claims", str(claims), "--format", "json")
    assert code == 0 and isinstance(out, dict)
    assert out["recommendation"] == "deny"
    assert out["criteria"]["C"]["status"] == "not_met"
    code, out, _ = evaluate(str(req), "--as-of", "2026-06-30", "--format", "json")
    assert isinstance(out, dict)
    assert out["as_of"] == "2026-06-30" and out["recommendation"] == "pend"


def _bad_bundles() -> list[tuple[str, bytes]]:
    good = hemgenix_request(name="bad")
    obs = next(
        i for i, e in enumerate(good["entry"]) if e["resource"]["resourceType"] == "Observation"
    )

    def mut(f) -> bytes:  # type: ignore[no-untyped-def]
        b = hemgenix_request(name="bad")
        f(b)
        return orjson.dumps(b)

    return [
        ("not json", b"{nope"),
        ("not a bundle", b'{"resourceType": "Patient"}'),
        ("first entry not a claim", mut(lambda b: b["entry"].reverse())),
        (
            "unresolved reference",
            mut(
                lambda b: b["entry"][0]["resource"]["patient"].update(reference="urn:uuid:missing")
            ),
        ),
        ("negative weight", orjson.dumps(hemgenix_request(name="bad", weight=(-3.0, "kg")))),
        (
            "date not a date",
            mut(lambda b: b["entry"][obs]["resource"].update(effectiveDateTime="last tuesday")),
        ),
    ]


@pytest.mark.parametrize(("label", "body"), _bad_bundles())
def test_invalid_requests_exit_2_with_one_line(tmp_path: Path, label: str, body: bytes) -> None:
    path = _write(tmp_path, "bad.json", body)
    r = runner.invoke(app, ["evaluate", str(path)])
    assert r.exit_code == 2, (label, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("priorauth: error: bad.json"), r.stderr
    assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["missing.json"],
        ["{req}", "--as-of", "yesterday"],
        ["{req}", "--format", "xml"],
        ["{req}", "--claims", "{bad_claims}"],
    ],
)
def test_option_mistakes_exit_2(tmp_path: Path, args: list[str]) -> None:
    req = _write(tmp_path, "req.json", hemgenix_request(name="cli"))
    bad = _write(tmp_path, "bad.ndjson", b'{"resourceType": "Patient"}\n')
    argv = [a.format(req=req, bad_claims=bad) for a in args]
    r = runner.invoke(app, ["evaluate", *argv])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_request_for_another_service_exits_3(tmp_path: Path) -> None:
    b = hemgenix_request(name="other")
    item = b["entry"][0]["resource"]["item"][0]
    item["productOrService"]["coding"][0]["code"] = "J7201"
    item.pop("extension")
    r = runner.invoke(app, ["evaluate", str(_write(tmp_path, "o.json", b))])
    assert r.exit_code == 3
    assert "no loaded policy" in r.stderr


def test_policy_show(tmp_path: Path) -> None:
    r = runner.invoke(app, ["policy", "show", "cigna-ip0535"])
    assert r.exit_code == 0
    for needle in ["IP0535", "E.ii.a", "0053-0480-48", "236 to 240 kg", "90 days"]:
        assert needle in r.stdout, needle
    missing = runner.invoke(app, ["policy", "show", "nope"])
    assert missing.exit_code == 3 and "cigna-ip0535" in missing.stderr
    early = runner.invoke(app, ["policy", "show", "cigna-ip0535", "--on", "2024-05-31"])
    assert early.exit_code == 3


def test_demo_judges_one_request_of_each_recommendation() -> None:
    r = runner.invoke(app, ["demo", "--no-serve", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert {k: v["recommendation"] for k, v in out.items()} == {
        "approve": "approve",
        "approve-modified": "approve-modified",
        "deny": "deny",
        "pend": "pend",
    }
    text = runner.invoke(app, ["demo", "--no-serve"]).stdout
    assert "H, K" in text and "I.ii" in text
