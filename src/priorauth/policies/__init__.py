"""Policy files shipped with priorauth, and the loader that picks the version in force."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from priorauth.core.evaluator import CompiledPolicy, compile_policy
from priorauth.core.facts import Facts
from priorauth.core.model import Policy
from priorauth.errors import NoPolicyInForce, PolicyInvalid

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_policy(text: str, name: str = "<policy>") -> Policy:
    """Validate one policy file's text against the schema."""
    try:
        # libyaml's parser when the wheel has it: the pure-Python one costs a cold CLI ~40 ms.
        raw = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as e:
        raise PolicyInvalid(f"{name}: not YAML: {e}") from e
    try:
        return Policy.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise PolicyInvalid(f"{name}: {loc}: {first['msg']}") from e


@dataclass
class PolicyLibrary:
    """Compiled policies by id, each with its versions; picks the one in force on a date."""

    versions: dict[str, list[CompiledPolicy]] = field(default_factory=dict)

    def add(self, policy: Policy) -> CompiledPolicy:
        compiled = compile_policy(policy)
        vs = self.versions.setdefault(policy.id, [])
        if any(v.policy.effective == policy.effective for v in vs):
            raise PolicyInvalid(f"{policy.id}: two versions take effect on {policy.effective}")
        vs.append(compiled)
        vs.sort(key=lambda v: v.policy.effective)
        return compiled

    def in_force(self, policy_id: str, on: date) -> CompiledPolicy:
        vs = self.versions.get(policy_id)
        if not vs:
            raise NoPolicyInForce(f"no policy {policy_id!r} is loaded")
        for v in reversed(vs):
            p = v.policy
            if p.effective <= on and (p.retired is None or on < p.retired):
                return v
        raise NoPolicyInForce(f"no version of {policy_id} is in force on {on.isoformat()}")

    def for_request(self, facts: Facts, on: date | None = None) -> CompiledPolicy | None:
        """The policy in force that covers the requested service, or None."""
        when = on or facts.as_of
        for pid in self.versions:
            try:
                v = self.in_force(pid, when)
            except NoPolicyInForce:
                continue
            if v.covers(facts):
                return v
        return None

    def latest(self) -> list[CompiledPolicy]:
        return [vs[-1] for vs in self.versions.values()]


def load_directory(path: Path, library: PolicyLibrary | None = None) -> PolicyLibrary:
    lib = library or PolicyLibrary()
    for f in sorted(path.glob("*.yaml")):
        lib.add(parse_policy(f.read_text(encoding="utf-8"), f.name))
    return lib


def builtin() -> PolicyLibrary:
    """The policies shipped inside the package."""
    lib = PolicyLibrary()
    data = resources.files("priorauth.policies") / "data"
    for entry in sorted(data.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            lib.add(parse_policy(entry.read_text(encoding="utf-8"), entry.name))
    return lib
