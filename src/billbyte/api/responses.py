"""Error responses declared on routes, so that the OpenAPI document lists them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    code: str
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None
    request_id: str | None = None  # the X-Request-ID of the response, as in the logs


def _doc(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "description": description,
        "content": {"application/problem+json": {}},
    }


Responses = dict[int | str, dict[str, Any]]

UNAUTHORIZED: Responses = {401: _doc("Missing, invalid or revoked API key.")}
NOT_FOUND: Responses = {404: _doc("No such object for this MSP.")}
CONFLICT: Responses = {409: _doc("Conflicts with existing data.")}
INVALID: Responses = {422: _doc("Invalid input, with field paths.")}
FORBIDDEN: Responses = {403: _doc("The key's role may not do this.")}

READ: Responses = {**UNAUTHORIZED, **INVALID}
READ_ONE: Responses = {**UNAUTHORIZED, **NOT_FOUND, **INVALID}
WRITE: Responses = {**UNAUTHORIZED, **FORBIDDEN, **NOT_FOUND, **INVALID}


PROBLEM_JSON = "application/problem+json"
_PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}
_OPERATION_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Answers that do not come from an endpoint's own code but from the layers every request
# goes through, so that no route can forget to document them. (Who answers: the reason.)
_AUTHENTICATED = [
    (401, "Missing, invalid or revoked API key."),
    (429, "Too many requests: slow down, and retry after the Retry-After header's seconds."),
]
_WITH_BODY = [
    (400, "The body cannot be read: not UTF-8, or not the declared media type."),
    (413, "The body is larger than this endpoint accepts."),
    (422, "Invalid input, with field paths."),
]
_WITH_PARAMETERS = [(422, "Invalid input, with field paths.")]
_IDEMPOTENT_POST = [
    (400, "The Idempotency-Key header is empty or longer than 255 characters."),
    (409, "A request with this Idempotency-Key is still running."),
    (422, "This Idempotency-Key was used with a different request."),
]


def declare_cross_cutting(document: dict[str, Any]) -> None:
    """Add, to every operation of an OpenAPI document, the problem responses that the
    framework and middleware can answer for it: authentication and rate limits (secured
    operations), an unreadable or oversized body (operations with one), invalid input
    (operations with parameters), and the Idempotency-Key checks (every POST)."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in components:
        schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components["Problem"] = schema
    for item in document.get("paths", {}).values():
        for method in _OPERATION_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            answers: list[tuple[int, str]] = []
            if operation.get("security"):
                answers += _AUTHENTICATED
            if "requestBody" in operation:
                answers += _WITH_BODY
            if operation.get("parameters"):
                answers += _WITH_PARAMETERS
            if method == "post":
                answers += _IDEMPOTENT_POST
            for status, description in answers:
                _declare(operation.setdefault("responses", {}), status, description)


def _declare(responses: dict[str, Any], status: int, description: str) -> None:
    declared = responses.get(str(status))
    if declared is None:
        responses[str(status)] = {
            "description": description,
            "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}},
        }
        return
    if description not in declared.get("description", ""):
        declared["description"] = f"{declared.get('description', '')} Or: {description}".strip()
    declared.setdefault("content", {}).setdefault(PROBLEM_JSON, {"schema": _PROBLEM_SCHEMA})
