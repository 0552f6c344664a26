"""Reference resolution inside one Bundle (fullUrl, relative "Type/id", contained "#id")."""

from __future__ import annotations

from typing import Any

from priorauth.errors import InvalidRequest
from priorauth.intake.values import at

Resource = dict[str, Any]


class BundleIndex:
    """Every entry's resource, reachable by fullUrl and by "Type/id", in bundle order.

    The one index of a request (intake.request.PasRequest builds it once). It never
    raises: an entry without a resource is skipped, a repeated fullUrl answers with the
    first entry, and the first such flaw is kept in `problem`. Readers that need every
    entry sound (the facts reader) call `check()`; readers that pick a few fields (the
    keys, the response) do not.
    """

    __slots__ = ("_by_key", "_urls", "entries", "problem")

    def __init__(self, entries: list[Any]) -> None:
        by_key: dict[str, Resource] = {}
        urls: dict[int, str] = {}  # id(resource) -> its entry's fullUrl
        found: list[tuple[Resource, str]] = []  # (resource, "Type/id" citation)
        problem: InvalidRequest | None = None
        add = found.append
        for i, entry in enumerate(entries):
            try:
                resource = entry["resource"]
                kind = resource["resourceType"]
            except (TypeError, KeyError, IndexError):
                resource = kind = None
            if type(resource) is not dict or type(kind) is not str or type(entry) is not dict:
                if problem is None:
                    problem = InvalidRequest(
                        "has no resource with a resourceType", f"Bundle.entry[{i}]"
                    )
                continue
            full_url = entry.get("fullUrl")
            if full_url is not None:
                if type(full_url) is not str or full_url in by_key:
                    if problem is None:
                        problem = InvalidRequest(
                            "fullUrl must be a unique string", f"Bundle.entry[{i}]"
                        )
                    full_url = None
                else:
                    by_key[full_url] = resource
                    urls[id(resource)] = full_url
            rid = resource.get("id")
            if type(rid) is str and rid:
                ref = f"{kind}/{rid}"
                # When two entries share Type/id, the first one answers.
                if ref not in by_key:
                    by_key[ref] = resource
            else:
                ref = full_url or kind
            add((resource, ref))
        self.entries = found
        self.problem = problem
        self._by_key = by_key
        self._urls = urls

    def check(self) -> None:
        """InvalidRequest for the first entry that is not sound, if any."""
        if self.problem is not None:
            raise InvalidRequest(self.problem.message, self.problem.where)

    def full_url(self, resource: Resource) -> str | None:
        """The fullUrl of the entry holding `resource`, when it has one."""
        return self._urls.get(id(resource))

    def find(self, reference: object, container: Resource | None = None) -> Resource | None:
        """The resource a Reference element points at (in the bundle, or contained "#id"
        inside `container`); None when it carries no usable reference or it is not found."""
        target = reference.get("reference") if type(reference) is dict else None
        if type(target) is not str or not target.strip():
            return None
        if target[:1] == "#":
            return contained(container, target) if container is not None else None
        return self.lookup(target)

    def keys_of(self, resource: Resource) -> frozenset[str]:
        """Reference strings that resolve to `resource`: its "Type/id" and its entry's fullUrl."""
        keys = {k for k in (self._urls.get(id(resource)), self.cite(resource)) if k}
        return frozenset(k for k in keys if self._by_key.get(k) is resource)

    def lookup(self, reference: str) -> Resource | None:
        """The resource a reference string points at, or None when it is not in the bundle."""
        found = self._by_key.get(reference)
        if found is None and "/_history/" in reference:
            found = self._by_key.get(reference.split("/_history/", 1)[0])
        return found

    def resolve(self, reference: Any, ref: str, path: str) -> Resource | None:
        """Resolve a Reference element; None when it carries no reference string.

        A reference string that points outside the bundle breaks the PAS contract:
        the payer cannot fetch it, so the request is rejected rather than half-read.
        """
        if reference is None:
            return None
        if type(reference) is not dict:
            raise InvalidRequest("must be a Reference object", at(ref, path))
        target = reference.get("reference")
        if target is None:
            return None
        if type(target) is not str:
            raise InvalidRequest("reference must be a string", at(ref, path))
        found = self.lookup(target)
        if found is None:
            raise InvalidRequest(
                f"reference {target} does not resolve inside the bundle", at(ref, path)
            )
        return found

    def cite(self, resource: Resource) -> str:
        """The "Type/id" citation of a resource held by this bundle (fullUrl when it has no id)."""
        rid = resource.get("id")
        if type(rid) is str and rid:
            return f"{resource['resourceType']}/{rid}"
        for candidate, ref in self.entries:
            if candidate is resource:
                return ref
        return str(resource["resourceType"])


def contained(resource: Resource, reference: str) -> Resource | None:
    """A contained resource addressed as "#id" from inside `resource`."""
    wanted = reference[1:]
    inner_list = resource.get("contained")
    for inner in inner_list if type(inner_list) is list else ():
        if type(inner) is dict and inner.get("id") == wanted:
            return inner
    return None
