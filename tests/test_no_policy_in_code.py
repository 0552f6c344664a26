"""Nothing outside the policy data names a drug, a policy, a disease, or assumes a kit.

The policy files (`policies/data/`), their test cases (`policies/cases/`) and the demo
(`demo/`, whose requests are made for the shipped policy) may; every other file of the package,
code, templates and style sheets alike, must work for a drug of any dosing unit.
"""

from __future__ import annotations

import re
from pathlib import Path

import priorauth

PACKAGE = Path(priorauth.__file__).parent
DATA = ("policies/data/", "policies/cases/", "demo/", "ui/static/htmx.min.js")
# Drug, policy and disease names of the shipped policies, their billing and diagnosis codes,
# and the Hemgenix labeler's NDC prefix: the words of a policy, never of the engine.
NAMES = re.compile(
    r"hemgenix|etranacogene|beqvez|fidanacogene|roctavian|valoctocogene|spinraza|nusinersen"
    r"|\bip0535\b|bcbsnd|\bcigna\b|factor\s*(ix|viii|9|8)\b|h(a)?emophilia|hepatitis"
    r"|gene therap|\bJ141[1-4]\b|\bJ2326\b|\bD6[67]\b|\b0053-0",
    re.IGNORECASE,
)
# "kit" may appear only as one billing unit among others, or in the readers of files and
# rows written before the authorized-service model (they say "before" on the same line).
KIT = re.compile(r"\bkits?\b", re.IGNORECASE)
OTHER_UNITS = re.compile(r"\bvials?\b|\bmL\b|\bmg\b|\bdoses?\b|\bcarton|\bpackages?\b|before")


def _files() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*")
        if p.is_file()
        and p.suffix in {".py", ".html", ".css", ".js", ".txt", ".md"}
        and not any(p.relative_to(PACKAGE).as_posix().startswith(d) for d in DATA)
    )


def _where(pattern: re.Pattern[str], unless: re.Pattern[str] | None = None) -> list[str]:
    found = []
    for path in _files():
        rel = path.relative_to(PACKAGE).as_posix()
        if unless is not None and rel.startswith("store/migrations/"):
            continue  # the schema's history: old rows were kits
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line) and not (unless and unless.search(line)):
                found.append(f"{rel}:{n}: {line.strip()}")
    return found


def test_the_files_are_found() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in _files()}
    assert {"core/evaluator.py", "ui/templates/case.html", "pas/notes.py"} <= names
    assert not any(n.startswith("policies/data/") for n in names)


def test_no_drug_policy_or_disease_is_named_outside_the_policy_data() -> None:
    assert _where(NAMES) == []


def test_no_kit_only_wording_outside_the_policy_data() -> None:
    assert _where(KIT, OTHER_UNITS) == []


def test_the_patterns_catch_what_they_are_for() -> None:
    assert NAMES.search("Approve the Hemgenix kit") and NAMES.search("Factor IX inhibitor")
    assert NAMES.search("HCPCS J1411") and NAMES.search("NDC 0053-0180-18")
    assert not NAMES.search("Approve the right product or quantity")
    assert KIT.search("Approve with the right kit") and not OTHER_UNITS.search("the right kit")
    assert OTHER_UNITS.search("the billing unit: kit, vial, mL")
