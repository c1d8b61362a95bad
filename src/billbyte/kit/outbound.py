"""The one guard for requests to URLs an MSP controls (webhook endpoints, partner account
endpoints and login/token URLs, anything later).

In a multi-tenant installation an MSP must not be able to make BillByte call internal
services (and read their answers back through an error message), nor hand the platform's own
credentials to a host of its choosing. So:

* only ``https`` (``http`` only when the operator allows it) and only allowed ports;
* every destination that is not a public unicast address is refused — in every textual
  form a host can take (``127.1``, ``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``,
  NAT64/6to4 translations, ``localhost.``, cloud metadata names) and after resolution;
* the address is resolved ONCE per connection, every resolved address is checked, and the
  connection goes to that checked address (TLS still verifies the name): a DNS answer that
  changes between check and connect (rebinding) cannot reach loopback;
* redirects are never followed.

``OutboundPolicy`` carries the operator's settings; ``guarded_client`` is an ``httpx.Client``
whose every connection is checked and pinned.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpcore
import httpx

from billbyte.kit.errors import InvalidInput

if TYPE_CHECKING:
    from billbyte.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = frozenset({443, 8443})
_SCHEME_PORT = {"https": 443, "http": 80}
# Names that mean "this machine" or a cloud metadata service whatever DNS says.
_LOCAL_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "metadata",
        "metadata.google.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (the IPv4 address decides).
_NAT64 = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # well-known NAT64 prefix (RFC 6052)
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # SIIT IPv4-translated (RFC 2765)
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated, still routed by some stacks)
)
_IPV4_PART = re.compile(r"^(0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)$")
MAX_MESSAGE_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class OutboundRefused(Exception):
    """A destination the policy does not allow. Not an ``httpx`` error on purpose: it is no
    transient network failure and must not be retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unresolvable(OutboundRefused):
    """The name does not resolve (now): not refused at registration, and a transient
    connection failure (retried) when connecting."""


@dataclass(frozen=True)
class OutboundPolicy:
    """What the operator allows. The default refuses everything but public https on 443/8443."""

    allow_private: bool = False
    allow_http: bool = False
    allowed_ports: frozenset[int] | None = field(default=DEFAULT_PORTS)  # None: any port
    allow_custom_vendor_endpoints: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        return cls(
            allow_private=settings.outbound_allow_private,
            allow_http=settings.outbound_allow_http,
            allowed_ports=parse_ports(settings.outbound_allowed_ports),
            allow_custom_vendor_endpoints=settings.allow_custom_vendor_endpoints,
        )


# The production default: public https on 443/8443, no custom vendor endpoints.
STRICT = OutboundPolicy()
# The vendor simulators of `billbyte serve --sandbox`, the demo and the tests run on
# http://127.0.0.1 at any port: only ever used when the operator asked for them.
LOCAL_SANDBOXES = OutboundPolicy(allow_private=True, allow_http=True, allowed_ports=None)


def parse_ports(text: str) -> frozenset[int] | None:
    """``"443,8443"`` → those ports; ``"*"`` → any port."""
    if text.strip() == "*":
        return None
    try:
        return frozenset(int(part) for part in re.split(r"[,\s]+", text.strip()) if part)
    except ValueError:
        raise ValueError(
            f"outbound_allowed_ports: {text!r} is not a list of ports or '*'"
        ) from None


# --- addresses ---------------------------------------------------------------------------


def _ipv4_part(text: str) -> int:
    if text.startswith("0x"):
        return int(text[2:] or "0", 16)
    return int(text, 8) if len(text) > 1 and text.startswith("0") else int(text)


def _loose_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """What ``inet_aton`` (and so ``getaddrinfo`` and browsers) make of a host: one to four
    decimal, octal (leading 0) or hex (0x) parts, the last filling the remaining bytes —
    ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` are all 127.0.0.1."""
    parts = host.lower().split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.match(p) for p in parts):
        return None
    values = [_ipv4_part(p) for p in parts]
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return None
    number = 0
    for v in head:
        number = number << 8 | v
    number = number << 8 * (5 - len(values)) | last
    return ipaddress.IPv4Address(number)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without DNS, in any textual form, else None."""
    text = host.strip().rstrip(".").strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return _loose_ipv4(text)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    for prefix in _NAT64:
        if ip in prefix and int(ip) > 0xFFFF:  # not :: or ::1, which are themselves refused
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_address(ip: IPAddress) -> bool:
    """True for anything but a public unicast address (loopback, private, link-local and so
    the metadata services, CGNAT, reserved, documentation, multicast, unspecified...)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return True
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return blocked_address(embedded)
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_link_local


def _local_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name in _LOCAL_NAMES or name.endswith(".localhost")


def resolve(host: str, port: int) -> list[str]:
    """Every address the name resolves to (one lookup)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


# --- URLs --------------------------------------------------------------------------------


def _check_form(url: str, policy: OutboundPolicy) -> tuple[str, int]:
    """Scheme, port and host as written; returns (host, port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"{url!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEME_PORT or (scheme == "http" and not policy.allow_http):
        allowed = "http or https" if policy.allow_http else "https"
        raise OutboundRefused(f"the URL must use {allowed}, not {scheme or 'no scheme'!r}")
    host = parts.hostname or ""
    if not host:
        raise OutboundRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("the URL must not carry a user name or password")
    port = port if port is not None else _SCHEME_PORT[scheme]
    if policy.allowed_ports is not None and port not in policy.allowed_ports:
        allowed_ports = ", ".join(str(p) for p in sorted(policy.allowed_ports))
        raise OutboundRefused(f"port {port} is not allowed (allowed: {allowed_ports})")
    if not policy.allow_private:
        literal = literal_address(host)
        if literal is not None and blocked_address(literal):
            raise OutboundRefused(f"{host} is not a public address")
        if _local_name(host):
            raise OutboundRefused(f"{host} names this machine or a metadata service")
    return host, port


def pinned_addresses(host: str, port: int, policy: OutboundPolicy) -> list[str]:
    """Resolve ``host`` once and refuse it if ANY answer is not public; the addresses to
    connect to, in order (the caller connects to these and nothing else)."""
    literal = literal_address(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        if not policy.allow_private and _local_name(host):
            raise OutboundRefused(f"{host} names this machine or a metadata service")
        try:
            addresses = resolve(host, port)
        except (socket.gaierror, UnicodeError) as exc:
            raise Unresolvable(f"cannot resolve {host} ({exc})") from None
    if not addresses:
        raise Unresolvable(f"cannot resolve {host}")
    if not policy.allow_private:
        for address in addresses:
            if blocked_address(ipaddress.ip_address(address.split("%", 1)[0])):
                raise OutboundRefused(f"{host} resolves to {address}, not a public address")
    return addresses


def refusal(url: str, policy: OutboundPolicy, *, resolve_name: bool = True) -> str | None:
    """Why the URL may not be called, or None. A name that does not resolve now is not
    refused here (it is checked again, and pinned, when connecting)."""
    try:
        host, port = _check_form(url, policy)
        if resolve_name and not policy.allow_private:
            with contextlib.suppress(Unresolvable):
                pinned_addresses(host, port, policy)
    except OutboundRefused as exc:
        return exc.reason
    return None


def check_destination(url: str, policy: OutboundPolicy, *, field: str, code: str) -> None:
    """For registration: a 422 problem naming ``field`` when the URL may not be called."""
    reason = refusal(url, policy)
    if reason is not None:
        hint = (
            ""
            if policy.allow_private
            else " (Single-MSP installations may set BILLBYTE_OUTBOUND_ALLOW_PRIVATE=1.)"
        )
        raise InvalidInput(
            f"{field}: {short_message(url, 100)} cannot be used: {reason}.{hint}",
            code=code,
            field=field,
        )


# --- HTTP --------------------------------------------------------------------------------


class _PinnedBackend(httpcore.SyncBackend):
    """Connects to the addresses ``pinned_addresses`` checked, never to a second lookup's."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        # TLS is started afterwards on this stream with the URL's host as server name, so
        # SNI and certificate verification still use the name, not the address.
        try:
            addresses = pinned_addresses(host, port, self.policy)
        except Unresolvable as exc:
            raise httpcore.ConnectError(exc.reason) from None
        for address in addresses[:-1]:  # as socket.create_connection would: each in turn
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue
        return super().connect_tcp(addresses[-1], port, timeout, local_address, socket_options)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise OutboundRefused("unix sockets are not an outbound destination")


class GuardedTransport(httpx.HTTPTransport):
    """Checks each request's URL, then connects through the pinning backend."""

    def __init__(self, policy: OutboundPolicy, *, verify: ssl.SSLContext | bool = True) -> None:
        # Not super().__init__: that builds a pool with the default backend (and honours
        # proxy settings, whose own resolution would undo the pinning).
        self.policy = policy
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            http1=True,
            http2=False,
            network_backend=_PinnedBackend(policy),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _check_form(str(request.url), self.policy)
        return super().handle_request(request)


def guarded_client(policy: OutboundPolicy, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` for MSP-controlled URLs: guarded, pinned, no redirects followed,
    no proxy from the environment (a proxy would do its own resolution)."""
    kwargs.pop("follow_redirects", None)
    return httpx.Client(
        transport=GuardedTransport(policy), follow_redirects=False, trust_env=False, **kwargs
    )


# --- vendors' own endpoints --------------------------------------------------------------

# Hosts (and their subdomains) that are the vendors' own: an endpoint there is no MSP's choice.
OFFICIAL_HOSTS: dict[str, tuple[str, ...]] = {
    "aws": ("amazonaws.com", "amazonaws.com.cn"),
    "azure": ("partnercenter.microsoft.com", "login.microsoftonline.com"),
    "microsoft365": ("partnercenter.microsoft.com", "login.microsoftonline.com"),
    "gcp": ("googleapis.com",),
}


_AWS_SERVICE_HOST = re.compile(
    r"(sts|organizations|s3)(\.(dualstack\.)?[a-z]{2}(-gov)?-[a-z]+-\d)?\.amazonaws\.com(\.cn)?"
)


def is_official(vendor: str, url: str) -> bool:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if parts.scheme.lower() != "https" or parts.username is not None or parts.password is not None:
        return False
    if vendor == "aws":
        # Not any *.amazonaws.com: API Gateway, load balancer, EC2 and bucket names there
        # are the MSP's own. Only the service endpoints the connector calls.
        return _AWS_SERVICE_HOST.fullmatch(host) is not None
    return any(host == h or host.endswith("." + h) for h in OFFICIAL_HOSTS.get(vendor, ()))


def custom_endpoint_refusal(
    vendor: str, url: str, *, sandbox: bool, policy: OutboundPolicy, resolve_name: bool = True
) -> str | None:
    """Why this partner account may not use ``url``, or None: an endpoint that is not the
    vendor's own is for sandbox accounts, or when the operator allows custom endpoints; and
    like any MSP-controlled URL it must pass the guard."""
    if not (is_official(vendor, url) or sandbox or policy.allow_custom_vendor_endpoints):
        return (
            "only sandbox partner accounts may use an endpoint that is not the vendor's own "
            "(operators may set BILLBYTE_ALLOW_CUSTOM_VENDOR_ENDPOINTS=1)"
        )
    return refusal(url, policy, resolve_name=resolve_name)


# --- messages ----------------------------------------------------------------------------


def short_message(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A vendor's (or anyone's) answer as one short line for an error shown to the MSP:
    control characters and line breaks collapsed, at most ``limit`` characters."""
    line = " ".join(_CONTROL.sub(" ", str(text)).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
