"""Where webhooks may go. In a multi-tenant installation an MSP must not be able to make
BillByte POST to internal services (and read the start of their answers in the delivery log),
so destinations on loopback, private, link-local and other non-public addresses are refused —
when the endpoint is registered, and again before each delivery (the name may resolve
differently later). Single-MSP installations and tests set BILLBYTE_WEBHOOK_ALLOW_PRIVATE=1.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from billbyte.kit.errors import InvalidInput


def _blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not ip.is_global or ip.is_multicast


def private_address(url: str) -> str | None:
    """The first non-public address the URL's host is (or resolves to), else None.

    A name that does not resolve now is not refused here: delivery will fail (and be
    checked again) if it still does not."""
    host = urlsplit(url).hostname or ""
    try:
        return host if _blocked(host) else None
    except ValueError:
        pass  # a name, not an address literal
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return None
    for info in infos:
        address = str(info[4][0])
        if _blocked(address):
            return address
    return None


def check_destination(url: str, allow_private: bool) -> None:
    if allow_private:
        return
    address = private_address(url)
    if address is not None:
        raise InvalidInput(
            f"Webhook URLs must reach a public address; {url!r} is {address}. "
            "(Operators of single-MSP installations may set BILLBYTE_WEBHOOK_ALLOW_PRIVATE=1.)",
            code="webhook_url_not_public",
            field="url",
        )
