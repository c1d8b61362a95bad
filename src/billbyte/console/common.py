"""What every console page shares: templates, navigation, the signed-in staff member, the
form check, and the role rule (help desk reads; admin and billing write; admin alone manages
users, keys and branding) — the same rule as the API's, through the same AuthSubject."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from billbyte.auth.subject import AuthSubject
from billbyte.auth.web_sessions import CONSOLE, WebSubject
from billbyte.tenancy import repository as tenancy
from billbyte.web.branding import Brand
from billbyte.web.pages import NavItem, Pages
from billbyte.web.sessions import signed_in, verified_form

PAGES = Pages(
    "billbyte.console",
    nav=(
        NavItem("/console/customers", "Customers"),
        NavItem("/console/partners", "Partner accounts"),
        NavItem("/console/pricing", "Pricing"),
        NavItem("/console/fx", "FX & credit"),
        NavItem("/console/invoices", "Invoices"),
        NavItem("/console/margin", "Margin"),
        NavItem("/console/billing", "Billing profile"),
        NavItem("/console/billing/tax-rates", "Tax rates"),
        NavItem("/console/webhooks", "Webhooks"),
        NavItem("/console/jobs", "Failed jobs"),
        NavItem("/console/access", "Users & keys"),
        NavItem("/console/audit", "Audit log"),
        NavItem("/console/branding", "Branding"),
    ),
)
Staff = Annotated[WebSubject, Depends(signed_in(CONSOLE))]
ConsoleForm = Annotated[FormData, Depends(verified_form(CONSOLE))]


def brand(session: Session, subject: WebSubject) -> Brand:
    return tenancy.brand_of(session, subject.msp_id)


def acting(subject: WebSubject) -> AuthSubject:
    """The subject the features' services take (their role checks apply unchanged)."""
    return subject.as_auth_subject()


def text(form: FormData, name: str) -> str:
    """A form field as stripped text ('' when missing or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
