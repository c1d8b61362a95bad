"""The FastAPI application factory."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from billbyte import (
    __version__,
    tasks,  # noqa: F401  (registers every job kind the in-process workers run)
)
from billbyte.analytics.endpoints import router as analytics_router
from billbyte.api import docs, problems, responses
from billbyte.api.headers import SecurityHeadersMiddleware
from billbyte.api.ratelimit import RateLimitMiddleware, RateLimits
from billbyte.api.request_context import RequestContextMiddleware
from billbyte.audit.endpoints import router as audit_router
from billbyte.budgets.endpoints import router as budgets_router
from billbyte.catalog.endpoints import router as catalog_router
from billbyte.charges.endpoints import router as charges_router
from billbyte.connectors.endpoints import router as connectors_router
from billbyte.console.pages import router as console_pages
from billbyte.credit.endpoints import router as credit_router
from billbyte.customers.endpoints import router as customers_router
from billbyte.db.engine import read_only_engine
from billbyte.exports.endpoints import router as exports_router
from billbyte.fx.endpoints import router as fx_router
from billbyte.idempotency.middleware import IdempotencyMiddleware
from billbyte.invoicing.endpoints import router as invoicing_router
from billbyte.observability import endpoints as observability
from billbyte.partners.endpoints import router as partners_router
from billbyte.portal.endpoints import router as portal_users_router
from billbyte.portal.pages import router as portal_pages
from billbyte.pricing.endpoints import router as pricing_router
from billbyte.rating.endpoints import router as rating_router
from billbyte.runtime import Runtime, build_runtime
from billbyte.taxes.endpoints import router as tax_rates_router
from billbyte.tenancy.endpoints import billing_profile_router
from billbyte.tenancy.endpoints import router as api_keys_router
from billbyte.tenant_jobs.endpoints import router as jobs_router
from billbyte.usage.endpoints import router as usage_router
from billbyte.web import assets
from billbyte.web.errors import page_error
from billbyte.webhooks.endpoints import router as webhooks_router

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
        docs_url=None,  # api/docs.py serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    app.state.runtime = runtime
    docs.install(app, title=app.title, openapi_url="/openapi.json")
    problems.install(app, page_error=page_error)
    assets.install(app)
    for router in (
        partners_router,
        customers_router,
        usage_router,
        pricing_router,
        rating_router,
        charges_router,
        catalog_router,
        exports_router,
        credit_router,
        budgets_router,
        invoicing_router,
        billing_profile_router,
        tax_rates_router,
        connectors_router,
        analytics_router,
        fx_router,
        audit_router,
        api_keys_router,
        webhooks_router,
        jobs_router,
        portal_users_router,
        portal_pages,
        console_pages,
    ):
        app.include_router(router)

    @app.get("/healthz", tags=["operations"], summary="Liveness and database check")
    def healthz() -> dict[str, str]:
        # A reader: must answer while a job or import holds SQLite's write lock.
        with read_only_engine(runtime.engine).connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok", "database": runtime.engine.dialect.name}

    observability.install(app, runtime)  # /readyz and /metrics

    app.add_middleware(IdempotencyMiddleware, runtime=runtime)
    # Added last = runs first: throttling before idempotency's authentication; unexpected
    # errors answered inside the security headers, so a 500 carries them too.
    app.state.rate_limits = RateLimits(runtime.settings)
    app.add_middleware(RateLimitMiddleware, limits=app.state.rate_limits)
    app.add_middleware(problems.UnexpectedErrors)  # outside idempotency: see its docstring
    app.add_middleware(SecurityHeadersMiddleware)
    # Outermost: every response, a 500 or a 429 included, carries the request id and is
    # measured; JSON logs get one access line per request, with its id (text logs keep
    # uvicorn's access line).
    app.add_middleware(RequestContextMiddleware, log_access=runtime.settings.log_format == "json")
    _document_problems(app)
    return app


def _document_problems(app: FastAPI) -> None:
    """Error responses are sent as application/problem+json, but FastAPI documents a
    response ``model`` under application/json: move the schema to where it belongs."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if problems.PROBLEM_JSON in content and "application/json" in content:
                        content[problems.PROBLEM_JSON] = content.pop("application/json")
        responses.declare_cross_cutting(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
