"""Benchmark the engine: evaluation, bundle -> recommendation, vs orjson.loads and FHIRPath.

Run: uv run python bench/engine.py [--seconds 2] [--rounds 5]

Figures, all measured in this one run on this machine:
- microseconds per evaluation of already-extracted facts (statuses and
  recommendation; findings are built when read, so a second figure reads them all);
- milliseconds per request Bundle -> recommendation, without and with full
  FHIR model validation (fhir.resources R4B);
- the ratio of bundle -> recommendation (no validation) to orjson.loads of the
  same bytes: the floor no engine can beat;
- the peer: orjson.loads plus one precompiled FHIRPath expression (fhirpathpy)
  per leaf criterion of the policy, evaluated over the same bundle, and how
  many times faster the engine is.

Every figure is the median of `--rounds` rounds; a round is the median of
seven batches. Batches are timed in CPU time of this process
(time.process_time), not wall time, so a busy machine that takes the CPU away
between batches does not count against the figure; on a quiet machine the two
agree. Ratios are taken per round, between figures measured one after the
other, and their median is printed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
from fhirpathpy import compile as fhirpath_compile

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import ICD10CM, LOINC, NUCC
from priorauth.core.model import DoseByWeightCheck
from priorauth.demo.samples import hemgenix_request
from priorauth.intake.pas_bundle import BIRTH_SEX, read_bundle
from priorauth.policies import builtin
from priorauth.policies.judging import judge

_OBS = (
    "Bundle.entry.resource.ofType(Observation).where(status in ('final' | 'amended' | 'corrected'))"
)


def per_call(fn: Callable[[], object], seconds: float, batches: int = 7) -> float:
    """Median CPU seconds per call over `batches` batches sized to fill `seconds` in total."""
    fn()
    n, t0 = 1, time.process_time()
    while time.process_time() - t0 < 0.05:
        fn()
        n += 1
    per_batch = max(1, int(n / (time.process_time() - t0) * seconds / batches))
    samples = []
    for _ in range(batches):
        t = time.process_time()
        for _ in range(per_batch):
            fn()
        samples.append((time.process_time() - t) / per_batch)
    return statistics.median(samples)


def _codes(codes: list[str]) -> str:
    return "(" + " | ".join(f"'{c}'" for c in codes) + ")"


def _labs(codes: list[str], since: str | None = None) -> str:
    where = f"code.coding.where(system = '{LOINC}' and code in {_codes(codes)}).exists()"
    if since is not None:
        where += f" and effectiveDateTime >= @{since}"
    return f"{_OBS}.where({where})"


def fhirpath_expressions(policy: CompiledPolicy, as_of: Any) -> dict[str, str]:
    """One FHIRPath expression per leaf criterion, asking of the bundle what its check asks.

    The peer's rules are simpler than the engine's (no unit conversion, no
    comparators, no fall-backs), so it does less work per criterion, not more.
    """
    q = policy.policy.qualitative
    negative = _codes(q.negative_codes)
    positive = _codes(q.positive_codes)
    out: dict[str, str] = {}
    for cid, c in policy.criteria.items():
        k: Any = c.check  # one of the check models; each branch reads its own fields
        if k is None:
            continue
        window = getattr(k, "window_days", None)
        since = (as_of - timedelta(days=window)).isoformat() if window is not None else None
        if k.kind == "diagnosis":
            icd = " or ".join(
                f"code.startsWith('{x.rstrip('*').replace('.', '')}')" for x in k.codes
            )
            out[cid] = (
                "Bundle.entry.resource.ofType(Claim).diagnosis.diagnosisCodeableConcept.coding"
                f".where(system = '{ICD10CM}' and ({icd})).exists() or "
                "Bundle.entry.resource.ofType(Condition).code.coding"
                f".where(system = '{ICD10CM}' and ({icd})).exists()"
            )
        elif k.kind == "sex":
            expected = _codes([s for s, v in k.birth_sex.items() if v == k.expected])
            out[cid] = (
                f"Bundle.entry.resource.ofType(Patient).extension.where(url = '{BIRTH_SEX}')"
                f".valueCode.first() in {expected}"
            )
        elif k.kind == "min_age":
            born = as_of.replace(year=as_of.year - k.years).isoformat()
            out[cid] = f"Bundle.entry.resource.ofType(Patient).birthDate <= @{born}"
        elif k.kind in ("attestation", "no_prior_claims") or (
            k.kind in ("no_medication", "no_condition", "prescriber_specialty")
            and k.attestation is None
        ):
            link = getattr(k, "link_id", None) or getattr(k, "attestation", None)
            least = getattr(k, "at_least", None)
            answer = f"valueInteger.first() >= {least}" if least else "valueBoolean.first() = true"
            out[cid] = (
                "Bundle.entry.resource.ofType(QuestionnaireResponse).repeat(item)"
                f".where(linkId = '{link}').answer.{answer}"
            )
        elif k.kind == "lab_threshold":
            rs = _labs(k.codes, since)
            sym = {"le": "<=", "lt": "<", "ge": ">=", "gt": ">"}[k.op]
            if k.uln_multiple is not None:
                uln = "referenceRange.first().high.value"
                test = f"valueQuantity.value {sym} {k.uln_multiple} * {uln}"
            else:
                test = f"valueQuantity.value {sym} {k.value}"
            out[cid] = f"{rs}.select({test}).first()"
        elif k.kind == "lab_present":
            out[cid] = f"{_labs(k.codes, since)}.exists()"
        elif k.kind == "lab_negative":
            out[cid] = (
                f"{_labs(k.codes, since)}.select(valueQuantity.value < {k.cutoff} or "
                f"valueCodeableConcept.coding.code in {negative}).first()"
            )
        elif k.kind == "infection_screen":
            out[cid] = " and ".join(
                f"{_labs(p.codes)}.where(valueCodeableConcept.coding.code in {negative}"
                f" or valueQuantity.value = 0).exists()"
                for p in k.panels
            )
        elif k.kind == "no_medication":
            names = "|".join(k.names)
            out[cid] = (
                "Bundle.entry.resource.ofType(MedicationStatement).where(status = 'active' and "
                f"medicationCodeableConcept.text.lower().matches('{names}')).exists().not() and "
                "Bundle.entry.resource.ofType(QuestionnaireResponse).repeat(item)"
                f".where(linkId = '{k.attestation}').answer.valueBoolean.first() = true"
            )
        elif k.kind == "no_condition":
            icd = " or ".join(f"code.startsWith('{x.rstrip('*')}')" for x in k.codes)
            out[cid] = (
                "Bundle.entry.resource.ofType(Condition).code.coding"
                f".where(system = '{ICD10CM}' and ({icd})).exists().not()"
            )
        elif k.kind == "prescriber_specialty":
            out[cid] = (
                "Bundle.entry.resource.ofType(PractitionerRole).specialty.coding"
                f".where(system = '{NUCC}' and code in {_codes(k.taxonomies)}).exists()"
            )
        elif k.kind == "creatinine_clearance":
            weight = f"{_labs(['29463-7'])}.valueQuantity.value.first()"
            scr = f"{_labs(k.creatinine_codes, since)}.valueQuantity.value.first()"
            out[cid] = (
                f"{_labs(k.measured_codes, since)}.valueQuantity.value.first() >= {k.threshold}"
                f" or ((140 - 46) * {weight} / (72 * {scr})) >= {k.threshold}"
            )
        elif isinstance(k, DoseByWeightCheck):
            dosing = policy.policy.dosing
            assert dosing is not None and dosing.per_kg is not None and dosing.vial is not None
            out[cid] = (
                f"({_labs(['29463-7'])}.valueQuantity.value.first()"
                f" * {dosing.per_kg.amount} / {dosing.vial.amount}).ceiling()"
            )
        elif k.kind == "excluded_when_not_met":
            out[cid] = f"({out[k.criterion]}).not()"
        elif k.kind == "history_of_positive":
            out[cid] = (
                f"{_labs(k.codes)}.where(valueQuantity.value >= {k.cutoff} or "
                f"valueCodeableConcept.coding.code in {positive}).exists()"
            )
        else:
            raise SystemExit(f"no FHIRPath peer for check kind {k.kind}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="time per figure per round")
    ap.add_argument("--rounds", type=int, default=5, help="rounds; each figure is their median")
    args = ap.parse_args()

    lib = builtin()
    raw = orjson.dumps(hemgenix_request(name="bench"))
    facts = read_bundle(raw)
    policy = lib.for_request(facts)
    assert policy is not None
    assert policy.evaluate(facts).recommendation == "approve"
    exprs = fhirpath_expressions(policy, facts.as_of)
    compiled = [fhirpath_compile(e, None) for e in exprs.values()]
    for cid, fn in zip(exprs, compiled, strict=True):
        try:
            fn(orjson.loads(raw))
        except Exception as exc:  # a broken peer expression must not pass silently
            raise SystemExit(f"FHIRPath peer for {cid} fails: {exc}\n{exprs[cid]}") from exc

    def end_to_end(validate: bool) -> Callable[[], object]:
        def run() -> object:
            # The one pipeline the service, CLI and public API run (policies.judging).
            det = judge(raw, lib, validate=validate).determination
            assert det is not None
            return det.recommendation

        return run

    def explained() -> object:
        d = policy.evaluate(facts)
        return [(f.reason, f.evidence) for f in (*d.findings.values(), *d.exclusions.values())]

    def fhirpath_peer() -> object:
        bundle = orjson.loads(raw)
        return [fn(bundle) for fn in compiled]

    s = args.seconds
    rounds: list[dict[str, float]] = []
    for _ in range(args.rounds):
        r = {
            "loads": per_call(lambda: orjson.loads(raw), s),
            "evaluate": per_call(lambda: policy.evaluate(facts), s),
            "explained": per_call(explained, s),
            "fast": per_call(end_to_end(False), s),
        }
        r["loads2"] = per_call(lambda: orjson.loads(raw), s)
        r["full"] = per_call(end_to_end(True), s / 2, batches=5)
        r["fhirpath"] = per_call(fhirpath_peer, s / 2, batches=3)
        r["ratio"] = r["fast"] / ((r["loads"] + r["loads2"]) / 2)
        r["peer"] = r["fhirpath"] / r["fast"]
        rounds.append(r)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    def spread(key: str, scale: float, fmt: str) -> str:
        values = sorted(r[key] * scale for r in rounds)
        return f"{format(values[0], fmt)}–{format(values[-1], fmt)}"

    loads = statistics.median([r["loads"] for r in rounds] + [r["loads2"] for r in rounds])
    print(f"priorauth engine benchmark  (Python {platform.python_version()}, {platform.machine()})")
    print(
        f"request bundle: {len(raw):,} bytes, {len(orjson.loads(raw)['entry'])} entries; ", end=""
    )
    print(
        f"{len(policy.criteria)} criteria, {len(exprs)} leaf checks; {args.rounds} rounds, CPU time"
    )
    print(f"{'figure':56s} {'median':>12s}  {'rounds':>15s}")
    rows = [
        ("orjson.loads of the bundle (baseline)", loads * 1e6, "µs", "loads", 1e6, ".1f"),
        ("evaluate already-extracted facts", med("evaluate") * 1e6, "µs", "evaluate", 1e6, ".1f"),
        ("  ... and read every finding's reason and evidence", med("explained") * 1e6, "µs",
         "explained", 1e6, ".1f"),
        ("bundle -> recommendation, no model validation", med("fast") * 1e3, "ms", "fast", 1e3,
         ".3f"),
        ("bundle -> recommendation, fhir.resources validation", med("full") * 1e3, "ms", "full",
         1e3, ".3f"),
        ("FHIRPath peer: loads + one fhirpathpy expression/leaf", med("fhirpath") * 1e3, "ms",
         "fhirpath", 1e3, ".2f"),
    ]  # fmt: skip
    for label, value, unit, key, scale, fmt in rows:
        print(f"{label:56s} {format(value, '9' + fmt)} {unit}  {spread(key, scale, fmt):>15s}")
    print(f"{'ratio: no-validation path / orjson.loads':56s} {med('ratio'):9.2f} ×  "
          f"{spread('ratio', 1, '.2f'):>15s}")  # fmt: skip
    print(f"{'peer: FHIRPath peer / no-validation path (x faster)':56s} {med('peer'):9.0f} ×  "
          f"{spread('peer', 1, '.0f'):>15s}")  # fmt: skip


if __name__ == "__main__":
    main()
