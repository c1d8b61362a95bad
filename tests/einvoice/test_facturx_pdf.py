"""The Factur-X PDF/A-3: the invoice PDF with the CII XML embedded by the factur-x library."""

from __future__ import annotations

import io
from unittest import mock

import facturx  # type: ignore[import-untyped]
import pypdf

from billbyte.invoicing.einvoice import cii, facturx_pdf, model, service
from tests.einvoice import documents


def _facturx() -> tuple[bytes, bytes]:
    view = documents.german()
    xml = cii.build_cii(model.build(view))
    data = facturx_pdf.embed(
        service.base_pdf(view),
        xml,
        moment=documents.FINALIZED_AT,
        title="Cloudhaus GmbH: Invoice INV-000042",
        author="Cloudhaus GmbH",
        lang="de_DE",
    )
    return xml, data


def test_the_pdf_carries_the_cii_xml_as_pdf_a_3() -> None:
    xml, data = _facturx()
    filename, embedded = facturx.get_xml_from_pdf(data, check_xsd=True)
    assert filename == "factur-x.xml"
    assert embedded == xml

    reader = pypdf.PdfReader(io.BytesIO(data))
    root = reader.trailer["/Root"]
    assert "/AF" in root
    spec = root["/AF"][0].get_object()
    assert spec["/F"] == "factur-x.xml" and spec["/AFRelationship"] == "/Data"
    xmp = root["/Metadata"].get_object().get_data().decode("utf-8")
    assert "<pdfaid:part>3</pdfaid:part>" in xmp
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    assert "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in xmp
    assert "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>" in xmp
    # every time stamp is the finalization time (2026-10-01 06:30 UTC), not the clock's
    assert "<xmp:CreateDate>2026-10-01T06:30:00+00:00</xmp:CreateDate>" in xmp
    assert "<xmp:ModifyDate>2026-10-01T06:30:00+00:00</xmp:ModifyDate>" in xmp
    assert reader.metadata is not None
    assert reader.metadata["/CreationDate"] == "D:20261001063000+00'00'"
    assert reader.metadata["/ModDate"] == "D:20261001063000+00'00'"
    params = spec["/EF"]["/F"].get_object()["/Params"]
    assert params["/ModDate"] == "D:20261001063000+00'00'"


def test_the_same_document_gives_the_same_bytes_whatever_the_clock() -> None:
    _, first = _facturx()
    later = facturx.facturx.datetime.now().replace(year=2031)
    with mock.patch.object(facturx.facturx, "datetime") as clock:
        clock.now.return_value = later  # the library's clock moves on five years
        _, second = _facturx()
    assert second == first
    # the library's helpers are restored afterwards
    assert facturx.facturx._get_metadata_timestamp().startswith("20")
    assert facturx.facturx._get_metadata_timestamp() != "2026-10-01T06:30:00+00:00"
