"""The policy's generated code settles the usual cases inline: it must agree with the checks.

Every combination below is evaluated twice, by the generated code with its
inline fast paths and by the same policy compiled with `inline=False` (every
check called), and every finding must come out the same.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import Facts
from priorauth.core.result import Determination
from tests.core.factories import DEFAULT_ANSWERS, DEFAULT_OBS, facts, obs

TYPICAL = {o.code: o for o in DEFAULT_OBS}
MULTIPLES = [0.0, 0.5, 0.999, 1.0, 1.001, 1.5, 3.0]  # of the limit: either side, and on it
COMPARATORS = [None, "<", ">="]
DAYS = [9, 30, 31, -1, None]  # inside, on the edge of, and outside a 30-day window; undated


def _limits(policy: CompiledPolicy) -> dict[str, tuple[float | None, float | None]]:
    """LOINC code -> (plain limit, ULN multiple) of the policy's lab thresholds."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for c in policy.criteria.values():
        k: Any = c.check
        if k is not None and k.kind == "lab_threshold":
            for code in k.codes:
                out[code] = (k.value, k.uln_multiple)
    return out


def _everything(d: Determination) -> list[object]:
    found = [(f.id, f.status, f.reason, f.evidence, f.value) for f in d.findings.values()]
    found += [(f.id, f.status, f.reason, f.evidence) for f in d.exclusions.values()]
    return [d.recommendation, d.dose, d.requested, d.missing, d.reasons, found]


def _same(policy: CompiledPolicy, reference: CompiledPolicy, f: Facts) -> None:
    assert _everything(policy.evaluate(f)) == _everything(reference.evaluate(f))


def test_lab_fast_paths_agree_with_the_checks(ip0535: CompiledPolicy) -> None:
    reference = CompiledPolicy(ip0535.policy, inline=False)
    limits = _limits(ip0535)
    assert limits, "the policy has lab thresholds to compare"
    for code, (limit, multiple) in sorted(limits.items()):
        usual = TYPICAL.get(code)
        unit = usual.unit if usual else "U/L"
        uln = 40.0
        scale = multiple * uln if multiple else limit or 1.0
        for r, comparator, days, uln_unit, second in itertools.product(
            MULTIPLES, COMPARATORS, DAYS, [unit, "g/L"], [False, True]
        ):
            o = obs(code, r * scale, unit, days=days, uln=uln, uln_unit=uln_unit)
            o.comparator = comparator
            found = [o]
            if second:  # an older result in the window behind it
                found.append(obs(code, scale * 0.5, unit, days=20, uln=uln, ref="Observation/b"))
            _same(ip0535, reference, facts(replace={code: found}))
    for code in limits:  # no usable value: no unit, no value, no ULN
        for o in (obs(code, 1.0, None, uln=None), obs(code, None, "U/L", uln=40.0)):
            _same(ip0535, reference, facts(replace={code: [o]}))
        _same(ip0535, reference, facts(replace={code: None}))


@pytest.mark.parametrize("value", [True, False, None, 0, 1, 3.5, "yes"])
def test_attestation_fast_paths_agree_with_the_checks(ip0535: CompiledPolicy, value: Any) -> None:
    reference = CompiledPolicy(ip0535.policy, inline=False)
    for link_id in DEFAULT_ANSWERS:
        _same(ip0535, reference, facts(answers={link_id: value}))
