"""``GET /readyz`` (documented) and ``GET /metrics`` (Prometheus, not in the OpenAPI
document: it is for a scraper, answers only with ``BILLBYTE_METRICS_TOKEN`` set)."""

from __future__ import annotations

import asyncio
import hmac
import time

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException

from billbyte.api import problems
from billbyte.api.responses import Problem
from billbyte.kit import metrics
from billbyte.observability.collector import DatabaseCollector
from billbyte.observability.readiness import Readiness, ensure_usage_store, readiness
from billbyte.runtime import Runtime

router = APIRouter(tags=["operations"])


class _ProcessMetrics(Collector):
    """The process-wide registry's metrics, inside an app's registry."""

    def collect(self) -> list[Metric]:
        return list(metrics.REGISTRY.collect())


class ReadinessCache:
    """``/readyz`` is unauthenticated and not rate limited, yet each probe opens a database
    connection, a broker connection and an object-store request. So its answer is kept for
    ``BILLBYTE_READINESS_CACHE_SECONDS``, and calls that come while a probe runs wait for
    that probe (on the event loop, holding no worker thread) instead of starting their own:
    a flood costs one probe per period, and a slow dependency (a 3 s broker timeout) is
    waited for once, not by every thread of the pool."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._last: tuple[float, Readiness] | None = None  # (time.monotonic() it began, answer)
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _fresh(self) -> Readiness | None:
        ttl = self.runtime.settings.readiness_cache_seconds
        if self._last is not None and time.monotonic() - self._last[0] < ttl:
            return self._last[1]
        return None

    async def current(self) -> Readiness:
        cached = self._fresh()
        if cached is not None:
            return cached
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a lock belongs to one event loop (tests start several)
            self._lock, self._loop = asyncio.Lock(), loop
        assert self._lock is not None
        async with self._lock:
            cached = self._fresh()  # probed while this call waited
            if cached is not None:
                return cached
            began = time.monotonic()
            result = await run_in_threadpool(readiness, self.runtime)
            self._last = (began, result)
            return result


def install(app: FastAPI, runtime: Runtime) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessMetrics())
    registry.register(DatabaseCollector(runtime))
    app.state.metrics_registry = registry
    app.state.readiness_cache = ReadinessCache(runtime)
    ensure_usage_store(runtime)
    app.include_router(router)


@router.get(
    "/readyz",
    summary="Readiness: database reachable, usage store writable",
    response_model=Readiness,
    responses={
        503: {
            "model": Problem,
            "description": "A dependency is not available; `checks` names which.",
            "content": {problems.PROBLEM_JSON: {}},
        }
    },
)
async def readyz(request: Request) -> Response:
    cache: ReadinessCache = request.app.state.readiness_cache
    result = await cache.current()
    if result.status == "ready":
        return JSONResponse(result.model_dump(mode="json"))
    failing = [name for name, check in result.checks.items() if check.status != "ok"]
    response = problems.problem(
        503,
        "not_ready",
        "Not ready",
        "Failing: " + ", ".join(f"{name} ({result.checks[name].reason})" for name in failing),
        request.url.path,
        checks=result.model_dump(mode="json")["checks"],
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/metrics", include_in_schema=False)
def metrics_endpoint(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    token = runtime.settings.metrics_token
    if not token:
        # Off unless configured: answered like a path that does not exist.
        raise HTTPException(404, "Not Found")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise HTTPException(
            401,
            "GET /metrics needs Authorization: Bearer <BILLBYTE_METRICS_TOKEN>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise HTTPException(403, "This token may not read /metrics.")
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(
        generate_latest(registry),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )
