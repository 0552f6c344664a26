"""Code matching shared by checks and the determination: systems, code keys, ICD-10-CM, NDCs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from priorauth.core.facts import CPT, HCPCS, ICD10CM, LOINC, NDC, NUCC, SNOMED


@dataclass(frozen=True, slots=True)
class IcdPatterns:
    """ICD-10-CM codes where 'B17.1*' is a prefix; compared without dots, upper-case."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, patterns: Iterable[str], aliases: Mapping[str, str] | None = None) -> IcdPatterns:
        """From a policy's list (`icd10cm|B17.1*` or bare); other systems' codes are left out."""
        exact: set[str] = set()
        prefixes: list[str] = []
        for token in patterns:
            system, p = parse_code(token, ICD10CM, aliases) if "|" in token else (ICD10CM, token)
            if system != ICD10CM:
                continue  # a Condition is matched on its ICD-10-CM codings only
            q = _flat(p)
            if q.endswith("*"):
                prefixes.append(q[:-1])
            else:
                exact.add(q)
        return cls(frozenset(exact), tuple(prefixes))

    def match(self, code: str) -> bool:
        c = _flat(code)
        return c in self.exact or c.startswith(self.prefixes)


@lru_cache(maxsize=4096)
def _flat(code: str) -> str:
    return code.strip().upper().replace(".", "")


@lru_cache(maxsize=4096)
def ndc11(code: str) -> str | None:
    """An NDC as 11 digits (5-4-2), or None when it cannot be read without guessing.

    Hyphenated 4-4-2, 5-3-2 and 5-4-1 forms pad the short segment; a bare
    11-digit string is taken as is. A bare 10-digit string is ambiguous.
    """
    s = code.strip()
    if "-" in s:
        parts = s.split("-")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            return None
        a, b, c = parts
        if (len(a), len(b), len(c)) not in {(4, 4, 2), (5, 3, 2), (5, 4, 1), (5, 4, 2)}:
            return None
        return a.zfill(5) + b.zfill(4) + c.zfill(2)
    return s if len(s) == 11 and s.isdigit() else None


# --- codes that name their system ------------------------------------------------

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
# The aliases every policy may use in a `SYSTEM|CODE` token; a policy's `systems:` adds more.
ALIASES: dict[str, str] = {
    "loinc": LOINC,
    "snomed": SNOMED,
    "icd10cm": ICD10CM,
    "hcpcs": HCPCS,
    "cpt": CPT,
    "ndc": NDC,
    "nucc": NUCC,
    "rxnorm": RXNORM,
}
_NAMES = {url: alias for alias, url in ALIASES.items()}
_SHOWN = {LOINC: "LOINC", ICD10CM: "ICD-10-CM", SNOMED: "SNOMED CT", HCPCS: "HCPCS", CPT: "CPT",
          NDC: "NDC", NUCC: "NUCC", RXNORM: "RxNorm"}  # fmt: skip


def code_key(system: str, code: str) -> str:
    """The key a result is indexed under: the bare code for LOINC, else "SYSTEM-URL|code"."""
    return code if system == LOINC else f"{system}|{code}"


def is_bare(token: str) -> bool:
    """A code written without its system (it means the check kind's default system)."""
    return "|" not in token


def parse_code(
    token: str, default: str, aliases: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """(system URL, code) of a policy's `SYSTEM|CODE` token; a bare code is in `default`.

    SYSTEM is an alias (the policy's own first, then the built-in ones) or a URL/URN.
    """
    system, sep, code = token.partition("|")
    if not sep:
        return default, token
    url = aliases.get(system) if aliases else None
    if url is None:
        url = ALIASES.get(system)
    if url is None:
        if ":" not in system:
            known = ", ".join(sorted({*ALIASES, *(aliases or {})}))
            raise ValueError(f"{token}: unknown code system {system!r} (aliases: {known})")
        url = system
    if not code:
        raise ValueError(f"{token}: no code after the system")
    return url, code


def parse_codes(
    tokens: Iterable[str], default: str, aliases: Mapping[str, str] | None = None
) -> tuple[tuple[str, str], ...]:
    return tuple(parse_code(t, default, aliases) for t in tokens)


def code_keys(
    tokens: Iterable[str], default: str, aliases: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The keys (see `code_key`) of a policy's code list, in its order, without repeats."""
    keys = (code_key(*parse_code(t, default, aliases)) for t in tokens)
    return tuple(dict.fromkeys(keys))


def codes_of(
    tokens: Iterable[str], system: str, aliases: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The codes of a list that are in `system` (a bare code is): e.g. the NUCC codes."""
    return tuple(c for s, c in parse_codes(tokens, system, aliases) if s == system)


def shown_codes(pairs: Iterable[tuple[str, str]]) -> str:
    """Codes as a sentence names them: 'LOINC 1742-6/1744-2', 'CPT 76705; LOINC 24558-9'."""
    by_system: dict[str, list[str]] = {}
    for system, code in pairs:
        by_system.setdefault(system, []).append(code)
    parts = []
    for system, codes in by_system.items():
        name = _SHOWN.get(system)
        if name is None:
            parts.append(", ".join(f"{system}|{c}" for c in codes))
        else:
            parts.append(f"{name} {'/'.join(codes)}")
    return "; ".join(parts)


def system_name(system: str) -> str:
    """The alias of a system URL when it has one, else the URL."""
    return _NAMES.get(system, system)


# Which system a bare code of a check's list means: by field, then by kind.
_FIELD_DEFAULTS = {"conditions": ICD10CM, "taxonomies": NUCC, "hcpcs": HCPCS, "ndc": NDC}
ICD_KINDS = frozenset({"diagnosis", "no_condition"})
CODE_FIELDS = ("codes", "measured_codes", "creatinine_codes", "viral_load", *_FIELD_DEFAULTS)


def default_system(kind: str, field: str) -> str:
    """The system a bare code means in `field` of a check of `kind`."""
    found = _FIELD_DEFAULTS.get(field)
    if found is not None:
        return found
    if kind in _KIND_DEFAULTS:
        return _KIND_DEFAULTS[kind]
    return ICD10CM if kind in ICD_KINDS else LOINC


# Kinds whose bare `codes` are not laboratory codes.
_KIND_DEFAULTS = {"has_medication": RXNORM, "has_claims": HCPCS}


def code_lists(check: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], list[str], str]]:
    """(path in the check, codes, default system) of every code list of a dumped check."""
    kind = str(check.get("kind", ""))
    for field in CODE_FIELDS:
        value = check.get(field)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            yield (field,), value, default_system(kind, field)
    for i, panel in enumerate(check.get("panels") or ()):
        if isinstance(panel, Mapping):
            for field in ("codes", "viral_load"):
                value = panel.get(field)
                if isinstance(value, list):
                    yield ("panels", i, field), value, LOINC


def system_url(system: str) -> str:
    """The URL of a built-in system alias ("hcpcs"); a URL is returned as it is."""
    return ALIASES.get(system.strip().lower(), system)
