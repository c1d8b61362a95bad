"""Azure cost exports (EA, MCA, MCA for partners, pay-as-you-go; actual and amortized).

The independent side of every check reads the raw file with the csv module and sums with
Decimal, applying the documented rules itself (canonical.py: half-even to 24 decimals per
value; docs/vendors/azure.md: which Azure column feeds which canonical column).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path

import polars as pl
import pytest

from billbyte.kit.errors import InvalidInput
from billbyte.usage import service as usage
from billbyte.usage.pipeline import RejectedFile
from billbyte.usage.readers.formats import detect
from billbyte.usage.staging import normalize_header
from tests.usage.conftest import DATA, NULLS, Importer, dec, read_rows, stored

AZURE = DATA / "azure"
MONEY_STEP = Decimal(1).scaleb(-24)
QUANTITY_STEP = Decimal(1).scaleb(-18)

# file → (currency column, cost column) as the vendor wrote them.
COST_FILES = {
    "EA_ActualCost_Small.csv": ("BillingCurrency", "Cost"),
    "EA_AmortizedCost_Small.csv": ("BillingCurrency", "Cost"),
    "sample-anonymous-ea-export-dataset.csv": ("BillingCurrencyCode", "CostInBillingCurrency"),
    "camel_azure_version_2.csv": ("billingCurrency", "costInBillingCurrency"),
    "azure_camelCased.csv": ("currency", "preTaxCost"),
    "costreport_a243c6f2-199f-4074-9a2c-40e671cf1584.csv": ("Currency", "PreTaxCost"),
    "headersets_Enterprise.csv": ("BillingCurrencyCode", "CostInBillingCurrency"),
    "headersets_EnterpriseCamel.csv": ("billingCurrency", "costInBillingCurrency"),
    "headersets_German.csv": ("Currency", "PreTaxCost (PreTaxCost)"),
    "headersets_PayAsYouGo.csv": ("Currency", "PreTaxCost"),
    "headersets_YA.csv": ("Currency", "costInBillingCurrency"),
}
# Money columns the reader stores as written (so a rounding of them is counted), when the
# export has no pricing currency; with one, prices are converted and only costs count.
AS_WRITTEN = ("paygcostinbillingcurrency", "paygprice", "unitprice", "resourcerate")


# ---- the independent side ------------------------------------------------------------------


def money(value: str | None) -> Decimal:
    """The documented rule: a value is rounded half-even to 24 decimals."""
    return dec(value).quantize(MONEY_STEP, rounding=ROUND_HALF_EVEN)


def beyond_24(value: str | None) -> bool:
    if value is None or value.strip() in NULLS:
        return False
    exponent = Decimal(value.strip()).as_tuple().exponent
    return isinstance(exponent, int) and exponent < -24


def product(*values: str | None, scales: Iterable[Decimal]) -> Decimal:
    """price × quantity (× rate): each operand at its canonical scale, and each product
    half-even to 24 decimals (what polars' Decimal arithmetic does)."""
    operands = [
        dec(value).quantize(step, rounding=ROUND_HALF_EVEN)
        for value, step in zip(values, scales, strict=True)
    ]
    with localcontext() as ctx:
        ctx.prec = 100
        result = operands[0]
        for operand in operands[1:]:
            result = (result * operand).quantize(MONEY_STEP, rounding=ROUND_HALF_EVEN)
        return result


def unique(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Exact duplicate rows are one line (Azure has no line id; the file's content is it)."""
    seen: set[tuple[str, ...]] = set()
    kept = []
    for row in rows:
        key = tuple(row.values())
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


Row = dict[str, str]


def totals(
    rows: Iterable[Row],
    currency: str,
    value: Callable[[Row], Decimal],
    *,
    skip: Callable[[Row], bool] | None = None,
) -> dict[str, Decimal]:
    result: dict[str, Decimal] = {}
    for row in rows:
        code = row[currency].strip().upper()
        amount = Decimal(0) if skip is not None and skip(row) else value(row)
        result[code] = result.get(code, Decimal(0)) + amount
    return result


def header_lookup(rows: list[dict[str, str]]) -> dict[str, str]:
    return {name.lower(): name for name in rows[0]}


def stored_lines(importer: Importer, period: str) -> pl.DataFrame:
    with importer.runtime.uow() as uow:
        slices = usage.current_slices(
            uow.session, importer.subject, period, importer.partner_accounts["azure"]
        )
    frame = usage.scan_slices(importer.runtime.settings.usage_store_dir, slices)
    assert frame is not None
    return frame.collect().sort("row_number")


def rewrite(source: Path, target: Path, change: Callable[[list[Row]], None]) -> Path:
    """A copy of a fixture with some rows changed (csv module in, csv module out)."""
    rows = read_rows(source)
    change(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    target.write_text(buffer.getvalue(), encoding="utf-8")
    return target


# ---- every cost fixture reconciles ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(COST_FILES))
def test_billed_cost_per_currency_equals_an_independent_decimal_sum(
    importer: Importer, name: str
) -> None:
    path = AZURE / name
    currency, cost = COST_FILES[name]
    rows = read_rows(path)
    lines = unique(rows)
    imported = importer(path, vendor="azure")  # no format given: detection picks Azure

    assert imported.status == "completed" and imported.detected_format == "azure"
    assert imported.rows_read == len(rows)
    assert imported.rows_accepted == len(lines)
    assert imported.duplicate_rows == len(rows) - len(lines)
    assert stored(imported) == totals(lines, currency, lambda r: money(r[cost]))

    names = header_lookup(rows)
    converted = "exchangeratepricingtobilling" in names or "pricingcurrency" in names
    read_as_written = AS_WRITTEN[:1] if converted else AS_WRITTEN
    counted = [cost] + [names[c] for c in read_as_written if c in names]
    assert imported.rounded_values == sum(beyond_24(row[c]) for row in rows for c in counted)


def test_values_with_more_than_24_decimals_are_rounded_half_even_and_counted(
    importer: Importer,
) -> None:
    path = AZURE / "EA_AmortizedCost_Small.csv"
    rows = read_rows(path)
    long = [r["Cost"] for r in rows if beyond_24(r["Cost"])]
    assert long == ["0.0000000072922557592391990000", "0.0000000191107392311096200000"]
    imported = importer(path, vendor="azure")
    assert imported.rounded_values == 2
    exact = sum((dec(r["Cost"]) for r in rows), Decimal(0))
    assert stored(imported)["USD"] == exact  # these two lose only trailing zeros
    assert imported.totals["USD"]["billed_cost"] == "16.296932136636644627485419"


def test_e_notation_is_read_exactly_and_not_counted_as_rounded(importer: Importer) -> None:
    path = AZURE / "sample-anonymous-ea-export-dataset.csv"
    rows = read_rows(path)
    scientific = [r["CostInBillingCurrency"] for r in rows if "E" in r["CostInBillingCurrency"]]
    assert len(scientific) == 7 and "5.64902E-05" in scientific
    imported = importer(path, vendor="azure")
    assert imported.rounded_values == 0
    lines = stored_lines(importer, "2023-09")
    assert Decimal("0.0000564902") in lines["billed_cost"].to_list()
    assert Decimal("0.00000000665679") in lines["billed_cost"].to_list()


# ---- the other cost columns, per the documented rules --------------------------------------


@pytest.mark.parametrize(
    "name", ["EA_ActualCost_Small.csv", "EA_AmortizedCost_Small.csv", "headersets_Enterprise.csv"]
)
def test_ea_effective_list_and_contracted_cost(importer: Importer, name: str) -> None:
    path = AZURE / name
    rows = read_rows(path)
    names = header_lookup(rows)
    currency, cost = COST_FILES[name]
    imported = importer(path, vendor="azure")

    def commitment_purchase(row: dict[str, str]) -> bool:
        has_commitment = bool(row.get("ReservationId") or row.get("benefitId")) or row.get(
            "PricingModel"
        ) in ("Reservation", "SavingsPlan")
        return row["ChargeType"] in ("Purchase", "Refund") and has_commitment

    assert stored(imported, "effective_cost") == totals(
        rows, currency, lambda r: money(r[cost]), skip=commitment_purchase
    )
    scales = (MONEY_STEP, QUANTITY_STEP)
    assert stored(imported, "list_cost") == totals(
        rows, currency, lambda r: product(r[names["paygprice"]], r["Quantity"], scales=scales)
    )
    assert stored(imported, "contracted_cost") == totals(
        rows, currency, lambda r: product(r["UnitPrice"], r["Quantity"], scales=scales)
    )


def test_actual_export_reservation_purchase_is_billed_but_not_effective(
    importer: Importer,
) -> None:
    importer(AZURE / "EA_ActualCost_Small.csv", vendor="azure")
    lines = stored_lines(importer, "2023-09")
    purchase = lines.filter(pl.col("charge_category") == "Purchase").row(0, named=True)
    assert purchase["billed_cost"] == Decimal("3.25")
    assert purchase["effective_cost"] == 0
    assert purchase["commitment_discount_type"] == "Reservation"
    assert purchase["commitment_discount_category"] == "Usage"
    assert purchase["commitment_discount_name"] == "VM_RI_06-21-2023_18-56"
    assert purchase["charge_frequency"] == "Recurring"
    assert purchase["pricing_category"] == "Committed"
    assert purchase["publisher_name"] == "Microsoft"  # PublisherType Azure, name blank


def test_amortized_export_commitment_usage(importer: Importer) -> None:
    importer(AZURE / "EA_AmortizedCost_Small.csv", vendor="azure")
    lines = stored_lines(importer, "2023-09")
    used = lines.filter(pl.col("commitment_discount_status") == "Used").sort("row_number")
    assert used["commitment_discount_type"].to_list() == ["Reservation", "Savings Plan"]
    assert used["commitment_discount_category"].to_list() == ["Usage", "Spend"]
    assert used["billed_cost"].to_list() == used["effective_cost"].to_list()
    assert used["effective_cost"].to_list() == [Decimal("0.493152"), Decimal("0.006000000468")]
    assert used["commitment_discount_id"][1].startswith(
        "/providers/Microsoft.BillingBenefits/savingsPlanOrders/"
    )


def test_mca_list_cost_and_prices_in_the_billing_currency(importer: Importer) -> None:
    path = AZURE / "camel_azure_version_2.csv"
    rows = read_rows(path)
    imported = importer(path, vendor="azure")
    assert stored(imported, "list_cost") == totals(
        rows, "billingCurrency", lambda r: money(r["paygCostInBillingCurrency"])
    )
    scales = (MONEY_STEP, QUANTITY_STEP, MONEY_STEP)
    assert stored(imported, "contracted_cost") == totals(
        rows,
        "billingCurrency",
        lambda r: product(
            r["unitPrice"], r["quantity"], r["exchangeRatePricingToBilling"], scales=scales
        ),
    )
    lines = stored_lines(importer, "2023-08")  # billingPeriodStartDate is blank: month of date
    assert set(lines["billing_account_id"]) == {"3c100a8a-215e-5a7e-24b2-61aa86945012"}
    assert lines["billing_period_end"].dt.strftime("%Y-%m-%d").unique().to_list() == ["2023-09-01"]


def test_a_bad_exchange_rate_rejects_the_file(importer: Importer, tmp_path: Path) -> None:
    """A price is never stored in the pricing currency as if it were the billing one."""

    def break_rate(rows: list[Row]) -> None:
        rows[1]["exchangeRatePricingToBilling"] = "abc"

    path = rewrite(AZURE / "camel_azure_version_2.csv", tmp_path / "rate.csv", break_rate)
    with pytest.raises(RejectedFile) as caught:
        importer(path, vendor="azure")
    assert caught.value.errors[0]["row"] == 2
    message = caught.value.errors[0]["message"]
    assert "unitPrice × quantity × exchangeRatePricingToBilling: cannot read" in message
    assert "payGPrice × exchangeRatePricingToBilling: cannot read 0.004 × abc" in message


def test_partner_export_maps_subscription_and_issuer(importer: Importer) -> None:
    imported = importer(AZURE / "headersets_EnterpriseCamel.csv", vendor="azure")
    line = stored_lines(importer, "2021-02").row(0, named=True)
    assert line["sub_account_id"] == "11111111-1111-1111-1111-123456789012"
    # No billingAccountId in a subscription-scope partner export: the subscription stands in.
    assert line["billing_account_id"] == line["sub_account_id"]
    assert line["invoice_issuer_name"] == "Microsoft"  # a direct partner (no resellerName)
    assert line["service_name"] == "Virtual Network"
    assert line["service_category"] == "Networking"
    assert line["region_id"] == "westus" and line["region_name"] == "US West"
    assert json.loads(line["tags"])["Vendor"] == "Databricks"
    assert imported.unassigned_sub_accounts == ["11111111-1111-1111-1111-123456789012"]


def test_pay_as_you_go_v1(importer: Importer) -> None:
    path = AZURE / "costreport_a243c6f2-199f-4074-9a2c-40e671cf1584.csv"
    rows = read_rows(path)
    imported = importer(path, vendor="azure")
    scales = (MONEY_STEP, QUANTITY_STEP)
    expected = totals(
        rows, "Currency", lambda r: product(r["ResourceRate"], r["UsageQuantity"], scales=scales)
    )
    assert stored(imported, "list_cost") == expected == stored(imported, "contracted_cost")
    lines = stored_lines(importer, "2019-07")
    assert set(lines["billing_account_id"]) == {"0039de71-ca37-4a17-a104-17665a50e7fc"}
    assert set(lines["charge_category"]) == {"Usage"}
    assert set(lines["resource_type"]) >= {"Microsoft.Compute/virtualMachines"}
    assert lines["charge_period_start"].dt.strftime("%Y-%m-%d").to_list() == [
        "2019-07-29",
        "2019-07-28",
        "2019-07-28",
    ]


# ---- headers, encodings, dates, tags -------------------------------------------------------


def test_localized_german_header_is_detected_and_read(importer: Importer) -> None:
    path = AZURE / "headersets_German.csv"
    assert path.read_text(encoding="utf-8").startswith("Abonnement-GUID (SubscriptionGuid),")
    imported = importer(path, vendor="azure")
    assert imported.detected_format == "azure"
    assert imported.totals["USD"]["billed_cost"] == "0.075"
    line = stored_lines(importer, "2021-02").row(0, named=True)
    assert line["sub_account_id"] == "11111111-12ab-34dc-56ef-123456abcdef"
    assert line["consumed_unit"] == "100 Hours"  # 'Maßeinheit (UnitOfMeasure)'
    assert line["service_name"] == "Load Balancer"
    assert line["sku_id"] == "27827eb0-7f60-4928-940b-f5fe15e7a4cb"  # 'ID der Verbrauchseinheit'
    assert line["list_unit_price"] == Decimal("0.025")  # 'Ressourcensatz (ResourceRate)'


def test_mixed_localized_and_camel_header_is_read(importer: Importer) -> None:
    imported = importer(AZURE / "headersets_YA.csv", vendor="azure")
    assert imported.totals["USD"]["billed_cost"] == "0.075"
    line = stored_lines(importer, "2021-02").row(0, named=True)
    assert line["resource_name"] == "kubernetes"  # from InstanceName's last segment
    assert line["resource_type"] == "Microsoft.Network/loadBalancers"


def test_utf8_bom_files_are_detected_and_read(importer: Importer) -> None:
    path = AZURE / "azure_camelCased.csv"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    imported = importer(path, vendor="azure")
    assert imported.detected_format == "azure"
    assert set(stored_lines(importer, "2019-07")["sub_account_id"]) == {
        "2639de71-ca37-4a17-a104-17665a50e7fc"
    }
    # A BOM file whose one row is a placeholder with only a date: detected, then rejected.
    with pytest.raises(RejectedFile) as caught:
        importer(AZURE / "headersets_BOM.csv", vendor="azure")
    assert caught.value.detected_format == "azure"
    assert "PreTaxCost: missing" in caught.value.detail and "row 1" in caught.value.detail


def test_m_d_yyyy_dates_land_in_the_right_billing_period(
    importer: Importer, tmp_path: Path
) -> None:
    sample = AZURE / "sample-anonymous-ea-export-dataset.csv"
    rows = read_rows(sample)
    assert {r["BillingPeriodStartDate"] for r in rows} == {"9/1/2023"}
    assert "9/2/2023" in {r["Date"] for r in rows}
    importer(sample, vendor="azure")
    september = importer.summary("2023-09", vendor="azure")["totals"]
    assert (
        Decimal(september["CAD"]["billed_cost"])
        == totals(rows, "BillingCurrencyCode", lambda r: money(r["CostInBillingCurrency"]))["CAD"]
    )
    assert importer.summary("2023-01", vendor="azure")["totals"] == {}  # not read as D/M

    # Pay-as-you-go has no billing period column: the month of the (M/D/YYYY) usage date.
    def dates(rows: list[dict[str, str]]) -> None:
        second = dict(rows[0], UsageDateTime="12/1/2023", PreTaxCost="0.5")
        rows[0]["UsageDateTime"] = "1/12/2024"
        rows.append(second)

    payg = rewrite(AZURE / "headersets_PayAsYouGo.csv", tmp_path / "payg.csv", dates)
    importer(payg, vendor="azure")
    january = importer.summary("2024-01", vendor="azure")["totals"]
    december = importer.summary("2023-12", vendor="azure")["totals"]
    assert january["USD"]["billed_cost"] == "0.075" and january["USD"]["lines"] == "1"
    assert december["USD"]["billed_cost"] == "0.5" and december["USD"]["lines"] == "1"
    line = stored_lines(importer, "2024-01").row(0, named=True)
    assert line["charge_period_start"].isoformat() == "2024-01-12T00:00:00"
    assert line["charge_period_end"].isoformat() == "2024-01-13T00:00:00"
    assert line["billing_period_end"].isoformat() == "2024-02-01T00:00:00"


def test_tags_without_braces_become_a_json_object(importer: Importer) -> None:
    path = AZURE / "EA_ActualCost_Small.csv"
    rows = read_rows(path)
    braceless = [r["Tags"] for r in rows if r["Tags"] and not r["Tags"].startswith("{")]
    assert braceless  # the real export writes them without braces
    importer(path, vendor="azure")
    lines = stored_lines(importer, "2023-09")
    for raw, tags in zip((r["Tags"] for r in rows), lines["tags"], strict=True):
        if not raw:
            assert tags is None
            continue
        parsed = json.loads(tags)
        assert isinstance(parsed, dict)
        assert parsed == json.loads(raw if raw.startswith("{") else "{" + raw + "}")
    first = json.loads(lines.filter(pl.col("row_number") == 2)["tags"][0])
    assert first["env"] == "prod" and first["application"] == "databricks"


def test_a_bad_date_rejects_the_whole_file_with_its_row(importer: Importer, tmp_path: Path) -> None:
    def break_row_3(rows: list[dict[str, str]]) -> None:
        rows[2]["Date"] = "13/45/2023"

    broken = rewrite(AZURE / "EA_ActualCost_Small.csv", tmp_path / "bad-date.csv", break_row_3)
    with pytest.raises(RejectedFile) as caught:
        importer(broken, vendor="azure")
    assert caught.value.rows_rejected == 1
    assert caught.value.errors[0]["row"] == 3
    assert "Date: cannot read 13/45/2023 as timestamp" in caught.value.errors[0]["message"]
    assert "row 3" in caught.value.detail
    assert importer.summary("2023-09", vendor="azure")["totals"] == {}  # nothing partial


# ---- charge types --------------------------------------------------------------------------


def test_charge_types_map_to_focus_categories(importer: Importer, tmp_path: Path) -> None:
    """One real usage row re-typed as every ChargeType Azure writes."""
    kinds = [
        ("Usage", "OnDemand", "1.00"),
        ("Purchase", "OnDemand", "2.00"),  # a marketplace/other purchase: no commitment
        ("Refund", "Reservation", "-3.00"),
        ("Tax", "", "0.40"),
        ("UnusedReservation", "Reservation", "0.50"),
        ("UnusedSavingsPlan", "SavingsPlan", "0.60"),
        ("RoundingAdjustment", "", "-0.01"),
        ("SomethingNew", "", "0.07"),
    ]

    def retype(rows: list[dict[str, str]]) -> None:
        template = rows[1]
        rows.clear()
        for charge_type, model, cost in kinds:
            rows.append(dict(template, ChargeType=charge_type, PricingModel=model, Cost=cost))

    path = rewrite(AZURE / "EA_ActualCost_Small.csv", tmp_path / "types.csv", retype)
    imported = importer(path, vendor="azure")
    assert imported.rows_accepted == len(kinds)
    assert stored(imported)["USD"] == sum(Decimal(c) for _, _, c in kinds)
    # The refund is of a reservation purchase: not effective, like the purchase itself.
    assert stored(imported, "effective_cost")["USD"] == sum(
        Decimal(c) for k, _, c in kinds if k != "Refund"
    )
    lines = stored_lines(importer, "2023-09").sort("row_number")
    got = list(
        zip(
            lines["charge_category"],
            lines["charge_class"],
            lines["commitment_discount_status"],
            lines["pricing_category"],
            strict=True,
        )
    )
    assert got == [
        ("Usage", None, None, "Standard"),
        ("Purchase", None, None, "Standard"),
        ("Credit", "Correction", None, "Committed"),
        ("Tax", None, None, None),
        ("Usage", None, "Unused", "Committed"),
        ("Usage", None, "Unused", "Committed"),
        ("Adjustment", None, None, None),
        ("Adjustment", None, None, None),
    ]


# ---- rejections ----------------------------------------------------------------------------


def test_header_only_export_is_rejected_as_having_no_line_items(importer: Importer) -> None:
    with pytest.raises(RejectedFile) as caught:
        importer(AZURE / "EA_NoRows.csv", vendor="azure")
    assert "no line items" in caught.value.detail
    assert caught.value.detected_format == "azure"


def test_reservation_recommendations_are_not_a_cost_file(importer: Importer) -> None:
    path = AZURE / "EA-Reservations-Recommendations.csv"
    with pytest.raises(InvalidInput) as caught:
        importer(path, vendor="azure")
    assert caught.value.code == "unrecognised_format"
    with pytest.raises(InvalidInput) as forced:
        importer(path, vendor="azure", fmt="azure")
    assert forced.value.code == "wrong_format"


def test_an_export_without_a_currency_column_is_rejected_clearly(
    importer: Importer, tmp_path: Path
) -> None:
    """opencost's reduced 'values' layout has costs but no currency: it cannot be billed."""
    for name in ("values_Template.csv", "values_MissingBrackets.csv", "values_VirtualMachine.csv"):
        with pytest.raises(InvalidInput) as caught:
            importer(AZURE / name, vendor="azure")
        assert caught.value.code == "missing_column"
        assert "no billing currency column" in caught.value.detail

    # The same rows with the currency stated are read: lower-case names, tags with and
    # without braces, exact duplicate rows counted once.
    def add_currency(rows: list[dict[str, str]]) -> None:
        for row in rows:
            row["Currency"] = "USD"

    path = rewrite(AZURE / "values_Template.csv", tmp_path / "values.csv", add_currency)
    rows = read_rows(path)
    lines = unique(rows)
    imported = importer(path, vendor="azure")
    assert imported.detected_format == "azure"
    assert imported.duplicate_rows == len(rows) - len(lines) == 2
    assert stored(imported) == totals(
        lines, "Currency", lambda r: money(r["costinbillingcurrency"])
    )
    assert stored(imported, "list_cost") == totals(
        lines, "Currency", lambda r: money(r["paygcostinbillingcurrency"])
    )
    long = ("costinbillingcurrency", "paygcostinbillingcurrency")
    assert imported.rounded_values == sum(beyond_24(r[c]) for r in rows for c in long) == 6
    for tags in stored_lines(importer, "2021-02")["tags"].drop_nulls():
        assert isinstance(json.loads(tags), dict)

    brackets = rewrite(AZURE / "values_MissingBrackets.csv", tmp_path / "mb.csv", add_currency)
    importer(brackets, vendor="azure")
    tags = stored_lines(importer, "2021-02").filter(pl.col("billed_cost") == 4)["tags"][0]
    assert json.loads(tags)["creationSource"] == "aks-aks-nodepool1-12345678-vmss"


def test_a_placeholder_currency_rejects_the_file(importer: Importer) -> None:
    """koku's azure_version_2.csv writes BillingCurrencyCode 'MC', which is no currency."""
    with pytest.raises(RejectedFile) as caught:
        importer(AZURE / "azure_version_2.csv", vendor="azure")
    assert "unknown currency MC" in caught.value.detail
    assert caught.value.rows_rejected == 5


# ---- detection, format override, re-delivery -----------------------------------------------


def test_detection_picks_azure_for_every_cost_layout() -> None:
    for name in [*COST_FILES, "values_Template.csv", "EA_NoRows.csv", "azure_version_2.csv"]:
        with (AZURE / name).open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle))
        assert detect([normalize_header(h) for h in header]).name == "azure", name


def test_format_override_and_reimport(importer: Importer) -> None:
    path = AZURE / "EA_ActualCost_Small.csv"
    first = importer(path, vendor="azure", fmt="azure")
    again = importer(path, vendor="azure")
    assert first.outcome == "imported" and again.outcome == "unchanged"
    assert again.totals == first.totals


def test_amortized_export_replaces_the_actual_slice_of_the_same_month(
    importer: Importer,
) -> None:
    """Both exports have the same scope (billing account + month): the later one wins, so
    the two are never summed together (docs/vendors/azure.md: import one kind)."""
    importer(AZURE / "EA_ActualCost_Small.csv", vendor="azure")
    amortized = importer(AZURE / "EA_AmortizedCost_Small.csv", vendor="azure")
    assert amortized.slices_replaced == 1
    summary = importer.summary("2023-09", vendor="azure")
    assert summary["slices"] == 1
    assert summary["totals"]["USD"]["billed_cost"] == amortized.totals["USD"]["billed_cost"]
