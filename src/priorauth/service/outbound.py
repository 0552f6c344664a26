"""The server's own requests (subscription notifications, CRD prefetch): where they may go.

A destination is checked on the addresses its host name resolves to, not on its
spelling, and the request is then sent to the very address that was checked (the
host name still goes in `Host` and in TLS SNI, and the certificate is verified
against it). A name that resolves to a public address when it is checked and to
127.0.0.1 a moment later (DNS rebinding) therefore never reaches loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from priorauth.errors import PriorauthError

if TYPE_CHECKING:
    from priorauth.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

# Named on top of the categories below, so the refusal says what it is.
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

__all__ = [
    "Destination",
    "OutboundPolicy",
    "OutboundRefused",
    "UnresolvableHost",
    "system_resolver",
]


class OutboundRefused(PriorauthError):
    """The destination is not one this server sends requests to; the text says why.

    The text names the address category only, never the request's data.
    """


class UnresolvableHost(OutboundRefused):
    """The host name did not resolve (may be temporary: a delivery is retried)."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, as the operating system's resolver answers."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UnresolvableHost(f"the host name {host!r} cannot be resolved") from e
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), else the address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def forbidden_category(ip: IPAddress) -> str | None:
    """Why the address is not a public one ("loopback", ...), or None for a public address."""
    ip = _unwrap(ip)
    checks = (
        (ip in METADATA, "cloud metadata"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "non-public"),  # e.g. 100.64.0.0/10 shared address space
    )
    return next((name for hit, name in checks if hit), None)


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked URL and the addresses it may be reached at (all of them allowed)."""

    url: str
    scheme: str
    host: str  # as written, lower case, without brackets
    port: int
    addresses: tuple[IPAddress, ...]

    def pinned_url(self) -> httpx.URL:
        """The URL with its host replaced by the first checked address."""
        return httpx.URL(self.url).copy_with(host=str(self.addresses[0]))

    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        explicit = urlsplit(self.url).port
        return host if explicit is None or explicit == default else f"{host}:{explicit}"


class OutboundPolicy:
    """Which destinations the server's own requests may reach.

    Public addresses only, unless a host name or network is on the allow-list
    (`PRIORAUTH_OUTBOUND_ALLOW`: tests and on-premise endpoints). https only, unless
    http is allowed (`PRIORAUTH_OUTBOUND_ALLOW_HTTP`, or development mode).
    """

    def __init__(
        self,
        allow: Iterable[str] = (),
        *,
        allow_http: bool = False,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.hosts: set[str] = set()
        self.suffixes: list[str] = []
        self.networks: list[IPNetwork] = []
        for raw in allow:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or any(c.isspace() for c in entry):
                raise ValueError(f"PRIORAUTH_OUTBOUND_ALLOW: {raw!r} is neither a host nor a CIDR")
            if entry.startswith("*."):
                self.suffixes.append(entry[1:])
            else:
                self.hosts.add(entry.rstrip("."))
        self.allow_http = allow_http
        self.resolver = resolver

    @classmethod
    def from_settings(
        cls, settings: Settings, resolver: Resolver = system_resolver
    ) -> OutboundPolicy:
        # Development mode (authentication off) is for a laptop, where endpoints are http.
        http = settings.outbound_allow_http or not settings.auth_enabled
        return cls(settings.outbound_allow, allow_http=http, resolver=resolver)

    def describe(self) -> str:
        """One line for the start-up log and the deployment checklist."""
        extra = sorted(self.hosts) + [f"*{s}" for s in self.suffixes]
        extra += [str(n) for n in self.networks]
        schemes = "http(s)" if self.allow_http else "https"
        allowed = f", and {', '.join(extra)} (PRIORAUTH_OUTBOUND_ALLOW)" if extra else ""
        return f"{schemes} to public addresses{allowed}"

    def _host_allowed(self, host: str) -> bool:
        host = host.rstrip(".")
        return host in self.hosts or any(host.endswith(s) for s in self.suffixes)

    def check(self, url: str) -> Destination:
        """The destination, or OutboundRefused saying what is wrong with it."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise OutboundRefused("the URL is not valid") from e
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
        if scheme not in ("http", "https") or not host:
            raise OutboundRefused("the URL must be an absolute http(s) URL")
        if scheme == "http" and not self.allow_http:
            raise OutboundRefused("only https URLs are allowed")
        if parts.username is not None or parts.password is not None:
            raise OutboundRefused("the URL must not carry credentials")
        port = port or (443 if scheme == "https" else 80)
        named = self._host_allowed(host)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        found = [str(literal)] if literal is not None else self.resolver(host, port)
        addresses: list[IPAddress] = []
        for text in found:
            ip = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
            category = forbidden_category(ip)
            allowed = named or any(_unwrap(ip) in n or ip in n for n in self.networks)
            if category is not None and not allowed:
                raise OutboundRefused(
                    f"the host resolves to a {category} address, which this server does not "
                    "send requests to (see PRIORAUTH_OUTBOUND_ALLOW)"
                )
            addresses.append(ip)
        if not addresses:
            raise UnresolvableHost("the host name resolves to no address")
        return Destination(url, scheme, host, port, tuple(addresses))

    def send(
        self,
        client: httpx.Client,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        content: bytes | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Check `url`, then send to the checked address (never following redirects)."""
        dest = self.check(url)
        extensions: dict[str, object] = {}
        try:
            ipaddress.ip_address(dest.host)
        except ValueError:
            if dest.scheme == "https":
                extensions["sni_hostname"] = dest.host  # the certificate is checked for the name
        request = client.build_request(
            method,
            dest.pinned_url(),
            headers={**headers, "Host": dest.host_header()},
            content=content,
            extensions=extensions,
            timeout=timeout if timeout is not None else client.timeout,
        )
        return client.send(request, follow_redirects=False)


def new_client(timeout: float) -> httpx.Client:
    """A client for outbound requests: no proxy from the environment (it would resolve the
    name again, past the check), no redirects."""
    return httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False)
