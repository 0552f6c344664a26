"""Code matching shared by checks and the determination: ICD-10-CM patterns and NDCs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class IcdPatterns:
    """ICD-10-CM codes where 'B17.1*' is a prefix; compared without dots, upper-case."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, patterns: Iterable[str]) -> IcdPatterns:
        exact: set[str] = set()
        prefixes: list[str] = []
        for p in patterns:
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


# The code systems a policy may name by alias in a SYSTEM|CODE token.
SYSTEM_ALIASES = {
    "loinc": "http://loinc.org",
    "snomed": "http://snomed.info/sct",
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "hcpcs": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "cpt": "http://www.ama-assn.org/go/cpt",
    "ndc": "http://hl7.org/fhir/sid/ndc",
    "nucc": "http://nucc.org/provider-taxonomy",
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
}


def system_url(system: str) -> str:
    """The URL of a system alias ("hcpcs"); a URL is returned as it is."""
    return SYSTEM_ALIASES.get(system.strip().lower(), system)
