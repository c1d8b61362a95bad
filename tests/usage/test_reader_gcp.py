"""Google Cloud Billing export reader: CSV with dotted names and JSON lines with nested objects.

The koku files are third-party fixtures in the real export layout (see PROVENANCE.md);
their ``credits``/``labels`` columns hold Python-repr text. The independent side sums
``cost`` + every credit ``amount`` with Decimal straight from the raw strings.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from billbyte.kit.errors import InvalidInput
from billbyte.usage.pipeline import RejectedFile
from tests.usage.conftest import DATA, Importer, read_rows, stored

GCP = DATA / "gcp"
KOKU_2020 = GCP / "202011_30c31bca571d9b7f3b2c8459dd8bc34a_2020-11-08_2020-11-11.csv"
KOKU_2022 = GCP / "2022-08-01_5.csv"

# The amounts as written, in JSON ("amount": -5e-06) or Python repr ('amount': -5e-06).
AMOUNT = re.compile(r"""["']amount["']\s*:\s*([-+0-9.eE]+)""")


def credit_sum(text: str) -> Decimal:
    return sum((Decimal(a) for a in AMOUNT.findall(text or "")), Decimal(0))


def expected(rows: list[dict[str, str]]) -> dict[str, dict[str, Decimal]]:
    """Per currency: gross cost, and net = cost + credits (what Google invoices)."""
    sums: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        entry = sums.setdefault(
            row["currency"].upper(), {"gross": Decimal(0), "net": Decimal(0), "list": Decimal(0)}
        )
        cost = Decimal(row["cost"])
        entry["gross"] += cost
        entry["net"] += cost + credit_sum(row["credits"])
        entry["list"] += Decimal(row["cost_at_list"]) if row.get("cost_at_list") else cost
    return sums


def pick(sums: dict[str, dict[str, Decimal]], key: str) -> dict[str, Decimal]:
    return {currency: values[key] for currency, values in sums.items()}


@pytest.mark.parametrize("path", [KOKU_2020, KOKU_2022], ids=lambda p: p.name)
def test_koku_exports_totals_match_an_independent_decimal_sum(
    importer: Importer, path: Path
) -> None:
    rows = read_rows(path)
    imported = importer(path, vendor="gcp")
    assert imported.status == "completed" and imported.detected_format == "gcp_billing_export"
    assert imported.rows_read == len(rows) == imported.rows_accepted
    sums = expected(rows)
    assert stored(imported) == pick(sums, "net")
    assert stored(imported, "effective_cost") == pick(sums, "net")
    assert stored(imported, "contracted_cost") == pick(sums, "gross")
    assert stored(imported, "list_cost") == pick(sums, "gross")
    assert imported.unassigned_sub_accounts == sorted({r["project.id"] for r in rows})


def test_the_2020_file_really_has_credits(importer: Importer) -> None:
    rows = read_rows(KOKU_2020)
    with_credits = [r for r in rows if credit_sum(r["credits"]) != 0]
    assert len(with_credits) == 8
    sums = expected(rows)["USD"]
    assert sums["gross"] == Decimal("0.000032") and sums["net"] == Decimal(0)


def _nested(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row as BigQuery writes it in JSON: nested records, repeated fields as arrays."""
    record: dict[str, Any] = {}
    for name, value in row.items():
        parsed: Any = value
        if name in ("credits", "labels", "system_labels", "project.labels"):
            parsed = ast.literal_eval(value) if value else []
        elif name in ("cost", "usage.amount", "usage.amount_in_pricing_units"):
            parsed = float(value)  # JSON numbers; the shortest repr round-trips the text
        elif name.endswith("_time") and value.endswith("+00:00"):
            parsed = value.removesuffix("+00:00") + " UTC"  # BigQuery's JSON timestamp
        elif value == "":
            parsed = None
        target = record
        *parents, leaf = name.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = parsed
    return record


def test_json_lines_with_nested_objects_give_the_same_totals_as_the_csv(
    importer: Importer, tmp_path: Path
) -> None:
    rows = read_rows(KOKU_2020)
    jsonl = tmp_path / "export.json"
    jsonl.write_text("".join(json.dumps(_nested(r)) + "\n" for r in rows), encoding="utf-8")
    assert '"credits": [{"name": "FreeTrial' in jsonl.read_text(encoding="utf-8")
    from_csv = importer(KOKU_2020, vendor="gcp")
    from_json = importer(jsonl, vendor="gcp")
    assert from_json.detected_format == "gcp_billing_export"
    assert from_json.rows_accepted == len(rows)
    assert from_json.totals == from_csv.totals
    assert stored(from_json) == pick(expected(rows), "net")
    summary = importer.summary("2020-11", vendor="gcp", group_by="service")
    assert {g["key"] for g in summary["groups"]} == {r["service.description"] for r in rows}


# SYNTHETIC rows (values chosen here) in the detailed-export layout: JSON credits with
# several entries, cost_at_list, tax / adjustment / rounding rows, late usage, EUR.
SYNTHETIC_HEADER = [
    "billing_account_id", "service.id", "service.description", "sku.id", "sku.description",
    "usage_start_time", "usage_end_time", "project.id", "project.name", "labels",
    "location.location", "location.region", "location.zone", "cost", "cost_at_list",
    "currency", "usage.amount", "usage.unit", "usage.amount_in_pricing_units",
    "usage.pricing_unit", "credits", "invoice.month", "cost_type",
]  # fmt: skip
SYNTHETIC = [
    ["01A2B3-C4D5E6-F7A8B9", "6F81-5844-456A", "Compute Engine", "CP-N2-CORE", "N2 core",
     "2020-11-30 22:00:00 UTC", "2020-11-30 23:00:00 UTC", "cust-a-prod", "A prod",
     '[{"key": "env", "value": "prod"}, {"key": "team", "value": "web"}]',
     "europe-west1", "europe-west1", "europe-west1-b", "12.345678", "14.2",
     "EUR", "3600", "seconds", "1", "hour",
     '[{"name": "CUD", "amount": -2.1, "type": "COMMITTED_USAGE_DISCOUNT"},'
     ' {"name": "Promo", "amount": -0.000001, "type": "PROMOTION"}]', "202011", "regular"],
    # Late usage: used on 31 October, invoiced in November.
    ["01A2B3-C4D5E6-F7A8B9", "6F81-5844-456A", "Compute Engine", "CP-N2-CORE", "N2 core",
     "2020-10-31 23:00:00 UTC", "2020-11-01 00:00:00 UTC", "cust-b", "B", "[]",
     "europe-west1", "europe-west1", "", "1.5e-05", "", "EUR", "1", "seconds",
     "2.7777777777777778e-04", "hour", "[]", "202011", "regular"],
    ["01A2B3-C4D5E6-F7A8B9", "", "", "", "", "2020-11-01 00:00:00 UTC",
     "2020-12-01 00:00:00 UTC", "", "", "[]", "", "", "", "2.35", "", "EUR", "", "", "", "",
     "[]", "202011", "tax"],
    ["01A2B3-C4D5E6-F7A8B9", "6F81-5844-456A", "Compute Engine", "", "",
     "2020-11-01 00:00:00 UTC", "2020-12-01 00:00:00 UTC", "cust-a-prod", "A prod", "[]",
     "", "", "", "-0.75", "", "EUR", "", "", "", "", "[]", "202011", "adjustment"],
    ["01A2B3-C4D5E6-F7A8B9", "", "", "", "", "2020-11-01 00:00:00 UTC",
     "2020-12-01 00:00:00 UTC", "", "", "[]", "", "", "", "0.004", "", "EUR", "", "", "", "",
     "[]", "202011", "rounding_error"],
]  # fmt: skip


def _write_synthetic(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SYNTHETIC_HEADER)
        writer.writerows(rows)
    return path


def test_synthetic_detailed_export_categories_late_usage_and_list_cost(
    importer: Importer, tmp_path: Path
) -> None:
    path = _write_synthetic(tmp_path / "detailed.csv", SYNTHETIC)
    rows = read_rows(path)
    imported = importer(path, vendor="gcp")
    sums = expected(rows)
    assert stored(imported) == pick(sums, "net") == {"EUR": Decimal("11.849692")}
    assert stored(imported, "contracted_cost") == pick(sums, "gross")
    assert stored(imported, "list_cost") == pick(sums, "list")
    # Everything is invoiced in November, including the usage of 31 October.
    assert importer.summary("2020-10", vendor="gcp")["totals"] == {}
    summary = importer.summary("2020-11", vendor="gcp", group_by="charge_category")
    assert {g["key"]: Decimal(g["billed_cost"]) for g in summary["groups"]} == {
        "Usage": Decimal("12.345678") - Decimal("2.1") - Decimal("0.000001") + Decimal("1.5e-05"),
        "Tax": Decimal("2.35"),
        "Adjustment": Decimal("-0.75") + Decimal("0.004"),
    }


def test_an_unreadable_credit_amount_rejects_the_file(importer: Importer, tmp_path: Path) -> None:
    broken = [list(SYNTHETIC[0])]
    broken[0][SYNTHETIC_HEADER.index("credits")] = '[{"name": "X", "amount": "lots"}]'
    path = _write_synthetic(tmp_path / "broken.csv", broken)
    with pytest.raises(RejectedFile, match="credits"):
        importer(path, vendor="gcp")


def test_malformed_json_lines_are_rejected_with_a_clear_error(
    importer: Importer, tmp_path: Path
) -> None:
    rows = read_rows(KOKU_2022)
    lines = [json.dumps(_nested(r)) for r in rows]
    lines[3] = lines[3][: len(lines[3]) // 2]
    path = tmp_path / "broken.json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="malformed JSON"):
        importer(path, vendor="gcp")
