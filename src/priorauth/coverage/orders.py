"""Which draft orders ask for a service a loaded policy governs (NDC, HCPCS or name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from priorauth.core.codes import ndc11
from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import HCPCS, NDC

Json = dict[str, Any]
# CMS publishes HCPCS under two system URIs; EHR orders use either.
HCPCS_SYSTEMS = frozenset({HCPCS, "https://bluebutton.cms.gov/resources/codesystem/hcpcs"})


@dataclass(frozen=True, slots=True)
class Service:
    """How one policy's `service` data recognizes an order."""

    policy: CompiledPolicy
    hcpcs: frozenset[str]
    ndcs: frozenset[str]  # 11-digit
    names: tuple[str, ...]

    @classmethod
    def of(cls, policy: CompiledPolicy) -> Service:
        data = policy.policy.service
        ndcs = {n for n in (ndc11(x) for x in data.ndc) if n}
        if data.include_product_ndcs:
            ndcs |= policy.product_ndcs
        return cls(policy, frozenset(data.hcpcs), frozenset(ndcs), tuple(data.names))

    def matches(self, order: Json) -> bool:
        for concept in _concepts(order):
            for coding in concept.get("coding") or ():
                if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
                    continue
                system, code = coding.get("system"), coding["code"]
                if system == NDC and ndc11(code) in self.ndcs:
                    return True
                if system in HCPCS_SYSTEMS and code in self.hcpcs:
                    return True
                if self._named(coding.get("display")):
                    return True
            if self._named(concept.get("text")):
                return True
        return False

    def _named(self, text: object) -> bool:
        if not isinstance(text, str):
            return False
        low = text.lower()
        return any(name in low for name in self.names)


@dataclass(frozen=True, slots=True)
class OrderMatch:
    order: Json
    service: Service

    @property
    def reference(self) -> str:
        return f"{self.order['resourceType']}/{self.order.get('id', '')}"


def match_orders(
    orders: list[Json], services: list[Service], selected: set[str] | None = None
) -> list[OrderMatch]:
    """The MedicationRequests some policy governs; with `selected`, only those chosen."""
    out = []
    for order in orders:
        if order.get("resourceType") != "MedicationRequest":
            continue
        if selected is not None and f"MedicationRequest/{order.get('id')}" not in selected:
            continue
        for service in services:
            if service.matches(order):
                out.append(OrderMatch(order, service))
                break
    return out


def _concepts(order: Json) -> list[Json]:
    """The medication concept, including a contained Medication's code."""
    found = []
    concept = order.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        found.append(concept)
    ref = order.get("medicationReference")
    if isinstance(ref, dict):
        target = ref.get("reference")
        if isinstance(target, str) and target.startswith("#"):
            for inner in order.get("contained") or ():
                if (
                    isinstance(inner, dict)
                    and inner.get("id") == target[1:]
                    and isinstance(inner.get("code"), dict)
                ):
                    found.append(inner["code"])
        if isinstance(ref.get("display"), str):
            found.append({"text": ref["display"]})
    return found
