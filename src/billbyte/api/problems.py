"""The one place where errors become RFC 9457 problem+json responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from billbyte.kit.errors import BillByteError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def problem(
    status: int, code: str, title: str, detail: str, instance: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://billbyte.dev/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field_path(loc: tuple[Any, ...], error_type: str = "") -> str:
    if error_type == "json_invalid":
        return "body"  # the location's second part is a character offset, not a field
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "/".join(str(p) for p in loc)


# The methods an HTTP API can be asked about; ``Allow`` lists those among them served here.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def _allowed_methods(request: Request) -> list[str]:
    """Every method served at this path. Starlette's own ``Allow`` names only the methods of
    the first route whose path matched, but one path is often several routes (GET and POST
    on a collection are two operations) and RFC 9110 wants them all: ask the router, method
    by method, which would be served."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(BillByteError)
    async def _domain(request: Request, exc: BillByteError) -> JSONResponse:
        extra = dict(exc.extra)
        if exc.status == 401:
            response = problem(
                exc.status, exc.code, exc.title, exc.detail, request.url.path, **extra
            )
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        if exc.status == 422 and "field" in extra and "errors" not in extra:
            # Same shape as request validation errors: a list of field paths.
            extra["errors"] = [{"field": extra["field"], "message": exc.detail, "type": exc.code}]
        return problem(exc.status, exc.code, exc.title, exc.detail, request.url.path, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _field_path(tuple(e.get("loc", ())), e.get("type", "")),
                "message": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(
            422,
            "validation_error",
            "Invalid input",
            summary or "Invalid input.",
            request.url.path,
            errors=errors,
        )

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value that passed validation (PostgreSQL: NUL characters,
        # a string longer than its column, a number out of range). Bad input, not a 500.
        log.warning(
            "database rejected input on %s %s: %s", request.method, request.url.path, exc.orig
        )
        return problem(
            422,
            "unstorable_value",
            "Invalid input",
            "A value cannot be stored: too long, out of range, or containing a NUL character.",
            request.url.path,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No route {request.method} {request.url.path}."
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not supported here; use {', '.join(allowed)}."
        response = problem(
            exc.status_code, code, code.replace("_", " ").capitalize(), detail, request.url.path
        )
        response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "internal_error",
            "Internal error",
            "Something went wrong on our side; it has been logged.",
            request.url.path,
        )
