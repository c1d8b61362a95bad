"""``GET /readyz`` (documented) and ``GET /metrics`` (Prometheus, not in the OpenAPI
document: it is for a scraper, answers only with ``BILLBYTE_METRICS_TOKEN`` set)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, FastAPI, Request
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


def install(app: FastAPI, runtime: Runtime) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessMetrics())
    registry.register(DatabaseCollector(runtime))
    app.state.metrics_registry = registry
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
def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    result = readiness(runtime)
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
