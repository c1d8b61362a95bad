"""Portal pages: the customer's budgets, its spend against them and the alerts they raised.

A portal user manages its own customer's budgets (it is its own spending): create, change and
delete them with CSRF-checked forms, always scoped to the customer of its session — another
customer's budget id is 404. The figures come from ``budgets.repository.status_for`` and
``notices_for``; the writes go through ``budgets.service`` (the rules the API applies).
Month-to-date only: no forecast until the analytics feature offers one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from billbyte.api.deps import RuntimeDep
from billbyte.auth.web_sessions import WebSubject
from billbyte.budgets import repository, service
from billbyte.budgets.repository import BudgetNotice, BudgetStatus
from billbyte.customers import repository as customers
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import BillByteError, InvalidInput
from billbyte.kit.money import parse_decimal
from billbyte.kit.periods import Period, validate_period
from billbyte.kit.vendors import Vendor
from billbyte.portal.common import PAGES, Person, PortalForm, brand, customer_of
from billbyte.runtime import Runtime
from billbyte.web.branding import Brand

router = APIRouter(include_in_schema=False)
ACTIVE = "/portal/budgets"
VENDOR_NAMES = {
    Vendor.AWS.value: "AWS",
    Vendor.AZURE.value: "Microsoft Azure",
    Vendor.GCP.value: "Google Cloud",
    Vendor.MICROSOFT365.value: "Microsoft 365",
}
VENDORS = [(v.value, VENDOR_NAMES.get(v.value, v.value)) for v in Vendor]
DONE = {
    "created": "Budget created.",
    "updated": "Budget saved.",
    "deleted": "Budget deleted.",
}
_NUMBER = re.compile(r"\d{1,4}")


# --- page data: what the routes render -------------------------------------------------------


@dataclass(frozen=True)
class BudgetsPage:
    brand: Brand
    customer_name: str
    currency: str
    period: str
    statuses: list[BudgetStatus]
    notices: list[BudgetNotice]


def current_period() -> str:
    return str(Period.of(utcnow().date()))


def budgets_page(session: Session, person: WebSubject, period: str | None) -> BudgetsPage:
    month = current_period() if not period else validate_period(period)
    customer = customers.get_customer(session, person.msp_id, customer_of(person))
    return BudgetsPage(
        brand=brand(session, person),
        customer_name=customer.name,
        currency=customer.currency,
        period=month,
        statuses=repository.status_for(session, person.msp_id, customer.id, month),
        notices=repository.notices_for(session, person.msp_id, customer.id, month),
    )


def budget_form(session: Session, person: WebSubject, budget_id: str) -> dict[str, Any]:
    """The page around one of the customer's budgets (edit and delete pages): 404 otherwise."""
    budget = service.own_budget(session, person, budget_id)
    return {
        "brand": brand(session, person),
        "budget_id": budget.id,
        "currency": budget.currency,
        "amount": budget.amount,
        "values": {
            "name": budget.name or "",
            "amount": format(budget.amount, "f"),
            "thresholds": ", ".join(str(t) for t in budget.thresholds),
            "vendor": budget.vendor or "",
        },
    }


def parse_form(form: FormData) -> tuple[dict[str, str], service.BudgetFields]:
    """The form's text (to show again) and the budget it asks for; ``InvalidInput`` when a
    field cannot be read (the service checks the rules)."""
    values = {
        name: str(form.get(name) or "").strip()[:500]
        for name in ("name", "amount", "thresholds", "vendor")
    }
    if not values["amount"]:
        raise InvalidInput("Enter the budget's amount.", field="amount")
    amount = parse_decimal(values["amount"], "amount")
    parts = [p for p in re.split(r"[,;\s]+", values["thresholds"]) if p]
    if not parts or not all(_NUMBER.fullmatch(p) for p in parts):
        raise InvalidInput(
            "Thresholds are whole-number percentages separated by commas, e.g. 50, 80, 100.",
            field="thresholds",
        )
    fields = service.BudgetFields(
        amount=amount,
        thresholds=[int(p) for p in parts],
        name=values["name"] or None,
        vendor=values["vendor"] or None,
    )
    return values, fields


def create_from_form(session: Session, person: WebSubject, form: FormData) -> None:
    _values, fields = parse_form(form)
    service.create_own(session, person, fields)


def update_from_form(session: Session, person: WebSubject, budget_id: str, form: FormData) -> None:
    _values, fields = parse_form(form)
    changes = {
        "name": fields.name,
        "amount": fields.amount,
        "thresholds": fields.thresholds,
        "vendor": fields.vendor,
    }
    service.update_own(session, person, budget_id, changes)


def _entered(form: FormData) -> dict[str, str]:
    return {
        name: str(form.get(name) or "")[:500] for name in ("name", "amount", "thresholds", "vendor")
    }


# --- routes -----------------------------------------------------------------------------------

BLANK = {"name": "", "amount": "", "thresholds": "50, 80, 100", "vendor": ""}


def _list(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    period: str | None,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
    done: str | None = None,
) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        page = budgets_page(uow.session, subject, period)
    notices = [{"kind": "ok", "text": DONE[done]}] if done in DONE else []
    return PAGES.render(
        request,
        "budgets/list.html",
        brand=page.brand,
        subject=subject,
        active=ACTIVE,
        status_code=status_code,
        page=page,
        values=values or BLANK,
        vendors=VENDORS,
        vendor_names=VENDOR_NAMES,
        error=error,
        notices=notices,
    )


@router.get("/portal/budgets", response_class=HTMLResponse)
def budgets(
    request: Request,
    runtime: RuntimeDep,
    subject: Person,
    period: Annotated[str | None, Query(max_length=20)] = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    return _list(request, runtime, subject, period, done=done)


@router.post("/portal/budgets", response_class=HTMLResponse)
def create_budget(
    request: Request, runtime: RuntimeDep, subject: Person, form: PortalForm
) -> Response:
    try:
        with runtime.uow() as uow:
            create_from_form(uow.session, subject, form)
            uow.commit()
    except BillByteError as error:
        if error.status == 404:
            raise
        return _list(
            request,
            runtime,
            subject,
            None,
            values=_entered(form),
            error=error.detail,
            status_code=error.status,
        )
    return RedirectResponse("/portal/budgets?done=created", status_code=303)


def _form_page(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    budget_id: str,
    template: str,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        context = budget_form(uow.session, subject, budget_id)
    if values is not None:
        context["values"] = values
    return PAGES.render(
        request,
        template,
        subject=subject,
        active=ACTIVE,
        status_code=status_code,
        vendors=VENDORS,
        error=error,
        **context,
    )


@router.get("/portal/budgets/{budget_id}/edit", response_class=HTMLResponse)
def edit_budget(
    request: Request, runtime: RuntimeDep, subject: Person, budget_id: str
) -> HTMLResponse:
    return _form_page(request, runtime, subject, budget_id, "budgets/edit.html")


@router.post("/portal/budgets/{budget_id}", response_class=HTMLResponse)
def save_budget(
    request: Request, runtime: RuntimeDep, subject: Person, form: PortalForm, budget_id: str
) -> Response:
    try:
        with runtime.uow() as uow:
            update_from_form(uow.session, subject, budget_id, form)
            uow.commit()
    except BillByteError as error:
        if error.status == 404:
            raise
        return _form_page(
            request,
            runtime,
            subject,
            budget_id,
            "budgets/edit.html",
            values=_entered(form),
            error=error.detail,
            status_code=error.status,
        )
    return RedirectResponse("/portal/budgets?done=updated", status_code=303)


@router.get("/portal/budgets/{budget_id}/delete", response_class=HTMLResponse)
def confirm_delete(
    request: Request, runtime: RuntimeDep, subject: Person, budget_id: str
) -> HTMLResponse:
    return _form_page(request, runtime, subject, budget_id, "budgets/delete.html")


@router.post("/portal/budgets/{budget_id}/delete")
def delete_budget(
    runtime: RuntimeDep, subject: Person, form: PortalForm, budget_id: str
) -> Response:
    with runtime.uow() as uow:
        service.delete_own(uow.session, subject, budget_id)
        uow.commit()
    return RedirectResponse("/portal/budgets?done=deleted", status_code=303)
