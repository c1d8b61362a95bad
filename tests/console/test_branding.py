"""The console's branding page: validated colour and contact, a PNG/JPEG logo checked by
its magic bytes and size, stored and served publicly; the brand on portal and console
pages; every change audited."""

from __future__ import annotations

import struct
import zlib

import pytest
from sqlalchemy import select

from billbyte.audit.models import AuditEvent
from billbyte.runtime import Runtime
from billbyte.tenancy.models import MspBrand
from tests.conftest import Tenant
from tests.console.admin_helpers import post, staff_client, token_of

FIELDS = {
    "display_name": "Alpha Cloud",
    "primary_colour": "#AA3300",
    "support_email": "help@alpha.example",
    "support_phone": "+49 30 1234-56",
    "support_url": "https://help.alpha.example/portal",
}


def png(extra: int = 0, width: int = 1, height: int = 1) -> bytes:
    """A real PNG of one colour (optionally padded with a text chunk to a size)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress((b"\x00" + b"\xff\xc0\x20" * width) * height)
    text = chunk(b"tEXt", b"c\x00" + b"x" * extra) if extra else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + text
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def _brand(runtime: Runtime, msp_id: str) -> MspBrand | None:
    with runtime.uow(read_only=True) as uow:
        row = uow.session.get(MspBrand, msp_id)
        if row is not None:
            uow.session.expunge(row)
        return row


def _upload(client, content: bytes, name: str = "logo.png", kind: str = "image/png"):  # type: ignore[no-untyped-def]
    return client.post(
        "/console/branding/logo",
        data={"csrf_token": token_of(client, "/console/branding")},
        files={"logo": (name, content, kind)},
        follow_redirects=False,
    )


def test_the_brand_shows_on_the_console_and_the_portal_sign_in(
    runtime: Runtime, tenant: Tenant
) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    assert post(admin, "/console/branding", FIELDS).status_code == 303
    page = admin.get("/console/branding").text
    assert "--brand: #aa3300" in page and "Alpha Cloud" in page
    sign_in = tenant.client.get(f"/portal/sign-in?brand={tenant.msp_id}").text
    assert "--brand: #aa3300" in sign_in
    assert '<a href="https://help.alpha.example/portal" rel="noopener">' in sign_in
    assert "mailto:help@alpha.example" in sign_in
    with runtime.uow(read_only=True) as uow:
        event = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "brand.updated")
        ).one()
    assert event.after is not None and event.after["primary_colour"] == "#aa3300"
    assert event.actor.startswith("console:")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("primary_colour", "red"),
        ("primary_colour", "#12345"),
        ("primary_colour", "#12345g"),
        ("support_url", "http://help.alpha.example"),
        ("support_url", "javascript:alert(1)"),
        ("support_url", "https://"),
        ("support_email", "not an address"),
        ("support_phone", "<script>"),
        ("display_name", "x" * 201),
    ],
)
def test_bad_brand_input_is_a_422_page_and_nothing_is_written(
    runtime: Runtime, tenant: Tenant, field: str, value: str
) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    response = post(admin, "/console/branding", {**FIELDS, field: value})
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert _brand(runtime, tenant.msp_id) is None


def test_a_png_logo_is_stored_and_served_publicly(runtime: Runtime, tenant: Tenant) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    image = png()
    assert _upload(admin, image).status_code == 303
    page = admin.get("/console/branding").text
    assert f'src="/brand/{tenant.msp_id}/logo?v=1"' in page
    anonymous = tenant.client.get(f"/brand/{tenant.msp_id}/logo?v=1")
    assert anonymous.status_code == 200
    assert anonymous.content == image
    assert anonymous.headers["content-type"] == "image/png"
    assert anonymous.headers["x-content-type-options"] == "nosniff"
    assert "max-age" in anonymous.headers["cache-control"]
    sign_in = tenant.client.get(f"/portal/sign-in?brand={tenant.msp_id}").text
    assert f'src="/brand/{tenant.msp_id}/logo?v=1"' in sign_in


def test_a_jpeg_sent_as_png_is_served_as_jpeg(runtime: Runtime, tenant: Tenant) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    assert _upload(admin, JPEG, "logo.png", "image/png").status_code == 303
    served = tenant.client.get(f"/brand/{tenant.msp_id}/logo")
    assert served.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/png"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/png"),
        (b"", "image/png"),
    ],
)
def test_a_logo_that_is_not_png_or_jpeg_is_refused(
    runtime: Runtime, tenant: Tenant, content: bytes, kind: str
) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    response = _upload(admin, content, "logo.png", kind)
    assert response.status_code == 422
    assert _brand(runtime, tenant.msp_id) is None
    assert tenant.client.get(f"/brand/{tenant.msp_id}/logo").status_code == 404


@pytest.mark.parametrize("size", [256 * 1024 + 1, 2 * 1024 * 1024])
def test_an_oversized_logo_is_refused(runtime: Runtime, tenant: Tenant, size: int) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    image = png(extra=size)
    assert len(image) > 256 * 1024
    response = _upload(admin, image)
    assert response.status_code in (413, 422)
    assert _brand(runtime, tenant.msp_id) is None


def test_a_logo_of_exactly_256_kb_is_accepted(runtime: Runtime, tenant: Tenant) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    base = len(png(extra=1)) - 1
    image = png(extra=256 * 1024 - base)
    assert len(image) == 256 * 1024
    assert _upload(admin, image).status_code == 303


def test_removing_the_logo_and_its_audit(runtime: Runtime, tenant: Tenant) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    _upload(admin, png())
    assert post(admin, "/console/branding/logo/delete").status_code == 303
    assert tenant.client.get(f"/brand/{tenant.msp_id}/logo").status_code == 404
    with runtime.uow(read_only=True) as uow:
        actions = list(uow.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-2:] == ["brand.logo_updated", "brand.logo_removed"]


@pytest.mark.parametrize("role", ["billing", "helpdesk"])
def test_only_an_admin_changes_the_brand(runtime: Runtime, tenant: Tenant, role: str) -> None:
    client = staff_client(runtime, tenant.msp_id, role)
    page = client.get("/console/branding")
    assert page.status_code == 200 and 'action="/console/branding"' not in page.text
    assert post(client, "/console/branding", FIELDS).status_code == 403
    assert _upload(client, png()).status_code == 403
    assert post(client, "/console/branding/logo/delete").status_code == 403
    assert _brand(runtime, tenant.msp_id) is None


def test_one_msps_brand_is_not_anothers(
    runtime: Runtime, tenant: Tenant, other_tenant: Tenant
) -> None:
    admin = staff_client(runtime, tenant.msp_id)
    post(admin, "/console/branding", FIELDS)
    _upload(admin, png())
    other = staff_client(runtime, other_tenant.msp_id)
    assert "Alpha Cloud" not in other.get("/console/branding").text
    assert "#aa3300" not in tenant.client.get(f"/portal/sign-in?brand={other_tenant.msp_id}").text
    assert tenant.client.get(f"/brand/{other_tenant.msp_id}/logo").status_code == 404
