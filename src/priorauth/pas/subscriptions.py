"""PAS Subscriptions (R4 Subscriptions Backport): read a request, render it, build notifications."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from priorauth.errors import InvalidRequest
from priorauth.pas.notes import instant

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
PAS_TOPIC = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic"
FILTER_CRITERIA = BACKPORT + "backport-filter-criteria"
PAYLOAD_CONTENT = BACKPORT + "backport-payload-content"
SUBSCRIPTION_PROFILES = (
    BACKPORT + "backport-subscription",
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-subscription",
)
NOTIFICATION_PROFILE = BACKPORT + "backport-subscription-notification-r4"
STATUS_PROFILE = BACKPORT + "backport-subscription-status-r4"
ORG_FILTER = "org-identifier="
_JSON_TYPES = frozenset({"application/fhir+json", "application/json"})

PayloadContent = Literal["full-resource", "id-only", "empty"]
NotificationKind = Literal["event-notification", "handshake", "heartbeat"]

__all__ = [
    "FORBIDDEN_HEADERS",
    "PAS_TOPIC",
    "SubscriptionRequest",
    "fhir_base",
    "header_problem",
    "notification_bundle",
    "organizations",
    "read_subscription",
    "status_parameters",
    "subscription_resource",
]


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """What a client's PAS Subscription asks for."""

    topic: str  # the PAS SubscriptionTopic canonical
    org_identifier: str  # the filter value after "org-identifier=" (the requestor's NPI)
    endpoint: str  # http(s) URL notifications are POSTed to
    content: PayloadContent  # only "full-resource" and "id-only" are accepted
    headers: tuple[str, ...]  # channel.header, sent with every notification
    channel: Literal["rest-hook"] = "rest-hook"
    payload: str = "application/fhir+json"  # channel.payload: the notifications' Content-Type

    @property
    def organizations(self) -> tuple[str, ...]:
        """The organizations of the filter (spec-58 allows a comma-separated list)."""
        return organizations(self.org_identifier)


def organizations(org_filter: str) -> tuple[str, ...]:
    """The identifiers of a stored "A,B" organization filter."""
    return tuple(o.strip() for o in org_filter.split(",") if o.strip())


def read_subscription(resource: dict[str, Any]) -> SubscriptionRequest:
    """Validate a PAS Subscription (Backport R4 shape); InvalidRequest names the first problem."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Subscription":
        raise InvalidRequest("resourceType must be Subscription", "Subscription")
    criteria = resource.get("criteria")
    if not isinstance(criteria, str) or criteria.split("|", 1)[0] != PAS_TOPIC:
        raise InvalidRequest(f"criteria must be the PAS SubscriptionTopic {PAS_TOPIC}", "criteria")
    org = _org_filter(resource.get("_criteria"))
    channel = resource.get("channel")
    if not isinstance(channel, dict):
        raise InvalidRequest("channel is required", "Subscription.channel")
    if channel.get("type") != "rest-hook":
        raise InvalidRequest("only rest-hook is supported", "Subscription.channel.type")
    endpoint = _endpoint(channel.get("endpoint"))
    payload = channel.get("payload")
    mime = payload.split(";", 1)[0].strip() if isinstance(payload, str) else None
    if payload is not None and mime not in _JSON_TYPES:
        raise InvalidRequest(
            "channel.payload must be application/fhir+json or application/json (only JSON "
            "notifications are sent)",
            "Subscription.channel.payload",
        )
    return SubscriptionRequest(
        topic=criteria,
        org_identifier=org,
        endpoint=endpoint,
        content=_content(channel.get("_payload")),
        headers=_headers(channel.get("header")),
        payload=mime or "application/fhir+json",
    )


def subscription_resource(id: str, req: SubscriptionRequest, status: str) -> dict[str, Any]:
    """The stored Subscription as a GET returns it.

    channel.header is not echoed: headers usually carry the client's credentials
    for its endpoint, and a read must not hand them out again.
    """
    return {
        "resourceType": "Subscription",
        "id": id,
        "meta": {"profile": list(SUBSCRIPTION_PROFILES)},
        "status": status,
        "reason": "Prior Authorization Update Notification Subscription",
        "criteria": req.topic,
        "_criteria": {
            "extension": [{"url": FILTER_CRITERIA, "valueString": ORG_FILTER + req.org_identifier}]
        },
        "channel": {
            "type": req.channel,
            "endpoint": req.endpoint,
            "payload": req.payload,
            "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": req.content}]},
        },
    }


def status_parameters(
    subscription_id: str, base_url: str, topic: str, status: str, events: int
) -> dict[str, Any]:
    """Backport $status: a SubscriptionStatus (Parameters) of type query-status."""
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": [
            {
                "name": "subscription",
                "valueReference": {
                    "reference": f"{fhir_base(base_url)}/Subscription/{subscription_id}"
                },
            },
            {"name": "topic", "valueCanonical": topic},
            {"name": "status", "valueCode": status},
            {"name": "type", "valueCode": "query-status"},
            {"name": "events-since-subscription-start", "valueString": str(events)},
        ],
    }


def fhir_base(base_url: str) -> str:
    """The FHIR base of this server: the FHIR API lives under /fhir (api/fhir.py)."""
    base = base_url.rstrip("/")
    return base if base.endswith("/fhir") else f"{base}/fhir"


def notification_bundle(
    subscription_id: str,
    base_url: str,
    req_topic: str,
    event_number: int,
    response_bundle: dict[str, Any] | None,
    now: datetime,
    kind: NotificationKind = "event-notification",
    *,
    content: PayloadContent = "full-resource",
    status: str = "active",
) -> dict[str, Any]:
    """A Backport R4 notification Bundle (type history), as PAS_notification_example_full_resource.

    For an event notification `response_bundle` is the PAS response Bundle (first entry:
    the ClaimResponse); with full-resource it is the focus itself (spec-61: the
    notification includes the full PAS response Bundle). `event_number` is this event's
    number, which is also the count of events since the subscription started;
    handshakes and heartbeats carry no event and no resources.
    """
    if kind not in get_args(NotificationKind):
        raise ValueError(f"unknown notification type {kind!r}")
    base = fhir_base(base_url)
    subscription_url = f"{base}/Subscription/{subscription_id}"
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": subscription_url}},
        {"name": "topic", "valueCanonical": req_topic},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(event_number)},
    ]
    entries: list[dict[str, Any]] = []
    if kind == "event-notification":
        event, entries = _event(base, event_number, response_bundle, now, content)
        parameters.append(event)
    status_id = str(uuid.uuid4())
    status_entry = {
        "fullUrl": f"urn:uuid:{status_id}",
        "resource": {
            "resourceType": "Parameters",
            "id": status_id,
            "meta": {"profile": [STATUS_PROFILE]},
            "parameter": parameters,
        },
        "request": {"method": "GET", "url": f"{subscription_url}/$status"},
        "response": {"status": "200"},
    }
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": instant(now),
        "entry": [status_entry, *entries],
    }


def _event(
    base: str,
    event_number: int,
    response_bundle: dict[str, Any] | None,
    now: datetime,
    content: PayloadContent,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The notification-event parameter and the Bundle entries that go with it."""
    raw = response_bundle.get("entry") if isinstance(response_bundle, dict) else None
    found = [
        e
        for e in (raw if isinstance(raw, list) else ())
        if isinstance(e, dict)
        and isinstance(e.get("fullUrl"), str)
        and isinstance(e.get("resource"), dict)
        and isinstance(e["resource"].get("resourceType"), str)
    ]
    if not found:
        raise ValueError("an event notification needs the PAS response Bundle")
    focus_resource = found[0]["resource"]
    if focus_resource.get("resourceType") != "ClaimResponse" or not isinstance(
        focus_resource.get("id"), str
    ):
        raise ValueError("the response Bundle's first entry must be the ClaimResponse, with an id")
    parts: list[dict[str, Any]] = [
        {"name": "event-number", "valueString": str(event_number)},
        {"name": "timestamp", "valueInstant": instant(now)},
    ]
    entries: list[dict[str, Any]] = []
    if content == "full-resource":
        assert response_bundle is not None  # found is not empty
        bundle_id = response_bundle.get("id")
        full_url = f"urn:uuid:{bundle_id if isinstance(bundle_id, str) else uuid.uuid4()}"
        parts.append({"name": "focus", "valueReference": {"reference": full_url}})
        entries.append(
            {
                "fullUrl": full_url,
                "resource": response_bundle,
                "request": {"method": "POST", "url": f"{base}/Bundle"},
                "response": {"status": "201"},
            }
        )
    elif content == "id-only":
        # Only the ClaimResponse can be read back from this server, so only it is named.
        url = f"{base}/ClaimResponse/{focus_resource['id']}"
        parts.append({"name": "focus", "valueReference": {"reference": url}})
        entries.append(
            {
                "fullUrl": url,
                "request": {"method": "POST", "url": f"{base}/ClaimResponse"},
                "response": {"status": "201"},
            }
        )
    return {"name": "notification-event", "part": parts}, entries


def _org_filter(criteria_element: object) -> str:
    extensions = criteria_element.get("extension") if isinstance(criteria_element, dict) else None
    for ext in extensions if isinstance(extensions, list) else ():
        if not isinstance(ext, dict) or ext.get("url") != FILTER_CRITERIA:
            continue
        value = ext.get("valueString")
        if isinstance(value, str) and value.startswith(ORG_FILTER):
            # spec-58: one identifier, or a comma-separated list of them.
            orgs = organizations(value[len(ORG_FILTER) :])
            if orgs:
                return ",".join(orgs)
    raise InvalidRequest(
        "a backport-filter-criteria extension with valueString 'org-identifier=<NPI>' is "
        "required on _criteria",
        "Subscription._criteria.extension",
    )


def _endpoint(value: object) -> str:
    where = "Subscription.channel.endpoint"
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("channel.endpoint is required for rest-hook", where)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidRequest("channel.endpoint is not a valid URL", where) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("channel.endpoint must be an absolute http(s) URL", where)
    if any(c.isspace() for c in value):
        raise InvalidRequest("channel.endpoint must not contain whitespace", where)
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest(
            "channel.endpoint must not carry credentials: use channel.header", where
        )
    if not value.isascii():
        raise InvalidRequest("channel.endpoint must be ASCII (punycode for host names)", where)
    return value


def _content(payload_element: object) -> PayloadContent:
    extensions = payload_element.get("extension") if isinstance(payload_element, dict) else None
    for ext in extensions if isinstance(extensions, list) else ():
        if isinstance(ext, dict) and ext.get("url") == PAYLOAD_CONTENT:
            code = ext.get("valueCode")
            if code == "full-resource":
                return "full-resource"
            # spec-62: PAS servers support full-resource subscriptions only.
            raise InvalidRequest(
                "backport-payload-content must be full-resource (PAS spec-62)",
                "Subscription.channel._payload.extension",
            )
    return "full-resource"


# Headers a channel may not set: hop-by-hop ones (RFC 9110 7.6.1), the ones that frame
# the request (the server sets them), and Host (it must name the endpoint that was checked).
FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-type",
        "expect",
    }
)
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
MAX_HEADERS = 20
MAX_HEADER_LENGTH = 4096


def header_problem(header: object) -> str | None:
    """What is wrong with one channel.header ("Name: value"), or None. Also run before sending."""
    if not isinstance(header, str) or ":" not in header:
        return "each channel.header must be 'Name: value'"
    if "\r" in header or "\n" in header:
        return "a channel.header must not contain line breaks"
    if len(header) > MAX_HEADER_LENGTH:
        return f"a channel.header must be at most {MAX_HEADER_LENGTH} characters"
    name, _, value = header.partition(":")
    name = name.strip()
    if not name:
        return "each channel.header must be 'Name: value'"
    if not set(name) <= _TOKEN:
        return "a channel.header name must be an HTTP token (ASCII letters, digits, -)"
    if name.lower() in FORBIDDEN_HEADERS:
        return f"channel.header may not set {name}: the server sets it, or it is hop-by-hop"
    if any(not (" " <= c <= "~" or c == "\t") for c in value):
        return "a channel.header value must be printable ASCII"
    return None


def _headers(value: object) -> tuple[str, ...]:
    where = "Subscription.channel.header"
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidRequest("channel.header must be a list of strings", where)
    if len(value) > MAX_HEADERS:
        raise InvalidRequest(f"at most {MAX_HEADERS} channel.header values", where)
    headers: list[str] = []
    for n, header in enumerate(value):
        problem = header_problem(header)
        if problem is not None:
            raise InvalidRequest(problem, f"{where}[{n}]")
        headers.append(header)
    return tuple(headers)
