"""The policy library: load policy folders, refuse overlaps, route a request to a version."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from priorauth.core.evaluator import CompiledPolicy, compile_policy
from priorauth.core.facts import Facts, RequestedItem
from priorauth.core.model import PlanDocument, Policy
from priorauth.core.plans import amend, override_for
from priorauth.errors import NoPolicyInForce, PolicyInvalid

PAYERS_FILE = "payers.yaml"
PLANS_FOLDER = "plans"  # benefit plan documents, beside the policies they amend
POLICY_PATH_ENV = "PRIORAUTH_POLICY_PATH"
DEFAULT_PAYER_ENV = "PRIORAUTH_DEFAULT_PAYER"
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_plan(text: str, name: str = "<plan>") -> PlanDocument:
    """Validate one benefit plan document's text."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PolicyInvalid(f"{name}: not YAML: {e}") from e
    try:
        return PlanDocument.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise PolicyInvalid(f"{name}: {loc}: {first['msg']}") from e


CODESETS_FOLDER = "codesets"  # shared code-set files: NAME.yaml maps list names to codes
SharedCodesets = dict[str, dict[str, list[str]]]  # file stem -> list name -> codes
# A code set may be written as a FHIR-like value set: {system: icd10cm, include: [A01, "B02.*"]}.
# Its codes are ICD-10-CM codes and prefixes, the default system of the diagnosis and
# condition kinds, so it expands to the plain list those kinds read.
_VALUE_SET_SYSTEMS = frozenset({"icd10cm", "icd-10-cm", "http://hl7.org/fhir/sid/icd-10-cm"})


def _code_list(value: Any, where: str) -> list[str]:
    """A code set's codes: a list of strings, or a value set {system, include}."""
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return value
    if isinstance(value, dict) and set(value) == {"system", "include"}:
        system, include = value["system"], value["include"]
        if not isinstance(system, str) or system.lower() not in _VALUE_SET_SYSTEMS:
            raise PolicyInvalid(
                f"{where}: a value set's system must be icd10cm (ICD-10-CM), not {system!r}"
            )
        if (
            isinstance(include, list)
            and include
            and all(isinstance(x, str) and x.strip() for x in include)
        ):
            return [x.strip() for x in include]
        raise PolicyInvalid(f"{where}: a value set includes a list of codes and 'X12.*' prefixes")
    raise PolicyInvalid(
        f"{where}: a code set is a list of codes or a value set {{system: icd10cm, include: [...]}}"
    )


def resolve_codesets(raw: Any, name: str, shared: SharedCodesets | None = None) -> Any:
    """Replace every `{codeset: NAME}` by its list, from the policy's own or shared files."""
    if not isinstance(raw, dict):
        return raw
    lookup: dict[str, list[str]] = {}
    for stem in raw.get("codesets_from") or []:
        if not isinstance(stem, str) or stem not in (shared or {}):
            known = ", ".join(sorted(shared or {})) or "none"
            raise PolicyInvalid(
                f"{name}: codesets_from: no code-set file {stem!r} (known: {known})"
            )
        lookup.update((shared or {})[stem])
    own = raw.get("codesets")
    if isinstance(own, dict):
        lookup.update(
            (k, _code_list(v, f"{name}: codesets.{k}") if isinstance(v, dict) else v)
            for k, v in own.items()
        )

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"codeset"}:
                if not isinstance(node["codeset"], str):
                    raise PolicyInvalid(f"{name}: a codeset reference names one list by name")
                found = lookup.get(node["codeset"])
                if found is None:
                    raise PolicyInvalid(f"{name}: no code set named {node['codeset']!r}")
                return list(found)
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out = walk(raw)
    if lookup:
        out["codesets"] = lookup
    return out


def load_codesets(folder: Traversable, into: SharedCodesets) -> None:
    """Every codesets/*.yaml of a policy folder."""
    sets = folder / CODESETS_FOLDER
    if not sets.is_dir():
        return
    for f in sorted(sets.iterdir(), key=lambda e: e.name):
        if not f.name.endswith(".yaml"):
            continue
        try:
            data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise PolicyInvalid(f"{f.name}: not YAML: {e}") from e
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise PolicyInvalid(f"{f.name}: a code-set file maps names to lists of codes")
        into[f.name.removesuffix(".yaml")] = {
            k: _code_list(v, f"{f.name}: {k}") for k, v in data.items()
        }


@functools.cache
def _packaged_codesets() -> tuple[tuple[str, dict[str, list[str]]], ...]:
    found: SharedCodesets = {}
    load_codesets(resources.files("priorauth.policies") / "data", found)
    return tuple(found.items())


def packaged_codesets() -> SharedCodesets:
    """The code-set files shipped beside the packaged policies."""
    return {k: dict(v) for k, v in _packaged_codesets()}


def parse_policy(text: str, name: str = "<policy>", shared: SharedCodesets | None = None) -> Policy:
    """Validate one policy file's text against the schema."""
    try:
        # libyaml's parser when the wheel has it: the pure-Python one costs a cold CLI ~40 ms.
        raw = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as e:
        raise PolicyInvalid(f"{name}: not YAML: {e}") from e
    raw = resolve_codesets(raw, name, packaged_codesets() if shared is None else shared)
    try:
        return Policy.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise PolicyInvalid(f"{name}: {loc}: {first['msg']}") from e


# --- the payer registry -----------------------------------------------------------


class PayerIdentifier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    system: str
    value: str


class Payer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    identifiers: list[PayerIdentifier] = []
    default_approval_days: int | None = Field(
        None, gt=0, description="the authorization window of a policy that states none"
    )


class PayerRegistry(BaseModel):
    """Who the payers are, how a Coverage.payor identifier names them, and the default payer."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    default_payer: str | None = Field(
        None, description="the payer of a request whose Coverage.payor carries no identifier"
    )
    payers: list[Payer] = []


def parse_payers(text: str, name: str = PAYERS_FILE) -> PayerRegistry:
    try:
        return PayerRegistry.model_validate(yaml.safe_load(text) or {})
    except yaml.YAMLError as e:
        raise PolicyInvalid(f"{name}: not YAML: {e}") from e
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise PolicyInvalid(f"{name}: {loc}: {first['msg']}") from e


# --- routing ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """The policy version a request is judged under, and why that one (contract section 7)."""

    policy: CompiledPolicy
    payer: str
    payer_basis: str  # "Coverage.payor identifier SYSTEM|VALUE" or "default payer ..."
    plan: str | None  # the plan the policy is limited to and the request names, if any
    date_of_service: date
    date_basis: str  # "Claim.item[n].servicedDate", "... servicedPeriod.start", "Claim.created"
    plan_document: PlanDocument | None = None  # the member's plan amends the policy
    plan_document_plan: str | None = None  # the plan id through which it applies

    def explain(self) -> str:
        p = self.policy.policy
        plans = f"plan {self.plan}" if self.plan else "every plan"
        why = (
            f"{p.id} version {p.version} (effective {p.effective.isoformat()}): payer {self.payer} "
            f"({self.payer_basis}), {plans}, in force on the date of service "
            f"{self.date_of_service.isoformat()} ({self.date_basis})"
        )
        if self.plan_document is not None:
            why += (
                f"; as amended by the benefit plan document {self.plan_document.title} of plan "
                f"{self.plan_document_plan}, which supersedes {p.number}"
            )
        return why

    def to_dict(self) -> dict[str, Any]:
        doc = self.plan_document
        return {
            "payer": self.payer,
            "payer_basis": self.payer_basis,
            "plan": self.plan,
            "date_of_service": self.date_of_service.isoformat(),
            "date_basis": self.date_basis,
            "plan_document": {"id": doc.id, "title": doc.title, "plan": self.plan_document_plan}
            if doc
            else None,
            "why": self.explain(),
        }


def _service_date(facts: Facts, item: RequestedItem) -> tuple[date, str]:
    if item.serviced is not None:
        return item.serviced, f"Claim.item {item.sequence} date of service"
    if facts.created is not None:
        return facts.created, "Claim.created: the item carries no date of service"
    return facts.as_of, "the review date: the request carries no date of service"


def retired_on(v: CompiledPolicy, successor: CompiledPolicy | None) -> date | None:
    """A version ends where it says, or where its successor takes effect."""
    ends = [d for d in (v.policy.retired, successor.policy.effective if successor else None) if d]
    return min(ends) if ends else None


@dataclass
class PolicyLibrary:
    """Compiled policies by id, each with its versions; routes a request to one version."""

    versions: dict[str, list[CompiledPolicy]] = field(default_factory=dict)
    payers: PayerRegistry = field(default_factory=PayerRegistry)
    sources: dict[tuple[str, str], str] = field(default_factory=dict)  # (id, version) -> file
    plans: dict[str, PlanDocument] = field(default_factory=dict)  # plan document id -> document
    # The shipped code-set files are always there; folders may add more.
    codesets: SharedCodesets = field(default_factory=packaged_codesets)
    _amended: dict[tuple[str, str, str], CompiledPolicy] = field(default_factory=dict)

    def add_plan(self, doc: PlanDocument, source: str = "<plan>") -> None:
        if doc.id in self.plans:
            raise PolicyInvalid(f"{source}: plan document {doc.id} is loaded twice")
        for other in self.plans.values():
            shared = set(doc.plans) & set(other.plans)
            policies = {o.policy for o in doc.overrides} & {o.policy for o in other.overrides}
            ends = [d for d in (doc.retired, other.retired) if d]
            apart = (doc.retired and doc.retired <= other.effective) or (
                other.retired and other.retired <= doc.effective
            )
            if other.payer == doc.payer and shared and policies and not apart:
                raise PolicyInvalid(
                    f"{source}: plan documents {doc.id} and {other.id} both amend "
                    f"{', '.join(sorted(policies))} for plan {', '.join(sorted(shared))}"
                    + (f" (until {min(ends).isoformat()})" if ends else "")
                )
        self.plans[doc.id] = doc

    def amended(self, base: CompiledPolicy, doc: PlanDocument) -> CompiledPolicy:
        """The policy version as the plan document amends it, compiled once."""
        key = (base.policy.id, base.policy.version, doc.id)
        found = self._amended.get(key)
        if found is None:
            try:
                found = compile_policy(amend(base.policy, doc))
            except ValueError as e:
                raise PolicyInvalid(str(e)) from e
            self._amended[key] = found
        return found

    def check_plans(self) -> None:
        """Every plan document amends loaded policies, and each amendment compiles."""
        for doc in self.plans.values():
            for ov in doc.overrides:
                if ov.policy not in self.versions:
                    raise PolicyInvalid(f"plan document {doc.id} amends unknown policy {ov.policy}")
                for v in self.versions[ov.policy]:
                    self.amended(v, doc)

    def _plan_for(
        self, payer: str, policy: Policy, plans: tuple[str, ...], on: date
    ) -> tuple[PlanDocument, str] | None:
        for doc in self.plans.values():
            if doc.payer != payer or override_for(policy, doc) is None:
                continue
            if doc.effective > on or (doc.retired is not None and on >= doc.retired):
                continue
            matched = [x for x in plans if x in doc.plans]
            if matched:
                return doc, matched[0]
        return None

    def add(self, policy: Policy, source: str = "<policy>") -> CompiledPolicy:
        if policy.approval.days is None:
            policy = self._with_payer_default(policy, source)
        compiled = compile_policy(policy)
        vs = self.versions.setdefault(policy.id, [])
        if any(v.policy.effective == policy.effective for v in vs):
            raise PolicyInvalid(f"{policy.id}: two versions take effect on {policy.effective}")
        vs.append(compiled)
        vs.sort(key=lambda v: v.policy.effective)
        self.sources[(policy.id, policy.version)] = source
        return compiled

    def _with_payer_default(self, policy: Policy, source: str) -> Policy:
        payer = next((p for p in self.payers.payers if p.id == policy.applies_to.payer), None)
        if payer is None or payer.default_approval_days is None:
            raise PolicyInvalid(
                f"{source}: approval.days is not stated and payer "
                f"{policy.applies_to.payer!r} has no default_approval_days in payers.yaml"
            )
        approval = policy.approval.model_copy(
            update={"days": payer.default_approval_days, "days_basis": "payer default"}
        )
        return policy.model_copy(update={"approval": approval})

    def version(
        self, policy_id: str | None, version: str | None, plan_document: str | None = None
    ) -> CompiledPolicy | None:
        """A loaded policy version, as the plan document (by id) amends it when one is named;
        None when it is not loaded (or cannot be amended any more)."""
        if policy_id is None or version is None:
            return None
        base = next(
            (v for v in self.versions.get(policy_id, ()) if v.policy.version == version), None
        )
        if base is None or plan_document is None:
            return base
        doc = self.plans.get(plan_document)
        if doc is None:
            return None
        try:
            return self.amended(base, doc)
        except PolicyInvalid:
            return None

    def in_force(self, policy_id: str, on: date) -> CompiledPolicy:
        vs = self.versions.get(policy_id)
        if not vs:
            raise NoPolicyInForce(f"no policy {policy_id!r} is loaded")
        for v in reversed(vs):
            p = v.policy
            if p.effective <= on and (p.retired is None or on < p.retired):
                return v
        raise NoPolicyInForce(f"no version of {policy_id} is in force on {on.isoformat()}")

    def latest(self) -> list[CompiledPolicy]:
        return [vs[-1] for vs in self.versions.values()]

    def _periods(self) -> Iterator[tuple[CompiledPolicy, date, date | None]]:
        for vs in self.versions.values():
            for i, v in enumerate(vs):
                yield v, v.policy.effective, retired_on(v, vs[i + 1] if i + 1 < len(vs) else None)

    def check_overlaps(self) -> None:
        """Two policies in force together for one payer, plan and service are an error."""
        periods = list(self._periods())
        for i, (a, a_from, a_to) in enumerate(periods):
            for b, b_from, b_to in periods[i + 1 :]:
                pa, pb = a.policy, b.policy
                if pa.id == pb.id or pa.applies_to.payer != pb.applies_to.payer:
                    continue
                if (a_to is not None and a_to <= b_from) or (b_to is not None and b_to <= a_from):
                    continue
                plans_a, plans_b = set(pa.applies_to.plans), set(pb.applies_to.plans)
                if plans_a and plans_b and not plans_a & plans_b:
                    continue
                shared = sorted(a.service_codes() & b.service_codes())
                if shared:
                    codes = ", ".join(shared[:3]) + (
                        f" and {len(shared) - 3} more" if len(shared) > 3 else ""
                    )
                    raise PolicyInvalid(
                        f"{self.sources[(pa.id, pa.version)]} ({pa.id} {pa.version}) and "
                        f"{self.sources[(pb.id, pb.version)]} ({pb.id} {pb.version}) both cover "
                        f"{codes} for payer {pa.applies_to.payer} "
                        f"({_plans_text(plans_a, plans_b)}) at the same time"
                    )

    def payer_of(self, facts: Facts) -> tuple[str, str] | None:
        """The request's payer id and how it was found; None when the identifier is unknown."""
        if facts.payer is None:
            default = self.payers.default_payer
            if default is None:
                return None
            return default, "default payer: the Coverage.payor carries no identifier"
        system, value = facts.payer
        for payer in self.payers.payers:
            for ident in payer.identifiers:
                if ident.system == system and ident.value == value:
                    return payer.id, f"Coverage.payor identifier {system}|{value}"
        return None

    def route(self, facts: Facts) -> Route | None:
        """The version in force on the date of service of the payer's policy for this service.

        None when the payer is unknown or no policy of it covers the service for the
        member's plan on that date: such a request is pended for manual review.
        """
        found = self.payer_of(facts)
        if found is None:
            return None
        payer, payer_basis = found
        routes: list[Route] = []
        for vs in self.versions.values():
            for i, v in enumerate(vs):
                p = v.policy
                if p.applies_to.payer != payer:
                    continue
                plan = None
                if p.applies_to.plans:
                    matched = [x for x in facts.plans if x in p.applies_to.plans]
                    if not matched:
                        continue
                    plan = matched[0]
                item = v.requested_item(facts)
                if item is None:
                    continue
                when, basis = _service_date(facts, item)
                ends = retired_on(v, vs[i + 1] if i + 1 < len(vs) else None)
                if p.effective <= when and (ends is None or when < ends):
                    routes.append(Route(v, payer, payer_basis, plan, when, basis))
        if len(routes) > 1:  # check_overlaps at load time makes this unreachable
            names = ", ".join(f"{r.policy.policy.id} {r.policy.policy.version}" for r in routes)
            raise PolicyInvalid(f"more than one policy covers this request: {names}")
        if not routes:
            return None
        route = routes[0]
        found_plan = self._plan_for(payer, route.policy.policy, facts.plans, route.date_of_service)
        if found_plan is None:
            return route
        doc, plan_id = found_plan
        return dataclasses.replace(
            route,
            policy=self.amended(route.policy, doc),
            plan_document=doc,
            plan_document_plan=plan_id,
        )

    def for_request(self, facts: Facts) -> CompiledPolicy | None:
        """The policy version that governs the request, or None (see `route`)."""
        found = self.route(facts)
        return found.policy if found else None


def _plans_text(a: set[str], b: set[str]) -> str:
    if not a and not b:
        return "every plan"
    shared = (a & b) if a and b else (a or b)
    return "plan " + ", ".join(sorted(shared))


# --- loading ------------------------------------------------------------------------


def _policy_files(folder: Traversable) -> list[Traversable]:
    return sorted(
        (e for e in folder.iterdir() if e.name.endswith(".yaml") and e.name != PAYERS_FILE),
        key=lambda e: e.name,
    )


def _merge_payers(into: PayerRegistry, more: PayerRegistry) -> PayerRegistry:
    known = {p.id: p for p in into.payers}
    known.update({p.id: p for p in more.payers})
    return PayerRegistry(
        default_payer=more.default_payer or into.default_payer, payers=list(known.values())
    )


def load_folders(folders: Iterable[Traversable], default_payer: str | None = None) -> PolicyLibrary:
    """Every policy and payer registry in `folders`, checked for overlaps."""
    lib = PolicyLibrary()
    for folder in folders:
        if not folder.is_dir():
            raise PolicyInvalid(f"{folder}: not a folder of policy files")
        payers = folder / PAYERS_FILE
        if payers.is_file():
            lib.payers = _merge_payers(
                lib.payers, parse_payers(payers.read_text(encoding="utf-8"), str(payers))
            )
        load_codesets(folder, lib.codesets)
        for f in _policy_files(folder):
            lib.add(parse_policy(f.read_text(encoding="utf-8"), f.name, lib.codesets), str(f))
        _load_plans(folder, lib)
    if default_payer:
        lib.payers = PayerRegistry(default_payer=default_payer, payers=lib.payers.payers)
    lib.check_overlaps()
    lib.check_plans()
    return lib


def _load_plans(folder: Traversable, lib: PolicyLibrary) -> None:
    plans = folder / PLANS_FOLDER
    if plans.is_dir():
        for f in _policy_files(plans):
            lib.add_plan(parse_plan(f.read_text(encoding="utf-8"), f.name), str(f))


def packaged_folder() -> Traversable:
    return resources.files("priorauth.policies") / "data"


def policy_path(env: str | None = None) -> list[Path]:
    """The folders named in PRIORAUTH_POLICY_PATH (os.pathsep-separated)."""
    raw = os.environ.get(POLICY_PATH_ENV, "") if env is None else env
    return [Path(p) for p in raw.split(os.pathsep) if p.strip()]


def load_library(
    extra: Iterable[Path] = (), default_payer: str | None = None, packaged: bool = True
) -> PolicyLibrary:
    """The packaged policies, then each folder of `extra` (e.g. PRIORAUTH_POLICY_PATH)."""
    folders: list[Traversable] = [packaged_folder()] if packaged else []
    folders.extend(extra)
    return load_folders(folders, default_payer)


def load_directory(path: Path, library: PolicyLibrary | None = None) -> PolicyLibrary:
    """A folder of policies, on top of `library` (whose policies and payers are kept)."""
    lib = library or PolicyLibrary()
    payers = path / PAYERS_FILE
    if payers.is_file():
        lib.payers = _merge_payers(lib.payers, parse_payers(payers.read_text(encoding="utf-8")))
    load_codesets(path, lib.codesets)
    for f in _policy_files(path):
        lib.add(parse_policy(f.read_text(encoding="utf-8"), f.name, lib.codesets), str(f))
    _load_plans(path, lib)
    lib.check_overlaps()
    lib.check_plans()
    return lib


def builtin() -> PolicyLibrary:
    """The policies shipped inside the package, with the shipped payer registry."""
    return load_library()


def configured(extra: Iterable[Path] = ()) -> PolicyLibrary:
    """What a deployment loads: packaged policies, PRIORAUTH_POLICY_PATH, then `extra`."""
    return load_library(
        [*policy_path(), *extra], default_payer=os.environ.get(DEFAULT_PAYER_ENV) or None
    )


def load_one(spec: str, library: PolicyLibrary) -> CompiledPolicy:
    """A policy named as FILE, ID or ID@VERSION (the latest version when none is given)."""
    path = Path(spec)
    if spec.endswith((".yaml", ".yml")) or path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise PolicyInvalid(f"cannot read {spec!r}: {e.strerror or e}") from e
        shared = dict(library.codesets)
        load_codesets(path.parent, shared)
        return compile_policy(parse_policy(text, path.name, shared))
    pid, _, version = spec.partition("@")
    if pid not in library.versions:
        known = ", ".join(sorted(library.versions)) or "none"
        raise NoPolicyInForce(f"no policy {pid!r} is loaded; loaded: {known}")
    if not version:
        return library.versions[pid][-1]
    found = library.version(pid, version)
    if found is None:
        known = ", ".join(v.policy.version for v in library.versions[pid])
        raise NoPolicyInForce(f"{pid} has no version {version!r}; versions: {known}")
    return found
