"""An MSP's tax rates: create, change and delete them (admin or billing, audited), with
one rate per country on any day (periods of the same country may not overlap)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.kit import identifiers
from billbyte.kit.errors import Conflict, InvalidInput
from billbyte.kit.money import parse_decimal, plain_decimal
from billbyte.kit.repository import get_owned
from billbyte.taxes.models import TaxRate

MAX_DECIMALS = 6
FIELDS = ("country", "name", "rate", "valid_from", "valid_until")


def list_rates(session: Session, subject: AuthSubject) -> list[TaxRate]:
    """Every rate of the MSP: by country (the rate for every other country first), then
    by start."""
    rows = session.scalars(select(TaxRate).where(TaxRate.msp_id == subject.msp_id))
    return sorted(rows, key=lambda r: (r.country or "", r.valid_from, r.id))


def get_rate(session: Session, subject: AuthSubject, rate_id: str) -> TaxRate:
    return get_owned(session, TaxRate, subject.msp_id, rate_id, what="tax rate")


def _snapshot(row: TaxRate) -> dict[str, Any]:
    return {
        "country": row.country,
        "name": row.name,
        "rate": plain_decimal(row.rate),
        "valid_from": row.valid_from.isoformat(),
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
    }


def parse_rate(value: object) -> Decimal:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidInput('rate: a percentage as decimal text, e.g. "19".', field="rate")
    try:
        rate = parse_decimal(value, "rate")
    except InvalidInput as exc:
        raise InvalidInput(f"rate: {exc.detail}", field="rate") from None
    if not Decimal(0) <= rate <= Decimal(100):
        raise InvalidInput(f"rate: {plain_decimal(rate)} is not between 0 and 100.", field="rate")
    exponent = rate.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        raise InvalidInput(f"rate: at most {MAX_DECIMALS} decimals.", field="rate")
    return Decimal(plain_decimal(rate))


def _parse_day(value: object, field: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InvalidInput(f"{field}: a day such as 2026-01-01.", field=field)


def checked(values: Mapping[str, object]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown field {unknown[0]!r}.", field=unknown[0])
    name = values.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput('name: the tax\'s name, e.g. "VAT".', field="name")
    if len(name.strip()) > 100:
        raise InvalidInput("name: at most 100 characters.", field="name")
    country = values.get("country")
    if country is not None and not isinstance(country, str):
        raise InvalidInput("country: an ISO 3166-1 alpha-2 code or null.", field="country")
    valid_from = _parse_day(values.get("valid_from"), "valid_from")
    if valid_from is None:
        raise InvalidInput("valid_from: the first day the rate applies.", field="valid_from")
    valid_until = _parse_day(values.get("valid_until"), "valid_until")
    if valid_until is not None and valid_until <= valid_from:
        raise InvalidInput(
            "valid_until: must be after valid_from (it is the first day the rate no longer "
            "applies).",
            field="valid_until",
        )
    return {
        "country": identifiers.country(country),
        "name": name.strip(),
        "rate": parse_rate(values.get("rate")),
        "valid_from": valid_from,
        "valid_until": valid_until,
    }


def _check_no_overlap(session: Session, msp_id: str, values: dict[str, Any], own_id: str) -> None:
    country = values["country"]
    query = select(TaxRate).where(TaxRate.msp_id == msp_id, TaxRate.id != own_id)
    query = query.where(
        TaxRate.country.is_(None) if country is None else TaxRate.country == country
    )
    start, end = values["valid_from"], values["valid_until"]
    for other in session.scalars(query.order_by(TaxRate.valid_from)):
        other_ends_after_start = other.valid_until is None or other.valid_until > start
        other_starts_before_end = end is None or other.valid_from < end
        if other_ends_after_start and other_starts_before_end:
            until = other.valid_until.isoformat() if other.valid_until else "open-ended"
            where = country or "every other country"
            raise Conflict(
                f"The period overlaps the rate {other.id} for {where} "
                f"({other.valid_from.isoformat()} to {until}); end that one first.",
                code="tax_rate_overlap",
                overlapping_id=other.id,
            )


def create_rate(session: Session, subject: AuthSubject, values: Mapping[str, object]) -> TaxRate:
    subject.require_write()
    data = checked(values)
    _check_no_overlap(session, subject.msp_id, data, own_id="")
    row = TaxRate(msp_id=subject.msp_id, **data)
    session.add(row)
    session.flush()
    record(
        session, subject, "tax_rate.created", "tax_rate", row.id, before=None, after=_snapshot(row)
    )
    return row


def update_rate(
    session: Session, subject: AuthSubject, rate_id: str, changes: Mapping[str, object]
) -> TaxRate:
    """Change some fields; the result is checked as a whole (range, overlap)."""
    subject.require_write()
    row = get_rate(session, subject, rate_id)
    before = _snapshot(row)
    merged: dict[str, object] = {
        "country": row.country,
        "name": row.name,
        "rate": plain_decimal(row.rate),
        "valid_from": row.valid_from,
        "valid_until": row.valid_until,
    }
    merged.update(changes)
    data = checked(merged)
    _check_no_overlap(session, subject.msp_id, data, own_id=row.id)
    for name, value in data.items():
        setattr(row, name, value)
    session.flush()
    after = _snapshot(row)
    if after != before:
        record(session, subject, "tax_rate.updated", "tax_rate", row.id, before=before, after=after)
    return row


def delete_rate(session: Session, subject: AuthSubject, rate_id: str) -> None:
    """Delete a rate. Finalized invoices keep the rate they were finalized with."""
    subject.require_write()
    row = get_rate(session, subject, rate_id)
    before = _snapshot(row)
    session.delete(row)
    session.flush()
    record(session, subject, "tax_rate.deleted", "tax_rate", rate_id, before=before, after=None)
