"""Issue #16 findings 2 and 5: billed and unbilled Partner Center recon pages, in every order.

The unbilled recon page (response1) holds two charges of 2019-02; the billed page of invoice
T11ETHHDDD (response2) holds one of them, billed. Once the period has the billed invoice, it
supersedes the unbilled data, whichever arrives first and however the pages are grouped.
Expected totals are summed here from the raw JSON with Decimal.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.usage.conftest import DATA, Importer

PC = DATA / "microsoft-partner-center"
UNBILLED = PC / "get-invoice-unbilled-recon-lineitems_response1.json"
BILLED = PC / "get-invoice-unbilled-recon-lineitems_response2.json"
PERIOD = "2019-02"


def _items(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8-sig"))["items"]


def _independent(*pages: Path) -> tuple[Decimal, int]:
    """What the period should hold: the billed lines if any page is billed, else the unbilled."""
    lines = [item for page in pages for item in _items(page)]
    billed = [item for item in lines if item.get("invoiceNumber")]
    chosen = billed or lines
    return sum((Decimal(str(item["subtotal"])) for item in chosen), Decimal(0)), len(chosen)


def _period(importer: Importer) -> tuple[Decimal, int]:
    summary = importer.summary(PERIOD, vendor="azure")
    usd = summary["totals"]["USD"]
    return Decimal(usd["billed_cost"]), int(usd["lines"])


def test_fixture_premise() -> None:
    # The billed page repeats one of the unbilled page's charges; the sum of both differs.
    assert _independent(BILLED) == (Decimal(2598), 1)
    assert _independent(UNBILLED) == (Decimal(3418), 2)


ORDERS = {
    "billed_then_unbilled": [(BILLED,), (UNBILLED,)],
    "unbilled_then_billed": [(UNBILLED,), (BILLED,)],
    "pair_together": [(UNBILLED, BILLED)],
    "pair_then_unbilled": [(UNBILLED, BILLED), (UNBILLED,)],
    "pair_then_billed": [(UNBILLED, BILLED), (BILLED,)],
    "unbilled_then_pair": [(UNBILLED,), (UNBILLED, BILLED)],
    "billed_then_pair": [(BILLED,), (BILLED, UNBILLED)],
    "billed_unbilled_billed": [(BILLED,), (UNBILLED,), (BILLED,)],
    "unbilled_billed_unbilled": [(UNBILLED,), (BILLED,), (UNBILLED,)],
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_billed_supersedes_unbilled_whatever_the_order(importer: Importer, order: str) -> None:
    imports = ORDERS[order]
    for pages in imports:
        importer(*pages, vendor="azure")
    every_page = {page for pages in imports for page in pages}
    assert _period(importer) == _independent(*every_page)


def test_unbilled_only_counts_until_billed(importer: Importer) -> None:
    importer(UNBILLED, vendor="azure")
    assert _period(importer) == _independent(UNBILLED)


def test_unbilled_after_billed_changes_nothing(importer: Importer) -> None:
    importer(BILLED, vendor="azure")
    late = importer(UNBILLED, vendor="azure")
    assert late.outcome == "unchanged"
    assert late.slices_replaced == 0
    assert late.message and "supersedes" in late.message


@pytest.mark.parametrize("pages", [(UNBILLED, BILLED), (BILLED,), (UNBILLED,)])
def test_reimporting_the_same_page_set_is_unchanged(importer: Importer, pages: tuple) -> None:
    importer(*pages, vendor="azure")
    before = _period(importer)
    for _ in range(2):
        again = importer(*pages, vendor="azure")
        assert again.outcome == "unchanged"
        assert again.slices_replaced == 0
    assert _period(importer) == before
