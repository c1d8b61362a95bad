"""Console pages: the MSP's brand (name, colour, support contact, logo), which its portal and
console pages show (``tenancy.repository.brand_of``); and the public logo route the
sign-in pages use."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billbyte.api.deps import RuntimeDep
from billbyte.auth.web_sessions import WebSubject
from billbyte.console import branding_views as views
from billbyte.console.admin_views import notices
from billbyte.console.common import PAGES, ConsoleForm, Staff, acting, brand
from billbyte.kit.errors import BillByteError, Conflict, InvalidInput
from billbyte.runtime import Runtime
from billbyte.tenancy.service import MAX_LOGO_BYTES

router = APIRouter(include_in_schema=False)
ACTIVE = "/console/branding"
DONE = {
    "saved": "The brand was saved: the portal and the console show it now.",
    "logo": "The logo was uploaded.",
    "logo_removed": "The logo was removed.",
}
# The multipart envelope around a logo (boundaries, headers, the CSRF field) is small.
MAX_UPLOAD_REQUEST = MAX_LOGO_BYTES + 16 * 1024


class UploadTooLarge(BillByteError):
    status = 413
    code = "upload_too_large"
    title = "Upload too large"


def bounded_upload(request: Request) -> None:
    """Refuse an upload request larger than a logo can be before its body is read (a
    request without a length is refused too: the server would have to read it to know)."""
    length = request.headers.get("content-length", "")
    if not length.isdigit() or len(length) > 12:
        raise UploadTooLarge("Send the logo with a Content-Length.", code="length_required")
    if int(length) > MAX_UPLOAD_REQUEST:
        raise UploadTooLarge(f"The logo is larger than {MAX_LOGO_BYTES // 1024} KB.")


def _page(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    *,
    typed: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
    done: str | None = None,
) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        page_brand = brand(uow.session, subject)
        stored = views.values(uow.session, subject.msp_id)
    return PAGES.render(
        request,
        "branding/edit.html",
        brand=page_brand,
        subject=subject,
        active=ACTIVE,
        status_code=status_code,
        values=typed or stored,
        error=error,
        notices=notices(done, DONE),
        max_kb=MAX_LOGO_BYTES // 1024,
    )


@router.get("/console/branding", response_class=HTMLResponse)
def edit(
    request: Request,
    runtime: RuntimeDep,
    subject: Staff,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    return _page(request, runtime, subject, done=done)


def _write(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    change: Any,
    done: str,
    typed: dict[str, str] | None = None,
) -> Response:
    try:
        with runtime.uow() as uow:
            change(uow.session)
            uow.commit()
    except (InvalidInput, Conflict) as exc:
        return _page(
            request, runtime, subject, typed=typed, error=exc.detail, status_code=exc.status
        )
    return RedirectResponse(f"/console/branding?done={done}", status_code=303)


@router.post("/console/branding", response_class=HTMLResponse)
def save(request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm) -> Response:
    return _write(
        request,
        runtime,
        subject,
        lambda session: views.save(session, acting(subject), form),
        "saved",
        typed=views.typed(form),
    )


@router.post("/console/branding/logo", response_class=HTMLResponse)
def upload_logo(
    request: Request,
    runtime: RuntimeDep,
    subject: Staff,
    _bounded: Annotated[None, Depends(bounded_upload)],
    form: ConsoleForm,
) -> Response:
    return _write(
        request,
        runtime,
        subject,
        lambda session: views.upload(session, acting(subject), form),
        "logo",
    )


@router.post("/console/branding/logo/delete", response_class=HTMLResponse)
def remove_logo(
    request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm
) -> Response:
    return _write(
        request,
        runtime,
        subject,
        lambda session: views.remove(session, acting(subject)),
        "logo_removed",
    )


@router.get("/brand/{msp_id}/logo")
def logo(runtime: RuntimeDep, msp_id: str) -> Response:
    """Public: the sign-in pages show the logo before anyone signs in. The URL carries the
    logo's version, so it may be cached; the type is the one its magic bytes proved."""
    with runtime.uow(read_only=True) as uow:
        data, content_type = views.logo(uow.session, msp_id)
    return Response(
        data,
        media_type=content_type,
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "public, max-age=86400",
            "Content-Security-Policy": "default-src 'none'",
            "Content-Disposition": "inline",
        },
    )
