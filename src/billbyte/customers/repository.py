"""Reads of customers, their vendor-account links and provisioning states for other features
(they never go through ``customers.service``)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billbyte.customers.models import (
    Customer,
    CustomerBillingDetails,
    CustomerVendor,
    VendorAccount,
)
from billbyte.kit.repository import get_owned


def get_customer(session: Session, msp_id: str, customer_id: str) -> Customer:
    """The MSP's customer, or ``NotFound`` (``customer_not_found``)."""
    return get_owned(
        session, Customer, msp_id, customer_id, what="customer", code="customer_not_found"
    )


def find_by_external_id(session: Session, msp_id: str, external_id: str) -> Customer | None:
    return session.scalar(
        select(Customer).where(Customer.msp_id == msp_id, Customer.external_id == external_id)
    )


def vendor_states(session: Session, customer_id: str) -> list[CustomerVendor]:
    """The customer's provisioning state on each vendor it asked for, by vendor."""
    return list(
        session.scalars(
            select(CustomerVendor)
            .where(CustomerVendor.customer_id == customer_id)
            .order_by(CustomerVendor.vendor)
        )
    )


def vendor_states_of_msp(session: Session, msp_id: str) -> dict[str, list[CustomerVendor]]:
    """Every customer's provisioning states, by customer id, in one query (lists of many
    customers must not ask once per customer)."""
    states: dict[str, list[CustomerVendor]] = {}
    for state in session.scalars(
        select(CustomerVendor)
        .where(CustomerVendor.msp_id == msp_id)
        .order_by(CustomerVendor.customer_id, CustomerVendor.vendor)
    ):
        states.setdefault(state.customer_id, []).append(state)
    return states


def search(session: Session, msp_id: str, text: str, limit: int) -> list[Customer]:
    """The MSP's customers whose name or external id contains ``text`` (any case), by name;
    all of them for an empty ``text``."""
    stmt = select(Customer).where(Customer.msp_id == msp_id)
    if text:
        pattern = (
            "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        stmt = stmt.where(
            func.lower(Customer.name).like(pattern, escape="\\")
            | func.lower(Customer.external_id).like(pattern, escape="\\")
        )
    return list(session.scalars(stmt.order_by(Customer.name, Customer.id).limit(limit)))


def vendor_state(
    session: Session, msp_id: str, customer_id: str, vendor: str
) -> CustomerVendor | None:
    return session.scalar(
        select(CustomerVendor).where(
            CustomerVendor.customer_id == customer_id,
            CustomerVendor.vendor == vendor,
            CustomerVendor.msp_id == msp_id,
        )
    )


def link_of(session: Session, partner_account_id: str, identifier: str) -> VendorAccount | None:
    """The link of a vendor identifier under a partner account, whichever customer has it."""
    return session.scalar(
        select(VendorAccount).where(
            VendorAccount.partner_account_id == partner_account_id,
            VendorAccount.vendor_identifier == identifier,
        )
    )


def billing_details_of(
    session: Session, msp_id: str, customer_id: str
) -> CustomerBillingDetails | None:
    """The customer's buyer details on invoices, or None while they were never set."""
    return session.scalar(
        select(CustomerBillingDetails).where(
            CustomerBillingDetails.customer_id == customer_id,
            CustomerBillingDetails.msp_id == msp_id,
        )
    )


def billing_details_of_many(
    session: Session, msp_id: str, customer_ids: Iterable[str]
) -> dict[str, CustomerBillingDetails]:
    """``billing_details_of`` for many customers in one query (customers without details are
    left out)."""
    wanted = list(customer_ids)
    if not wanted:
        return {}
    return {
        details.customer_id: details
        for details in session.scalars(
            select(CustomerBillingDetails).where(
                CustomerBillingDetails.msp_id == msp_id,
                CustomerBillingDetails.customer_id.in_(wanted),
            )
        )
    }
