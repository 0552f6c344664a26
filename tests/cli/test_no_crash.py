"""Property: no input makes evaluation crash. It returns a determination or an InvalidRequest."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from priorauth.errors import InvalidRequest
from priorauth.intake.pas_bundle import read_bundle
from priorauth.policies import builtin
from priorauth.samples import hemgenix_request

LIB = builtin()
BASE = hemgenix_request(name="fuzz")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


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


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = [p for p in _paths(BASE) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), json_values)
def test_a_valid_request_with_any_part_replaced_never_crashes(path: tuple, value: Any) -> None:
    bundle = copy.deepcopy(BASE)
    node: Any = bundle
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert judge(bundle) in ("invalid", "no-policy", "approve", "approve-modified", "deny", "pend")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    assert judge(raw) in ("invalid", "no-policy")
