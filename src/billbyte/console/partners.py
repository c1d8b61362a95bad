"""Console pages: partner accounts — collection status (sync, data lag, last error), uploading
a vendor file (with a progress bar; a plain form post works without JavaScript) and the
import's reconciliation."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billbyte.api.deps import RuntimeDep, Uow
from billbyte.console import partners_views as views
from billbyte.console.common import PAGES, ConsoleForm, Staff, acting, brand, text
from billbyte.kit.errors import InvalidInput
from billbyte.usage.endpoints import BoundedBodyRoute

router = APIRouter(prefix="/console/partners", include_in_schema=False)
# The upload's POST: the API's bounded body (a declared or streamed body over
# usage_upload_max_bytes is refused while it arrives, before the form is parsed).
# Included into ``router`` below, which adds the prefix.
uploads = APIRouter(include_in_schema=False, route_class=BoundedBodyRoute)
ACTIVE = "/console/partners"
UPLOAD_SCRIPT = "upload.js"


@router.get("", response_class=HTMLResponse)
def partner_list(request: Request, subject: Staff, uow: Uow) -> HTMLResponse:
    return PAGES.render(
        request,
        "partners/list.html",
        brand=brand(uow.session, subject),
        subject=subject,
        active=ACTIVE,
        rows=views.partner_rows(uow.session, acting(subject)),
    )


@router.get("/static/" + UPLOAD_SCRIPT, include_in_schema=False)
def upload_script() -> Response:
    script = resources.files("billbyte.console") / "static" / UPLOAD_SCRIPT
    return Response(
        script.read_text(encoding="utf-8"),
        media_type="text/javascript",
        headers={"cache-control": "public, max-age=3600"},
    )


def _upload_page(
    request: Request,
    uow: Uow,
    subject: Staff,
    account_id: str,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return PAGES.render(
        request,
        "partners/upload.html",
        brand=brand(uow.session, subject),
        subject=subject,
        active=ACTIVE,
        status_code=status_code,
        page=views.upload_page(uow.session, acting(subject), account_id),
        formats=views.formats(),
        error=error,
        script=f"/console/partners/static/{UPLOAD_SCRIPT}",
    )


@router.get("/{account_id}/upload", response_class=HTMLResponse)
def upload_form(request: Request, account_id: str, subject: Staff, uow: Uow) -> HTMLResponse:
    return _upload_page(request, uow, subject, account_id)


@uploads.post("/{account_id}/upload")
def upload(
    request: Request,
    account_id: str,
    subject: Staff,
    form: ConsoleForm,
    runtime: RuntimeDep,
) -> Response:
    try:
        import_id = views.import_upload(
            runtime,
            acting(subject),
            account_id,
            form.getlist("file"),
            format=text(form, "format")[:40] or None,
            report=text(form, "report")[:200] or None,
        )
    except InvalidInput as refused:
        with runtime.uow(read_only=True) as uow:
            return _upload_page(request, uow, subject, account_id, refused.detail, refused.status)
    return RedirectResponse(f"/console/partners/{account_id}/imports/{import_id}", status_code=303)


@router.get("/{account_id}/imports/{import_id}", response_class=HTMLResponse)
def import_result(
    request: Request,
    account_id: str,
    import_id: str,
    subject: Staff,
    uow: Uow,
) -> HTMLResponse:
    return PAGES.render(
        request,
        "partners/import.html",
        brand=brand(uow.session, subject),
        subject=subject,
        active=ACTIVE,
        page=views.import_page(uow.session, acting(subject), account_id, import_id),
    )


router.include_router(uploads)
