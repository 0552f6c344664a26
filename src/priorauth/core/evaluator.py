"""Compile a policy once; evaluate it against facts many times.

`compile_policy` checks the policy's internal references, orders the leaf
checks so that a check reading another criterion's finding runs after it, and
turns every check into a function. `CompiledPolicy.evaluate` is then a pure
function of (facts, review date) to a `Determination`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from priorauth.core.checks import COMPILERS, DEPENDENCIES, CheckFn, CompileContext, State
from priorauth.core.codes import ndc11
from priorauth.core.facts import HCPCS, NDC, Facts, RequestedItem
from priorauth.core.model import Criterion, Policy, walk
from priorauth.core.result import (
    MET,
    NOT_MET,
    UNKNOWN,
    Determination,
    Finding,
    KitChoice,
    Recommendation,
    Requested,
    Status,
    Unmet,
)
from priorauth.errors import PolicyInvalid


@dataclass(frozen=True, slots=True)
class _Group:
    id: str
    combine: str
    children: tuple[str, ...]


class CompiledPolicy:
    """A policy ready to evaluate. Build with `compile_policy`."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        kits: dict[int, KitChoice] = {}
        if policy.dosing is not None:
            kits = {k.vials: KitChoice(k.vials, k.ndc) for k in policy.dosing.kits}
        kit_ndcs = frozenset(n for n in (ndc11(k.ndc) for k in kits.values()) if n)
        ctx = CompileContext(policy, kits, kit_ndcs)
        self.kits = kits
        self.criteria: dict[str, Criterion] = {
            c.id: c for c in walk(policy.criteria + policy.exclusions)
        }
        self.order = list(self.criteria)
        self._leaves = self._compile_leaves(ctx)
        # Groups bottom-up: a parent's children are always judged before it.
        self._groups = [
            _Group(c.id, c.combine or "all", tuple(ch.id for ch in c.children))
            for c in reversed(walk(policy.criteria + policy.exclusions))
            if c.children
        ]
        self._top = tuple(c.id for c in policy.criteria)
        self._exclusions = tuple(c.id for c in policy.exclusions)
        self._criteria_order = tuple(i for i in self.order if i not in self._exclusions)
        self._kit_id = next(
            (c.id for c in self.criteria.values() if c.check and c.check.kind == "kit_by_weight"),
            None,
        )
        self._service_hcpcs = frozenset(policy.service.hcpcs)
        self._service_ndcs = frozenset(n for n in (ndc11(x) for x in policy.service.ndc) if n) | (
            kit_ndcs if policy.service.include_kit_ndcs else frozenset()
        )
        if policy.approval.days is None:
            raise PolicyInvalid(
                f"{policy.id} {policy.version}: approval.days is not stated and no payer "
                "default was applied"
            )
        self._approval_days = policy.approval.days

    def _compile_leaves(self, ctx: CompileContext) -> list[tuple[str, CheckFn]]:
        leaves = [c for c in self.criteria.values() if c.check is not None]
        deps: dict[str, list[str]] = {}
        for c in leaves:
            assert c.check is not None
            dep = DEPENDENCIES.get(c.check.kind)
            need = dep(c.check) if dep else []
            for d in need:
                target = self.criteria.get(d)
                if target is None:
                    raise PolicyInvalid(f"{c.id} refers to criterion {d}, which does not exist")
                if target.check is None:
                    raise PolicyInvalid(f"{c.id} refers to {d}, which is a group, not a check")
            deps[c.id] = need
        ordered: list[str] = []
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(cid: str) -> None:
            if state.get(cid) == 2:
                return
            if state.get(cid) == 1:
                raise PolicyInvalid(f"criteria refer to each other in a cycle through {cid}")
            state[cid] = 1
            for d in deps[cid]:
                visit(d)
            state[cid] = 2
            ordered.append(cid)

        for c in leaves:
            visit(c.id)
        out = []
        for cid in ordered:
            check = self.criteria[cid].check
            assert check is not None
            try:
                out.append((cid, COMPILERS[check.kind](cid, check, ctx)))
            except ValueError as e:
                raise PolicyInvalid(str(e)) from e
        return out

    def service_codes(self) -> frozenset[str]:
        """The billing codes this policy governs, as "HCPCS J1411" / "NDC 00053015015"."""
        return frozenset(f"HCPCS {c}" for c in self._service_hcpcs) | frozenset(
            f"NDC {n}" for n in self._service_ndcs
        )

    def covers(self, facts: Facts) -> bool:
        """True when the request asks for the service this policy governs."""
        return self.requested_item(facts) is not None

    def requested_item(self, facts: Facts) -> RequestedItem | None:
        for item in facts.items:
            for system, code in item.codes:
                if system == HCPCS and code in self._service_hcpcs:
                    return item
                if system == NDC and ndc11(code) in self._service_ndcs:
                    return item
            if item.ndc and ndc11(item.ndc) in self._service_ndcs:
                return item
        return None

    def evaluate(self, facts: Facts, as_of: date | None = None) -> Determination:
        """Judge every criterion and recommend. Pure: no I/O, no clock."""
        st = State(as_of or facts.as_of)
        findings = st.findings
        for cid, fn in self._leaves:
            findings[cid] = fn(facts, st)
        for g in self._groups:
            findings[g.id] = _combine(g, findings)
        return self._determine(facts, st.as_of, findings)

    def _determine(self, facts: Facts, as_of: date, findings: dict[str, Finding]) -> Determination:
        top = [findings[i].status for i in self._top]
        excl = [findings[i].status for i in self._exclusions]
        item = self.requested_item(facts)
        requested = Requested(
            item.ndc if item else None,
            item.quantity if item else None,
            item.sequence if item else None,
        )
        kit = None
        if self._kit_id is not None and findings[self._kit_id].status == MET:
            kit = self.kits.get(int(findings[self._kit_id].value or 0))
        rec: Recommendation
        if MET in excl or NOT_MET in top:
            rec = "deny"
        elif UNKNOWN in top or UNKNOWN in excl:
            rec = "pend"
        elif _modified(requested, kit):
            rec = "approve-modified"
        else:
            rec = "approve"
        authorization = None
        if rec in ("approve", "approve-modified"):
            # A window of `days` days that starts on, and counts, the decision date.
            authorization = (as_of, as_of + timedelta(days=self._approval_days - 1))
        return Determination(
            policy_id=self.policy.id,
            policy_version=self.policy.version,
            as_of=as_of,
            recommendation=rec,
            findings={i: findings[i] for i in self._criteria_order},
            exclusions={i: findings[i] for i in self._exclusions},
            kit=kit,
            requested=requested,
            authorization=authorization,
            missing=self._missing(findings),
            reasons=self._reasons(findings),
            medical_director_review=self.policy.approval.medical_director_review == "all"
            or (self.policy.approval.medical_director_review == "denials" and rec == "deny"),
            expedited=facts.expedited,
        )

    def _missing(self, findings: dict[str, Finding]) -> list[str]:
        out: list[str] = []
        if not any(findings[i].status == UNKNOWN for i in self._top + self._exclusions):
            return out

        def visit(c: Criterion) -> None:
            if findings[c.id].status != UNKNOWN:
                return
            if c.children and c.combine == "all":
                for ch in c.children:
                    visit(ch)
                return
            text = c.request or c.text
            if text not in out:
                out.append(text)

        for c in self.policy.criteria + self.policy.exclusions:
            visit(c)
        return out

    def _reasons(self, findings: dict[str, Finding]) -> list[Unmet]:
        out: list[Unmet] = []
        if not any(findings[i].status == MET for i in self._exclusions) and not any(
            findings[i].status == NOT_MET for i in self._top
        ):
            return out

        def visit(c: Criterion) -> None:
            f = findings[c.id]
            if f.status != NOT_MET:
                return
            if c.children and c.combine == "all":
                for ch in c.children:
                    visit(ch)
                return
            out.append(Unmet(c.id, c.text, f.reason))

        for c in self.policy.criteria:
            visit(c)
        for c in self.policy.exclusions:
            if findings[c.id].status == MET:
                out.append(Unmet(c.id, c.text, findings[c.id].reason))
        return out


def _modified(requested: Requested, kit: KitChoice | None) -> bool:
    if requested.quantity is not None and requested.quantity != 1:
        return True
    if requested.ndc is None or kit is None:
        return False
    return ndc11(requested.ndc) != ndc11(kit.ndc)


def _combine(g: _Group, findings: dict[str, Finding]) -> Finding:
    statuses = [findings[i].status for i in g.children]
    status: Status
    if g.combine == "all":
        status = NOT_MET if NOT_MET in statuses else UNKNOWN if UNKNOWN in statuses else MET
    else:
        status = MET if MET in statuses else UNKNOWN if UNKNOWN in statuses else NOT_MET
    return Finding(g.id, status, lambda: _group_reason(g, status, statuses))


def _group_reason(g: _Group, status: Status, statuses: list[Status]) -> str:
    which = ", ".join(i for i, s in zip(g.children, statuses, strict=True) if s == status)
    names = ", ".join(g.children)
    if g.combine == "all":
        word = {NOT_MET: "not met", UNKNOWN: "unknown", MET: "met"}[status]
        return f"ALL of {names}: " + ("all met." if status == MET else f"{which} {word}.")
    return (
        f"ONE of {names}: "
        + {
            MET: f"{which} met.",
            UNKNOWN: f"none met; {which} unknown.",
            NOT_MET: "none met.",
        }[status]
    )


def compile_policy(policy: Policy) -> CompiledPolicy:
    """Compile once; the result is immutable in use and safe to share between threads."""
    return CompiledPolicy(policy)
