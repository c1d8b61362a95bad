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


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope["path"] == API_PREFIX or scope["path"].startswith(API_PREFIX + "/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                added = (*SECURITY_HEADERS, NO_STORE) if is_api else SECURITY_HEADERS
                names = {name for name, _ in added}
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in names
                ]
                message["headers"] = [*headers, *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)
