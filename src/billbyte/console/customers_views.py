"""What the customer pages show and do, over the same services as the API: the charges of
``GET /v1/customers/{id}/charges``, the credit standing of ``GET .../credit``, the service
actions of ``POST .../suspend|resume|purge`` and the portal users of ``billbyte.portal.users``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from billbyte.auth.models import PortalUser
from billbyte.auth.subject import AuthSubject
from billbyte.charges import repository as charges_repository
from billbyte.charges import service as charges
from billbyte.charges.schemas import ChargesOut
from billbyte.connectors import service as connectors
from billbyte.connectors.models import ServiceAction
from billbyte.console.common import text
from billbyte.credit import service as credit
from billbyte.credit.service import Standing
from billbyte.customers import repository as customers
from billbyte.customers import service as customer_service
from billbyte.customers.models import Customer, CustomerVendor
from billbyte.customers.schemas import BillingDetailsOut, TaxTreatment
from billbyte.customers.service import BILLING_FIELDS
from billbyte.invoicing import readiness
from billbyte.invoicing import views as invoices
from billbyte.invoicing.views import InvoiceView
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import NotFound
from billbyte.kit.money import round_money
from billbyte.kit.periods import Period
from billbyte.portal import users
from billbyte.portal.users import Invitation

LIST_LIMIT = 1000  # more than an MSP has; the search narrows it
INVOICES_SHOWN = 50
ACTIONS = ("suspend", "resume", "purge")
# What each action does, in the words the confirmation page uses.
CONSEQUENCES = {
    "suspend": "The customer's accounts are suspended on each vendor below: their services "
    "stop, their data is kept, and they can be resumed.",
    "resume": "The customer's suspended accounts are resumed on each vendor below and their "
    "services run again.",
    "purge": "The customer's accounts are closed on each vendor below and their resources "
    "deleted. This cannot be undone.",
}


def current_period() -> str:
    return str(Period.of(utcnow().date()))


@dataclass(frozen=True)
class CustomerRow:
    customer: Customer
    currency: str  # of the charges total (the API's)
    spend: Decimal  # the period's charges total, as GET /charges reports it
    standing: Standing
    states: list[CustomerVendor]


def customer_rows(
    session: Session, subject: AuthSubject, period: str, search: str
) -> list[CustomerRow]:
    """The customers with their spend, credit used and vendor states: one query for the
    customers, one for every charge total, one for every vendor state (no query per
    customer, except the prepaid draw of a prepaid customer)."""
    found = customers.search(session, subject.msp_id, search, LIST_LIMIT)
    totals = charges_repository.period_totals(session, subject.msp_id, period)
    states = customers.vendor_states_of_msp(session, subject.msp_id)
    rows = []
    for customer in found:
        total = totals.get(customer.id)
        exact = total.exact if total else Decimal(0)
        currency = total.currency if total else customer.currency
        spent = round_money(exact, customer.currency)
        rows.append(
            CustomerRow(
                customer=customer,
                currency=currency,
                spend=round_money(exact, currency),
                standing=credit.standing(session, customer, period, spent=spent),
                states=states.get(customer.id, []),
            )
        )
    return rows


@dataclass(frozen=True)
class CustomerPage:
    customer: Customer
    charges: ChargesOut
    standing: Standing
    states: list[CustomerVendor]
    invoices: list[InvoiceView]
    actions: list[ServiceAction]
    portal_users: list[PortalUser]
    billing: BillingDetailsOut
    # invoice mode: what keeps this period's invoice a draft (readiness.customer_readiness)
    invoice_blockers: list[str]


def customer_page(
    session: Session, subject: AuthSubject, customer_id: str, period: str
) -> CustomerPage:
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    page = invoices.list_views(
        session,
        subject,
        status=None,
        period=None,
        customer_id=customer.id,
        kind=None,
        cursor=None,
        limit=INVOICES_SHOWN,
    )
    return CustomerPage(
        customer=customer,
        charges=charges.customer_charges(session, subject, customer.id, period),
        standing=credit.standing(session, customer, period),
        states=customers.vendor_states(session, customer.id),
        invoices=list(page.items),
        actions=connectors.actions_for(session, subject, customer.id),
        portal_users=users.list_for_customer(session, subject.msp_id, customer.id),
        billing=customer_service.billing_details(session, subject, customer.id),
        invoice_blockers=readiness.customer_readiness(session, customer, period),
    )


@dataclass(frozen=True)
class ActionPreview:
    customer: Customer
    action: str
    vendors: list[CustomerVendor]  # the vendor accounts the action reaches
    consequence: str
    allowed: bool  # the customer's status lets the action start


def _action_name(action: str) -> str:
    if action not in ACTIONS:
        raise NotFound(f"No such service action: {action!r}.")
    return action


def action_preview(
    session: Session, subject: AuthSubject, customer_id: str, action: str
) -> ActionPreview:
    """What the confirmation page names: the customer, the vendors the action reaches (as
    ``connectors.service.request_action`` picks them: those with a vendor account) and what
    will happen."""
    name = _action_name(action)
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    allowed_from, _ = connectors.TRANSITIONS[name]
    return ActionPreview(
        customer=customer,
        action=name,
        vendors=[s for s in customers.vendor_states(session, customer.id) if s.vendor_identifier],
        consequence=CONSEQUENCES[name],
        allowed=customer.status in allowed_from,
    )


def request_action(
    session: Session,
    subject: AuthSubject,
    customer_id: str,
    action: str,
    *,
    reason: str | None,
    confirm: str | None,
    purge_hold: timedelta,
) -> ServiceAction:
    """The same call as ``POST /v1/customers/{id}/suspend|resume|purge``."""
    name = _action_name(action)
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    return connectors.request_action(
        session,
        subject,
        customer,
        name,
        confirm=confirm if name == "purge" else None,
        reason=reason,
        purge_hold=purge_hold,
    )


@dataclass(frozen=True)
class ActionStatus:
    customer: Customer
    action: ServiceAction
    states: list[CustomerVendor]

    @property
    def running(self) -> bool:
        return self.action.state not in ("completed", "failed")


def action_status(
    session: Session, subject: AuthSubject, customer_id: str, action_id: str
) -> ActionStatus:
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    action = connectors.get_action(session, subject, action_id)
    if action.customer_id != customer.id:
        raise NotFound("No such service action for this customer.")
    return ActionStatus(customer, action, customers.vendor_states(session, customer.id))


def _own_user(session: Session, subject: AuthSubject, customer_id: str, user_id: str) -> str:
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    user = users.get(session, subject.msp_id, user_id)
    if user.customer_id != customer.id:
        raise NotFound("No such portal user for this customer.")
    return user.id


def invite(
    session: Session,
    subject: AuthSubject,
    customer_id: str,
    *,
    email: str,
    name: str,
    public_url: str,
) -> Invitation:
    customer = customers.get_customer(session, subject.msp_id, customer_id)  # 404 first
    return users.invite(
        session, subject, customer.id, email=email, name=name, locale=None, public_url=public_url
    )


def reset_link(
    session: Session, subject: AuthSubject, customer_id: str, user_id: str, public_url: str
) -> tuple[PortalUser, str]:
    own = _own_user(session, subject, customer_id, user_id)
    link = users.reset_link(session, subject, own, public_url)
    return users.get(session, subject.msp_id, own), link


def set_disabled(
    session: Session, subject: AuthSubject, customer_id: str, user_id: str, disabled: bool
) -> PortalUser:
    return users.set_disabled(
        session, subject, _own_user(session, subject, customer_id, user_id), disabled
    )


# --- billing details (the buyer on the customer's invoices) ---------------------------------

TAX_TREATMENTS = [
    (TaxTreatment.STANDARD.value, "standard: your tax rate for the customer's country"),
    (TaxTreatment.EXEMPT.value, "exempt: no tax, with the reason printed"),
    (TaxTreatment.REVERSE_CHARGE.value, "EU reverse charge: no tax, the customer accounts for it"),
]


@dataclass(frozen=True)
class BillingDetailsPage:
    customer: Customer
    values: dict[str, str]  # the form's values: as stored, or as typed when refused


def billing_details_values(details: BillingDetailsOut) -> dict[str, str]:
    return {
        name: "" if getattr(details, name) is None else str(getattr(details, name))
        for name in BILLING_FIELDS
    }


def typed_billing_details(form: FormData) -> dict[str, str]:
    return {name: text(form, name) for name in BILLING_FIELDS}


def billing_details_page(
    session: Session, subject: AuthSubject, customer_id: str, typed: dict[str, str] | None
) -> BillingDetailsPage:
    """What ``GET /v1/customers/{id}/billing-details`` answers (another MSP's: 404)."""
    customer = customers.get_customer(session, subject.msp_id, customer_id)
    stored = customer_service.billing_details(session, subject, customer.id)
    return BillingDetailsPage(customer, typed or billing_details_values(stored))


def save_billing_details(
    session: Session, subject: AuthSubject, customer_id: str, form: FormData
) -> None:
    """The same call as ``PUT /v1/customers/{id}/billing-details``."""
    customer_service.set_billing_details(session, subject, customer_id, typed_billing_details(form))
