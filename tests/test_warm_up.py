"""The warm-up bundle: valid FHIR, for no covered service, as broad as a request."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import orjson
import pytest

import priorauth
from priorauth.intake.pas_bundle import read_bundle, validate_bundle

RAW = (resources.files("priorauth.api") / "warm-up-bundle.json").read_bytes()


def test_it_is_a_valid_request_no_policy_covers() -> None:
    validate_bundle(orjson.loads(RAW))
    assert read_bundle(RAW).items
    with pytest.raises(priorauth.NoPolicyInForce):
        priorauth.evaluate(RAW)


def test_it_names_no_drug_of_any_shipped_policy() -> None:
    text = RAW.decode().lower()
    for versions in priorauth.load_policies().versions.values():
        for compiled in versions:
            p = compiled.policy
            names = [*p.service.names, *p.service.hcpcs, *p.service.ndc]
            names += [k.ndc for k in p.dosing.products] if p.dosing else []
            for name in names:
                assert name.lower() not in text, name


def test_warming_up_loads_the_models_of_every_resource_type_a_request_carries() -> None:
    probe = """
import json, sys
from priorauth.api.factory import _warm_up
from priorauth.demo.samples import hemgenix_request
_warm_up()
loaded = {m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("fhir.resources.R4B.")}
types = {e["resource"]["resourceType"].lower() for e in hemgenix_request()["entry"]}
print(json.dumps(sorted(types - loaded)))
"""
    r = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
