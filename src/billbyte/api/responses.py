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
