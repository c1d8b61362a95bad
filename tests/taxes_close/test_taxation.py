"""Taxes of a document: independent per-rate computation (hand-written expectations)."""

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billbyte.invoicing.documents import DocumentLine
from billbyte.invoicing.taxation import REVERSE_CHARGE_NOTE, MissingTaxRate, compute, credit


def line(position: int, amount: str, currency: str = "EUR") -> DocumentLine:
    value = Decimal(amount)
    return DocumentLine(
        position=position, kind="charge", description="x", vendor=None,
        vendor_reference=None, service_name=None, charge_category=None, quantity=None,
        unit=None, unit_price=None, amount=value, amount_exact=value, currency=currency,
        period="2026-11", service_start=None, service_end=None, original_period=None,
        fx_rates=[],
    )  # fmt: skip


def test_statement_mode_has_no_tax() -> None:
    t = compute([line(1, "10.00"), line(2, "5.50")], "EUR", "statement", {}, Decimal(19))
    assert t.tax_lines == [] and t.taxes == [] and t.total == Decimal("15.50")
    assert all(x.tax_category is None for x in t.lines)


def test_standard_19_percent_per_rate_not_per_line() -> None:
    # per line: 0.05*0.19=0.0095 -> 0.01 each, 0.03; per rate: 0.15*0.19=0.0285 -> 0.03
    # and 100.50 + 0.05: 100.55 * 0.19 = 19.1045 -> 19.10
    t = compute([line(1, "100.50"), line(2, "0.05")], "EUR", "invoice",
                {"tax_treatment": "standard", "country": "DE"}, Decimal(19))  # fmt: skip
    assert t.taxes[0]["category"] == "S" and t.taxes[0]["rate"] == "19"
    assert t.taxes[0]["taxable"] == "100.55" and t.taxes[0]["tax"] == "19.10"
    assert t.tax_total == Decimal("19.10") and t.total == Decimal("119.65")
    assert [x.position for x in t.tax_lines] == [3] and t.tax_lines[0].kind == "tax"
    assert all(x.tax_category == "S" and x.tax_rate == 19 for x in t.lines)


def test_half_case_rounds_half_even() -> None:
    # 0.50 * 5 % = 0.025 -> 0.02 (half-even, kit.money.ROUNDING); 0.70*5% = 0.035 -> 0.04
    t = compute([line(1, "0.50")], "EUR", "invoice", {}, Decimal(5))
    assert t.taxes[0]["tax"] == "0.02"
    t = compute([line(1, "0.70")], "EUR", "invoice", {}, Decimal(5))
    assert t.taxes[0]["tax"] == "0.04"


def test_jpy_rounds_to_yen() -> None:
    t = compute([line(1, "1234", "JPY")], "JPY", "invoice", {}, Decimal(10))
    assert t.taxes[0]["tax"] == "123" and t.total == Decimal(1357)  # 123.4 -> 123


def test_exempt_and_reverse_charge() -> None:
    t = compute([line(1, "10.00")], "EUR", "invoice",
                {"tax_treatment": "exempt", "exemption_reason": "Art. 132"}, None)  # fmt: skip
    assert (t.taxes[0]["category"], t.taxes[0]["tax"], t.taxes[0]["note"]) == (
        "E",
        "0.00",
        "Art. 132",
    )
    t = compute([line(1, "10.00")], "EUR", "invoice", {"tax_treatment": "reverse_charge"}, None)
    assert t.taxes[0]["category"] == "AE" and t.taxes[0]["note"] == REVERSE_CHARGE_NOTE
    assert t.total == Decimal("10.00")


def test_missing_rate_fails() -> None:
    with pytest.raises(MissingTaxRate):
        compute([line(1, "10.00")], "EUR", "invoice", {"country": "XX"}, None)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(min_value=-(10**7), max_value=10**7), min_size=1, max_size=8),
    st.sampled_from(["0", "5", "7.7", "19", "20", "21", "25.5"]),
)
def test_property_matches_independent_computation(cents: list[int], rate: str) -> None:
    lines = [line(i + 1, str(Decimal(c) / 100)) for i, c in enumerate(cents)]
    t = compute(lines, "EUR", "invoice", {}, Decimal(rate))
    taxable = sum((Decimal(c) / 100 for c in cents), Decimal(0))
    tax = (taxable * Decimal(rate) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    assert Decimal(t.taxes[0]["tax"]) == tax and t.tax_lines[0].amount == tax
    assert t.total == t.subtotal + t.tax_total == taxable + tax


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=6),
    st.sampled_from(["5", "7.7", "19", "21", "25.5"]),
)
def test_property_credit_notes_in_parts_give_back_exactly_the_invoices_tax(
    parts: list[int], rate: str
) -> None:
    """An invoice credited in any number of parts: each note's tax is its part x rate rounded
    half-even (or less, never more than is left), never negative, and together they give back
    exactly the invoice's tax, to the cent."""
    net = sum((Decimal(c) / 100 for c in parts), Decimal(0))
    invoice_tax = (net * Decimal(rate) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    original = {"category": "S", "rate": rate, "name": "VAT", "taxable": str(net),
                "tax": str(invoice_tax), "note": None}  # fmt: skip
    earlier: list[Any] = []
    given_back = Decimal(0)
    for index, cents in enumerate(parts):
        amount = Decimal(cents) / 100
        last = index == len(parts) - 1
        t = credit([line(1, str(-amount))], "EUR", [original], earlier, last=last)  # type: ignore[list-item]
        tax = -Decimal(t.taxes[0]["tax"])
        share = (amount * Decimal(rate) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        assert Decimal(0) <= tax <= invoice_tax - given_back
        if not last:
            assert tax == min(share, invoice_tax - given_back)
        assert t.total == -(amount + tax)
        given_back += tax
        earlier.extend(t.taxes)
    assert given_back == invoice_tax
