"""The Factur-X PDF/A-3: the invoice's PDF with the CII XML embedded by the factur-x library
(``factur-x.xml``, AFRelationship ``Data``, the Factur-X XMP extension schema, PDF/A-3 id).

The library stamps the current time into the PDF's info dictionary, the embedded file's
``/ModDate`` and the XMP metadata. A finalized document must download byte-identical every
time, so those stamps are the document's finalization time: the library's two timestamp
helpers are replaced for the duration of the call (under a lock, as it is module state).
The test suite checks that the stamps are the finalization time, so a library update that
renames them fails there, not in production.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import facturx  # type: ignore[import-untyped]
from facturx import facturx as _library

from billbyte.kit.errors import Conflict

_LOCK = threading.Lock()


@contextmanager
def _fixed_clock(moment: datetime) -> Iterator[None]:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    pdf_timestamp = _library._get_pdf_timestamp
    metadata_timestamp = _library._get_metadata_timestamp
    with _LOCK:
        _library._get_pdf_timestamp = lambda date=None: pdf_timestamp(date or moment)
        _library._get_metadata_timestamp = lambda: moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        try:
            yield
        finally:
            _library._get_pdf_timestamp = pdf_timestamp
            _library._get_metadata_timestamp = metadata_timestamp


def embed(
    pdf: bytes, xml: bytes, *, moment: datetime, title: str, author: str, lang: str | None
) -> bytes:
    """The PDF with the CII XML embedded, checked against the Factur-X EN 16931 XSD."""
    metadata = {
        "author": author,
        "keywords": "Factur-X, Invoice",
        "title": title,
        "subject": title,
    }
    try:
        with _fixed_clock(moment):
            result: bytes = facturx.generate_from_binary(
                pdf,
                xml,
                flavor="factur-x",
                level="en16931",
                check_xsd=True,
                pdf_metadata=metadata,
                lang=lang,
                xmp_compression=False,  # PDF/A readers expect a plain XMP stream
            )
    except Exception as error:  # the library raises a bare Exception on invalid XML
        raise Conflict(
            f"The Factur-X PDF could not be built: {error}", code="einvoice_invalid"
        ) from error
    return result
