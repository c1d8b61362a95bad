"""The one place where errors become RFC 9457 problem+json responses."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from billbyte.api.headers import NO_STORE, SECURITY_HEADERS
from billbyte.kit.errors import BillByteError
from billbyte.kit.ids import new_id
from billbyte.kit.logs import current_request_id
from billbyte.kit.periods import PERIOD_PATTERN, period_problem

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
    # The id the log records of this request carry (api/request_context.py), so that a
    # client reporting an error gives the operator the lines to read.
    request_id = current_request_id()
    if request_id is not None:
        body.setdefault("request_id", request_id)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field_path(loc: tuple[Any, ...], error_type: str = "") -> str:
    if error_type == "json_invalid":
        return "body"  # the location's second part is a character offset, not a field
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "/".join(str(p) for p in loc)


def _validation_entry(error: Any, body: Any) -> dict[str, Any]:
    """One entry of a validation problem's ``errors[]`` (always field, message, type): a
    message a person can act on (where a JSON body stopped parsing; what a pattern means,
    not the regex; the OpenAPI document keeps the pattern itself)."""
    kind = str(error.get("type", ""))
    loc = tuple(error.get("loc", ()))
    entry: dict[str, Any] = {
        "field": _field_path(loc, kind),
        "message": str(error.get("msg", "")),
        "type": kind,
    }
    ctx = error.get("ctx") or {}
    if kind == "json_invalid":
        position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
        reason = str(ctx.get("error") or "invalid JSON")
        if position is None:
            entry["message"] = f"the body is not valid JSON: {reason}"
        else:
            line, column = _line_and_column(body, position)
            entry["message"] = (
                f"the body is not valid JSON: {reason} at line {line}, column {column} "
                f"(character {position})"
            )
    elif kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        entry["message"] = _pattern_message(pattern)
    return entry


def _line_and_column(body: Any, position: int) -> tuple[int, int]:
    """1-based line and column of ``position`` (a character offset) in the JSON text."""
    text = body if isinstance(body, str) else ""
    before = text[:position]
    line = before.count("\n") + 1
    return line, position - (before.rfind("\n") + 1) + 1


_ALTERNATIVES = re.compile(r"\^\(([A-Za-z0-9_]+(?:\|[A-Za-z0-9_]+)+)\)\$")
# Patterns of the API's schemas in words (a pattern not listed gets a generic sentence).
_PATTERN_MESSAGES = {
    PERIOD_PATTERN: period_problem("the value"),
    r"^[A-Za-z][A-Za-z0-9 ]*$": "must start with a letter and hold only letters, digits and "
    "spaces, e.g. seat",
    r"^[a-z0-9][a-z0-9_.-]{0,19}$": "must be 1 to 20 characters: lower-case letters, digits, "
    "'_', '.' or '-', starting with a letter or digit, e.g. manual",
}


def _pattern_message(pattern: str) -> str:
    if pattern in _PATTERN_MESSAGES:
        return _PATTERN_MESSAGES[pattern]
    choices = _ALTERNATIVES.fullmatch(pattern)
    if choices:
        return "must be one of " + ", ".join(choices[1].split("|"))
    return "does not have the expected form (see the field in the API reference)"


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# What pydantic says of a JSON endpoint's body that FastAPI did not read as JSON.
_NOT_AN_OBJECT = {"model_attributes_type", "dict_type", "model_type"}


def _content_type_hint(request: Request, errors: Any) -> str | None:
    """A JSON endpoint sent a form or an untyped body: FastAPI reads no JSON from it and
    says the body is not an object, which hides the cause. Name the header to send."""
    body_level = any(
        tuple(e.get("loc", ())) == ("body",) and e.get("type") in _NOT_AN_OBJECT for e in errors
    )
    if not body_level or request.method not in ("POST", "PUT", "PATCH"):
        return None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        return None
    sent = (
        "a form body"
        if content_type in _FORM_TYPES
        else (f"a body of type {content_type}" if content_type else "a body without Content-Type")
    )
    return f"This endpoint reads JSON but got {sent}: send Content-Type: application/json."


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


PageError = Callable[[Request, int, str, str], Response | None]
"""Renders an error for a person (an HTML page) or answers None: the API's problem+json."""


def install(app: FastAPI, page_error: PageError | None = None) -> None:
    """Map every error to problem+json; where ``page_error`` answers (the portal's and the
    console's pages), to the page it renders instead."""

    def for_person(request: Request, status: int, title: str, detail: str) -> Response | None:
        return page_error(request, status, title, detail) if page_error else None

    @app.exception_handler(BillByteError)
    async def _domain(request: Request, exc: BillByteError) -> Response:
        if (page := for_person(request, exc.status, exc.title, exc.detail)) is not None:
            return page
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
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [_validation_entry(e, exc.body) for e in exc.errors()]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        if (page := for_person(request, 422, "Invalid input", summary)) is not None:
            return page
        hint = _content_type_hint(request, exc.errors())
        if hint:
            summary = f"{summary}. {hint}" if summary else hint
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
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No route {request.method} {request.url.path}."
        title = code.replace("_", " ").capitalize()
        if (page := for_person(request, exc.status_code, title, detail)) is not None:
            return page
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not supported here; use {', '.join(allowed)}."
        response = problem(exc.status_code, code, title, detail, request.url.path)
        response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Only reached for errors outside UnexpectedErrors (e.g. in an outer middleware);
        # Starlette then closes the connection after this response.
        request_id = current_request_id() or new_id("req")
        log.exception("unhandled error %s on %s %s", request_id, request.method, request.url.path)
        return internal_error(request.url.path, request_id)


def internal_error(path: str, request_id: str) -> JSONResponse:
    """The 500 problem: a generic message and the request id the log line carries, never
    the exception's text or a traceback."""
    response = problem(
        500,
        "internal_error",
        "Internal error",
        "Something went wrong on our side; it has been logged.",
        path,
        request_id=request_id,
    )
    response.headers["X-Request-Id"] = request_id
    # Starlette's outermost error middleware sends the handler's response around
    # SecurityHeadersMiddleware, so the headers are set here as well.
    for name, value in (*SECURITY_HEADERS, NO_STORE):
        response.headers[name.decode()] = value.decode()
    return response


_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


class UnexpectedErrors:
    """ASGI middleware: an exception nothing else handled becomes a 500 problem+json here.

    Starlette's own catch-all (``ServerErrorMiddleware``) sends the handler's response and
    then re-raises, and uvicorn answers a re-raised exception by closing the connection:
    clients on a keep-alive connection saw a reset on their next request. Handled here the
    exception stops, so the connection stays usable. Installed outside the idempotency
    middleware, which sees the exception first and releases its key.
    """

    def __init__(self, app: _ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: _Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            request_id = current_request_id() or new_id("req")
            log.exception(
                "unhandled error %s on %s %s", request_id, scope.get("method"), scope.get("path")
            )
            if started:
                # Part of a response is out: closing the connection is the only honest end.
                raise
            await internal_error(str(scope.get("path", "")), request_id)(scope, receive, send)
