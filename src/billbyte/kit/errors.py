"""Domain errors with stable machine codes.

Services raise these; the HTTP layer maps them to RFC 9457 problem+json in exactly one
place (``billbyte.api.problems``) and the CLI prints them as one line with exit code 1.
"""

from __future__ import annotations

from typing import Any


class BillByteError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class NotFound(BillByteError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(BillByteError):
    status = 409
    code = "conflict"
    title = "Conflict"


class InvalidInput(BillByteError):
    status = 422
    code = "validation_error"
    title = "Invalid input"


class Unauthenticated(BillByteError):
    status = 401
    code = "unauthenticated"
    title = "Unauthenticated"


class Forbidden(BillByteError):
    status = 403
    code = "forbidden"
    title = "Forbidden"
