"""A test-side FHIR profile checker over the IG packages in ../shared/igs (test code, not shipped).

Given a resource and a StructureDefinition (named, or taken from the resource's meta.profile),
it walks the SD's snapshot (or its differential laid over the base's snapshot where only a
differential is present) and reports, with the instance path of each:

- cardinality: min/max of every element present or required, slices included;
- fixed[x] and pattern[x] values;
- required bindings, against the ValueSets of the packages (compose.include concept lists,
  whole CodeSystems found in the packages, included ValueSets; a whole external system such
  as X12 306 or NDC is enforced as "this system", its codes are not enumerable here);
- the types of references (urn:uuid resolved inside the Bundle, Type/id, Reference.type);
- the JSON shape (array or not, primitive kinds) and elements the snapshot does not define.

What it cannot decide is listed in `Report.not_checked`, never passed silently: bindings to
value sets outside the packages, slicings by discriminators other than value/pattern on a
plain element path, type on `$this` (choice types) and type on `resource` (Bundle entries),
profiles and extensions without a StructureDefinition in the packages.

Nested resources (Bundle.entry.resource, Parameters.parameter.resource, contained) are checked
against the profile their slice names and against every profile they claim in meta.profile.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Json = dict[str, Any]

PRIMITIVES = frozenset({
    "boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary",
    "instant", "date", "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt",
    "positiveInt", "uuid", "xhtml", "integer64",
    "http://hl7.org/fhirpath/System.String", "http://hl7.org/fhirpath/System.Boolean",
    "http://hl7.org/fhirpath/System.Integer", "http://hl7.org/fhirpath/System.Decimal",
    "http://hl7.org/fhirpath/System.Date", "http://hl7.org/fhirpath/System.DateTime",
    "http://hl7.org/fhirpath/System.Time",
})  # fmt: skip
_INTEGERS = frozenset({"integer", "unsignedInt", "positiveInt", "integer64"})
_RESOURCE_TYPES = frozenset({"Resource", "DomainResource"})
CORE_SD = "http://hl7.org/fhir/StructureDefinition/"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-"


def _strip(canonical: str) -> tuple[str, str | None]:
    url, _, version = canonical.partition("|")
    return url, version or None


@dataclass(frozen=True)
class Issue:
    """One finding: where in the instance, which element of which profile, what."""

    path: str
    element: str
    rule: str
    message: str
    profile: str

    def __str__(self) -> str:
        return (
            f"{self.path} [{self.rule}] {self.message} (element {self.element} of {self.profile})"
        )


@dataclass
class Report:
    violations: list[Issue] = field(default_factory=list)
    not_checked: list[Issue] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)  # every profile actually checked

    @property
    def ok(self) -> bool:
        return not self.violations

    def rules(self) -> set[str]:
        return {v.rule for v in self.violations}

    def at(self, fragment: str) -> list[Issue]:
        """Violations whose instance path or element id contains `fragment`."""
        return [v for v in self.violations if fragment in v.path or fragment in v.element]

    def text(self) -> str:
        return "\n".join(str(v) for v in self.violations) or "no violations"

    def _add(self, bucket: list[Issue], issue: Issue) -> None:
        if issue not in bucket:
            bucket.append(issue)


# ----------------------------------------------------------------------------- packages


@dataclass
class Expansion:
    """What a ValueSet admits, as far as the packages tell."""

    codes: set[tuple[str, str]]
    open_systems: set[str]  # whole (or filtered) systems whose codes are not enumerable here
    complete: bool  # False: a part could not be resolved from the packages
    gaps: list[str]


class Packages:
    """The conformance resources of IG package folders; earlier folders win on a tie."""

    def __init__(self, *folders: Path) -> None:
        self.folders = folders
        self._by_url: dict[str, list[Json]] = {}
        for folder in folders:
            for path in sorted(folder.glob("*.json")):
                try:
                    data = json.loads(path.read_text(encoding="utf-8-sig"))
                except ValueError:
                    continue
                if (
                    isinstance(data, dict)
                    and isinstance(data.get("url"), str)
                    and data.get("resourceType")
                    in ("StructureDefinition", "ValueSet", "CodeSystem")
                ):
                    self._by_url.setdefault(data["url"], []).append(data)
        self._snapshots: dict[int, list[Json]] = {}
        self._expansions: dict[str, Expansion | None] = {}

    def add(self, resource: Json) -> None:
        """A hand-written conformance resource (the validator's own tests), first in line."""
        self._by_url.setdefault(resource["url"], []).insert(0, resource)

    def _get(self, canonical: str, kind: str) -> Json | None:
        url, version = _strip(canonical)
        found = [r for r in self._by_url.get(url, []) if r["resourceType"] == kind]
        if version:
            exact = [r for r in found if r.get("version") == version]
            found = exact or found
        return found[0] if found else None

    def structure_definition(self, canonical: str) -> Json | None:
        return self._get(canonical, "StructureDefinition")

    def value_set(self, canonical: str) -> Json | None:
        return self._get(canonical, "ValueSet")

    def code_system(self, canonical: str) -> Json | None:
        return self._get(canonical, "CodeSystem")

    def type_of(self, canonical: str) -> str | None:
        """The resource/data type a profile constrains (core URLs by name)."""
        sd = self.structure_definition(canonical)
        if sd is not None:
            return str(sd["type"])
        url, _ = _strip(canonical)
        if url.startswith(CORE_SD):
            return url[len(CORE_SD) :]
        if url.startswith(US_CORE):
            # US Core is not in the packages, but its profile names say their type
            # (us-core-practitionerrole: PractitionerRole) for the types the packages know.
            name = url[len(US_CORE) :].replace("-", "")
            for known in self.types():
                if known.lower() == name:
                    return known
        return None

    def types(self) -> set[str]:
        """Every resource type the packages' profiles constrain."""
        return {
            str(r["type"])
            for found in self._by_url.values()
            for r in found
            if r["resourceType"] == "StructureDefinition" and r.get("kind") == "resource"
        }

    def snapshot(self, sd: Json) -> list[Json] | None:
        """The snapshot elements, or the differential resolved against the base's snapshot."""
        key = id(sd)
        if key in self._snapshots:
            return self._snapshots[key]
        elements: list[Json] | None = None
        if sd.get("snapshot", {}).get("element"):
            elements = sd["snapshot"]["element"]
        elif sd.get("differential", {}).get("element") and sd.get("baseDefinition"):
            base = self.structure_definition(sd["baseDefinition"])
            base_elements = self.snapshot(base) if base is not None else None
            if base_elements is not None:
                elements = resolve_differential(base_elements, sd["differential"]["element"])
        if elements is not None:
            self._snapshots[key] = elements
        return elements

    def expand(self, canonical: str) -> Expansion | None:
        """None when the ValueSet itself is not in the packages."""
        url, _ = _strip(canonical)
        if url in self._expansions:
            return self._expansions[url]
        self._expansions[url] = None  # a cycle stops here
        vs = self.value_set(canonical)
        result = None if vs is None else self._expand(vs)
        self._expansions[url] = result
        return result

    def _expand(self, vs: Json) -> Expansion:
        out = Expansion(set(), set(), True, [])
        if "expansion" in vs:
            for c in _walk_contains(vs["expansion"].get("contains", [])):
                out.codes.add((c.get("system", ""), c["code"]))
            return out
        compose = vs.get("compose", {})
        for inc in compose.get("include", []):
            self._include(inc, out)
        for exc in compose.get("exclude", []):
            if "concept" in exc and "filter" not in exc and "valueSet" not in exc:
                out.codes -= {(exc.get("system", ""), c["code"]) for c in exc["concept"]}
            else:
                out.complete = False
                out.gaps.append(f"exclude without a concept list ({exc.get('system')})")
        return out

    def _include(self, inc: Json, out: Expansion) -> None:
        system = inc.get("system")
        if "valueSet" in inc:
            for ref in inc["valueSet"]:
                sub = self.expand(ref)
                if sub is None:
                    out.complete = False
                    out.gaps.append(f"included value set {ref} is not in the packages")
                    continue
                # An include of system + valueSet is their intersection: keep it simple and
                # take the value set's codes (restricted to the system when one is named).
                out.codes |= {c for c in sub.codes if system is None or c[0] == system}
                out.open_systems |= {s for s in sub.open_systems if system in (None, s)}
                out.complete = out.complete and sub.complete
                out.gaps.extend(sub.gaps)
            return
        if system is None:
            return
        if "concept" in inc:
            out.codes |= {(system, c["code"]) for c in inc["concept"]}
            return
        cs = self.code_system(system)
        if cs is not None and cs.get("content") == "complete" and "filter" not in inc:
            out.codes |= {(system, c["code"]) for c in _walk_concepts(cs.get("concept", []))}
            return
        # A whole external system (or a filter on one): the system is known, its codes not.
        out.open_systems.add(system)


def _walk_contains(contains: list[Json]) -> Iterator[Json]:
    for c in contains:
        if "code" in c:
            yield c
        yield from _walk_contains(c.get("contains", []))


def _walk_concepts(concepts: list[Json]) -> Iterator[Json]:
    for c in concepts:
        yield c
        yield from _walk_concepts(c.get("concept", []))


def resolve_differential(base: list[Json], differential: list[Json]) -> list[Json]:
    """The base snapshot with the differential's elements merged in by id.

    New elements (slices and their children) go after the last element they extend: the
    element with the same id up to the slice, or their parent, and its descendants.
    """
    out = [copy.deepcopy(e) for e in base]
    for diff in differential:
        eid = diff.get("id") or diff["path"]
        existing = next((e for e in out if e["id"] == eid), None)
        if existing is not None:
            existing.update(copy.deepcopy(diff))
            continue
        new = copy.deepcopy(diff)
        new["id"] = eid
        stem = eid.rsplit(":", 1)[0] if ":" in eid.rsplit(".", 1)[-1] else eid.rsplit(".", 1)[0]
        template = next((e for e in out if e["id"] == stem), None)
        if template is not None and stem != eid.rsplit(".", 1)[0]:
            # A new slice starts from its sliced element's definition (minus the slicing).
            merged = {k: copy.deepcopy(v) for k, v in template.items() if k != "slicing"}
            merged.update(new)
            new = merged
        else:
            new.setdefault("min", 0)
            new.setdefault("max", "*")
        at = max(
            (
                i
                for i, e in enumerate(out)
                if e["id"] == stem
                or e["id"].startswith(stem + ".")
                or e["id"].startswith(stem + ":")
            ),
            default=len(out) - 1,
        )
        out.insert(at + 1, new)
    return out


# ----------------------------------------------------------------------------- the tree


@dataclass
class Node:
    ed: Json
    children: dict[str, Node] = field(default_factory=dict)
    slices: dict[str, Node] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.ed.get("id", self.ed.get("path")))

    @property
    def types(self) -> list[Json]:
        return list(self.ed.get("type", []))

    @property
    def type_codes(self) -> list[str]:
        return [t["code"] for t in self.types]


def build_tree(elements: list[Json]) -> tuple[Node, dict[str, Node]]:
    """The root node of a snapshot, and every node by element id."""
    by_id: dict[str, Node] = {}
    root: Node | None = None
    for ed in elements:
        eid = ed.get("id") or ed["path"]
        node = Node(ed)
        by_id[eid] = node
        segments = eid.split(".")
        if len(segments) == 1 and ":" not in eid:
            root = node
            continue
        last = segments[-1]
        parent_id = ".".join(segments[:-1])
        name, _, slice_name = last.partition(":")
        if slice_name:
            sliced_id = ".".join([*segments[:-1], name]) if parent_id else name
            sliced = by_id.get(sliced_id)
            if sliced is not None:
                sliced.slices[slice_name] = node
            continue
        parent = by_id.get(parent_id)
        if parent is not None:
            parent.children[name] = node
    if root is None:
        raise ValueError("a snapshot without a root element")
    return root, by_id


# ----------------------------------------------------------------------------- checking


def _max(ed: Json) -> float:
    m = ed.get("max", "*")
    return math.inf if m == "*" else float(m)


def _is_array(ed: Json) -> bool:
    """JSON arrays follow the base definition's cardinality, not the profile's."""
    base_max = ed.get("base", {}).get("max", ed.get("max", "*"))
    return base_max not in {"1", "0"}


def _choice_key_type(prefix: str, key: str) -> str | None:
    rest = key[len(prefix) :]
    if not rest or not rest[0].isupper():
        return None
    lowered = rest[0].lower() + rest[1:]
    return lowered if lowered in PRIMITIVES else rest


def matches_pattern(value: Any, pattern: Any) -> bool:
    """FHIR pattern[x] semantics: every element of the pattern is present in the value."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and matches_pattern(value[k], p) for k, p in pattern.items()
        )
    if isinstance(pattern, list):
        return isinstance(value, list) and all(
            any(matches_pattern(v, p) for v in value) for p in pattern
        )
    return bool(value == pattern)


def _fixed_or_pattern(ed: Json) -> tuple[str, str, Any] | None:
    for key, v in ed.items():
        if key.startswith("fixed"):
            return "fixed", key, v
        if key.startswith("pattern"):
            return "pattern", key, v
    return None


def _walk(value: Any, path: str) -> list[Any]:
    """The values at a plain dotted element path under `value` (arrays flattened)."""
    current = [value]
    if path == "$this":
        return current
    for seg in path.split("."):
        nxt: list[Any] = []
        for v in current:
            if isinstance(v, dict) and seg in v:
                got = v[seg]
                nxt.extend(got if isinstance(got, list) else [got])
        current = nxt
    return current


@dataclass
class _Item:
    path: str
    value: Any  # the JSON value (None for a primitive sent only as its "_x" extension)
    type: str | None  # the type code of a choice element's value, else None
    ext: Any = None  # a primitive's "_x" part


class _Run:
    def __init__(self, packages: Packages, report: Report) -> None:
        self.packages = packages
        self.report = report
        self.bundles: list[dict[str, Json]] = []
        self.profile = ""
        self._trees: dict[int, tuple[Node, dict[str, Node]]] = {}
        self._depth = 0

    # -- reporting
    def violation(self, path: str, node: Node | None, rule: str, message: str) -> None:
        element = node.id if node else "-"
        self.report._add(self.report.violations, Issue(path, element, rule, message, self.profile))

    def unchecked(self, path: str, node: Node | None, rule: str, message: str) -> None:
        element = node.id if node else "-"
        # Listed once per element and reason: the same gap recurs on every occurrence.
        issue = Issue("", element, rule, message, self.profile)
        self.report._add(self.report.not_checked, issue)

    # -- profiles
    def tree(self, sd: Json) -> tuple[Node, dict[str, Node]] | None:
        key = id(sd)
        if key not in self._trees:
            elements = self.packages.snapshot(sd)
            if elements is None:
                return None
            self._trees[key] = build_tree(elements)
        return self._trees[key]

    def against(self, value: Any, canonical: str, path: str, *, claimed: bool) -> bool:
        """Check `value` against the profile `canonical` (by URL, in the packages); False
        when the packages do not have it."""
        sd = self.packages.structure_definition(canonical)
        if sd is None:
            why = "claimed in meta.profile" if claimed else "required by the profile"
            self.unchecked(path, None, "profile", f"{canonical} ({why}) is not in the packages")
            return False
        tree = self.tree(sd)
        if tree is None:
            self.unchecked(path, None, "profile", f"{canonical} has neither snapshot nor base")
            return False
        outer, self.profile = self.profile, sd["url"]
        self._depth += 1
        try:
            if sd["url"] not in self.report.profiles:
                self.report.profiles.append(sd["url"])
            if self._depth > 40:
                self.unchecked(path, None, "profile", "nesting too deep")
                return True
            root, by_id = tree
            if (
                sd.get("kind") == "resource"
                and isinstance(value, dict)
                and value.get("resourceType") != sd["type"]
            ):
                self.violation(
                    path,
                    root,
                    "type",
                    f"resourceType {value.get('resourceType')!r}, the profile is for {sd['type']}",
                )
                return True
            self.value(
                root, _Item(path, value, None), by_id, root_of_resource=sd.get("kind") == "resource"
            )
            return True
        finally:
            self.profile = outer
            self._depth -= 1

    def resource(self, resource: Json, path: str, required: Iterable[str] = ()) -> None:
        """A (nested) resource: the profiles it must meet and the ones it claims."""
        pushed = False
        if resource.get("resourceType") == "Bundle":
            index: dict[str, Json] = {}
            for e in resource.get("entry", []) if isinstance(resource.get("entry"), list) else []:
                r = e.get("resource") if isinstance(e, dict) else None
                if isinstance(r, dict):
                    if isinstance(e.get("fullUrl"), str):
                        index[e["fullUrl"]] = r
                    if r.get("id"):
                        index[f"{r.get('resourceType')}/{r['id']}"] = r
            self.bundles.append(index)
            pushed = True
        try:
            done: set[str] = set()
            checked = False
            for canonical in required:
                url, _ = _strip(canonical)
                done.add(url)
                checked |= self.against(resource, canonical, path, claimed=False)
            meta = resource.get("meta")
            claimed = meta.get("profile", []) if isinstance(meta, dict) else []
            for canonical in claimed if isinstance(claimed, list) else []:
                if isinstance(canonical, str) and _strip(canonical)[0] not in done:
                    done.add(_strip(canonical)[0])
                    checked |= self.against(resource, canonical, path, claimed=True)
            if not checked:
                # Nothing claimed: the nested resources still get their own claims checked.
                self._nested_only(resource, path)
        finally:
            if pushed:
                self.bundles.pop()

    def _nested_only(self, resource: Json, path: str) -> None:
        if resource.get("resourceType") == "Bundle":
            for n, e in enumerate(resource.get("entry", [])):
                if isinstance(e, dict) and isinstance(e.get("resource"), dict):
                    self.resource(e["resource"], f"{path}.entry[{n}].resource")
        elif resource.get("resourceType") == "Parameters":
            for n, p in enumerate(resource.get("parameter", [])):
                if isinstance(p, dict) and isinstance(p.get("resource"), dict):
                    self.resource(p["resource"], f"{path}.parameter[{n}].resource")
        for n, c in enumerate(resource.get("contained", []) or []):
            if isinstance(c, dict):
                self.resource(c, f"{path}.contained[{n}]")

    # -- elements
    def value(
        self, node: Node, item: _Item, by_id: dict[str, Node], *, root_of_resource: bool = False
    ) -> None:
        """One occurrence of an element: its own constraints, then its children."""
        ed = node.ed
        value = item.value
        type_code = item.type or (node.type_codes[0] if len(node.type_codes) == 1 else None)
        fp = _fixed_or_pattern(ed)
        if fp is not None and value is not None:
            kind, key, expected = fp
            ok = value == expected if kind == "fixed" else matches_pattern(value, expected)
            if not ok:
                self.violation(
                    item.path,
                    node,
                    kind,
                    f"{key} is {json.dumps(expected)}, found {json.dumps(value)}",
                )
        if value is not None:
            self.shape(node, item, type_code)
            self.binding(node, item, type_code)
            self.reference(node, item, type_code)
        if not isinstance(value, dict):
            if item.ext is not None and isinstance(item.ext, dict):
                self._extensions_by_url(item.ext, item.path, node)
            return
        children = node.children
        if "contentReference" in ed:
            ref_id = ed["contentReference"].split("#", 1)[1]
            target = by_id.get(ref_id)
            if target is None:
                self.unchecked(
                    item.path, node, "element", f"contentReference {ed['contentReference']}"
                )
                return
            children = target.children
        if children:
            self.children(node, children, item, by_id, root_of_resource)
        elif (
            type_code in _RESOURCE_TYPES
            or (
                type_code is not None
                and type_code[:1].isupper()
                and value.get("resourceType") == type_code
            )
            or "resourceType" in value
        ):
            profiles = [p for t in node.types for p in t.get("profile", [])]
            rtype = value.get("resourceType")
            mine = [p for p in profiles if self.packages.type_of(p) in (rtype, None)]
            if profiles and not mine:
                self.violation(
                    item.path,
                    node,
                    "type",
                    f"a {rtype}, the element allows {', '.join(profiles)}",
                )
            # Several profiles on one element are alternatives: the best fitting one counts.
            self.resource(
                value, item.path, self._best(mine, lambda p: self.resource(value, item.path, [p]))
            )
        else:
            profiles = [
                p for t in node.types if t["code"] == type_code for p in t.get("profile", [])
            ]
            if profiles:
                # Several profiles on one type are alternatives, as for resources.
                trial = lambda p: self.against(value, p, item.path, claimed=False)  # noqa: E731
                for p in self._best(profiles, trial):
                    trial(p)
            elif type_code == "Extension":
                self._extension_by_url(value, item.path, node)
            else:
                # A datatype the snapshot does not expand: its extensions can still be known.
                self._extensions_by_url(value, item.path, node)

    def _extension_by_url(self, ext: Json, path: str, node: Node) -> None:
        url = ext.get("url")
        if not isinstance(url, str):
            self.violation(path, node, "cardinality", "an extension without url")
            return
        if "://" not in url:
            return  # a complex extension's part, defined by its parent
        if self.packages.structure_definition(url) is not None:
            self.against(ext, url, path, claimed=False)
        else:
            self.unchecked(path, node, "extension", f"extension {url} is not in the packages")

    def _extensions_by_url(self, value: Json, path: str, node: Node) -> None:
        for key in ("extension", "modifierExtension"):
            exts = value.get(key)
            if isinstance(exts, list):
                for n, e in enumerate(exts):
                    if isinstance(e, dict):
                        self._extension_by_url(e, f"{path}.{key}[{n}]", node)

    def children(
        self,
        node: Node,
        children: dict[str, Node],
        item: _Item,
        by_id: dict[str, Node],
        root_of_resource: bool,
    ) -> None:
        obj = item.value
        known: set[str] = {"resourceType"} if root_of_resource else set()
        if root_of_resource:
            known.add("fhir_comments")
        for name, child in children.items():
            items: list[_Item] = []
            if name.endswith("[x]"):
                prefix = name[:-3]
                allowed = set(child.type_codes)
                for key in list(obj):
                    bare = key[1:] if key.startswith("_") else key
                    if not bare.startswith(prefix):
                        continue
                    t = _choice_key_type(prefix, bare)
                    if t is None:
                        continue
                    known.add(key)
                    if key.startswith("_"):
                        if bare not in obj:
                            items.append(_Item(f"{item.path}.{bare}", None, t, obj[key]))
                        continue
                    if allowed and t not in allowed:
                        self.violation(
                            f"{item.path}.{key}",
                            child,
                            "type",
                            f"{t} is not an allowed type ({', '.join(sorted(allowed))})",
                        )
                    items.append(_Item(f"{item.path}.{key}", obj[key], t, obj.get("_" + key)))
            else:
                known.update({name, "_" + name})
                items = self._occurrences(child, item.path, name, obj)
            self.occurrences(child, items, f"{item.path}.{name}", by_id)
        for key in obj:
            if key not in known:
                self.violation(
                    f"{item.path}.{key}",
                    node,
                    "unknown-element",
                    f"{key} is not an element of {node.ed.get('path')}",
                )

    def _occurrences(self, child: Node, path: str, name: str, obj: Json) -> list[_Item]:
        raw = obj.get(name)
        ext = obj.get("_" + name)
        if raw is None and ext is None:
            return []
        array = _is_array(child.ed)
        if array and raw is not None and not isinstance(raw, list):
            self.violation(f"{path}.{name}", child, "shape", "must be a JSON array")
            raw = [raw]
        if not array and isinstance(raw, list):
            self.violation(f"{path}.{name}", child, "shape", "must not be a JSON array")
            raw = raw[:1] if len(raw) == 1 else raw
        if array and raw == []:
            self.violation(f"{path}.{name}", child, "shape", "an empty JSON array (leave it out)")
        if array:
            values = raw if isinstance(raw, list) else []
            exts = ext if isinstance(ext, list) else []
            n = max(len(values), len(exts))
            return [
                _Item(
                    f"{path}.{name}[{i}]",
                    values[i] if i < len(values) else None,
                    None,
                    exts[i] if i < len(exts) else None,
                )
                for i in range(n)
            ]
        if isinstance(raw, list):  # reported above; still check every occurrence
            return [_Item(f"{path}.{name}[{i}]", v, None) for i, v in enumerate(raw)]
        return [_Item(f"{path}.{name}", raw, None, ext)]

    def occurrences(
        self, node: Node, items: list[_Item], where: str, by_id: dict[str, Node]
    ) -> None:
        """Every occurrence of an element under one parent: count, each value, slices."""
        ed = node.ed
        lo, hi = int(ed.get("min", 0)), _max(ed)
        if not (lo <= len(items) <= hi):
            bound = ed.get("max", "*")
            self.violation(
                where,
                node,
                "cardinality",
                f"{len(items)} occurrence(s), the profile allows {lo}..{bound}",
            )
        for it in items:
            self.value(node, it, by_id)
        if node.slices:
            self.slices(node, items, where, by_id)

    def _best(self, candidates: list[str], trial: Any) -> list[str]:
        """The candidate that `trial(candidate)` finds fewest violations with (all when < 2)."""
        if len(candidates) < 2:
            return candidates
        scores = []
        for c in candidates:
            saved, self.report = self.report, Report()
            try:
                trial(c)
                scores.append((len(self.report.violations), c))
            finally:
                self.report = saved
        return [min(scores, key=lambda s: s[0])[1]]

    # -- slicing
    def slices(self, node: Node, items: list[_Item], where: str, by_id: dict[str, Node]) -> None:
        slicing = node.ed.get("slicing", {})
        discriminators = slicing.get("discriminator", [])
        if not discriminators:
            self.unchecked(where, node, "slicing", "slicing without discriminators")
            return
        matched: dict[str, list[_Item]] = {name: [] for name in node.slices}
        unmatched: list[_Item] = []
        for it in items:
            hit = None
            for name, sl in node.slices.items():
                decision = self._in_slice(node, sl, it, discriminators)
                if decision is None:
                    d = ", ".join(f"{x['type']}:{x['path']}" for x in discriminators)
                    self.unchecked(where, node, "slicing", f"discriminator {d} is not supported")
                    return
                if decision:
                    hit = name
                    hits = [hit] + [
                        n
                        for n, other in node.slices.items()
                        if n != name and self._in_slice(node, other, it, discriminators)
                    ]
                    if len(hits) > 1:  # e.g. two Claim slices of a Bundle: the fitting one
                        hit = self._best(
                            hits, lambda n, it=it: self.value(node.slices[n], it, by_id)
                        )[0]
                    break
            if hit is None:
                unmatched.append(it)
            else:
                matched[hit].append(it)
        for name, sl in node.slices.items():
            self.occurrences(sl, matched[name], f"{where}:{name}", by_id)
        if slicing.get("rules") == "closed":
            for it in unmatched:
                self.violation(it.path, node, "slicing", "matches no slice of a closed slicing")

    def _in_slice(self, node: Node, sl: Node, it: _Item, discriminators: list[Json]) -> bool | None:
        for d in discriminators:
            kind, path = d["type"], d["path"]
            if kind in ("value", "pattern"):
                if "(" in path or " " in path:
                    return None
                expected = self._discriminator_value(sl, path)
                if expected is None:
                    return None
                actual = _walk(it.value, path)
                if not any(matches_pattern(a, expected) for a in actual):
                    return False
            elif kind == "type" and path == "$this":
                if it.type is None:
                    return None
                if it.type not in sl.type_codes:
                    return False
            elif kind == "type" and path == "resource":
                res_node = sl.children.get("resource")
                if res_node is None or not isinstance(it.value, dict):
                    return None
                resource = it.value.get("resource")
                rtype = resource.get("resourceType") if isinstance(resource, dict) else None
                if rtype not in res_node.type_codes:
                    return False
            else:
                return None
        return True

    def _discriminator_value(self, sl: Node, path: str) -> Any:
        target: Node | None = sl
        segments = [] if path == "$this" else path.split(".")
        for n, seg in enumerate(segments):
            assert target is not None
            nxt = target.children.get(seg)
            if nxt is None:
                # An extension slice known only by its type profile: its url is the profile's.
                if seg == "url" and n == len(segments) - 1 and "Extension" in target.type_codes:
                    profiles = [p for t in target.types for p in t.get("profile", [])]
                    if len(profiles) == 1:
                        return _strip(profiles[0])[0]
                return None
            target = nxt
        assert target is not None
        fp = _fixed_or_pattern(target.ed)
        return None if fp is None else fp[2]

    # -- value constraints
    def shape(self, node: Node, item: _Item, type_code: str | None) -> None:
        v = item.value
        if type_code is None:
            return
        if type_code in PRIMITIVES:
            if type_code == "boolean" or type_code.endswith("System.Boolean"):
                ok = isinstance(v, bool)
            elif type_code in _INTEGERS:
                ok = isinstance(v, int) and not isinstance(v, bool)
                if ok and type_code == "positiveInt":
                    ok = v > 0
                if ok and type_code == "unsignedInt":
                    ok = v >= 0
            elif type_code == "decimal":
                ok = isinstance(v, int | float) and not isinstance(v, bool)
            else:
                ok = isinstance(v, str) and (v != "" or type_code == "xhtml")
            if not ok:
                self.violation(
                    item.path, node, "shape", f"{json.dumps(v)} is not a valid {type_code}"
                )
        elif not isinstance(v, dict):
            self.violation(item.path, node, "shape", f"a {type_code} must be a JSON object")

    def binding(self, node: Node, item: _Item, type_code: str | None) -> None:
        binding = node.ed.get("binding")
        if not binding or binding.get("strength") != "required" or not binding.get("valueSet"):
            return
        vs_url = binding["valueSet"]
        expansion = self.packages.expand(vs_url)
        if expansion is None:
            self.unchecked(
                item.path, node, "binding", f"required value set {vs_url} is not in the packages"
            )
            return
        v = item.value
        codings: list[Json]
        if isinstance(v, str):
            # A code: any system of the value set.
            if any(c == v for _, c in expansion.codes):
                return
            if expansion.open_systems or not expansion.complete:
                self.unchecked(
                    item.path, node, "binding", f"code {v!r} against {vs_url}: not enumerable here"
                )
                return
            self.violation(
                item.path, node, "binding", f"code {v!r} is not in the required value set {vs_url}"
            )
            return
        if not isinstance(v, dict):
            return
        if type_code == "Coding" or ("code" in v and "coding" not in v):
            codings = [v]
        elif type_code in ("CodeableConcept", None) or "coding" in v:
            codings = [c for c in v.get("coding", []) if isinstance(c, dict)]
        else:
            self.unchecked(item.path, node, "binding", f"required binding on a {type_code}")
            return
        if not codings:
            self.violation(
                item.path, node, "binding", f"no coding from the required value set {vs_url}"
            )
            return
        unsure = []
        for c in codings:
            pair = (c.get("system", ""), c.get("code"))
            if pair in expansion.codes:
                return
            if pair[0] in expansion.open_systems:
                unsure.append(pair)
        if unsure or not expansion.complete:
            self.unchecked(
                item.path,
                node,
                "binding",
                f"codes of {sorted({s for s, _ in unsure}) or vs_url} are not enumerable here",
            )
            return
        found = [f"{c.get('system')}|{c.get('code')}" for c in codings]
        self.violation(
            item.path, node, "binding", f"{', '.join(found)} not in the required value set {vs_url}"
        )

    def reference(self, node: Node, item: _Item, type_code: str | None) -> None:
        if type_code != "Reference" or not isinstance(item.value, dict):
            return
        targets = [
            p for t in node.types if t["code"] == "Reference" for p in t.get("targetProfile", [])
        ]
        if not targets:
            return
        allowed: set[str] = set()
        for p in targets:
            t = self.packages.type_of(p)
            if t is None:
                self.unchecked(
                    item.path, node, "reference", f"target profile {p} is not in the packages"
                )
                return
            allowed.add(t)
        if "Resource" in allowed:
            return
        found: list[str] = []
        declared = item.value.get("type")
        if isinstance(declared, str):
            found.append(declared)
        ref = item.value.get("reference")
        if isinstance(ref, str) and not ref.startswith("#"):
            target = self.bundles[-1].get(ref) if self.bundles else None
            if target is not None:
                found.append(str(target.get("resourceType")))
            elif ref.startswith("urn:"):
                if self.bundles:
                    self.violation(
                        item.path, node, "reference", f"{ref} is not an entry of the Bundle"
                    )
            else:
                parts = ref.rstrip("/").split("/")
                if len(parts) >= 2 and parts[-2][:1].isupper():
                    found.append(parts[-2])
                elif len(parts) >= 4 and parts[-4][:1].isupper() and parts[-2] == "_history":
                    found.append(parts[-4])
        for t in found:
            if t not in allowed:
                self.violation(
                    item.path,
                    node,
                    "reference",
                    f"refers to a {t}, the profile allows {', '.join(sorted(allowed))}",
                )


# ----------------------------------------------------------------------------- entry points


def validate(resource: Json, packages: Packages, profile: str | Json | None = None) -> Report:
    """Check a resource against `profile` (a canonical URL or a StructureDefinition), or, when
    none is named, against every profile in its meta.profile; nested resources likewise."""
    report = Report()
    run = _Run(packages, report)
    path = str(resource.get("resourceType", "?"))
    if isinstance(profile, dict):
        packages.add(profile)
        profile = str(profile["url"])
    run.resource(resource, path, [profile] if profile else [])
    return report


def igs(root: Path, *names: str) -> Packages:
    """Packages from ../shared/igs folders, in order of preference."""
    return Packages(*(root / n for n in names))
