"""The known file formats (one reader each) and header-based detection."""

from __future__ import annotations

from collections.abc import Sequence

from billbyte.kit.errors import InvalidInput
from billbyte.usage.readers import aws_cur, azure, gcp, partner_center
from billbyte.usage.readers.base import Reader
from billbyte.usage.readers.focus import FocusReader

READERS: dict[str, Reader] = {}


def register(reader: Reader) -> None:
    READERS[reader.name] = reader


for _reader in (
    FocusReader(),
    *aws_cur.READERS,
    *azure.READERS,
    *gcp.READERS,
    *partner_center.READERS,
):
    register(_reader)


def detect(columns: Sequence[str], requested: str | None = None) -> Reader:
    """The reader named by ``requested``, else the one scoring highest on the header."""
    if requested:
        reader = READERS.get(requested)
        if reader is None:
            known = ", ".join(sorted(READERS))
            raise InvalidInput(
                f"Unknown format {requested!r}; known formats: {known}.",
                code="unknown_format",
                field="format",
            )
        if reader.score(columns) == 0:
            raise InvalidInput(
                f"The file's columns do not match the {requested} format "
                f"(first columns: {', '.join(list(columns)[:8])}).",
                code="wrong_format",
            )
        return reader
    scored = sorted(((r.score(columns), name) for name, r in READERS.items()), reverse=True)
    if not scored or scored[0][0] == 0:
        raise InvalidInput(
            "Unrecognised file: its header matches no known format (FOCUS, AWS CUR, Azure "
            "cost export, Partner Center, Google billing export). First columns: "
            f"{', '.join(list(columns)[:8])}.",
            code="unrecognised_format",
        )
    return READERS[scored[0][1]]
