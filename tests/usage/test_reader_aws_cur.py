"""AWS CUR reader: legacy slash names, Athena snake names and CUR 2.0 (CSV, CSV.gz,
Parquet), the delivery manifests, duplicates, and bad input.

Every expected figure is computed here from the raw file with the csv module and Decimal
(``amortized`` writes out AWS's amortization rule on its own); nothing is taken from
the reader.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from billbyte.kit.errors import InvalidInput
from billbyte.usage.manifests import is_manifest, read_manifest, resolve_manifest
from billbyte.usage.models import UsageImport, UsageSlice
from billbyte.usage.pipeline import RejectedFile
from billbyte.usage.readers.formats import detect
from tests.usage.conftest import DATA, NULLS, Importer, dec, read_rows, stored, sum_by

AWS = DATA / "aws"


@dataclass(frozen=True)
class Names:
    """The CUR columns the independent sums read, in one spelling."""

    currency: str
    billed: str
    listed: str
    kind: str
    period: str
    sp_effective: str
    ri_effective: str
    ri_arn: str
    ri_unused_upfront: str
    ri_unused_recurring: str
    sp_commitment: str
    sp_used: str


LEGACY = Names(
    currency="lineItem/CurrencyCode",
    billed="lineItem/UnblendedCost",
    listed="pricing/publicOnDemandCost",
    kind="lineItem/LineItemType",
    period="bill/BillingPeriodStartDate",
    sp_effective="savingsPlan/SavingsPlanEffectiveCost",
    ri_effective="reservation/EffectiveCost",
    ri_arn="reservation/ReservationARN",
    ri_unused_upfront="reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
    ri_unused_recurring="reservation/UnusedRecurringFee",
    sp_commitment="savingsPlan/TotalCommitmentToDate",
    sp_used="savingsPlan/UsedCommitment",
)
SNAKE = Names(
    currency="line_item_currency_code",
    billed="line_item_unblended_cost",
    listed="pricing_public_on_demand_cost",
    kind="line_item_line_item_type",
    period="bill_billing_period_start_date",
    sp_effective="savings_plan_savings_plan_effective_cost",
    ri_effective="reservation_effective_cost",
    ri_arn="reservation_reservation_a_r_n",
    ri_unused_upfront="reservation_unused_amortized_upfront_fee_for_billing_period",
    ri_unused_recurring="reservation_unused_recurring_fee",
    sp_commitment="savings_plan_total_commitment_to_date",
    sp_used="savings_plan_used_commitment",
)
LEGACY_COST = (LEGACY.currency, LEGACY.billed)


def amortized(row: dict[str, str], n: Names) -> Decimal:
    """AWS's amortized cost (the CUR query library's rule), per line type. A component
    column the file does not have leaves the line at its unblended cost."""
    kind = (row.get(n.kind) or "").strip()

    def has(*columns: str) -> bool:
        return all(column in row for column in columns)

    if kind == "SavingsPlanCoveredUsage" and has(n.sp_effective):
        return dec(row[n.sp_effective])
    if kind == "DiscountedUsage" and has(n.ri_effective):
        return dec(row[n.ri_effective])
    if kind in ("SavingsPlanNegation", "SavingsPlanUpfrontFee"):
        return Decimal(0)
    if kind == "Fee" and (row.get(n.ri_arn) or "").strip() not in NULLS:
        return Decimal(0)
    if kind == "RIFee" and has(n.ri_unused_upfront, n.ri_unused_recurring):
        return dec(row[n.ri_unused_upfront]) + dec(row[n.ri_unused_recurring])
    if kind == "SavingsPlanRecurringFee" and has(n.sp_commitment, n.sp_used):
        return dec(row[n.sp_commitment]) - dec(row[n.sp_used])
    return dec(row[n.billed])


def amortized_by(rows: Iterable[dict[str, str]], n: Names) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for row in rows:
        currency = row[n.currency].strip().upper()
        totals[currency] = totals.get(currency, Decimal(0)) + amortized(row, n)
    return totals


def read_records(path: Path) -> tuple[list[str], list[list[str]]]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        return next(reader), list(reader)


def write_records(path: Path, header: list[str], records: Iterable[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(records)
    return path


def stored_lines(importer: Importer, imported: UsageImport) -> pl.DataFrame:
    with importer.runtime.uow() as uow:
        slices = uow.session.scalars(select(UsageSlice).where(UsageSlice.import_id == imported.id))
        paths = [importer.runtime.settings.usage_store_dir / s.path for s in slices]
    return pl.concat([pl.read_parquet(p) for p in paths]).sort("row_number")


# --- the vendor files --------------------------------------------------------------------

FIXTURES = [
    ("sample-anonymous-aws-export-dataset.csv", LEGACY),  # real, anonymised (Nov 2023)
    ("test_cur.csv", LEGACY),
    ("test_cur.csv.gz", LEGACY),
    ("2023-06-01.csv", LEGACY),  # SavingsPlanCoveredUsage in NOK
    ("2023-06-01-not-final.csv", LEGACY),  # no invoice id yet
    ("2022-07-01-alt-columns.csv", SNAKE),  # Athena names, AWS Marketplace
    ("koku-local-1.csv.gz", LEGACY),  # 13 380 lines over three billing periods
]


@pytest.mark.parametrize(("name", "names"), FIXTURES, ids=[name for name, _ in FIXTURES])
def test_vendor_file_totals_match_an_independent_decimal_sum(
    importer: Importer, name: str, names: Names
) -> None:
    path = AWS / name
    rows = read_rows(path)
    imported = importer(path)
    assert imported.status == "completed" and imported.detected_format == "aws_cur"
    assert imported.rows_read == imported.rows_accepted == len(rows)
    assert imported.duplicate_rows == 0 and imported.rounded_values == 0
    assert stored(imported, "billed_cost") == sum_by(rows, names.currency, names.billed)
    assert stored(imported, "list_cost") == sum_by(rows, names.currency, names.listed)
    assert stored(imported, "effective_cost") == amortized_by(rows, names)
    # What a reconciliation reads: the summary of the current slices, per billing period.
    for period in sorted({row[names.period][:7] for row in rows}):
        summary = importer.summary(period)
        in_period = [row for row in rows if row[names.period].startswith(period)]
        assert {cur: Decimal(v["billed_cost"]) for cur, v in summary["totals"].items()} == (
            sum_by(in_period, names.currency, names.billed)
        )


def test_the_real_export_keeps_its_line_identity_and_maps_its_columns(
    importer: Importer,
) -> None:
    path = AWS / "sample-anonymous-aws-export-dataset.csv"
    rows = read_rows(path)
    lines = stored_lines(importer, importer(path))
    first = lines.row(0, named=True)
    raw = rows[first["row_number"] - 1]
    assert first["line_key"].startswith(
        f"{raw['identity/LineItemId']}|{raw['identity/TimeInterval']}#"
    )
    assert first["billing_account_id"] == raw["bill/PayerAccountId"]
    assert first["sub_account_id"] == raw["lineItem/UsageAccountId"]
    assert first["invoice_issuer_name"] == "Amazon Web Services Canada, Inc."
    assert first["provider_name"] == "AWS"
    by_type = dict(
        lines.group_by("charge_category").agg(pl.len()).sort("charge_category").iter_rows()
    )
    kinds = [row["lineItem/LineItemType"] for row in rows]
    assert by_type == {"Tax": kinds.count("Tax"), "Usage": kinds.count("Usage")}
    s3 = lines.filter(pl.col("service_name") == "Amazon Simple Storage Service")
    assert s3.height == sum(
        1 for r in rows if r["product/ProductName"] == "Amazon Simple Storage Service"
    )
    assert set(s3["service_category"]) <= {"Storage", "Networking"}  # S3 data transfer
    assert lines["charge_period_start"].null_count() == 0


def test_gzip_and_plain_give_identical_results(importer: Importer) -> None:
    plain = importer(AWS / "test_cur.csv")
    packed = importer(AWS / "test_cur.csv.gz")
    assert packed.totals == plain.totals
    assert packed.outcome == "unchanged"  # the same lines: the slice is not replaced


# --- manifests ---------------------------------------------------------------------------


def test_a_legacy_manifest_imports_its_report_files(importer: Importer) -> None:
    manifest = AWS / "koku-local-Manifest.json"
    assert is_manifest(manifest)
    assert not is_manifest(AWS / "test_cur.csv")
    parts = resolve_manifest(manifest)
    assert parts == [AWS / "koku-local-1.csv.gz"]
    info = read_manifest(manifest)
    assert info.kind == "cur" and info.report_name == "koku-local"
    assert info.delivery_id == "16e57707-f9e3-49be-8be6-b84e684b5194"
    assert info.billing_period_start == "20180801T000000.000Z"

    rows = [row for part in parts for row in read_rows(part)]
    imported = importer(*parts)
    assert imported.rows_accepted == len(rows) == 13380
    assert stored(imported) == sum_by(rows, LEGACY.currency, LEGACY.billed)
    assert stored(imported, "list_cost") == sum_by(rows, LEGACY.currency, LEGACY.listed)


def test_a_manifest_whose_report_file_is_missing_is_refused(tmp_path: Path) -> None:
    shutil.copy(AWS / "koku-local-Manifest.json", tmp_path)
    with pytest.raises(InvalidInput, match=r"koku-local-1\.csv\.gz") as caught:
        resolve_manifest(tmp_path / "koku-local-Manifest.json")
    assert caught.value.code == "manifest_file_missing"


def test_not_a_manifest(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"items": []}', encoding="utf-8")
    broken = tmp_path / "broken-Manifest.json"
    broken.write_text("{", encoding="utf-8")
    assert not is_manifest(other) and not is_manifest(broken)
    with pytest.raises(InvalidInput, match="not an AWS CUR manifest"):
        resolve_manifest(other)
    with pytest.raises(InvalidInput, match="not a readable JSON manifest"):
        resolve_manifest(broken)


def test_a_cur2_manifest_imports_all_its_parts_as_one_delivery(
    importer: Importer, tmp_path: Path
) -> None:
    rows = synthetic_rows()
    header = cur2_header(rows)
    parts = []
    for number, chunk in enumerate((rows[:9], rows[9:]), start=1):
        part = tmp_path / f"billbyte-cur2-0000{number}.csv.gz"
        with gzip.open(part, "wt", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(cur2_record(row, header) for row in chunk)
        parts.append(part)
    manifest = tmp_path / "billbyte-cur2-Manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "executionId": "0c8f3a35-7d3c-4d0e-9e8f-123456789abc",
                "exportName": "billbyte-cur2",
                "billingPeriod": {
                    "start": "2024-01-01T00:00:00.000Z",
                    "end": "2024-02-01T00:00:00.000Z",
                },
                "columns": [{"name": name, "type": "string"} for name in header],
                "dataFiles": [
                    f"s3://msp-bucket/cur/billbyte-cur2/data/BILLING_PERIOD=2024-01/{p.name}"
                    for p in parts
                ],
            }
        ),
        encoding="utf-8",
    )
    assert is_manifest(manifest)
    info = read_manifest(manifest)
    assert info.kind == "cur2" and info.files == parts and info.columns == header
    assert info.delivery_id == "0c8f3a35-7d3c-4d0e-9e8f-123456789abc"

    raw = [row for part in parts for row in read_rows(part)]
    imported = importer(*resolve_manifest(manifest))
    assert imported.detected_format == "aws_cur2"
    assert imported.rows_accepted == len(raw) == len(rows)
    assert stored(imported) == sum_by(raw, SNAKE.currency, SNAKE.billed)
    assert stored(imported, "effective_cost") == amortized_by(raw, SNAKE)


# --- duplicates and line identity --------------------------------------------------------


def test_exact_duplicate_rows_are_counted_and_not_summed_twice(
    importer: Importer, tmp_path: Path
) -> None:
    header, records = read_records(AWS / "test_cur.csv")
    repeated = records + records[:5] + [records[3]]  # rows 1-5 again, row 4 a third time
    path = write_records(tmp_path / "repeated.csv", header, repeated)
    rows = read_rows(path)
    distinct = list({tuple(row.items()): row for row in rows}.values())
    assert len(distinct) == len(records)

    imported = importer(path)
    assert imported.rows_read == len(rows) == len(records) + 6
    assert imported.duplicate_rows == 6
    assert imported.rows_accepted == len(records)
    assert stored(imported) == sum_by(distinct, LEGACY.currency, LEGACY.billed)
    assert stored(imported) == sum_by(read_rows(AWS / "test_cur.csv"), *LEGACY_COST)


def test_lines_sharing_a_line_item_id_but_not_their_content_are_both_kept(
    importer: Importer, tmp_path: Path
) -> None:
    header, records = read_records(AWS / "test_cur.csv")
    cost = header.index("lineItem/UnblendedCost")
    twin = list(records[0])
    twin[cost] = "1.25"  # same identity/LineItemId and identity/TimeInterval
    path = write_records(tmp_path / "twins.csv", header, [*records, twin])
    rows = read_rows(path)
    assert rows[0]["identity/LineItemId"] == rows[-1]["identity/LineItemId"]

    imported = importer(path)
    assert imported.duplicate_rows == 0
    assert imported.rows_accepted == len(records) + 1
    assert stored(imported) == sum_by(rows, *LEGACY_COST)
    lines = stored_lines(importer, imported)
    identity = f"{rows[0]['identity/LineItemId']}|{rows[0]['identity/TimeInterval']}#"
    keys = [key for key in lines["line_key"] if key.startswith(identity)]
    assert len(keys) == 2 and keys[0] != keys[1]


# --- detection and bad input -------------------------------------------------------------


def test_detection_picks_the_aws_readers_from_the_header() -> None:
    legacy, _ = read_records(AWS / "test_cur.csv")
    athena, _ = read_records(AWS / "2022-07-01-alt-columns.csv")
    focus, _ = read_records(DATA / "focus" / "focus_sample.csv")
    assert detect(legacy).name == "aws_cur"
    assert detect(athena).name == "aws_cur"
    assert detect(cur2_header(synthetic_rows())).name == "aws_cur2"
    assert detect(focus).name == "focus"
    assert detect(legacy, "aws_cur2").name == "aws_cur2"  # either reads either spelling
    with pytest.raises(InvalidInput, match="do not match the aws_cur format"):
        detect(focus, "aws_cur")


def test_a_broken_cost_rejects_the_whole_file(importer: Importer, tmp_path: Path) -> None:
    header, records = read_records(AWS / "test_cur.csv")
    records[6][header.index("lineItem/UnblendedCost")] = "abc"
    path = write_records(tmp_path / "broken.csv", header, records)
    with pytest.raises(RejectedFile) as caught:
        importer(path)
    rejected = caught.value
    assert rejected.errors[0]["row"] == 7
    assert "lineItem/UnblendedCost" in rejected.errors[0]["message"]
    assert "abc" in rejected.errors[0]["message"]
    assert "row 7" in rejected.detail
    summary = importer.summary("2018-06")
    assert summary["slices"] == 0 and summary["totals"] == {}
    with importer.runtime.uow() as uow:
        item = uow.session.get(UsageImport, rejected.extra["import_id"])
        assert item is not None and item.status == "rejected" and item.rows_accepted == 0


def test_a_broken_amortization_component_is_reported_too(
    importer: Importer, tmp_path: Path
) -> None:
    rows = synthetic_rows()
    fee = next(i for i, row in enumerate(rows) if row["line_item_line_item_type"] == "RIFee")
    rows[fee]["reservation_unused_recurring_fee"] = "1.5x"
    path = write_cur2_csv(tmp_path / "broken-cur2.csv", rows)
    with pytest.raises(RejectedFile) as caught:
        importer(path)
    error = caught.value.errors[0]
    assert error["row"] == fee + 1
    assert "reservation_unused_recurring_fee" in error["message"] and "1.5x" in error["message"]
    assert importer.summary("2024-01")["slices"] == 0


# --- CUR 2.0 and the line-type mapping, on a synthetic delivery --------------------------

# (line item type, unblended cost, ChargeCategory, ChargeClass, ChargeFrequency, extra)
SP_ARN = "arn:aws:savingsplans::111122223333:savingsplan/5b2f6a4e-sp"
RI_ARN = "arn:aws:ec2:eu-west-1:111122223333:reserved-instances/5e1f3c2a-ri"
LINES: list[tuple[str, str, str, str | None, str, dict[str, Any]]] = [
    (
        "Usage",
        "12.3456789012",
        "Usage",
        None,
        "Usage-Based",
        {
            "pricing_public_on_demand_cost": "12.3456789012",
            "line_item_usage_amount": "24",
            "line_item_resource_id": "arn:aws:ec2:eu-west-1:444455556666:instance/i-0abc",
            "resource_tags": {"user:team": "blue", "user:env": None, "aws:createdBy": 'a "q"'},
        },
    ),
    (
        "Usage",
        "0.0000000001",
        "Usage",
        None,
        "Usage-Based",
        {
            "line_item_product_code": "AmazonS3",
            "product_product_family": "Storage",
            "product": {"product_name": "Amazon Simple Storage Service", "region": "eu-west-1"},
            "line_item_resource_id": "customer-a-bucket",
            "resource_tags": {},
        },
    ),
    (
        "Usage",
        "0.4",
        "Usage",
        None,
        "Usage-Based",
        {"product_product_family": "Data Transfer", "pricing_unit": "GB"},
    ),
    (
        "DiscountedUsage",
        "0",
        "Usage",
        None,
        "Usage-Based",
        {
            "reservation_effective_cost": "3.2",
            "reservation_reservation_a_r_n": RI_ARN,
            "pricing_public_on_demand_cost": "5.5",
        },
    ),
    (
        "SavingsPlanCoveredUsage",
        "8",
        "Usage",
        None,
        "Usage-Based",
        {
            "savings_plan_savings_plan_effective_cost": "5.1234",
            "savings_plan_savings_plan_a_r_n": SP_ARN,
            "pricing_public_on_demand_cost": "8",
        },
    ),
    (
        "SavingsPlanNegation",
        "-8",
        "Credit",
        None,
        "Usage-Based",
        {"savings_plan_savings_plan_a_r_n": SP_ARN},
    ),
    (
        "SavingsPlanRecurringFee",
        "100",
        "Purchase",
        None,
        "Recurring",
        {
            "savings_plan_total_commitment_to_date": "100",
            "savings_plan_used_commitment": "87.5",
            "savings_plan_savings_plan_a_r_n": SP_ARN,
        },
    ),
    (
        "SavingsPlanUpfrontFee",
        "1200",
        "Purchase",
        None,
        "One-Time",
        {"savings_plan_savings_plan_a_r_n": SP_ARN},
    ),
    (
        "RIFee",
        "30",
        "Purchase",
        None,
        "Recurring",
        {
            "reservation_unused_amortized_upfront_fee_for_billing_period": "2.25",
            "reservation_unused_recurring_fee": "1.5",
            "reservation_reservation_a_r_n": RI_ARN,
        },
    ),
    (
        "Fee",
        "3650",
        "Purchase",
        None,
        "One-Time",
        {"reservation_reservation_a_r_n": RI_ARN},
    ),
    (
        "Fee",
        "100",
        "Purchase",
        None,
        "One-Time",
        {"line_item_product_code": "AWSSupportBusiness", "product": {"product_name": "Support"}},
    ),
    ("Tax", "24.2", "Tax", None, "One-Time", {}),
    ("Credit", "-50", "Credit", None, "One-Time", {}),
    ("Refund", "-7.5", "Credit", "Correction", "One-Time", {}),
    ("EdpDiscount", "-3.3", "Credit", None, "Usage-Based", {}),
    ("BundledDiscount", "-0.4", "Credit", None, "Usage-Based", {}),
    ("SppDiscount", "-1.1", "Credit", None, "Usage-Based", {}),
    ("SomeFutureType", "2", "Adjustment", None, "Usage-Based", {}),
    ("Usage", "9.99", "Usage", None, "Usage-Based", {"line_item_currency_code": "EUR"}),
    (
        "Usage",
        "0.5",
        "Usage",
        None,
        "Usage-Based",
        {
            "bill_billing_entity": "AWS Marketplace",
            "line_item_legal_entity": "Red Hat, Inc.",
            "line_item_product_code": "prod-4lvcyuhzp2u",
            "product": {"product_name": "Red Hat Enterprise Linux"},
            "product_product_family": "",
        },
    ),
]

BASE: dict[str, Any] = {
    "identity_time_interval": "2024-01-05T00:00:00Z/2024-01-06T00:00:00Z",
    "bill_payer_account_id": "111122223333",
    "bill_payer_account_name": "MSP payer",
    "bill_billing_period_start_date": "2024-01-01T00:00:00Z",
    "bill_billing_period_end_date": "2024-02-01T00:00:00Z",
    "bill_invoice_id": "EUINGB24-0001",
    "bill_billing_entity": "AWS",
    "bill_invoicing_entity": "Amazon Web Services EMEA SARL",
    "line_item_usage_account_id": "444455556666",
    "line_item_usage_account_name": "Customer A",
    "line_item_usage_start_date": "2024-01-05T00:00:00Z",
    "line_item_usage_end_date": "2024-01-06T00:00:00Z",
    "line_item_currency_code": "USD",
    "line_item_legal_entity": "Amazon Web Services EMEA SARL",
    "line_item_product_code": "AmazonEC2",
    "line_item_usage_amount": "1",
    "line_item_availability_zone": "eu-west-1a",
    "pricing_unit": "Hrs",
    "pricing_term": "OnDemand",
    "product_product_family": "Compute Instance",
    "product_region_code": "eu-west-1",
    "product_sku": "VEAJHRNKTJZA",
    "product": {"product_name": "Amazon Elastic Compute Cloud", "region": "eu-west-1"},
}
MAPS = ("product", "resource_tags")
FLOATS = {
    "line_item_unblended_cost",
    "line_item_usage_amount",
    "pricing_public_on_demand_cost",
    "reservation_effective_cost",
    "reservation_unused_amortized_upfront_fee_for_billing_period",
    "reservation_unused_recurring_fee",
    "savings_plan_savings_plan_effective_cost",
    "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment",
}


def synthetic_rows() -> list[dict[str, Any]]:
    rows = []
    for number, (kind, cost, _, _, _, extra) in enumerate(LINES, start=1):
        row = {
            **BASE,
            "identity_line_item_id": f"li{number:04d}",
            "line_item_line_item_type": kind,
            "line_item_unblended_cost": cost,
            "line_item_line_item_description": f"{kind} line {number}",
            **extra,
        }
        rows.append(row)
    return rows


def cur2_header(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({name for row in rows for name in row})


def cur2_record(row: dict[str, Any], header: list[str]) -> list[str]:
    values = []
    for name in header:
        value = row.get(name)
        if name in MAPS:
            value = json.dumps(value) if value is not None else ""
        values.append("" if value is None else str(value))
    return values


def write_cur2_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    header = cur2_header(rows)
    return write_records(path, header, (cur2_record(row, header) for row in rows))


def write_cur2_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    """As Data Exports writes it: doubles for amounts, UTC timestamps, map columns."""
    arrays = {}
    for name in cur2_header(rows):
        values = [row.get(name) for row in rows]
        if name in MAPS:
            arrays[name] = pa.array(
                [list(v.items()) if v is not None else None for v in values],
                type=pa.map_(pa.string(), pa.string()),
            )
        elif name in FLOATS:
            arrays[name] = pa.array([float(v) if v else None for v in values], pa.float64())
        elif name.endswith("_date"):
            arrays[name] = pa.array(
                [datetime.fromisoformat(v.replace("Z", "+00:00")) for v in values],
                pa.timestamp("ms", tz="UTC"),
            )
        else:
            arrays[name] = pa.array([v or None for v in values], pa.string())
    pq.write_table(pa.table(arrays), path)
    return path


def legacy_name(name: str) -> str:
    """CUR 2.0 snake name → legacy 'category/Name' (only the columns used here)."""
    special = {
        "reservation_reservation_a_r_n": "reservation/ReservationARN",
        "savings_plan_savings_plan_a_r_n": "savingsPlan/SavingsPlanARN",
        "pricing_public_on_demand_cost": "pricing/publicOnDemandCost",
        "pricing_unit": "pricing/unit",
        "pricing_term": "pricing/term",
        "product_product_family": "product/productFamily",
        "product_region_code": "product/regionCode",
        "product_sku": "product/sku",
    }
    if name in special:
        return special[name]
    for prefix, category in (
        ("identity_", "identity"),
        ("bill_", "bill"),
        ("line_item_", "lineItem"),
        ("reservation_", "reservation"),
        ("savings_plan_", "savingsPlan"),
    ):
        if name.startswith(prefix):
            rest = name.removeprefix(prefix)
            return f"{category}/" + "".join(part.capitalize() for part in rest.split("_"))
    raise AssertionError(name)


def write_legacy_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    flat: list[dict[str, str]] = []
    for row in rows:
        item: dict[str, str] = {}
        for name, value in row.items():
            if name == "product":
                item["product/ProductName"] = value.get("product_name", "")
                item["product/region"] = value.get("region", "")
            elif name == "resource_tags":
                for key, tag in value.items():
                    item[f"resourceTags/{key}"] = tag or ""
            elif name not in ("bill_payer_account_name", "line_item_usage_account_name"):
                item[legacy_name(name)] = value
        flat.append(item)
    header = sorted({name for item in flat for name in item})
    return write_records(path, header, ([item.get(n, "") for n in header] for item in flat))


def test_cur2_lines_are_mapped_by_line_type(importer: Importer, tmp_path: Path) -> None:
    path = write_cur2_csv(tmp_path / "cur2.csv", synthetic_rows())
    raw = read_rows(path)
    imported = importer(path)
    assert imported.detected_format == "aws_cur2"
    assert stored(imported) == sum_by(raw, SNAKE.currency, SNAKE.billed)
    assert stored(imported, "list_cost") == sum_by(raw, SNAKE.currency, SNAKE.listed)
    assert stored(imported, "effective_cost") == amortized_by(raw, SNAKE)

    lines = stored_lines(importer, imported)
    assert lines.height == len(LINES)
    for line, row, (kind, _, category, charge_class, frequency, _) in zip(
        lines.iter_rows(named=True), raw, LINES, strict=True
    ):
        assert (line["charge_category"], line["charge_class"], line["charge_frequency"]) == (
            category,
            charge_class,
            frequency,
        ), kind
        assert line["effective_cost"] == amortized(row, SNAKE), kind
        assert line["billing_account_name"] == "MSP payer"
        assert line["sub_account_name"] == "Customer A"
    by_id = {line["line_key"].split("|")[0]: line for line in lines.iter_rows(named=True)}

    ec2 = by_id["li0001"]
    assert json.loads(ec2["tags"]) == {"user:team": "blue", "aws:createdBy": 'a "q"'}
    assert ec2["service_name"] == "Amazon Elastic Compute Cloud"
    assert ec2["service_category"] == "Compute"
    assert ec2["region_id"] == "eu-west-1" and ec2["availability_zone"] == "eu-west-1a"
    assert ec2["resource_type"] == "instance"
    assert ec2["consumed_quantity"] == Decimal(24) and ec2["consumed_unit"] == "Hrs"
    assert ec2["pricing_category"] == "Standard"
    assert ec2["publisher_name"] == "Amazon Web Services EMEA SARL"
    assert ec2["invoice_id"] == "EUINGB24-0001"
    s3 = by_id["li0002"]
    assert s3["tags"] is None and s3["resource_type"] is None
    assert (s3["service_name"], s3["service_category"]) == (
        "Amazon Simple Storage Service",
        "Storage",
    )
    assert by_id["li0003"]["service_category"] == "Networking"
    for ri_line in ("li0004", "li0009", "li0010"):
        assert by_id[ri_line]["commitment_discount_id"] == RI_ARN
        assert by_id[ri_line]["commitment_discount_type"] == "Reserved Instance"
        assert by_id[ri_line]["commitment_discount_category"] == "Usage"
    assert by_id["li0004"]["commitment_discount_status"] == "Used"
    assert by_id["li0004"]["pricing_category"] == "Committed"
    for sp_line in ("li0005", "li0006", "li0007", "li0008"):
        assert by_id[sp_line]["commitment_discount_id"] == SP_ARN
        assert by_id[sp_line]["commitment_discount_category"] == "Spend"
    assert by_id["li0005"]["commitment_discount_status"] == "Used"
    assert by_id["li0006"]["commitment_discount_status"] is None
    assert by_id["li0012"]["consumed_quantity"] is None  # tax: no consumed quantity
    marketplace = by_id["li0020"]
    assert marketplace["publisher_name"] == "Red Hat, Inc."
    assert marketplace["service_name"] == "Red Hat Enterprise Linux"
    assert marketplace["service_category"] == "Other"


def test_cur2_parquet_and_legacy_csv_store_the_same_lines_as_cur2_csv(
    importer: Importer, tmp_path: Path
) -> None:
    rows = synthetic_rows()
    results = {}
    for name, path in (
        ("csv", write_cur2_csv(tmp_path / "cur2.csv", rows)),
        ("parquet", write_cur2_parquet(tmp_path / "cur2.parquet", rows)),
        ("legacy", write_legacy_csv(tmp_path / "legacy.csv", rows)),
    ):
        imported = importer(path)
        assert imported.detected_format == ("aws_cur" if name == "legacy" else "aws_cur2")
        lines = stored_lines(importer, imported).drop(
            "import_id", "line_key", "billing_account_name", "sub_account_name", "__hash"
        )
        results[name] = [
            {**line, "tags": json.loads(line["tags"]) if line["tags"] else None}
            for line in lines.iter_rows(named=True)
        ]
    assert results["parquet"] == results["csv"]
    assert results["legacy"] == results["csv"]
    raw = read_rows(tmp_path / "legacy.csv")
    assert sum_by(raw, LEGACY.currency, LEGACY.billed) == {
        "USD": sum(Decimal(c) for k, c, *_ in LINES) - Decimal("9.99"),
        "EUR": Decimal("9.99"),
    }
    assert amortized_by(raw, LEGACY) == amortized_by(read_rows(tmp_path / "cur2.csv"), SNAKE)
