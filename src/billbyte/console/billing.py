"""Console pages: the MSP's billing profile (the seller on its invoices) with the invoice
settings (mode, grouping, grace days), and its tax rates (add, end, delete after a
confirmation page). Help desk reads; admin and billing write, as in the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billbyte.api.deps import RuntimeDep
from billbyte.auth.web_sessions import WebSubject
from billbyte.console import billing_views as views
from billbyte.console.admin_views import notices
from billbyte.console.common import PAGES, ConsoleForm, Staff, acting, brand
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, InvalidInput
from billbyte.runtime import Runtime

router = APIRouter(prefix="/console/billing", include_in_schema=False)
PROFILE = "/console/billing"
TAX_RATES = "/console/billing/tax-rates"
DONE = {
    "profile": "The billing profile was saved: invoices finalized from now on show it.",
    "settings": "The invoice settings were saved.",
    "rate_added": "The tax rate was added.",
    "rate_ended": "The tax rate's end was set.",
    "rate_deleted": "The tax rate was deleted. Finalized invoices keep the rate they had.",
}
Done = Annotated[str | None, Query(max_length=40)]


def _profile_page(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    *,
    profile: dict[str, str] | None = None,
    settings: dict[str, str] | None = None,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    done: str | None = None,
) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        page_brand = brand(uow.session, subject)
        stored_profile = views.profile_values(uow.session, subject.msp_id)
        stored_settings = views.settings_values(uow.session, subject.msp_id)
        not_ready = views.readiness_of(uow.session, acting(subject), utcnow().date())
    return PAGES.render(
        request,
        "billing/profile.html",
        brand=page_brand,
        subject=subject,
        active=PROFILE,
        status_code=status_code,
        profile=profile or stored_profile,
        settings=settings or stored_settings,
        error=error,
        errors=errors or {},
        notices=notices(done, DONE),
        modes=views.MODES,
        groupings=views.GROUPINGS,
        not_ready=not_ready,
    )


@router.get("", response_class=HTMLResponse)
def profile(request: Request, runtime: RuntimeDep, subject: Staff, done: Done = None) -> Response:
    return _profile_page(request, runtime, subject, done=done)


def _commit(runtime: Runtime, change: Any) -> None:
    with runtime.uow() as uow:
        change(uow.session)
        uow.commit()


@router.post("/profile", response_class=HTMLResponse)
def save_profile(
    request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm
) -> Response:
    try:
        _commit(runtime, lambda session: views.save_profile(session, acting(subject), form))
    except InvalidInput as exc:
        return _profile_page(
            request,
            runtime,
            subject,
            profile=views.typed_profile(form),
            error=exc.detail,
            errors=views.field_errors(exc),
            status_code=exc.status,
        )
    return RedirectResponse(f"{PROFILE}?done=profile", status_code=303)


@router.post("/invoice-settings", response_class=HTMLResponse)
def save_settings(
    request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm
) -> Response:
    try:
        _commit(runtime, lambda session: views.save_settings(session, acting(subject), form))
    except InvalidInput as exc:
        return _profile_page(
            request,
            runtime,
            subject,
            settings=views.typed_settings(form),
            error=exc.detail,
            errors=views.field_errors(exc),
            status_code=exc.status,
        )
    return RedirectResponse(f"{PROFILE}?done=settings", status_code=303)


# --- tax rates ------------------------------------------------------------------------------


def _rates_page(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    *,
    typed: dict[str, str] | None = None,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    done: str | None = None,
) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        page_brand = brand(uow.session, subject)
        rows = views.rate_rows(uow.session, acting(subject))
    return PAGES.render(
        request,
        "billing/tax_rates.html",
        brand=page_brand,
        subject=subject,
        active=TAX_RATES,
        status_code=status_code,
        rates=rows,
        typed=typed
        or {
            "country": "",
            "name": "VAT",
            "rate": "",
            "valid_from": utcnow().date().isoformat(),
            "valid_until": "",
        },
        error=error,
        errors=errors or {},
        notices=notices(done, DONE),
    )


@router.get("/tax-rates", response_class=HTMLResponse)
def tax_rates(request: Request, runtime: RuntimeDep, subject: Staff, done: Done = None) -> Response:
    return _rates_page(request, runtime, subject, done=done)


def _rate_write(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    change: Any,
    done: str,
    typed: dict[str, str] | None = None,
) -> Response:
    try:
        _commit(runtime, change)
    except (InvalidInput, Conflict) as exc:
        return _rates_page(
            request,
            runtime,
            subject,
            typed=typed,
            error=exc.detail,
            errors=views.field_errors(exc) if typed else {},
            status_code=exc.status,
        )
    return RedirectResponse(f"{TAX_RATES}?done={done}", status_code=303)


@router.post("/tax-rates", response_class=HTMLResponse)
def add_rate(request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm) -> Response:
    return _rate_write(
        request,
        runtime,
        subject,
        lambda session: views.add_rate(session, acting(subject), form),
        "rate_added",
        typed=views.typed_rate(form),
    )


@router.post("/tax-rates/{rate_id}/end", response_class=HTMLResponse)
def end_rate(
    request: Request, rate_id: str, runtime: RuntimeDep, subject: Staff, form: ConsoleForm
) -> Response:
    return _rate_write(
        request,
        runtime,
        subject,
        lambda session: views.end_rate(session, acting(subject), rate_id, form),
        "rate_ended",
    )


@router.get("/tax-rates/{rate_id}/delete", response_class=HTMLResponse)
def confirm_delete(
    request: Request, rate_id: str, runtime: RuntimeDep, subject: Staff
) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        page_brand = brand(uow.session, subject)
        row = views.rate(uow.session, acting(subject), rate_id)
    return PAGES.render(
        request,
        "billing/delete_rate.html",
        brand=page_brand,
        subject=subject,
        active=TAX_RATES,
        rate=row,
    )


@router.post("/tax-rates/{rate_id}/delete", response_class=HTMLResponse)
def delete_rate(
    request: Request, rate_id: str, runtime: RuntimeDep, subject: Staff, form: ConsoleForm
) -> Response:
    return _rate_write(
        request,
        runtime,
        subject,
        lambda session: views.delete_rate(session, acting(subject), rate_id),
        "rate_deleted",
    )
