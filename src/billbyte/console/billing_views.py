"""The billing pages' data, over the same functions as the API: the MSP's billing profile
(``tenancy.service``, ``/v1/billing-profile``), its invoice settings (``invoicing.settings``,
``/v1/invoice-settings``, checked by the API's ``InvoiceSettingsIn``) and its tax rates
(``taxes.service``, ``/v1/tax-rates``). The services check every value (VAT id, IBAN, rate,
overlaps) and the roles; a form only hands them its text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from billbyte.auth.subject import AuthSubject
from billbyte.console.admin_views import validated
from billbyte.console.common import text
from billbyte.invoicing import readiness
from billbyte.invoicing import settings as invoice_settings
from billbyte.invoicing.cycles import add_months
from billbyte.invoicing.schemas import InvoiceSettingsIn, InvoiceSettingsOut
from billbyte.kit.errors import BillByteError, InvalidInput
from billbyte.kit.money import plain_decimal
from billbyte.kit.periods import Period
from billbyte.taxes import service as taxes
from billbyte.taxes.models import TaxRate
from billbyte.tenancy import service as tenancy
from billbyte.tenancy.service import PROFILE_FIELDS

SETTINGS_FIELDS = ("mode", "grouping", "grace_days")
MODES = [
    ("statement", "statement: lines to embed into your own invoice, no tax"),
    ("invoice", "invoice: a complete tax invoice"),
]
GROUPINGS = [
    ("service", "by vendor and service"),
    ("account", "by account and service"),
    ("service_and_account", "by service, one line per account"),
]
RATE_FIELDS = ("country", "name", "rate", "valid_from", "valid_until")


def field_errors(exc: BillByteError) -> dict[str, str]:
    """The refused field's message, to show next to it (none when no field is named)."""
    field = exc.extra.get("field")
    return {str(field): exc.detail} if field else {}


def _as_text(value: object) -> str:
    return "" if value is None else str(value)


# --- billing profile and invoice settings ---------------------------------------------------


def profile_values(session: Session, msp_id: str) -> dict[str, str]:
    """The profile form's values as stored ('' where not set; payment terms 30 by default)."""
    row = tenancy.billing_profile(session, msp_id)
    return {name: _as_text(getattr(row, name)) for name in PROFILE_FIELDS}


def typed_profile(form: FormData) -> dict[str, str]:
    return {name: text(form, name) for name in PROFILE_FIELDS}


def save_profile(session: Session, subject: AuthSubject, form: FormData) -> None:
    tenancy.set_billing_profile(session, subject, typed_profile(form))


def settings_values(session: Session, msp_id: str) -> dict[str, str]:
    out = invoice_settings.to_out(invoice_settings.settings_for(session, msp_id))
    return {name: _as_text(getattr(out, name)) for name in SETTINGS_FIELDS}


def typed_settings(form: FormData) -> dict[str, str]:
    return {name: text(form, name) for name in SETTINGS_FIELDS}


def _whole_number(value: str) -> int | str:
    # The schema's StrictInt takes an int: digits become one, anything else is left for the
    # schema to refuse with its own message.
    return int(value) if value.isdigit() and len(value) < 6 else value


def save_settings(session: Session, subject: AuthSubject, form: FormData) -> InvoiceSettingsOut:
    typed = typed_settings(form)
    data = validated(
        InvoiceSettingsIn,
        {
            "mode": typed["mode"],
            "grouping": typed["grouping"],
            "grace_days": _whole_number(typed["grace_days"]),
        },
    )
    return invoice_settings.to_out(invoice_settings.set_settings(session, subject, data))


def readiness_of(session: Session, subject: AuthSubject, today: date) -> list[readiness.Readiness]:
    """What invoice runs of last month and this month would refuse today
    (``GET /v1/invoices/readiness``), for the periods where anything would be."""
    this_month = str(Period.of(today))
    found = [
        readiness.readiness(session, subject, period)
        for period in (add_months(this_month, -1), this_month)
    ]
    return [item for item in found if not item.ready]


# --- tax rates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateRow:
    id: str
    country: str | None
    name: str
    rate: str  # percent as plain decimal text ("19", "8.1")
    valid_from: str
    valid_until: str | None


def rate_rows(session: Session, subject: AuthSubject) -> list[RateRow]:
    """The MSP's rates as ``GET /v1/tax-rates`` lists them."""
    return [_row(rate) for rate in taxes.list_rates(session, subject)]


def _row(rate: TaxRate) -> RateRow:
    return RateRow(
        id=rate.id,
        country=rate.country,
        name=rate.name,
        rate=plain_decimal(rate.rate),
        valid_from=rate.valid_from.isoformat(),
        valid_until=rate.valid_until.isoformat() if rate.valid_until else None,
    )


def typed_rate(form: FormData) -> dict[str, str]:
    return {name: text(form, name) for name in RATE_FIELDS}


def add_rate(session: Session, subject: AuthSubject, form: FormData) -> None:
    typed = typed_rate(form)
    values: dict[str, Any] = {**typed, "country": typed["country"] or None}
    taxes.create_rate(session, subject, values)


def end_rate(session: Session, subject: AuthSubject, rate_id: str, form: FormData) -> None:
    """Set the first day the rate no longer applies (``PATCH`` with ``valid_until``)."""
    until = text(form, "valid_until")
    if not until:
        raise InvalidInput(
            "valid_until: the first day the rate no longer applies.", field="valid_until"
        )
    taxes.update_rate(session, subject, rate_id, {"valid_until": until})


def rate(session: Session, subject: AuthSubject, rate_id: str) -> RateRow:
    return _row(taxes.get_rate(session, subject, rate_id))


def delete_rate(session: Session, subject: AuthSubject, rate_id: str) -> None:
    taxes.delete_rate(session, subject, rate_id)
