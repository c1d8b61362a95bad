"""Taxes of a document: independent per-rate computation (hand-written expectations)."""

import re
from dataclasses import replace
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
        t = credit([line(1, str(-amount))], "EUR", [original], earlier)  # type: ignore[list-item]
        tax = -Decimal(t.taxes[0]["tax"])
        share = (amount * Decimal(rate) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        assert Decimal(0) <= tax <= invoice_tax - given_back
        if not last:
            assert tax == min(share, invoice_tax - given_back)
        assert t.total == -(amount + tax)
        given_back += tax
        earlier.extend(t.taxes)
    assert given_back == invoice_tax


CENT = Decimal("0.01")
RATE_POOL = [("S", "19"), ("S", "7"), ("S", "25.5"), ("S", "5.5"), ("Z", "0"), ("E", "0")]


def _half_even(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(range(len(RATE_POOL))), st.integers(1, 10**6)),
        min_size=2,
        max_size=4,
        unique_by=lambda rate: rate[0],
    ),
    st.lists(
        st.lists(
            st.tuples(st.integers(1, 10**6), st.none() | st.integers(0, 3)),
            min_size=1,
            max_size=3,
        ),
        max_size=5,
    ),
)
def test_property_credit_notes_of_a_several_rate_invoice_give_back_each_rate_exactly(
    invoice_rates: list[tuple[int, int]], notes: list[list[tuple[int, int | None]]]
) -> None:
    """An invoice of several rates credited by any notes — lines naming a rate, lines shared
    in proportion to what is left of each rate — then a last note of all that is left: no
    rate is ever credited beyond its base or its tax, each line's parts add up to it and are
    within a cent of their exact share, each rate's tax is its part x rate rounded half-even
    (never more than is left, exactly the rest when the rate's base is used up), and in the
    end each rate's base and tax come back to the cent."""
    from billbyte.invoicing.taxation import rate_parts

    keys = [(RATE_POOL[i][0], Decimal(RATE_POOL[i][1])) for i, _ in invoice_rates]
    base = {key: Decimal(cents) / 100 for key, (_, cents) in zip(keys, invoice_rates, strict=True)}
    tax = {key: _half_even(base[key] * key[1] / 100) for key in keys}
    summaries: list[Any] = [
        {"category": c, "rate": RATE_POOL[i][1], "name": "VAT", "taxable": str(base[(c, r)]),
         "tax": str(tax[(c, r)]), "note": None}
        for (i, _), (c, r) in zip(invoice_rates, keys, strict=True)
    ]  # fmt: skip
    net_back = dict.fromkeys(keys, Decimal(0))
    tax_back = dict.fromkeys(keys, Decimal(0))
    earlier: list[Any] = []
    rest_all = [[(10**9, None)]]  # the last note: everything left, in proportion
    for note in [*notes, *rest_all]:
        # What the requests may ask (the API refuses more): named lines first, then shares.
        rest = {key: base[key] - net_back[key] for key in keys}
        requests: list[tuple[Decimal, Any]] = []
        for cents, named in note:
            if named is not None:
                key = keys[named % len(keys)]
                amount = min(Decimal(cents) / 100, rest[key])
                if amount > 0:
                    rest[key] -= amount
                    requests.append((amount, key))
        unnamed_rest = sum(rest.values(), Decimal(0))  # no rate's rest is ever negative
        for wanted in [Decimal(c) / 100 for c, named in note if named is None]:
            amount = min(wanted, unnamed_rest)
            if amount > 0:
                unnamed_rest -= amount
                requests.append((amount, None))
        if not requests:
            continue
        left = {key: base[key] - net_back[key] for key in keys}
        parts = rate_parts(requests, left, "EUR")
        # what is left of each rate for the shared lines: after the named ones, then after
        # each shared line's rounded parts
        rest = dict(left)
        for amount, key in requests:
            if key is not None:
                rest[key] -= amount
        lines = []
        for (amount, named_key), shares in zip(requests, parts, strict=True):
            assert sum((s for _, s in shares), Decimal(0)) == amount
            if named_key is None:
                whole = sum((r for r in rest.values() if r > 0), Decimal(0))
                for key, share in shares:
                    assert abs(share - amount * rest[key] / whole) < CENT
                    assert share <= rest[key]
                for key, share in shares:
                    rest[key] -= share
            else:
                assert [k for k, _ in shares] == [named_key]
            for key, share in shares:
                lines.append(replace(line(len(lines) + 1, str(-share)),
                                     tax_category=key[0], tax_rate=key[1]))  # fmt: skip
        t = credit(lines, "EUR", summaries, earlier)
        note_net = dict.fromkeys(keys, Decimal(0))
        for credit_line in t.lines:
            note_net[(credit_line.tax_category, credit_line.tax_rate)] -= credit_line.amount
        note_tax = Decimal(0)
        for summary in t.taxes:
            key = (summary["category"], Decimal(summary["rate"]))
            given = -Decimal(summary["tax"])
            net = -Decimal(summary["taxable"])
            assert net == note_net[key] > 0
            tax_left = tax[key] - tax_back[key]
            if net == base[key] - net_back[key]:
                assert given == tax_left
            else:
                assert given == min(_half_even(net * key[1] / 100), tax_left)
            assert Decimal(0) <= given <= tax_left
            net_back[key] += net
            tax_back[key] += given
            note_tax += given
            assert net_back[key] <= base[key]
        assert t.total == -(sum(note_net.values(), Decimal(0)) + note_tax)
        earlier.extend(t.taxes)
    assert net_back == base and tax_back == tax


def test_a_rate_is_never_credited_beyond_its_base() -> None:
    from billbyte.invoicing.taxation import CreditExceedsInvoice

    summaries: list[Any] = [
        {"category": "S", "rate": "19", "name": "VAT", "taxable": "100.00", "tax": "19.00",
         "note": None},
        {"category": "S", "rate": "7", "name": "VAT", "taxable": "50.00", "tax": "3.50",
         "note": None},
    ]  # fmt: skip
    at_7 = replace(line(1, "-50.01"), tax_category="S", tax_rate=Decimal(7))
    with pytest.raises(CreditExceedsInvoice, match=re.escape("VAT 7 % (S): 50.00 left")):
        credit([at_7], "EUR", summaries, [])
    # 120 of 150 in proportion: 80.00 at 19 %, 40.00 at 7 % (100 : 50)
    from billbyte.invoicing.taxation import rate_parts, split_by_rate

    left = {("S", Decimal(19)): Decimal("100.00"), ("S", Decimal(7)): Decimal("50.00")}
    assert rate_parts([(Decimal("120.00"), None)], left, "EUR") == [
        [(("S", Decimal(7)), Decimal("40.00")), (("S", Decimal(19)), Decimal("80.00"))]
    ]
    with pytest.raises(CreditExceedsInvoice, match=re.escape("150.00 left")):
        split_by_rate(Decimal("150.01"), left, "EUR")
