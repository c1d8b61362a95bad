"""The portal's pages. Thin: parse, call one service function, render."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from billbyte.api.deps import RuntimeDep
from billbyte.auth.web_sessions import PORTAL
from billbyte.customers import repository as customers
from billbyte.portal import budgets
from billbyte.portal.common import PAGES, Person, brand, customer_of
from billbyte.tenancy import repository as tenancy
from billbyte.web.signin import sign_in_routes

router = APIRouter(include_in_schema=False)
router.include_router(sign_in_routes(PORTAL, PAGES, tenancy.brand_of))
router.include_router(budgets.router)


@router.get("/portal", response_class=HTMLResponse)
def overview(request: Request, runtime: RuntimeDep, subject: Person) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        customer = customers.get_customer(uow.session, subject.msp_id, customer_of(subject))
        page_brand = brand(uow.session, subject)
        name = customer.name
    return PAGES.render(
        request,
        "overview.html",
        brand=page_brand,
        subject=subject,
        active="/portal",
        customer_name=name,
    )
