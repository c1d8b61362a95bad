"""Amounts and dates in the reader's locale; brand colours that stay readable."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billbyte.web.branding import Brand, contrast_ratio
from billbyte.web.i18n import Formats, negotiate, translations


@pytest.mark.parametrize(
    "locale, amount, currency, shown",
    [
        ("de_DE", Decimal("1234.56"), "EUR", "1.234,56\xa0€"),
        ("en_GB", Decimal("1234.56"), "GBP", "£1,234.56"),
        ("ja_JP", Decimal("1235"), "JPY", "￥1,235"),
        ("en", Decimal("-0.01"), "USD", "-$0.01"),
    ],
)
def test_money_is_written_as_the_locale_writes_it(
    locale: str, amount: Decimal, currency: str, shown: str
) -> None:
    assert Formats(locale).money(amount, currency) == shown


def test_dates_follow_the_locale() -> None:
    day = date(2026, 11, 3)
    assert Formats("de_DE").date(day) == "03.11.2026"
    assert Formats("en_GB").date(day) == "3 Nov 2026"


def test_the_account_locale_wins_over_the_browser() -> None:
    assert negotiate("de_DE", "en-US") == "de_DE"
    assert negotiate(None, "fr-FR, de;q=0.5") == "de"
    assert negotiate(None, None) == "en"
    assert negotiate("not a locale!", None) == "en"


def test_german_text_comes_from_the_catalogue() -> None:
    assert translations("de_DE", ("billbyte.web",)).gettext("Sign in") == "Anmelden"
    assert translations("en_GB", ("billbyte.web",)).gettext("Sign in") == "Sign in"


@pytest.mark.parametrize("colour", ["#ffff00", "#1f4e79", "#777777", "#00ff00", "#000000"])
def test_text_on_any_brand_colour_meets_aa(colour: str) -> None:
    brand = Brand(primary_colour=colour)
    # WCAG AA asks 4.5:1 for body text. Against white and black the two contrasts multiply
    # to 21, so the better one is at least 4.58 on every colour.
    assert contrast_ratio(brand.colour, brand.on_colour) >= 4.5


def test_a_malformed_colour_falls_back_to_the_default() -> None:
    assert Brand(primary_colour="red; background:url(x)").colour == "#1f4e79"
