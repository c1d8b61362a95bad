"""What the HTTP connectors (Partner Center, Cloud Channel) share: bearer authentication that
renews its token once on a 401, the token cache, pooled guarded clients, and the one mapping of
vendor HTTP failures to ``VendorError``. The connectors keep only what is the vendor's own:
how a token is obtained, how an error body reads, which headers an API wants.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Hashable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import httpx

from billbyte.connectors.base import VendorError, retry_after_seconds, vendor_detail
from billbyte.kit.outbound import OutboundPolicy, OutboundRefused, guarded_client

# A cached token is renewed this many seconds before the vendor says it expires.
TOKEN_MARGIN = 60.0

# Reads the vendor's own explanation out of an error body (parsed JSON); None when it has none.
ErrorDetail = Callable[[Any], Any]


def is_retryable(status: int) -> bool:
    """429, 408 and 5xx are transient; any other 4xx is not."""
    return status in (408, 429) or status >= 500


def error_for(response: httpx.Response, label: str, what: str, detail: ErrorDetail) -> VendorError:
    """The ``VendorError`` for a vendor's HTTP answer that is not what the call expects."""
    status = response.status_code
    try:
        explained = detail(response.json())
    except (ValueError, AttributeError):
        explained = response.text[:1000]
    retry_after = response.headers.get("Retry-After")
    hint = f" (retry after {retry_after} s)" if retry_after else ""
    return VendorError(
        f"{label} {what}: HTTP {status}: "
        f"{vendor_detail(explained or response.reason_phrase)}{hint}",
        retryable=is_retryable(status),
        status=status,
        retry_after=retry_after_seconds(retry_after),
    )


def send(
    client: httpx.Client,
    method: str,
    url: str,
    label: str,
    **kwargs: Any,
) -> httpx.Response:
    """``client.request`` with connection failures as ``VendorError``: a refused destination is
    final, a timeout or a broken connection is retryable. ``label`` names the call ("Partner
    Center invoices")."""
    try:
        return client.request(method, url, **kwargs)
    except OutboundRefused as exc:
        raise VendorError(f"{label}: {exc.reason}", retryable=False) from None
    except httpx.TimeoutException as exc:
        raise VendorError(f"{label}: timed out ({exc})", retryable=True) from None
    except httpx.TransportError as exc:
        raise VendorError(f"{label}: {exc}", retryable=True) from None


def access_token_of(response: httpx.Response, label: str) -> tuple[str, float]:
    """The token and its lifetime (seconds) from an OAuth 2.0 token answer (HTTP 200)."""
    try:
        body = response.json()
        token = str(body["access_token"])
    except (ValueError, KeyError, TypeError):
        # Whatever answered is no token service; its body is not repeated to the MSP.
        raise VendorError(
            f"{label}: the answer is not a token (HTTP 200 without access_token)",
            retryable=False,
        ) from None
    return token, float(body.get("expires_in") or 3600)


class TokenCache:
    """Tokens by a key that includes the secret material (hashed): another partner account
    naming the same client with another secret must never be handed this one's token."""

    def __init__(self) -> None:
        self._tokens: dict[Hashable, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(
        self, key: Hashable, fetch: Callable[[], tuple[str, float]], *, fresh: bool = False
    ) -> str:
        """The cached token, or (expired, near expiry or ``fresh``) a new one from ``fetch``,
        which returns the token and its lifetime in seconds."""
        with self._lock:
            cached = self._tokens.get(key)
            if cached and not fresh and cached[1] > time.time() + TOKEN_MARGIN:
                return cached[0]
        token, lifetime = fetch()
        with self._lock:
            self._tokens[key] = (token, time.time() + lifetime)
        return token


class RefreshingBearer(httpx.Auth):
    """``Authorization: Bearer`` from ``token(fresh)``; on a 401 the token is renewed once and
    the request sent again (httpx's auth-flow pattern). A token the vendor gave us ready-made
    (``renewable=False``) cannot be renewed: its 401 is the answer."""

    def __init__(self, token: Callable[[bool], str], *, renewable: bool = True) -> None:
        self._token = token
        self._renewable = renewable

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token(False)}"
        response = yield request
        if response.status_code == 401 and self._renewable:
            request.headers["Authorization"] = f"Bearer {self._token(True)}"
            yield request


class ClientPool:
    """One guarded client per key (endpoint, timeout, outbound policy, …), kept for the
    process and shared by threads. Every connection is checked and pinned (kit.outbound)."""

    def __init__(self, **defaults: Any) -> None:
        self._defaults = defaults
        self._clients: dict[Hashable, httpx.Client] = {}
        self._lock = threading.Lock()

    def client(
        self, key: Hashable, policy: OutboundPolicy, timeout: float, **kwargs: Any
    ) -> AbstractContextManager[httpx.Client]:
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = guarded_client(
                    policy,
                    timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                    **(self._defaults | kwargs),
                )
        return nullcontext(client)
