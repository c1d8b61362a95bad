"""Every request's id and measurements, as ASGI middleware (the outermost one).

The id is the client's ``X-Request-ID`` when it is a sane token (``kit.logs.sane_request_id``:
1 to 100 of ``[A-Za-z0-9._-]``), else a new one; it is echoed in the response's
``X-Request-ID``, carried by ``kit.logs.request_id_var`` into every log record of the
request, and put in problem+json bodies. The latency histogram is labelled by the route's
template (``/v1/customers/{customer_id}``), never the path as sent: a path holds tenant
ids, and one label value per id would grow without bound.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import Histogram
from starlette.routing import Match

from billbyte.kit import metrics
from billbyte.kit.ids import new_id
from billbyte.kit.logs import request_id_var, sane_request_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER = b"x-request-id"
UNMATCHED = "unmatched"  # no route: one label for every unknown path

access_log = logging.getLogger("billbyte.access")

REQUEST_DURATION = Histogram(
    "billbyte_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template and status class.",
    ["method", "route", "status_class"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=metrics.REGISTRY,
)
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def route_template(scope: Scope) -> str:
    """The template of the route that answered (FastAPI puts it in the scope), else of the
    route that would have (a response made by a middleware, e.g. an idempotent replay or a
    429), else ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    router = getattr(app, "router", None)
    for candidate in getattr(router, "routes", ()):
        if candidate.matches(scope)[0] is Match.FULL:
            found = getattr(candidate, "path", None)
            return found if isinstance(found, str) and found else UNMATCHED
    return UNMATCHED


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, log_access: bool = False) -> None:
        self.app = app
        self.log_access = log_access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or ()).get(HEADER)
        request_id = sane_request_id(sent.decode("latin-1") if sent else None) or new_id("req")
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client gets if nothing was sent (the server closes)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if name.lower() != HEADER
                ]
                headers.append((HEADER, request_id.encode("ascii")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = scope.get("method", "GET")
            route = route_template(scope)
            REQUEST_DURATION.labels(
                method=method if method in _METHODS else "other",
                route=route,
                status_class=f"{status // 100}xx",
            ).observe(elapsed)
            if self.log_access:
                access_log.info(
                    "%s %s %d %.1f ms",
                    method,
                    scope.get("path", ""),
                    status,
                    elapsed * 1000,
                    extra={
                        "method": method,
                        "path": scope.get("path", ""),
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 1),
                    },
                )
            request_id_var.reset(token)
