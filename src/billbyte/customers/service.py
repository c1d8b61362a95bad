from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.customers import prepaid_ledger, repository
from billbyte.customers.models import (
    Customer,
    CustomerBillingDetails,
    CustomerVendor,
    VendorAccount,
)
from billbyte.customers.schemas import (
    DEFAULT_KIND,
    KINDS_BY_VENDOR,
    BillingDetailsOut,
    CustomerCreate,
    CustomerOut,
    CustomerUpdate,
    TaxTreatment,
    VendorAccountCreate,
    VendorStateOut,
)
from billbyte.jobs import follow_up
from billbyte.kit import identifiers
from billbyte.kit.errors import Conflict, InvalidInput, NotFound
from billbyte.kit.pagination import Page, paginate
from billbyte.kit.vendors import Vendor
from billbyte.partners import repository as partners
from billbyte.pricing import repository as pricing_repository
from billbyte.pricing import service as pricing
from billbyte.pricing.models import PriceRule
from billbyte.pricing.schemas import PriceRuleIn
from billbyte.tenancy import repository as tenancy_repository
from billbyte.webhooks import service as webhooks


def to_out(customer: Customer, session: Session | None = None) -> CustomerOut:
    """The API view; with a session, also the per-vendor provisioning states."""
    states = []
    if session is not None:
        states = [
            VendorStateOut(
                vendor=s.vendor,
                state=s.state,
                partner_account_id=s.partner_account_id,
                vendor_identifier=s.vendor_identifier,
                portal_url=s.portal_url,
                message=s.message,
            )
            for s in repository.vendor_states(session, customer.id)
        ]
    return CustomerOut(
        vendor_states=states,
        id=customer.id,
        external_id=customer.external_id,
        name=customer.name,
        currency=customer.currency,
        country=customer.country,
        locale=customer.locale,
        billing_cycle=customer.billing_cycle,
        billing_anchor_day=customer.billing_anchor_day,
        credit_limit=customer.credit_limit,
        price_plan_id=customer.price_plan_id,
        prepaid_balance=customer.prepaid_balance,
        credit_thresholds=customer.credit_thresholds,
        credit_action=customer.credit_action,
        vendors=list(customer.vendors or []),
        status=customer.status,
        metadata=dict(customer.metadata_ or {}),
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def _snapshot(customer: Customer) -> dict[str, Any]:
    return to_out(customer).model_dump(mode="json", exclude={"object", "created_at", "updated_at"})


_NULLABLE = (
    "credit_limit",
    "country",
    "price_plan_id",
    "prepaid_balance",
    "credit_thresholds",
    "credit_action",
)
# Changing these re-rates the customer's open periods.
_RATING_FIELDS = (
    "price_plan_id",
    "currency",
    "credit_limit",
    "prepaid_balance",
    "credit_thresholds",
    "credit_action",
)


def _checked_plan(session: Session, subject: AuthSubject, plan_id: str | None) -> str | None:
    if plan_id is not None:
        pricing_repository.get_plan(session, subject.msp_id, plan_id)
    return plan_id


def find_by_external_id(
    session: Session, subject: AuthSubject, external_id: str
) -> Customer | None:
    return repository.find_by_external_id(session, subject.msp_id, external_id)


def create(session: Session, subject: AuthSubject, data: CustomerCreate) -> tuple[Customer, bool]:
    """Create, or return the existing customer with this external id (created=False)."""
    subject.require_write()
    existing = find_by_external_id(session, subject, data.external_id)
    if existing is not None:
        return existing, False
    customer = Customer(
        msp_id=subject.msp_id,
        external_id=data.external_id,
        name=data.name,
        currency=data.currency,
        country=data.country,
        locale=data.locale,
        billing_cycle=data.billing_cycle.value,
        billing_anchor_day=data.billing_anchor_day,
        credit_limit=data.credit_limit,
        price_plan_id=_checked_plan(session, subject, data.price_plan_id),
        prepaid_balance=data.prepaid_balance,
        credit_thresholds=data.credit_thresholds,
        credit_action=data.credit_action,
        vendors=sorted({v.value for v in data.vendors}),
        metadata_=data.metadata,
    )
    try:
        with session.begin_nested():
            session.add(customer)
            session.flush()
    except IntegrityError:
        # Lost a race with a concurrent create of the same external id: theirs wins.
        existing = find_by_external_id(session, subject, data.external_id)
        if existing is None:
            raise
        return existing, False
    if customer.prepaid_balance is not None:
        prepaid_ledger.balance_written(session, subject, customer, customer.prepaid_balance)
    record(
        session,
        subject,
        "customer.created",
        "customer",
        customer.id,
        before=None,
        after=_snapshot(customer),
    )
    if customer.vendors:
        _request_provisioning(session, customer, list(customer.vendors))
    webhooks.emit(session, subject.msp_id, "customer.created", to_out(customer).model_dump())
    return customer, True


def _request_provisioning(session: Session, customer: Customer, vendors: list[str]) -> None:
    """In the customer's own transaction: a pending state per vendor (failed at once when the
    MSP has no active partner account for it) and a provisioning job for the connectors."""
    for vendor in vendors:
        account = partners.active_account_for(session, customer.msp_id, vendor)
        state = CustomerVendor(
            msp_id=customer.msp_id,
            customer_id=customer.id,
            vendor=vendor,
            partner_account_id=account.id if account else None,
        )
        if account is None:
            state.state = "failed"
            state.message = f"The MSP has no active {vendor} partner account."
        session.add(state)
        session.flush()
        if account is not None:
            follow_up.provisioning_requested(session, state.msp_id, state.id)


def get(session: Session, subject: AuthSubject, customer_id: str) -> Customer:
    return repository.get_customer(session, subject.msp_id, customer_id)


def list_customers(
    session: Session,
    subject: AuthSubject,
    *,
    external_id: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page[Customer]:
    stmt = select(Customer).where(Customer.msp_id == subject.msp_id)
    if external_id is not None:
        stmt = stmt.where(Customer.external_id == external_id)
    if status is not None:
        stmt = stmt.where(Customer.status == status)
    return paginate(session, stmt, Customer.id, cursor, limit)


def update(
    session: Session, subject: AuthSubject, customer_id: str, data: CustomerUpdate
) -> Customer:
    subject.require_write()
    customer = get(session, subject, customer_id)
    before = _snapshot(customer)
    for name, value in data.model_dump(exclude_unset=True).items():
        if value is None and name not in _NULLABLE:
            raise InvalidInput(f"{name} cannot be null.", field=name)
        if name == "vendors":
            value = sorted({Vendor(v).value for v in value})
        if name == "metadata":
            name = "metadata_"
        if name == "price_plan_id":
            _checked_plan(session, subject, value)
        setattr(customer, name, value)
    if "prepaid_balance" in data.model_fields_set:
        # The remaining balance is the ledger's: the write becomes a recorded adjustment.
        prepaid_ledger.balance_written(session, subject, customer, data.prepaid_balance)
    session.flush()
    after = _snapshot(customer)
    added = sorted(set(after.get("vendors") or []) - set(before.get("vendors") or []))
    if added:
        known = {state.vendor for state in repository.vendor_states(session, customer.id)}
        _request_provisioning(session, customer, [v for v in added if v not in known])
    if after != before:
        webhooks.emit(session, subject.msp_id, "customer.updated", to_out(customer).model_dump())
    if any(before.get(k) != after.get(k) for k in _RATING_FIELDS):
        follow_up.pricing_changed(session, subject.msp_id, customer_id=customer.id)
    if after != before:
        record(
            session,
            subject,
            "customer.updated",
            "customer",
            customer.id,
            before=before,
            after=after,
        )
    return customer


def link_vendor_account(
    session: Session, subject: AuthSubject, customer_id: str, data: VendorAccountCreate
) -> VendorAccount:
    subject.require_write()
    customer = get(session, subject, customer_id)
    partner = partners.get_account(session, subject.msp_id, data.partner_account_id)
    vendor = Vendor(partner.vendor)
    allowed = KINDS_BY_VENDOR[vendor]
    kind = data.kind or DEFAULT_KIND[vendor]
    if kind not in allowed:
        names = ", ".join(sorted(k.value for k in allowed))
        raise InvalidInput(
            f"A {vendor.value} partner account links {names}, not {kind}.",
            code="wrong_vendor_account_kind",
            field="kind",
        )
    identifier = data.vendor_identifier.strip()
    taken = repository.link_of(session, partner.id, identifier)
    if taken is not None:
        raise Conflict(
            f"{identifier!r} is already linked under this partner account"
            + (
                " to this customer."
                if taken.customer_id == customer.id
                else " to another customer."
            ),
            code="vendor_account_taken",
        )
    link = VendorAccount(
        msp_id=subject.msp_id,
        customer_id=customer.id,
        partner_account_id=partner.id,
        vendor_identifier=identifier,
        kind=kind.value,
        display_name=data.display_name,
    )
    try:
        with session.begin_nested():
            session.add(link)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"{identifier!r} is already linked under this partner account.",
            code="vendor_account_taken",
        ) from None
    record(
        session,
        subject,
        "vendor_account.linked",
        "customer",
        customer.id,
        before=None,
        after={
            "vendor_account_id": link.id,
            "partner_account_id": partner.id,
            "vendor_identifier": identifier,
            "kind": kind.value,
        },
    )
    follow_up.links_changed(session, subject.msp_id)
    return link


def list_vendor_accounts(
    session: Session, subject: AuthSubject, customer_id: str
) -> list[VendorAccount]:
    customer = get(session, subject, customer_id)
    return list(
        session.scalars(
            select(VendorAccount)
            .where(VendorAccount.customer_id == customer.id, VendorAccount.msp_id == subject.msp_id)
            .order_by(VendorAccount.id)
        )
    )


def get_vendor_account(
    session: Session, subject: AuthSubject, customer_id: str, link_id: str
) -> VendorAccount:
    customer = get(session, subject, customer_id)
    link = session.scalar(
        select(VendorAccount).where(
            VendorAccount.id == link_id,
            VendorAccount.customer_id == customer.id,
            VendorAccount.msp_id == subject.msp_id,
        )
    )
    if link is None:
        raise NotFound(
            f"No vendor account {link_id!r} on this customer.", code="vendor_account_not_found"
        )
    return link


def unlink_vendor_account(
    session: Session, subject: AuthSubject, customer_id: str, link_id: str
) -> None:
    subject.require_write()
    link = get_vendor_account(session, subject, customer_id, link_id)
    record(
        session,
        subject,
        "vendor_account.unlinked",
        "customer",
        customer_id,
        before={
            "vendor_account_id": link.id,
            "partner_account_id": link.partner_account_id,
            "vendor_identifier": link.vendor_identifier,
            "kind": link.kind,
        },
        after=None,
    )
    session.delete(link)
    follow_up.links_changed(session, subject.msp_id)


def add_price_rule(
    session: Session, subject: AuthSubject, customer_id: str, data: PriceRuleIn
) -> PriceRule:
    """A customer-level override rule (stored by pricing) on this MSP's customer."""
    subject.require_write()
    customer = get(session, subject, customer_id)
    return pricing.add_customer_rule(session, subject, customer.id, data)


def list_price_rules(session: Session, subject: AuthSubject, customer_id: str) -> list[PriceRule]:
    customer = get(session, subject, customer_id)
    return pricing.list_customer_rules(session, subject, customer.id)


# --- billing details (the buyer on the customer's invoices) ---------------------------------

BILLING_TEXTS: dict[str, int] = {  # field: maximum length
    "legal_name": 200,
    "address_line1": 200,
    "address_line2": 200,
    "postal_code": 20,
    "city": 100,
    "po_number": 100,
    "exemption_reason": 300,
}
BILLING_FIELDS = (
    "legal_name",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "country",
    "tax_id",
    "po_number",
    "invoice_email",
    "tax_treatment",
    "exemption_reason",
)


def billing_details(session: Session, subject: AuthSubject, customer_id: str) -> BillingDetailsOut:
    """The customer's buyer details (all empty, standard tax, while never set); another
    MSP's customer is 404."""
    customer = get(session, subject, customer_id)
    row = repository.billing_details_of(session, subject.msp_id, customer.id)
    if row is None:
        row = CustomerBillingDetails(
            customer_id=customer.id, msp_id=subject.msp_id, tax_treatment="standard"
        )
    return BillingDetailsOut.model_validate(row)


def _billing_snapshot(row: CustomerBillingDetails | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {name: getattr(row, name) for name in BILLING_FIELDS}


def checked_billing_details(
    session: Session, subject: AuthSubject, values: Mapping[str, object]
) -> dict[str, Any]:
    """What to store: texts trimmed (empty: not set), country and VAT id checked and
    compact, and the tax treatment's rules (exempt needs a reason; reverse charge an EU
    country other than the seller's and a valid EU VAT id)."""
    unknown = sorted(set(values) - set(BILLING_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown field {unknown[0]!r}.", field=unknown[0])

    def text_of(name: str) -> str | None:
        value = values.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{name}: must be text.", field=name)
        return identifiers.blank_to_none(value)

    out: dict[str, Any] = {}
    for name, limit in BILLING_TEXTS.items():
        value = text_of(name)
        if value is not None and len(value) > limit:
            raise InvalidInput(f"{name}: at most {limit} characters.", field=name)
        out[name] = value
    out["country"] = identifiers.country(text_of("country"))
    out["tax_id"] = identifiers.vat_id(text_of("tax_id"), out["country"])
    out["invoice_email"] = identifiers.email(text_of("invoice_email"), "invoice_email")
    treatment = text_of("tax_treatment") or TaxTreatment.STANDARD.value
    try:
        out["tax_treatment"] = TaxTreatment(treatment).value
    except ValueError:
        allowed = ", ".join(t.value for t in TaxTreatment)
        raise InvalidInput(
            f"tax_treatment: {treatment[:30]!r} is not one of {allowed}.", field="tax_treatment"
        ) from None
    if out["tax_treatment"] == TaxTreatment.EXEMPT and not out["exemption_reason"]:
        raise InvalidInput(
            "exemption_reason: an exempt customer needs the reason printed on its invoices "
            "(e.g. the legal provision).",
            field="exemption_reason",
            code="exemption_reason_required",
        )
    if out["tax_treatment"] != TaxTreatment.EXEMPT:
        out["exemption_reason"] = None
    if out["tax_treatment"] == TaxTreatment.REVERSE_CHARGE:
        _check_reverse_charge(session, subject, out["country"], out["tax_id"])
    return out


def _check_reverse_charge(
    session: Session, subject: AuthSubject, country: str | None, tax_id: str | None
) -> None:
    if not identifiers.is_eu(country):
        raise InvalidInput(
            "country: the EU reverse charge applies to a customer in an EU member state; "
            "set the customer's country.",
            field="country",
            code="reverse_charge_needs_eu_country",
        )
    if tax_id is None:
        raise InvalidInput(
            "tax_id: the EU reverse charge needs the customer's valid EU VAT id.",
            field="tax_id",
            code="reverse_charge_needs_vat_id",
        )
    seller = tenancy_repository.billing_profile_of(session, subject.msp_id)
    if seller is not None and seller.country and seller.country == country:
        raise InvalidInput(
            f"country: the EU reverse charge applies across member states; the customer and "
            f"the seller are both in {country}.",
            field="country",
            code="reverse_charge_same_country",
        )


def set_billing_details(
    session: Session, subject: AuthSubject, customer_id: str, values: Mapping[str, object]
) -> CustomerBillingDetails:
    """Replace the customer's buyer details (admin or billing); audited. A field left out
    is cleared. Finalized invoices keep the copy they were finalized with."""
    subject.require_write()
    customer = get(session, subject, customer_id)
    checked = checked_billing_details(session, subject, values)
    row = repository.billing_details_of(session, subject.msp_id, customer.id)
    before = _billing_snapshot(row)
    if row is None:
        row = CustomerBillingDetails(customer_id=customer.id, msp_id=subject.msp_id)
        session.add(row)
    for name, value in checked.items():
        setattr(row, name, value)
    session.flush()
    after = _billing_snapshot(row)
    if after != before:
        record(
            session,
            subject,
            "customer.billing_details_updated",
            "customer",
            customer.id,
            before=before or None,
            after=after,
        )
    return row
