"""Identifiers on invoices, checked with the libraries made for them: VAT ids with
``python-stdnum``, IBANs and BICs with ``schwifty``, countries with Babel's territory list.

Each check returns the compact form to store, or raises :class:`InvalidInput` naming the
field. Empty text means "not set" and is returned as None.
"""

from __future__ import annotations

import schwifty
from babel import Locale
from schwifty.exceptions import SchwiftyException
from stdnum import get_cc_module
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError
from stdnum.util import clean

from billbyte.kit.errors import InvalidInput

# python-stdnum's member states: ISO codes, plus "xi" (Northern Ireland); Greece is "EL"
# in VAT ids but "GR" as a country.
EU_COUNTRIES = frozenset(code.upper() for code in eu_vat.MEMBER_STATES) - {"XI"}
# CLDR territories that are not countries: unknown region, unions, pseudo-locales.
_NOT_COUNTRIES = frozenset({"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB"})


def blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def country(value: str | None, field: str = "country") -> str | None:
    """An ISO 3166-1 alpha-2 code, upper case."""
    code = blank_to_none(value)
    if code is None:
        return None
    code = code.upper()
    if (
        len(code) != 2
        or not code.isalpha()
        or code in _NOT_COUNTRIES
        or code not in Locale("en").territories
    ):
        raise InvalidInput(
            f"{field}: unknown country {code[:10]!r}; expected an ISO 3166-1 alpha-2 code "
            "such as DE.",
            field=field,
            code="invalid_country",
        )
    return code


def is_eu(country_code: str | None) -> bool:
    return country_code is not None and country_code in EU_COUNTRIES


def vat_id(value: str | None, country_code: str | None, field: str = "tax_id") -> str | None:
    """A tax id in compact form. For an EU country (or an id that starts with an EU
    prefix) it must be a valid EU VAT id (``stdnum.eu.vat``), of that country when one is
    given; elsewhere it is checked by python-stdnum's module for the country's VAT number
    when there is one, else kept as trimmed text."""
    text = blank_to_none(value)
    if text is None:
        return None
    if len(text) > 40:
        raise InvalidInput(f"{field}: at most 40 characters.", field=field)
    # stdnum's generic clean, not eu_vat.compact: that one looks up a country module by
    # prefix and raises on ids such as "0000…" that start with none (a 500, not a 422).
    # The country's own compact form is taken below, once the id is known to be valid.
    compact = clean(text, " -./,:").upper()
    prefix = compact[:2]
    eu_prefix = prefix in {"EL", "XI"} or prefix in EU_COUNTRIES
    if is_eu(country_code) or (country_code is None and eu_prefix):
        if not eu_vat.is_valid(compact):
            raise InvalidInput(
                f"{field}: {text[:40]!r} is not a valid EU VAT id (country prefix and check "
                "digits, e.g. DE136695976).",
                field=field,
                code="invalid_vat_id",
            )
        expected = {"GR": "EL"}.get(country_code or "", country_code or prefix)
        if prefix != expected and not (country_code == "GB" and prefix == "XI"):
            raise InvalidInput(
                f"{field}: the VAT id {compact!r} is not of the country {country_code}.",
                field=field,
                code="vat_id_country_mismatch",
            )
        return str(eu_vat.compact(compact))
    if country_code:
        module = get_cc_module(country_code.lower(), "vat")
        if module is not None:
            try:
                return str(module.validate(text))
            except ValidationError:
                raise InvalidInput(
                    f"{field}: {text[:40]!r} is not a valid VAT number of {country_code}.",
                    field=field,
                    code="invalid_vat_id",
                ) from None
    return text


def iban(value: str | None, field: str = "iban") -> str | None:
    text = blank_to_none(value)
    if text is None:
        return None
    try:
        return str(schwifty.IBAN(text).compact)
    except SchwiftyException as exc:
        raise InvalidInput(
            f"{field}: {text[:40]!r} is not a valid IBAN ({str(exc).rstrip('.').lower()}).",
            field=field,
            code="invalid_iban",
        ) from None


def bic(value: str | None, field: str = "bic") -> str | None:
    text = blank_to_none(value)
    if text is None:
        return None
    try:
        return str(schwifty.BIC(text).compact)
    except SchwiftyException as exc:
        raise InvalidInput(
            f"{field}: {text[:20]!r} is not a valid BIC ({str(exc).rstrip('.').lower()}).",
            field=field,
            code="invalid_bic",
        ) from None


def email(value: str | None, field: str) -> str | None:
    text = blank_to_none(value)
    if text is None:
        return None
    local, _, domain = text.partition("@")
    if len(text) > 320 or not local or "." not in domain or any(c.isspace() for c in text):
        raise InvalidInput(f"{field}: {text[:80]!r} is not an e-mail address.", field=field)
    return text.lower()
