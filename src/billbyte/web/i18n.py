"""UI text through gettext, amounts and dates through Babel, in the reader's locale.

Catalogues are plain ``.po`` files (``<package>/locale/<language>.po``: the web platform's
own and each page feature's), compiled in memory when first used — no build step, no binary
committed. English is the source language; German is the other catalogue. A locale such as
``de_DE`` or ``en_GB`` picks the catalogue of its language and formats numbers and dates by
its own conventions.
"""

from __future__ import annotations

import gettext
from datetime import date
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from io import BytesIO

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import Translations

LANGUAGES = ("en", "de")
DEFAULT_LOCALE = "en"


def parse_locale(value: str | None) -> Locale:
    """A Babel locale for a customer's or browser's setting; English when unknown."""
    if value:
        try:
            return Locale.parse(value.replace("-", "_"))
        except (ValueError, UnknownLocaleError):
            pass
    return Locale.parse(DEFAULT_LOCALE)


def negotiate(preferred: str | None, accept_language: str | None) -> str:
    """The locale to use: the account's own, else the browser's first supported language."""
    if preferred:
        return str(parse_locale(preferred))
    for part in (accept_language or "").split(",")[:10]:
        tag = part.split(";")[0].strip()
        if tag and tag.split("-")[0].lower() in LANGUAGES:
            return str(parse_locale(tag))
    return DEFAULT_LOCALE


@lru_cache(maxsize=64)
def translations(locale: str, packages: tuple[str, ...]) -> gettext.NullTranslations:
    language = parse_locale(locale).language
    merged: gettext.NullTranslations = gettext.NullTranslations()
    if language == "en":
        return merged
    combined: Translations | None = None
    for package in packages:
        source = resources.files(package) / "locale" / f"{language}.po"
        if not source.is_file():
            continue
        with source.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        loaded = Translations(compiled)
        combined = loaded if combined is None else combined.merge(loaded)
    return combined or merged


class Formats:
    """Formatting bound to one locale, as templates call it."""

    def __init__(self, locale: str) -> None:
        self.locale = parse_locale(locale)

    def money(self, amount: Decimal | None, currency: str) -> str:
        # Babel formats a Decimal exactly; amounts arrive already rounded by kit.money.
        return format_currency(amount or Decimal(0), currency, locale=self.locale)

    def number(self, value: Decimal | int | None, digits: int | None = None) -> str:
        if value is None:
            return ""
        if digits is not None:
            pattern = "#,##0" + ("." + "0" * digits if digits else "")
            return format_decimal(value, format=pattern, locale=self.locale)
        return format_decimal(value, locale=self.locale)

    def percent(self, value: Decimal | None) -> str:
        return "" if value is None else format_percent(value / 100, "#,##0.#%", locale=self.locale)

    def date(self, value: date | None, style: str = "medium") -> str:
        return "" if value is None else babel_format_date(value, format=style, locale=self.locale)
