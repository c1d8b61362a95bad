"""Security headers on every response, errors and middleware-made responses included."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    # A JSON body must never be sniffed into HTML or script.
    (b"x-content-type-options", b"nosniff"),
    # Nothing here is meant to be framed (clickjacking); CSP for current browsers, the
    # X- header for old ones.
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    # URLs hold tenant identifiers; do not leak them to other sites.
    (b"referrer-policy", b"no-referrer"),
)
# API responses carry billing data and, once, new secrets (API keys, webhook secrets):
# no browser, proxy or CDN may keep a copy.
API_PREFIX = "/v1"
NO_STORE = (b"cache-control", b"no-store")
# The portal's and console's pages: scripts only from this server (plotly.js and our own,
# never inline), forms only to this server. Inline styles are allowed: plotly.js sets them
# and the brand colour is one; styles cannot run code.
PAGE_PREFIXES = ("/portal", "/console")
PAGE_CSP = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    b"object-src 'none'; frame-ancestors 'none'",
)
PAGE_HEADERS = (
    *(header for header in SECURITY_HEADERS if header[0] != b"content-security-policy"),
    PAGE_CSP,
    NO_STORE,
)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if _under(path, API_PREFIX):
            added = (*SECURITY_HEADERS, NO_STORE)
        elif any(_under(path, prefix) for prefix in PAGE_PREFIXES):
            added = PAGE_HEADERS  # billing data: no browser or proxy keeps a copy either
        else:
            added = SECURITY_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in added}
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in names
                ]
                message["headers"] = [*headers, *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)
