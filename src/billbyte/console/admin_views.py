"""What the admin areas' pages (pricing, FX & credit, access, webhooks, audit, branding)
share: turning a form into an API schema with the API's own validation, the notices a
redirect announces, and the id and cursor checks of query strings."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from billbyte.kit.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)
# Ids are "<prefix>_<26 Crockford base32>" (kit.ids); a cursor is one of them.
_ID = re.compile(r"^[a-z]{1,10}_[0-9A-Z]{10,40}$")


def validated(model: type[M], data: dict[str, Any]) -> M:
    """``data`` checked by the API's schema: the API's message on failure, as a 422."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise InvalidInput(f"{where}: {message}" if where else message, field=where) from None


def cursor_of(text: str | None, field: str = "cursor") -> str | None:
    """A page cursor from a query string: empty, or an id of the list (422 otherwise)."""
    if not text:
        return None
    if not _ID.match(text):
        raise InvalidInput(
            f"{field} must be a cursor from this list, not {text[:40]!r}.", field=field
        )
    return text


def notices(done: str | None, texts: dict[str, str]) -> list[dict[str, str]]:
    """The notice a post/redirect/get announces with ``?done=<code>`` (unknown codes: none)."""
    text = texts.get(done or "")
    return [{"kind": "ok", "text": text}] if text else []


def optional(value: str) -> str | None:
    return value or None
