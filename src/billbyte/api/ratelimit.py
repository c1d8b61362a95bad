"""Rate limits: per client IP, per API key, and (stricter) per IP for failed authentication.

Counters live in the ``limits`` storage named by ``BILLBYTE_RATE_LIMIT_STORAGE_URL``:
``memory://`` keeps them per process; ``redis://…`` lets several API processes share them.
A refused request gets ``429`` problem+json with ``Retry-After`` (seconds).

The failed-authentication limit is what stops key guessing: once an IP has failed
``BILLBYTE_RATE_LIMIT_FAILED_AUTH_PER_IP`` times in the window, *every* request from it is
refused — a correct key included — so that guessing cannot be told apart from success.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from anyio import to_thread
from fastapi import Request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from billbyte.settings import Settings

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Load-balancer probes must not be refused because a client on the same IP misbehaves.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz"})
_STORAGE_ERROR_LOG_INTERVAL = 60.0


def _limits(notation: str) -> list[RateLimitItem]:
    return parse_many(notation) if notation.strip() else []


class RateLimits:
    """The counters one process shares between its middleware (every request) and its
    authentication dependency (failed attempts)."""

    def __init__(self, settings: Settings) -> None:
        self.per_ip = _limits(settings.rate_limit_per_ip)
        self.per_key = _limits(settings.rate_limit_per_key)
        self.failed_auth_per_ip = _limits(settings.rate_limit_failed_auth_per_ip)
        url = settings.rate_limit_storage_url
        # A Redis that stops answering must cost a request a second at most, not hang it.
        options: dict[str, float] = (
            {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}
            if url.startswith(("redis", "rediss"))
            else {}
        )
        storage = storage_from_string(url, **options)
        if not isinstance(storage, Storage):
            raise ValueError(
                "BILLBYTE_RATE_LIMIT_STORAGE_URL must name a synchronous storage "
                "(memory:// or redis://…), not an async+ one"
            )
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(self.storage)
        # Memory counters are a dictionary lookup; anything else is network I/O, kept off
        # the event loop.
        self.blocking = not isinstance(self.storage, MemoryStorage)
        self._last_storage_error = -math.inf

    def check_request(self, client_ip: str, token: str | None) -> tuple[str, int] | None:
        """Count one request; ``(problem code, retry after seconds)`` if it is refused."""
        try:
            for item in self.failed_auth_per_ip:
                if not self.limiter.test(item, "auth-failures", client_ip):
                    return "too_many_failed_authentications", self._retry_after(
                        item, "auth-failures", client_ip
                    )
            for item in self.per_ip:
                if not self.limiter.hit(item, "ip", client_ip):
                    return "rate_limited", self._retry_after(item, "ip", client_ip)
            if token:
                key_id = _token_id(token)
                for item in self.per_key:
                    if not self.limiter.hit(item, "key", key_id):
                        return "rate_limited", self._retry_after(item, "key", key_id)
        except Exception as exc:  # see _storage_failed
            self._storage_failed(exc)
        return None

    def record_failed_authentication(self, client_ip: str) -> None:
        try:
            for item in self.failed_auth_per_ip:
                self.limiter.hit(item, "auth-failures", client_ip)
        except Exception as exc:  # see _storage_failed
            self._storage_failed(exc)

    def _retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        reset_at = self.limiter.get_window_stats(item, *identifiers).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def _storage_failed(self, exc: Exception) -> None:
        # Fail open: an unreachable Redis must not take the billing API down with it. Logged
        # at most once a minute so that an outage does not flood the log.
        now = time.monotonic()
        if now - self._last_storage_error >= _STORAGE_ERROR_LOG_INTERVAL:
            self._last_storage_error = now
            log.error("rate-limit storage unavailable, requests are not limited: %s", exc)


def _token_id(token: str) -> str:
    # Keyed by a hash of the whole token, not its visible prefix, so that nobody can spend
    # another caller's budget by sending a wrong secret with their prefix.
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def client_ip(scope: Scope) -> str:
    """The peer address as the server saw it; uvicorn replaces it with X-Forwarded-For from
    trusted proxies only (``FORWARDED_ALLOW_IPS``, docs/operations.md)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            header = value.decode("latin-1")
            if header.lower().startswith("bearer "):
                return header[7:].strip() or None
            return None
    return None


def rate_limits_of(request: Request) -> RateLimits | None:
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    return limits


_TITLES = {
    "rate_limited": "Too many requests",
    "too_many_failed_authentications": "Too many failed authentications",
}
_DETAILS = {
    "rate_limited": "Rate limit reached; retry after {seconds} s.",
    "too_many_failed_authentications": (
        "Too many failed authentications from this address; every request from it is "
        "refused for {seconds} s."
    ),
}


async def _send_429(send: Send, path: str, code: str, retry_after: int) -> None:
    body = json.dumps(
        {
            "type": f"https://billbyte.dev/problems/{code}",
            "title": _TITLES[code],
            "status": 429,
            "code": code,
            "detail": _DETAILS[code].format(seconds=retry_after),
            "instance": path,
            "retry_after": retry_after,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimitMiddleware:
    """Refuses over-limit requests before they authenticate or touch the database."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        ip, token = client_ip(scope), bearer_token(scope)
        if self.limits.blocking:
            refused = await to_thread.run_sync(self.limits.check_request, ip, token)
        else:
            refused = self.limits.check_request(ip, token)
        if refused is not None:
            code, retry_after = refused
            await _send_429(send, scope["path"], code, retry_after)
            return
        await self.app(scope, receive, send)
