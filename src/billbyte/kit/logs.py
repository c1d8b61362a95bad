"""Log records that say which request or job they belong to, as text or one JSON object a line.

The request id and the job running are carried by context variables: set by the API's
request middleware (``api/request_context.py``) and by the job runner (``jobs/service.py``),
read by :class:`JsonFormatter` for every record logged in that context. Threads started by
a request (FastAPI's thread pool for sync routes) run in a copy of its context, so their
records carry the id too.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

request_id_var: ContextVar[str | None] = ContextVar("billbyte_request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("billbyte_job_id", default=None)
job_kind_var: ContextVar[str | None] = ContextVar("billbyte_job_kind", default=None)

# What a client may send as X-Request-ID and see echoed and logged: a token, never a
# header or log injection (newlines, quotes) nor an unbounded string.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


def sane_request_id(value: str | None) -> str | None:
    """``value`` if it may be used as a request id as sent, else None."""
    if value is not None and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return None


def current_request_id() -> str | None:
    return request_id_var.get()


@contextmanager
def job_context(job_id: str, kind: str) -> Iterator[None]:
    """Records logged inside carry ``job_id`` and ``job_kind``."""
    id_token = job_id_var.set(job_id)
    kind_token = job_kind_var.set(kind)
    try:
        yield
    finally:
        job_kind_var.reset(kind_token)
        job_id_var.reset(id_token)


# Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colour codes
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (UTC, ISO 8601), level, logger,
    message, the request and job context when set, ``extra=`` fields, and the exception's
    traceback as one string field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in (
            ("request_id", request_id_var),
            ("job_id", job_id_var),
            ("job_kind", job_kind_var),
        ):
            value = var.get()
            if value is not None:
                entry[name] = value
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str, log_format: str) -> None:
    """The process's logging: one handler on stderr at ``level``, in ``log_format``. Like
    ``logging.basicConfig`` (which it calls), a no-op when the root logger already has a
    handler: an embedding application's (or the test runner's) configuration stands."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    logging.basicConfig(level=level.upper(), handlers=[handler])
