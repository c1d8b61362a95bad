"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from billbyte import __version__
from billbyte.api import problems
from billbyte.audit.endpoints import router as audit_router
from billbyte.customers.endpoints import router as customers_router
from billbyte.idempotency.middleware import IdempotencyMiddleware
from billbyte.partners.endpoints import router as partners_router
from billbyte.runtime import Runtime, build_runtime
from billbyte.tenancy.endpoints import router as api_keys_router

DESCRIPTION = """
Usage billing for cloud service brokers. Authenticate with `Authorization: Bearer <api key>`.
Every POST honours `Idempotency-Key`. Errors are RFC 9457 `application/problem+json` with a
stable `code`. Amounts are decimal strings with their currency; timestamps are UTC ISO 8601.
"""


def create_app(runtime: Runtime | None = None) -> FastAPI:
    runtime = runtime or build_runtime()
    app = FastAPI(
        title="BillByte API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    problems.install(app)
    for router in (partners_router, customers_router, audit_router, api_keys_router):
        app.include_router(router)

    @app.get("/healthz", tags=["operations"], summary="Liveness and database check")
    def healthz() -> dict[str, str]:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok", "database": runtime.engine.dialect.name}

    app.add_middleware(IdempotencyMiddleware, runtime=runtime)
    return app
