"""Property: no input makes evaluation crash. It returns a determination or an InvalidRequest."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from priorauth.demo.samples import hemgenix_request
from priorauth.errors import InvalidRequest
from priorauth.intake.pas_bundle import read_bundle
from priorauth.policies import builtin
from tests.strategies import json_values, paths_of, replaced

LIB = builtin()
BASE = hemgenix_request(name="fuzz")


def judge(data: bytes | dict[str, Any]) -> str:
    try:
        facts = read_bundle(data)
    except InvalidRequest as e:
        message = str(e)
        assert message  # a message the caller can act on
        return "invalid"
    policy = LIB.for_request(facts)
    if policy is None:
        return "no-policy"
    d = policy.evaluate(facts)
    for f in list(d.findings.values()) + list(d.exclusions.values()):
        assert f.reason  # every status explains itself
    return d.recommendation


PATHS = paths_of(BASE)


@given(json_values)
def test_arbitrary_json_never_crashes(value: Any) -> None:
    assert judge(json.dumps(value).encode()) in (
        "invalid",
        "no-policy",
        "approve",
        "approve-modified",
        "deny",
        "pend",
    )


@given(st.sampled_from(PATHS), json_values)
def test_a_valid_request_with_any_part_replaced_never_crashes(path: tuple, value: Any) -> None:
    bundle = copy.deepcopy(BASE)
    replaced(bundle, path, value)
    assert judge(bundle) in ("invalid", "no-policy", "approve", "approve-modified", "deny", "pend")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    assert judge(raw) in ("invalid", "no-policy")
