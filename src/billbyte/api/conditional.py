"""Conditional GET (RFC 9110 §13.1.2): ``If-None-Match`` against a resource's ``ETag``.

A route that can tell its body's version cheaply answers ``304 Not Modified`` (no body) to a
client that already holds it. API responses stay ``Cache-Control: no-store`` (api/headers.py):
the ETag is for a client that keeps the body itself and asks again, such as a polling BSS,
not for shared caches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header, Response
from pydantic import BaseModel

IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        description="The ETag of the body you hold: 304 without a body if it is still current.",
    ),
]

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the ETag sent in If-None-Match is current."}
}


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 has it for
    this header: a ``W/`` prefix is ignored; ``*`` matches any current body)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def json_with_etag(body: Callable[[], BaseModel], etag: str, if_none_match: str | None) -> Response:
    """The body (built only when needed) as JSON with its ``ETag``, or a bodiless 304 when
    the client holds it. Written here, in the route's thread, by Pydantic as FastAPI would
    (the same bytes), so that FastAPI does not validate the model a second time."""
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    content = body().model_dump_json(by_alias=True)
    return Response(content, media_type="application/json", headers={"ETag": etag})
