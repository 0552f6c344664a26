"""Compile a policy once; evaluate it against facts many times.

`compile_policy` checks the policy's internal references, orders the leaf
checks so that a check reading another criterion's finding runs after it, and
turns every check into a function. `CompiledPolicy.evaluate` is then a pure
function of (facts, review date) to a `Determination`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import TypeVar

from priorauth.core.checks import (
    COMPILERS,
    DEPENDENCIES,
    INLINE,
    CheckFn,
    CompileContext,
    State,
)
from priorauth.core.checks.common import EPS, unanswered
from priorauth.core.codes import ndc11
from priorauth.core.dose import Dose, DoseRule
from priorauth.core.facts import CPT, HCPCS, NDC, Facts, RequestedItem
from priorauth.core.model import Criterion, DoseByWeightCheck, Policy, walk
from priorauth.core.result import (
    MET,
    NOT_MET,
    UNKNOWN,
    Combined,
    Determination,
    Finding,
    Findings,
    Raw,
    Recommendation,
    Requested,
    Status,
    Unmet,
)
from priorauth.errors import PolicyInvalid

T = TypeVar("T")


class CompiledPolicy:
    """A policy ready to evaluate. Build with `compile_policy`."""

    def __init__(self, policy: Policy, *, inline: bool = True) -> None:
        # inline=False calls every compiled check (no fast path written into the
        # generated code): the reference the inline paths are tested against.
        self.policy = policy
        self.dose_rule = DoseRule(policy.dosing) if policy.dosing is not None else None
        products = policy.dosing.products if policy.dosing is not None else []
        # Every product the dosing names, as 11 digits (the request's NDC is compared so).
        self.product_ndcs = frozenset(n for n in (ndc11(p.ndc) for p in products) if n)
        ctx = CompileContext(policy, self.dose_rule, self.product_ndcs)
        self.criteria: dict[str, Criterion] = {
            c.id: c for c in walk(policy.criteria + policy.exclusions)
        }
        self.order = list(self.criteria)
        self._leaves = self._compile_leaves(ctx)
        # Groups bottom-up: a parent's children are always judged before it.
        self._groups = [
            Combined(c.id, c.combine or "all", tuple(ch.id for ch in c.children), c.at_least)
            for c in reversed(walk(policy.criteria + policy.exclusions))
            if c.children
        ]
        self._top = tuple(c.id for c in policy.criteria)
        self._exclusions = tuple(c.id for c in policy.exclusions)
        self._criteria_order = tuple(i for i in self.order if i not in self._exclusions)
        self._criteria_known = frozenset(self._criteria_order)
        self._exclusions_known = frozenset(self._exclusions)
        self._all_order = tuple(self.order)
        self._all_known = frozenset(self.order)
        # The generated code returns every raw result in one tuple: leaves, then groups.
        slots = [cid for cid, _ in self._leaves] + [g.id for g in self._groups]
        self._slot = {cid: n for n, cid in enumerate(slots)}
        needed = {
            d
            for c in self.criteria.values()
            if c.check is not None and c.check.kind in DEPENDENCIES
            for d in DEPENDENCIES[c.check.kind](c.check)
        }
        self._run = _generate(
            self._leaves, self._groups, self._top, self._exclusions, needed, inline
        )
        md = policy.approval.medical_director_review
        self._md_all = md == "all"
        self._md_denials = md == "denials"
        dose_by = next(
            (c for c in self.criteria.values() if isinstance(c.check, DoseByWeightCheck)),
            None,
        )
        self._dose_slot = self._weight_slot = self._height_slot = None
        self._bmi_cap: float | None = None
        if dose_by is not None and isinstance(dose_by.check, DoseByWeightCheck):
            check = dose_by.check
            if check.weight_from is not None:
                self._dose_slot = self._slot[dose_by.id]
                self._weight_slot = self._slot[check.weight_from]
            if check.height_from is not None:
                self._height_slot = self._slot[check.height_from]
                self._bmi_cap = check.bmi_cap
        self._fixed_dose = self.dose_rule.fixed() if self.dose_rule is not None else None
        self._up_to = policy.dosing is not None and policy.dosing.accept == "up_to"
        self._administrations = policy.approval.administrations
        self._service_hcpcs = frozenset(policy.service.hcpcs)
        self._service_cpt = frozenset(policy.service.cpt)
        self._service_ndcs = frozenset(n for n in (ndc11(x) for x in policy.service.ndc) if n) | (
            self.product_ndcs if policy.service.include_product_ndcs else frozenset()
        )
        if policy.approval.days is None:
            raise PolicyInvalid(
                f"{policy.id} {policy.version}: approval.days is not stated and no payer "
                "default was applied"
            )
        self._approval_window = timedelta(days=policy.approval.days - 1)
        renewal = policy.approval.renewal
        # A renewal (where the policy allows one) is authorized for the renewal's window.
        self._renewal_window = timedelta(days=renewal.days - 1) if renewal else None
        self._renewal_administrations = renewal.administrations if renewal else None

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
        """The billing codes this policy governs, as "HCPCS J1234" / "CPT 96365" / "NDC ..."."""
        return (
            frozenset(f"HCPCS {c}" for c in self._service_hcpcs)
            | frozenset(f"CPT {c}" for c in self._service_cpt)
            | frozenset(f"NDC {n}" for n in self._service_ndcs)
        )

    def covers(self, facts: Facts) -> bool:
        """True when the request asks for the service this policy governs."""
        return self.requested_item(facts) is not None

    def requested_item(self, facts: Facts) -> RequestedItem | None:
        for item in facts.items:
            for system, code in item.codes:
                if system == HCPCS and code in self._service_hcpcs:
                    return item
                if system == CPT and code in self._service_cpt:
                    return item
                if system == NDC and ndc11(code) in self._service_ndcs:
                    return item
            if item.ndc and ndc11(item.ndc) in self._service_ndcs:
                return item
        return None

    def evaluate(self, facts: Facts, as_of: date | None = None) -> Determination:
        """Judge every criterion and recommend. Pure: no I/O, no clock.

        Only statuses are worked out here; each finding's sentence and evidence
        are built when the determination's findings are read.
        """
        st = State(as_of or facts.as_of)
        raws, top, excl = self._run(facts, st)
        return self._determine(facts, st.as_of, raws, top, excl)

    def _determine(
        self,
        facts: Facts,
        as_of: date,
        raws: tuple[Raw, ...],
        top: tuple[Status, ...],
        excl: tuple[Status, ...],
    ) -> Determination:
        item = self.requested_item(facts)
        requested = item or _NOTHING_REQUESTED
        dose = self._fixed_dose
        if self._dose_slot is not None and self._weight_slot is not None:
            dose = None
            if raws[self._dose_slot][0] == MET:
                kg = raws[self._weight_slot][1]
                assert kg is not None and self.dose_rule is not None  # met needs a weight
                cm = raws[self._height_slot][1] if self._height_slot is not None else None
                dose = self.dose_rule.for_weight(kg, cm, self._bmi_cap).dose
        administrations = self._administrations
        if facts.renewal and self._renewal_administrations is not None:
            administrations = self._renewal_administrations
        # Whether the request asks for another product or quantity: the recommendation's
        # rule, and what the reviewer app shows next to the dose.
        differs = _modified(requested, dose, administrations, self._up_to)
        rec: Recommendation
        if MET in excl or NOT_MET in top:
            rec = "deny"
        elif UNKNOWN in top or UNKNOWN in excl:
            rec = "pend"
        elif differs:
            rec = "approve-modified"
        else:
            rec = "approve"
        authorization = None
        if rec in ("approve", "approve-modified"):
            # A window of `days` days that starts on, and counts, the decision date.
            window = self._approval_window
            if facts.renewal and self._renewal_window is not None:
                window = self._renewal_window
            authorization = (as_of, as_of + window)
        built: dict[str, Finding] = {}
        slot = self._slot
        findings = Findings(raws, slot, self._criteria_order, self._criteria_known, built)
        exclusions = Findings(raws, slot, self._exclusions, self._exclusions_known, built)
        return Determination(
            self.policy.id,
            self.policy.version,
            as_of,
            rec,
            findings,
            exclusions,
            dose,
            requested,
            authorization,
            # An approval has nothing missing and nothing unmet; otherwise both
            # lists are worked out from the findings when first read.
            None if authorization else self._later(self._missing, raws, built),
            None if rec != "deny" else self._later(self._reasons, raws, built),
            self._md_all or (self._md_denials and rec == "deny"),
            facts.expedited,
            administrations,
            differs,
        )

    def _later(
        self,
        work: Callable[[Findings], T],
        raws: tuple[Raw, ...],
        built: dict[str, Finding],
    ) -> Callable[[], T]:
        # A function of its own, so that an approval builds no closure cells.
        return lambda: work(self._everything(raws, built))

    def _everything(self, raws: tuple[Raw, ...], built: dict[str, Finding]) -> Findings:
        return Findings(raws, self._slot, self._all_order, self._all_known, built)

    def _missing(self, findings: Findings) -> list[str]:
        out: list[str] = []
        status = findings.status
        if not any(status(i) == UNKNOWN for i in self._top + self._exclusions):
            return out

        def visit(c: Criterion) -> None:
            if status(c.id) != UNKNOWN:
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

    def _reasons(self, findings: Findings) -> list[Unmet]:
        out: list[Unmet] = []
        status = findings.status
        if not any(status(i) == MET for i in self._exclusions) and not any(
            status(i) == NOT_MET for i in self._top
        ):
            return out

        def visit(c: Criterion) -> None:
            if status(c.id) != NOT_MET:
                return
            if c.children and c.combine == "all":
                for ch in c.children:
                    visit(ch)
                return
            out.append(Unmet(c.id, c.text, findings[c.id].reason))

        for c in self.policy.criteria:
            visit(c)
        for c in self.policy.exclusions:
            if status(c.id) == MET:
                out.append(Unmet(c.id, c.text, findings[c.id].reason))
        return out


_NOTHING_REQUESTED = Requested(None, None, None)


def _modified(
    requested: Requested | RequestedItem,
    dose: Dose | None,
    administrations: int = 1,
    up_to: bool = False,
) -> bool:
    """The request asks for another product, or another quantity, than the right dose.

    A quantity is read per administration or for all the approval's administrations
    together; with `up_to`, a quantity at or below the right one stands. With no dose (the
    policy leaves the quantity to the reviewer, or it could not be worked out) nothing is
    modified by the engine.
    """
    if dose is None:
        return False
    if (
        requested.ndc is not None
        and dose.ndc is not None
        and ndc11(requested.ndc) != ndc11(dose.ndc)
    ):
        return True
    q = requested.quantity
    if q is None:
        return False
    for right in {dose.quantity, dose.quantity * administrations}:
        if abs(q - right) <= EPS or (up_to and q <= right + EPS):
            return False
    return True


_Run = Callable[[Facts, State], tuple[tuple[Raw, ...], tuple[Status, ...], tuple[Status, ...]]]

# (op) -> (comparison, the sign of EPS): the same tests as checks.common.TESTS.
_INLINE_OPS = {"le": ("<=", EPS), "lt": ("<", -EPS), "ge": (">=", -EPS), "gt": (">", EPS)}


def _generate(
    leaves: list[tuple[str, CheckFn]],
    groups: list[Combined],
    top: tuple[str, ...],
    exclusions: tuple[str, ...],
    needed: set[str],
    inline: bool = True,
) -> _Run:
    """One function that runs every check and combines every group of a policy.

    Straight-line code: the common cases of the common checks (a yes/no
    attestation, the latest lab in a window) are written inline, every other
    case calls the compiled check; each group's status is one expression over
    its children's. It returns every raw result in one tuple (leaves, then
    groups), and the statuses of the top criteria and exclusions; only the
    results another check reads are also kept by id in `st.findings`. Only
    identifiers the compiler made (never policy text) go into the source;
    criterion ids, codes and limits are passed as constants.
    """
    ns: dict[str, object] = {
        "MET": MET,
        "NOT_MET": NOT_MET,
        "UNKNOWN": UNKNOWN,
        "EPS": EPS,
        "UNANSWERED": unanswered,  # what `attested` says of a question with no answer
    }
    var: dict[str, str] = {}
    head = [
        "def run(facts, st):",
        "    R = st.findings",
        "    as_of = st.as_of",
        "    O = facts.observations",
        "    A = facts.attestations",
    ]
    since: dict[timedelta, str] = {}
    body: list[str] = []
    for n, (cid, fn) in enumerate(leaves):
        ns[f"f{n}"], ns[f"k{n}"] = fn, cid
        r = var[cid] = f"r{n}"
        call = f"f{n}(facts, st)"
        spec = INLINE.get(fn) if inline else None
        if spec is None:
            body.append(f"    {r} = {call}")
        elif spec[0] in ("attest_yes", "attest_no"):
            # A yes/no answer; "attest_no" is met by "no" (the sentence stays the answer's).
            kind, link, yes, no = spec
            ns[f"l{n}"], ns[f"y{n}"], ns[f"n{n}"] = link, yes, no
            on_yes, on_no = ("MET", "NOT_MET") if kind == "attest_yes" else ("NOT_MET", "MET")
            body += [
                f"    a = A.get(l{n})",
                f"    if a is None: {r} = (UNKNOWN, None, (UNANSWERED, '', l{n}, ()))",
                f"    elif (v := a.value) is True: {r} = ({on_yes}, None, (y{n}, (a,)))",
                f"    elif v is False: {r} = ({on_no}, None, (n{n}, (a,)))",
                f"    else: {r} = {call}",
            ]
        else:  # "lab": the latest result (of one code, or a reader's), dated inside the window
            _, code, delta, op, multiple, factors, limit, explained = spec
            window = since.get(delta)
            if window is None:
                window = since[delta] = f"since{len(since)}"
                ns[f"D{window}"] = delta
            ns[f"c{n}"], ns[f"x{n}"] = code, explained
            results = f"O.get(c{n})" if type(code) is str else f"c{n}(facts)"
            cmp, eps = _INLINE_OPS[op]
            first = (
                f"    if rs and (w := (o := rs[0]).when) is not None and {window} <= w <= as_of"
                " and (v := o.value) is not None and o.comparator is None"
            )
            if multiple is None:
                ns[f"u{n}"], ns[f"L{n}"] = factors, limit + eps
                body += [
                    f"    rs = {results}",
                    first + f' and (u := u{n}.get(o.unit or "")) is not None:',
                    "        v = v * u",
                    f"        {r} = (MET, v, (x{n}, o, v, True)) if v {cmp} L{n}"
                    f" else (NOT_MET, v, (x{n}, o, v, False))",
                    f"    else: {r} = {call}",
                ]
            else:
                ns[f"M{n}"] = multiple
                sign = "+" if eps > 0 else "-"
                body += [
                    f"    rs = {results}",
                    first + " and (uln := o.uln) is not None and uln > 0"
                    " and not (o.uln_unit and o.unit and o.uln_unit != o.unit):",
                    "        ratio = v / uln",
                    f"        {r} = (MET, ratio, (x{n}, o, ratio, uln, True))"
                    f" if v {cmp} M{n} * uln {sign} EPS"
                    f" else (NOT_MET, ratio, (x{n}, o, ratio, uln, False))",
                    f"    else: {r} = {call}",
                ]
        if cid in needed:
            body.append(f"    R[k{n}] = {r}")
    head += [f"    {name} = as_of - D{name}" for name in since.values()]
    for n, g in enumerate(groups):
        ns[f"g{n}"] = g
        var[g.id] = f"q{n}"
        statuses = ", ".join(f"{var[ch]}[0]" for ch in g.children)
        if g.combine == "all":
            rule = "NOT_MET if NOT_MET in s else UNKNOWN if UNKNOWN in s else MET"
        elif g.combine == "one":
            rule = "MET if MET in s else UNKNOWN if UNKNOWN in s else NOT_MET"
        elif g.combine == "none":
            rule = "NOT_MET if MET in s else UNKNOWN if UNKNOWN in s else MET"
        elif g.combine == "at_least":
            # Not met only once the unknowns, all met, could not reach N.
            ns[f"N{n}"] = g.at_least
            rule = (
                f"MET if (m := s.count(MET)) >= N{n}"
                f" else NOT_MET if m + s.count(UNKNOWN) < N{n} else UNKNOWN"
            )
        else:
            raise PolicyInvalid(f"{g.id}: unknown combine {g.combine!r}")
        body.append(f"    s = ({statuses},)")
        body.append(f"    q{n} = ({rule}, None, g{n})")
    for name, ids in (("top", top), ("excl", exclusions)):
        statuses = "".join(f"{var[i]}[0], " for i in ids)
        body.append(f"    {name} = ({statuses})")
    raws = "".join(f"r{n}, " for n in range(len(leaves))) + "".join(
        f"q{n}, " for n in range(len(groups))
    )
    body.append(f"    return ({raws}), top, excl")
    exec(compile("\n".join(head + body), "<priorauth policy>", "exec"), ns)
    run: _Run = ns["run"]  # type: ignore[assignment]
    return run


def compile_policy(policy: Policy) -> CompiledPolicy:
    """Compile once; the result is immutable in use and safe to share between threads."""
    return CompiledPolicy(policy)
