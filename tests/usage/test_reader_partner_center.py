"""Microsoft Partner Center readers: recon line items and daily rated usage, JSON and CSV.

The JSON pages are Microsoft's documented response examples (see PROVENANCE.md). The CSV
recon files are not published as data, only as field tables: the CSV tests below build
SYNTHETIC files whose header is exactly the documented field list and whose values are
chosen here; their expected totals are computed in the test with the csv module.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from billbyte.kit.errors import InvalidInput
from billbyte.usage.pipeline import RejectedFile
from tests.usage.conftest import DATA, Importer, stored

PC = DATA / "microsoft-partner-center"
BILLED_USAGE = [PC / f"get-invoice-billed-consumption-lineitems_response{i}.json" for i in (1, 2)]
UNBILLED_USAGE = [
    PC / f"get-invoice-unbilled-consumption-lineitems_response{i}.json" for i in (1, 2)
]
UNBILLED_RECON = [PC / f"get-invoice-unbilled-recon-lineitems_response{i}.json" for i in (1, 2)]
LICENCE = PC / "get-invoiceline-items_response1.json"
AZURE_LEGACY = PC / "get-invoiceline-items_response2.json"
AZURE_LEGACY_USAGE = PC / "get-invoiceline-items_response3.json"
ONETIME = [PC / f"get-invoiceline-items_response{i}.json" for i in (4, 5)]
INVOICE_HEADER = PC / "get-invoice-by-id_response1.json"


# --- the independent side: the raw pages read with the json module, money as Decimal -----


def items(*paths: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in paths:
        document = json.loads(
            path.read_text(encoding="utf-8"), parse_float=Decimal, parse_int=Decimal
        )
        found.extend(document["items"])
    return found


def total(rows: Iterable[dict[str, Any]], amount: str, currency: str) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for row in rows:
        value = row[amount]
        amount_ = value if isinstance(value, Decimal) else Decimal(str(value).strip() or "0")
        key = str(row[currency]).strip().upper()
        sums[key] = sums.get(key, Decimal(0)) + amount_
    return sums


def summary_totals(importer: Importer, period: str, vendor: str, column: str = "billed_cost"):
    summary = importer.summary(period, vendor=vendor)
    return {cur: Decimal(cols[column]) for cur, cols in summary["totals"].items()}


# --- every documented JSON example ---------------------------------------------------------

CASES = [
    pytest.param(BILLED_USAGE, "azure", "partner_center_usage", "billingPreTaxTotal",
                 "billingCurrency", id="billed-daily-rated-usage"),
    pytest.param(UNBILLED_USAGE, "azure", "partner_center_usage", "billingPreTaxTotal",
                 "billingCurrency", id="unbilled-daily-rated-usage"),
    pytest.param(UNBILLED_RECON, "microsoft365", "partner_center_recon", "subtotal", "currency",
                 id="unbilled-recon-onetime"),
    pytest.param(ONETIME, "microsoft365", "partner_center_recon", "subtotal", "currency",
                 id="billed-recon-onetime"),
    pytest.param([LICENCE], "microsoft365", "partner_center_licence", "subtotal", "currency",
                 id="billed-licence-based"),
    pytest.param([AZURE_LEGACY], "azure", "partner_center_azure_legacy", "pretaxCharges",
                 "currency", id="billed-legacy-azure"),
]  # fmt: skip


@pytest.mark.parametrize(("paths", "vendor", "fmt", "amount", "currency"), CASES)
def test_documented_pages_totals_match_an_independent_decimal_sum(
    importer: Importer, paths: list[Path], vendor: str, fmt: str, amount: str, currency: str
) -> None:
    raw = items(*paths)
    imported = importer(*paths, vendor=vendor)
    assert imported.status == "completed" and imported.detected_format == fmt
    assert imported.rows_read == len(raw) == imported.rows_accepted
    assert stored(imported) == total(raw, amount, currency)
    # Partner Center bills no amortisation: effective and contracted cost are the billed cost.
    assert stored(imported, "effective_cost") == stored(imported)
    assert stored(imported, "contracted_cost") == stored(imported)


def test_daily_rated_usage_list_cost_is_the_pricing_total_in_the_same_currency(
    importer: Importer,
) -> None:
    raw = items(*BILLED_USAGE)
    assert all(r["pricingCurrency"] == r["billingCurrency"] for r in raw)
    imported = importer(*BILLED_USAGE, vendor="azure")
    assert stored(imported, "list_cost") == total(raw, "pricingPreTaxTotal", "pricingCurrency")
    assert summary_totals(importer, "2018-11", "azure") == total(
        raw, "billingPreTaxTotal", "billingCurrency"
    )


def test_pages_of_one_invoice_imported_together_replace_a_partial_import(
    importer: Importer,
) -> None:
    first_page = importer(BILLED_USAGE[0], vendor="azure")
    assert first_page.rows_accepted == 2
    both = importer(*BILLED_USAGE, vendor="azure")
    assert both.rows_accepted == 3 and both.slices_replaced == 1
    expected = total(items(*BILLED_USAGE), "billingPreTaxTotal", "billingCurrency")
    assert summary_totals(importer, "2018-11", "azure") == expected
    again = importer(*BILLED_USAGE, vendor="azure")
    assert again.outcome == "unchanged"


def _write_pages(tmp_path: Path, name: str, pages: list[dict[str, Any]]) -> list[Path]:
    paths = []
    for index, page in enumerate(pages, start=1):
        path = tmp_path / f"{name}_page{index}.json"
        path.write_text(json.dumps(page, indent=2), encoding="utf-8")
        paths.append(path)
    return paths


def test_unbilled_refetch_replaces_the_previous_unbilled_slice(
    importer: Importer, tmp_path: Path
) -> None:
    set_a = UNBILLED_USAGE
    first = importer(*set_a, vendor="azure")
    total_a = total(items(*set_a), "billingPreTaxTotal", "billingCurrency")
    assert stored(first) == total_a

    # Set B: the next fetch of the same unbilled period, with one line restated and one gone.
    pages = [json.loads(p.read_text(encoding="utf-8")) for p in set_a]
    pages[0]["items"][0]["billingPreTaxTotal"] = 12.5
    del pages[0]["items"][1]
    pages[0]["totalCount"] = 1
    set_b = _write_pages(tmp_path, "unbilled_b", pages)
    second = importer(*set_b, vendor="azure")
    total_b = total(items(*set_b), "billingPreTaxTotal", "billingCurrency")
    assert second.slices_replaced == 1
    assert total_b != total_a
    assert summary_totals(importer, "2019-01", "azure") == total_b

    # The same lines once billed on an invoice are a slice of their own, and it retires the
    # period's unbilled slice: an invoiced month is counted once, not twice.
    for page in pages:
        for item in page["items"]:
            item["invoiceNumber"] = "G000000001"
    billed = _write_pages(tmp_path, "billed", pages)
    importer(*billed, vendor="azure")
    assert summary_totals(importer, "2019-01", "azure") == total_b
    # Only the invoice's slice is current for the period.
    assert importer.summary("2019-01", vendor="azure")["slices"] == 1


def test_a_malformed_json_page_is_rejected_with_a_clear_error(
    importer: Importer, tmp_path: Path
) -> None:
    page = tmp_path / "truncated.json"
    text = UNBILLED_USAGE[0].read_text(encoding="utf-8")
    page.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"truncated\.json: malformed JSON at line \d+"):
        importer(page, vendor="azure")


def test_legacy_azure_usage_items_without_cost_are_rejected_saying_why(
    importer: Importer,
) -> None:
    with pytest.raises(RejectedFile, match="quantities only") as caught:
        importer(AZURE_LEGACY_USAGE, vendor="azure")
    assert caught.value.detected_format == "partner_center_azure_usage_quantities"


def test_an_invoice_header_is_not_line_items(importer: Importer) -> None:
    with pytest.raises(InvalidInput, match="Unrecognised file"):
        importer(INVOICE_HEADER, vendor="microsoft365")


def test_customer_tenant_ids_lose_the_org_prefix(importer: Importer) -> None:
    imported = importer(*UNBILLED_RECON, vendor="microsoft365")
    assert imported.unassigned_sub_accounts == ["d7f565f5-5367-492f-a465-9e2057c5e3c3"]


# --- CSV recon files: SYNTHETIC data in the documented layouts -----------------------------

# The de-DE documentation translated a few column names; the files use the English ones.
ENGLISH = {
    "Menge": "Quantity",
    "Einheit": "Unit",
    "Unittype": "UnitType",
    "PreisePreTaxTotal": "PricingPreTaxTotal",
    "`Tags`": "Tags",
    "Amount (Betrag)": "Amount",
    "Subtotal (Zwischensumme)": "Subtotal",
    "Tax (Steuern)": "Tax",
    "Währung": "Currency",
    "Gesamt": "Total",
    "AbrechnungszyklusTyp": "BillingCycleType",
    "Dienstname": "ServiceName",
    "Ressourcenname": "ResourceName",
}


def documented_header(fields_file: str) -> list[str]:
    with (PC / fields_file).open(encoding="utf-8", newline="") as handle:
        return [ENGLISH.get(r["column"], r["column"]) for r in csv.DictReader(handle)]


def write_synthetic(
    path: Path, header: list[str], rows: list[dict[str, str]], encoding: str = "utf-8"
) -> Path:
    for row in rows:
        assert set(row) <= set(header), set(row) - set(header)
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def by_category(importer: Importer, period: str, vendor: str) -> dict[tuple[str, str], Decimal]:
    summary = importer.summary(period, vendor=vendor, group_by="charge_category")
    return {(g["key"], g["currency"]): Decimal(g["billed_cost"]) for g in summary["groups"]}


PARTNER = "0e195b37-4574-4539-bc42-0e539b9684c0"
CUSTOMER_A = "196e2273-9651-43a3-ba7e-7cbcd918fc40"
CUSTOMER_B = "4f3c1e1a-0000-4000-8000-00000000b0b0"
VM_URI = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
DB_URI = "/subscriptions/s2/resourceGroups/rg/providers/Microsoft.Sql/servers/db"


def test_synthetic_daily_rated_usage_csv(importer: Importer, tmp_path: Path) -> None:
    header = documented_header("daily-rated-usage-recon-files_fields.csv")
    common = {"PartnerId": PARTNER, "InvoiceNumber": "G000000123", "MeterId": "m-vm",
              "ChargeStartDate": "2/1/2024 0:00", "ChargeEndDate": "2/29/2024 23:59",
              "MeterCategory": "Virtual Machines", "Unit": "1 Hour",
              "UnitType": "1 Hour"}  # fmt: skip
    rows = [
        {**common, "CustomerId": CUSTOMER_A, "UsageDate": "2/3/2024 0:00",
         "ResourceURI": VM_URI,
         "Quantity": "24", "UnitPrice": "0.1", "EffectiveUnitPrice": "0.085",
         "BillingPreTaxTotal": "2.04", "BillingCurrency": "USD",
         "PricingPreTaxTotal": "2.4", "PricingCurrency": "USD", "PCToBCExchangeRate": "1",
         "ChargeType": "new", "Tags": '{"env":"prod"}', "EntitlementId": "s1"},
        # Billed in EUR, priced in USD: the USD pricing total must not become an EUR list cost.
        {**common, "CustomerId": CUSTOMER_B, "UsageDate": "2/4/2024 0:00",
         "ResourceURI": DB_URI,
         "Quantity": "10.5", "UnitPrice": "0.2", "EffectiveUnitPrice": "0.17",
         "BillingPreTaxTotal": "1.65", "BillingCurrency": "EUR",
         "PricingPreTaxTotal": "2.1", "PricingCurrency": "USD", "PCToBCExchangeRate": "0.925",
         "ChargeType": "new", "EntitlementId": "s2"},
        # A refund of earlier usage.
        {**common, "CustomerId": CUSTOMER_A, "UsageDate": "2/3/2024 0:00",
         "ResourceURI": VM_URI,
         "Quantity": "-6", "UnitPrice": "0.1", "EffectiveUnitPrice": "0.085",
         "BillingPreTaxTotal": "-0.51", "BillingCurrency": "USD",
         "PricingPreTaxTotal": "-0.6", "PricingCurrency": "USD", "PCToBCExchangeRate": "1",
         "ChargeType": "Refund", "EntitlementId": "s1"},
    ]  # fmt: skip
    path = write_synthetic(tmp_path / "DailyRatedUsage_G000000123.csv", header, rows, "utf-8-sig")
    raw = csv_rows(path)
    imported = importer(path, vendor="azure")
    assert imported.detected_format == "partner_center_usage"
    assert imported.rows_accepted == 3
    assert stored(imported) == total(raw, "BillingPreTaxTotal", "BillingCurrency")
    same = [r for r in raw if r["PricingCurrency"] == r["BillingCurrency"]]
    assert stored(imported, "list_cost") == {
        **total(same, "PricingPreTaxTotal", "BillingCurrency"),
        "EUR": Decimal(0),
    }
    assert by_category(importer, "2024-02", "azure") == {
        ("Credit", "USD"): Decimal("-0.51"),
        ("Usage", "EUR"): Decimal("1.65"),
        ("Usage", "USD"): Decimal("2.04"),
    }


def test_synthetic_new_commerce_invoice_recon_csv(importer: Importer, tmp_path: Path) -> None:
    header = documented_header("modern-invoice-reconciliation-file_fields.csv")
    common = {"PartnerId": PARTNER, "CustomerId": CUSTOMER_A, "InvoiceNumber": "G002297372",
              "Currency": "EUR", "PricingCurrency": "EUR", "PCToBCExchangeRate": "1",
              "OrderDate": "3/1/2024", "ChargeStartDate": "3/1/2024",
              "ChargeEndDate": "3/31/2024", "ProductId": "CFQ7TTC0LH18", "SkuId": "0001",
              "AvailabilityId": "CFQ7TTC0K5DM", "ProductName": "Microsoft 365 Business Basic",
              "PublisherName": "Microsoft Corporation"}  # fmt: skip
    rows = [
        {**common, "OrderId": "o1", "ChargeType": "new", "UnitPrice": "5.60",
         "EffectiveUnitPrice": "5.00", "Quantity": "20", "BillableQuantity": "20",
         "Subtotal": "100.00", "TaxTotal": "19.00", "Total": "119.00"},
        {**common, "OrderId": "o2", "ChargeType": "cycleCharge", "UnitPrice": "5.60",
         "EffectiveUnitPrice": "5.05", "Quantity": "10", "BillableQuantity": "10",
         "Subtotal": "50.50", "TaxTotal": "9.60", "Total": "60.10"},
        {**common, "OrderId": "o3", "ChargeType": "removeQuantity", "UnitPrice": "5.60",
         "EffectiveUnitPrice": "5.05", "Quantity": "-5", "BillableQuantity": "-5",
         "Subtotal": "-25.25", "TaxTotal": "-4.80", "Total": "-30.05"},
        {**common, "OrderId": "o4", "ChargeType": "cancel", "UnitPrice": "5.60",
         "EffectiveUnitPrice": "5.00", "Quantity": "-2", "BillableQuantity": "-2",
         "Subtotal": "-10", "TaxTotal": "-1.90", "Total": "-11.90"},
        {**common, "OrderId": "o5", "ChargeType": "Usage", "ProductName": "Tables",
         "SkuName": "Tables - LRS", "UnitPrice": "0.045", "EffectiveUnitPrice": "0.03825",
         "Quantity": "1", "BillableQuantity": "322.763", "Subtotal": "12.34568475",
         "TaxTotal": "2.35", "Total": "14.70", "PricingCurrency": "USD",
         "PCToBCExchangeRate": "0.846202666"},
        {**common, "CustomerId": CUSTOMER_B, "OrderId": "o6", "ChargeType": "new",
         "Currency": "USD", "PricingCurrency": "USD", "UnitPrice": "7",
         "EffectiveUnitPrice": "7", "Quantity": "1", "BillableQuantity": "1",
         "Subtotal": "7", "TaxTotal": "0", "Total": "7"},
    ]  # fmt: skip
    path = write_synthetic(tmp_path / "invoice_recon_G002297372.csv", header, rows)
    raw = csv_rows(path)
    imported = importer(path, vendor="microsoft365")
    assert imported.detected_format == "partner_center_recon"
    assert stored(imported) == total(raw, "Subtotal", "Currency")
    # Tax is not part of the billed cost: Microsoft's tax to the partner is not resold.
    assert stored(imported) != total(raw, "Total", "Currency")
    assert by_category(importer, "2024-03", "microsoft365") == {
        ("Credit", "EUR"): Decimal("-35.25"),
        ("Purchase", "EUR"): Decimal("150.50"),
        ("Purchase", "USD"): Decimal("7"),
        ("Usage", "EUR"): Decimal("12.34568475"),
    }


def test_synthetic_licence_based_recon_csv(importer: Importer, tmp_path: Path) -> None:
    header = documented_header("license-based-recon-files_fields.csv")
    common = {"PartnerId": PARTNER, "CustomerId": CUSTOMER_A, "Currency": "EUR",
              "OfferName": "Microsoft Office 365 (Plan E3)",
              "DurableOfferID": "1017D7F3-6D7F-4BFA-BDD8-79BC8F104E0C",
              "SyndicationPartnerSubscriptionNumber": "fb977ab5-0000-4000-8000-24c8d9591708",
              "SubscriptionStartDate": "2/1/2019 0:00", "SubscriptionEndDate": "2/1/2020 0:00",
              "ChargeStartDate": "2/1/2019 0:00", "ChargeEndDate": "2/28/2019 23:59"}  # fmt: skip
    rows = [
        {**common, "OrderId": "566890604832738111", "ChargeType": "Cycle fee",
         "UnitPrice": "6.82", "Quantity": "2", "Amount": "13.64", "TotalOtherDiscount": "2.64",
         "Subtotal": "11.00", "Tax": "2.09", "TotalForCustomer": "13.09"},
        {**common, "OrderId": "566890604832738111", "ChargeType": "Cancel instance prorate",
         "UnitPrice": "6.82", "Quantity": "-1", "Amount": "-3.41", "TotalOtherDiscount": "0",
         "Subtotal": "-3.41", "Tax": "-0.65", "TotalForCustomer": "-4.06"},
    ]  # fmt: skip
    path = write_synthetic(tmp_path / "license_recon.csv", header, rows)
    raw = csv_rows(path)
    imported = importer(path, vendor="microsoft365")
    assert imported.detected_format == "partner_center_licence"
    assert stored(imported) == total(raw, "Subtotal", "Currency") == {"EUR": Decimal("7.59")}
    assert stored(imported, "list_cost") == total(raw, "Amount", "Currency")
    assert by_category(importer, "2019-02", "microsoft365") == {
        ("Credit", "EUR"): Decimal("-3.41"),
        ("Purchase", "EUR"): Decimal("11.00"),
    }


def test_synthetic_legacy_azure_usage_based_recon_csv(importer: Importer, tmp_path: Path) -> None:
    header = documented_header("usage-based-recon-files_fields.csv")
    common = {"PartnerId": PARTNER, "CustomerId": CUSTOMER_A, "InvoiceNumber": "D020001IVK",
              "Currency": "EUR", "ChargeStartDate": "2/1/2019 0:00",
              "ChargeEndDate": "2/28/2019 23:59", "Sku": "7UD-00001",
              "ChargeType": "Assess usage fee for current cycle",
              "DetailLineItemId": "1"}  # fmt: skip
    rows = [
        {**common, "ServiceName": "VIRTUAL MACHINES", "ResourceGuid": "guid-1",
         "ResourceName": "D1/DS1", "ConsumedQuantity": "11", "OverageQuantity": "11",
         "ListPrice": "0.0808", "PretaxCharges": "0.89", "TaxAmount": "0.17",
         "PostTaxTotal": "1.06"},
        {**common, "ServiceName": "STORAGE", "ResourceGuid": "guid-2",
         "ResourceName": "LRS Data Stored", "ConsumedQuantity": "0.000882",
         "OverageQuantity": "0.000882", "ListPrice": "0.0383", "PretaxCharges": "0",
         "TaxAmount": "0", "PostTaxTotal": "0"},
    ]  # fmt: skip
    path = write_synthetic(tmp_path / "azure_recon.csv", header, rows)
    raw = csv_rows(path)
    imported = importer(path, vendor="azure")
    assert imported.detected_format == "partner_center_azure_legacy"
    assert stored(imported) == total(raw, "PretaxCharges", "Currency")
