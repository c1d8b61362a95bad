"""What every portal page shares: its templates, navigation, the signed-in customer user
and the form check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from billbyte.auth.web_sessions import PORTAL, WebSubject
from billbyte.tenancy import repository as tenancy
from billbyte.web.branding import Brand
from billbyte.web.pages import NavItem, Pages
from billbyte.web.sessions import signed_in, verified_form

PAGES = Pages(
    "billbyte.portal",
    nav=(
        NavItem("/portal", "Overview"),
        NavItem("/portal/costs", "Costs"),
        NavItem("/portal/budgets", "Budgets"),
        NavItem("/portal/invoices", "Invoices"),
    ),
)
Person = Annotated[WebSubject, Depends(signed_in(PORTAL))]
PortalForm = Annotated[FormData, Depends(verified_form(PORTAL))]


def brand(session: Session, subject: WebSubject) -> Brand:
    return tenancy.brand_of(session, subject.msp_id)


def customer_of(subject: WebSubject) -> str:
    """The one customer a portal user may see (every page query is scoped to it)."""
    assert subject.customer_id is not None, "a portal session always belongs to a customer"
    return subject.customer_id
