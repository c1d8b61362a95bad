"""The console's routes: sign-in, and every area's pages (one module per area)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from billbyte.auth.web_sessions import CONSOLE
from billbyte.console import (
    access,
    audit,
    billing,
    branding,
    customers,
    invoices,
    jobs,
    money,
    partners,
    pricing,
    webhooks,
)
from billbyte.console.common import PAGES, Staff
from billbyte.tenancy import repository as tenancy
from billbyte.web.signin import sign_in_routes

router = APIRouter(include_in_schema=False)
router.include_router(sign_in_routes(CONSOLE, PAGES, tenancy.brand_of))
AREAS = (
    customers,
    partners,
    invoices,
    pricing,
    money,
    billing,
    access,
    webhooks,
    jobs,
    audit,
    branding,
)
for area in AREAS:
    router.include_router(area.router)


@router.get("/console")
def home(subject: Staff) -> RedirectResponse:
    return RedirectResponse("/console/customers", status_code=303)
