"""The public API behind `priorauth.evaluate`, `load_policies` and `to_dict` (see __init__)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from priorauth.core.result import Determination
from priorauth.errors import InvalidClaims, InvalidRequest, NoPolicyInForce
from priorauth.intake.claims import read_claims
from priorauth.policies import PolicyLibrary, builtin, load_directory, parse_policy
from priorauth.policies.judging import judge

Bundle = bytes | bytearray | memoryview | str | Mapping[str, Any]
Claims = bytes | str | os.PathLike[str] | Iterable[Mapping[str, Any]]


def load_policies(*paths: str | os.PathLike[str], shipped: bool = True) -> PolicyLibrary:
    """A library of the shipped policies (unless `shipped=False`) plus each YAML file or folder.

    Raises PolicyInvalid naming the file and the field of the first policy that breaks the schema.
    """
    lib = builtin() if shipped else PolicyLibrary()
    for p in map(Path, paths):
        if p.is_dir():
            load_directory(p, lib)
        else:
            lib.add(parse_policy(p.read_text(encoding="utf-8"), p.name, lib.codesets), str(p))
    lib.check_overlaps()  # two policies for one payer, plan and service: refused, named
    return lib


@cache
def _shipped() -> PolicyLibrary:
    # Compiled once per process: evaluate() without `policies` is the common call.
    return builtin()


def evaluate(
    bundle: Bundle,
    claims: Claims | None = None,
    as_of: date | None = None,
    *,
    policies: PolicyLibrary | None = None,
    validate: bool = False,
) -> Determination:
    """Judge one Da Vinci PAS request Bundle against the policy in force that covers it.

    `bundle` is the JSON as bytes or text, or the decoded object. `claims` is the payer's
    claims history: NDJSON as bytes or text, a path to an NDJSON file, or decoded
    ExplanationOfBenefit objects; the member's claims are picked by the request's member id.
    `as_of` overrides the review date (default Claim.created). `validate` also checks the
    Bundle against the FHIR R4B models (slow; imports fhir.resources).

    Raises InvalidRequest (the bundle), InvalidClaims (the claims) or NoPolicyInForce (no
    loaded policy in force on the review date covers the requested service).
    """
    data: bytes | str | dict[str, Any]
    if isinstance(bundle, bytes | str | dict):
        data = bundle
    elif isinstance(bundle, Mapping):
        data = dict(bundle)
    elif isinstance(bundle, bytearray | memoryview):
        data = bytes(bundle)
    else:
        raise InvalidRequest(
            f"the request must be JSON text or a JSON object, not {type(bundle).__name__}"
        )
    lookup = None
    if claims is not None:
        index = read_claims(_claim_lines(claims))
        lookup = lambda facts: index.history_for(facts.patient.member_id)  # noqa: E731
    judged = judge(
        data,
        policies if policies is not None else _shipped(),
        claims=lookup,
        as_of=as_of,
        validate=validate,
    )
    if judged.determination is None:
        raise NoPolicyInForce(
            "no loaded policy covers the requested service for this payer and plan on its "
            "date of service"
        )
    return judged.determination


def to_dict(determination: Determination, policies: PolicyLibrary | None = None) -> dict[str, Any]:
    """The determination as the stable JSON object `priorauth.determination/1`.

    The policy's wording comes from the library it was judged with (default: shipped).
    """
    from priorauth.report import determination_to_dict

    lib = policies if policies is not None else _shipped()
    policy = lib.version(determination.policy_id, determination.policy_version)
    if policy is None:
        raise NoPolicyInForce(
            f"{determination.policy_id} version {determination.policy_version} is not loaded "
            "in this library"
        )
    return determination_to_dict(determination, policy)


def _claim_lines(claims: Claims) -> Iterable[bytes | str]:
    if isinstance(claims, bytes):
        return claims.splitlines()
    if isinstance(claims, str):
        return claims.splitlines()
    if isinstance(claims, os.PathLike):
        try:
            return Path(claims).read_bytes().splitlines()
        except OSError as e:
            raise InvalidClaims(f"cannot read {os.fspath(claims)!r}: {e.strerror or e}") from e
    # Decoded objects go through the same reader as a file, so they get the same checks.
    lines = []
    for n, c in enumerate(claims, start=1):
        try:
            lines.append(orjson.dumps(c))
        except TypeError as e:
            raise InvalidClaims(f"not JSON: {e}", f"item {n}") from e
    return lines
