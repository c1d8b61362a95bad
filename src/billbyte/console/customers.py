"""Console pages: customers — the list (spend, credit used, vendor states), one customer
(charges, invoices, service actions, portal users), and suspend / resume / purge through a
confirmation page."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billbyte.api.deps import RuntimeDep, Uow
from billbyte.auth.web_sessions import WebSubject
from billbyte.console import customers_views as views
from billbyte.console.common import PAGES, ConsoleForm, Staff, acting, brand, text
from billbyte.kit.errors import Conflict, InvalidInput, NotFound
from billbyte.runtime import Runtime

router = APIRouter(prefix="/console/customers", include_in_schema=False)
ACTIVE = "/console/customers"
NOTICES = {
    "disabled": "The portal user is disabled and signed out everywhere.",
    "enabled": "The portal user is enabled again.",
    "billing": "The billing details were saved: invoices finalized from now on show them.",
}


def _notices(done: str | None) -> list[dict[str, str]]:
    return [{"kind": "ok", "text": NOTICES[done]}] if done in NOTICES else []


@router.get("", response_class=HTMLResponse)
def customer_list(
    request: Request,
    subject: Staff,
    uow: Uow,
    q: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    period = views.current_period()
    rows = views.customer_rows(uow.session, acting(subject), period, q.strip())
    return PAGES.render(
        request,
        "customers/list.html",
        brand=brand(uow.session, subject),
        subject=subject,
        active=ACTIVE,
        rows=rows,
        period=period,
        q=q,
    )


def _customer(
    request: Request,
    uow: Uow,
    subject: Staff,
    customer_id: str,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    period = views.current_period()
    page = views.customer_page(uow.session, acting(subject), customer_id, period)
    context: dict[str, Any] = {"invitation": None, "reset": None, "error": None, "notices": []}
    context.update(extra)
    return PAGES.render(
        request,
        "customers/detail.html",
        brand=brand(uow.session, subject),
        subject=subject,
        active=ACTIVE,
        status_code=status_code,
        page=page,
        period=period,
        **context,
    )


@router.get("/{customer_id}", response_class=HTMLResponse)
def customer_detail(
    request: Request,
    customer_id: str,
    subject: Staff,
    uow: Uow,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    return _customer(request, uow, subject, customer_id, notices=_notices(done))


def _billing_details(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    customer_id: str,
    *,
    typed: dict[str, str] | None = None,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        page_brand = brand(uow.session, subject)
        page = views.billing_details_page(uow.session, acting(subject), customer_id, typed)
    return PAGES.render(
        request,
        "customers/billing_details.html",
        brand=page_brand,
        subject=subject,
        active=ACTIVE,
        status_code=status_code,
        page=page,
        treatments=views.TAX_TREATMENTS,
        error=error,
        errors=errors or {},
    )


# Before /{customer_id}/{action}, which would take "billing-details" for a service action.
@router.get("/{customer_id}/billing-details", response_class=HTMLResponse)
def billing_details(
    request: Request, customer_id: str, subject: Staff, runtime: RuntimeDep
) -> HTMLResponse:
    return _billing_details(request, runtime, subject, customer_id)


@router.post("/{customer_id}/billing-details", response_class=HTMLResponse)
def save_billing_details(
    request: Request, customer_id: str, subject: Staff, form: ConsoleForm, runtime: RuntimeDep
) -> Response:
    try:
        with runtime.uow() as uow:
            views.save_billing_details(uow.session, acting(subject), customer_id, form)
            uow.commit()
    except InvalidInput as refused:
        field = refused.extra.get("field")
        return _billing_details(
            request,
            runtime,
            subject,
            customer_id,
            typed=views.typed_billing_details(form),
            error=refused.detail,
            errors={str(field): refused.detail} if field else {},
            status_code=refused.status,
        )
    return RedirectResponse(
        f"/console/customers/{customer_id}?done=billing#billing-details", status_code=303
    )


def _confirm_page(
    request: Request,
    uow: Any,
    subject: Staff,
    customer_id: str,
    action: str,
    error: str | None = None,
    status_code: int = 200,
    reason: str = "",
) -> HTMLResponse:
    preview = views.action_preview(uow.session, acting(subject), customer_id, action)
    return PAGES.render(
        request,
        "customers/confirm.html",
        brand=brand(uow.session, subject),
        subject=subject,
        active=ACTIVE,
        status_code=status_code,
        preview=preview,
        error=error,
        reason=reason,
    )


@router.get("/{customer_id}/{action}", response_class=HTMLResponse)
def confirm_action(
    request: Request, customer_id: str, action: str, subject: Staff, uow: Uow
) -> HTMLResponse:
    return _confirm_page(request, uow, subject, customer_id, action)


@router.get("/{customer_id}/actions/{action_id}", response_class=HTMLResponse)
def action_status(
    request: Request, customer_id: str, action_id: str, subject: Staff, uow: Uow
) -> HTMLResponse:
    status = views.action_status(uow.session, acting(subject), customer_id, action_id)
    return PAGES.render(
        request,
        "customers/action.html",
        brand=brand(uow.session, subject),
        subject=subject,
        active=ACTIVE,
        status=status,
    )


@router.post("/{customer_id}/portal-users", response_class=HTMLResponse)
def invite_portal_user(
    request: Request,
    customer_id: str,
    subject: Staff,
    form: ConsoleForm,
    runtime: RuntimeDep,
) -> HTMLResponse:
    with runtime.uow() as uow:
        try:
            invitation = views.invite(
                uow.session,
                acting(subject),
                customer_id,
                email=text(form, "email")[:320],
                name=text(form, "name")[:200],
                public_url=runtime.settings.effective_public_url,
            )
        except (InvalidInput, Conflict) as refused:
            uow.rollback()
            return _customer(
                request, uow, subject, customer_id, refused.status, error=refused.detail
            )
        uow.commit()
        # The link is shown on this answer only (no redirect: it is not stored readable).
        return _customer(
            request,
            uow,
            subject,
            customer_id,
            201,
            invitation={"email": invitation.user.email, "link": invitation.link},
        )


@router.post("/{customer_id}/portal-users/{user_id}/reset", response_class=HTMLResponse)
def reset_portal_user(
    request: Request,
    customer_id: str,
    user_id: str,
    subject: Staff,
    form: ConsoleForm,
    runtime: RuntimeDep,
) -> HTMLResponse:
    with runtime.uow() as uow:
        user, link = views.reset_link(
            uow.session,
            acting(subject),
            customer_id,
            user_id,
            runtime.settings.effective_public_url,
        )
        uow.commit()
        return _customer(
            request, uow, subject, customer_id, reset={"email": user.email, "link": link}
        )


@router.post("/{customer_id}/portal-users/{user_id}/{change}")
def change_portal_user(
    customer_id: str,
    user_id: str,
    change: str,
    subject: Staff,
    form: ConsoleForm,
    runtime: RuntimeDep,
) -> Response:
    if change not in ("disable", "enable"):
        raise NotFound(f"No such change: {change!r}.")
    with runtime.uow() as uow:
        views.set_disabled(uow.session, acting(subject), customer_id, user_id, change == "disable")
        uow.commit()
    return RedirectResponse(f"/console/customers/{customer_id}?done={change}d", status_code=303)


# Last: the other POSTs under a customer (portal-users) must match before this one.
@router.post("/{customer_id}/{action}")
def perform_action(
    request: Request,
    customer_id: str,
    action: str,
    subject: Staff,
    form: ConsoleForm,
    runtime: RuntimeDep,
) -> Response:
    reason = text(form, "reason")[:500] or None
    with runtime.uow() as uow:
        try:
            item = views.request_action(
                uow.session,
                acting(subject),
                customer_id,
                action,
                reason=reason,
                confirm=text(form, "confirm"),
                purge_hold=timedelta(hours=runtime.settings.purge_hold_hours),
            )
        except (InvalidInput, Conflict) as refused:
            uow.rollback()
            return _confirm_page(
                request,
                uow,
                subject,
                customer_id,
                action,
                error=refused.detail,
                status_code=refused.status,
                reason=reason or "",
            )
        uow.commit()
        target = f"/console/customers/{customer_id}/actions/{item.id}"
    return RedirectResponse(target, status_code=303)
