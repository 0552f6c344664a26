"""Read and check a CDS Hooks 2.0 request as CRD STU 2 constrains it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from priorauth.errors import InvalidRequest
from priorauth.intake.shapes import STRING, check, check_resource
from priorauth.service.errors import BadRequest, ServiceError, Unprocessable

Json = dict[str, Any]
ORDER_HOOKS = ("order-sign", "order-select", "order-dispatch", "appointment-book")
# The context element holding the orders (a Bundle), per hook; order-dispatch names one.
_ORDERS_IN = {
    "order-sign": "draftOrders",
    "order-select": "draftOrders",
    "appointment-book": "appointments",
}


class PrefetchUnavailable(ServiceError):
    """A prefetch key is missing and the EHR's FHIR server cannot be queried."""

    reason = "incomplete"


@dataclass(slots=True)
class HookRequest:
    hook: str
    instance: str
    context: Json
    prefetch: dict[str, Any] = field(default_factory=dict)
    fhir_server: str | None = None
    token: str | None = None

    @property
    def patient_id(self) -> str:
        return str(self.context["patientId"])

    @property
    def user_id(self) -> str | None:
        user = self.context.get("userId")
        return user if isinstance(user, str) else None

    def dispatched(self) -> list[str]:
        """order-dispatch: the orders dispatched (relative references; `order` or
        CDS Hooks' `dispatchedOrders`)."""
        if self.hook != "order-dispatch":
            return []
        refs = self.context.get("dispatchedOrders")
        if not isinstance(refs, list):
            refs = [self.context.get("order")]
        return [r for r in refs if isinstance(r, str)]

    def draft_orders(self) -> list[Json]:
        """The orders in the context: draftOrders, or appointment-book's appointments."""
        bundle = self.context.get(_ORDERS_IN.get(self.hook, "draftOrders")) or {}
        return [
            e["resource"]
            for e in bundle.get("entry") or ()
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]

    def selections(self) -> set[str] | None:
        """order-select: the orders just chosen (only they are judged); None for order-sign."""
        chosen = self.context.get("selections")
        return set(chosen) if self.hook == "order-select" and isinstance(chosen, list) else None


def parse_hook(raw: bytes, expected_hook: str) -> HookRequest:
    """The request, or BadRequest (not JSON) / Unprocessable (breaks CDS Hooks or CRD rules).

    Context elements this service does not know are ignored, as CDS Hooks requires.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"the body is not JSON: {e}") from e
    if not isinstance(body, dict):
        raise BadRequest("a CDS Hooks request is a JSON object")
    hook = body.get("hook")
    if not isinstance(hook, str) or not hook:
        raise Unprocessable("hook is required", "hook")
    if hook != expected_hook:
        raise Unprocessable(f"this service answers {expected_hook}, not {hook}", "hook")
    instance = body.get("hookInstance")
    if not isinstance(instance, str) or not instance:
        raise Unprocessable("hookInstance is required", "hookInstance")
    context = body.get("context")
    if not isinstance(context, dict):
        raise Unprocessable("context is required and must be an object", "context")
    # CDS Hooks: order-dispatch names the performer and the order, the others the user.
    required = ("patientId", "performer") if hook == "order-dispatch" else None
    for key in required or ("patientId", "userId"):
        if not isinstance(context.get(key), str) or not context[key]:
            raise Unprocessable(f"context.{key} is required for {hook}", f"context.{key}")
    name = _ORDERS_IN.get(hook)
    orders = context.get(name) if name else {"resourceType": "Bundle", "type": "collection"}
    if not isinstance(orders, dict) or orders.get("resourceType") != "Bundle":
        raise Unprocessable(f"context.{name} must be a FHIR Bundle", f"context.{name}")
    if not isinstance(orders.get("entry", []), list):
        raise Unprocessable(f"{name}.entry must be an array", f"context.{name}.entry")
    if hook == "order-select" and not isinstance(context.get("selections"), list):
        raise Unprocessable("order-select needs context.selections", "context.selections")
    if hook == "order-dispatch":
        refs = context.get("dispatchedOrders", [context.get("order")])
        if (
            not isinstance(refs, list)
            or not refs
            or not all(isinstance(r, str) and r.count("/") == 1 for r in refs)
        ):
            raise Unprocessable(
                "order-dispatch needs context.dispatchedOrders (or order): relative references",
                "context.dispatchedOrders",
            )
    try:
        check_resource(orders, f"context.{name}")
        if "selections" in context:
            check(context["selections"], [STRING], "context.selections")
    except InvalidRequest as e:
        raise Unprocessable(e.message, e.where) from e
    prefetch = body.get("prefetch") or {}
    if not isinstance(prefetch, dict):
        raise Unprocessable("prefetch must be an object", "prefetch")
    checked_resources(prefetch, "prefetch")
    server = body.get("fhirServer")
    if server is not None and (not isinstance(server, str) or not server.startswith("http")):
        raise Unprocessable("fhirServer must be an absolute URL", "fhirServer")
    auth = body.get("fhirAuthorization")
    token = None
    if auth is not None:
        if not isinstance(auth, dict) or not isinstance(auth.get("access_token"), str):
            raise Unprocessable(
                "fhirAuthorization needs an access_token", "fhirAuthorization.access_token"
            )
        if server is None:
            # CDS Hooks: authorization is only meaningful for a named FHIR server.
            raise Unprocessable("fhirAuthorization is given without fhirServer", "fhirServer")
        token = auth["access_token"]
    return HookRequest(hook, instance, context, prefetch, server, token)


def checked_resources(data: dict[str, Any], where: str) -> None:
    """422 unless every value given (a resource or a search Bundle) has FHIR's JSON shape.

    For the prefetch at the door and for what is fetched from the EHR's server.
    """
    try:
        for key, value in data.items():
            if isinstance(value, list):
                for i, r in enumerate(value):
                    check_resource(r, f"{where}.{key}[{i}]")
            elif value is not None:
                check_resource(value, f"{where}.{key}")
    except InvalidRequest as e:
        raise Unprocessable(e.message, e.where) from e
