"""Issue #16 findings 3 and 8 (dates): one parsing rule for every reader.

M/D/YY is read as 20YY (never year 00YY), and a period whose start is after its end rejects
the file naming the row. Expected values are read here from the raw file with csv + Decimal.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from billbyte.usage.pipeline import RejectedFile
from tests.usage.conftest import DATA, Importer, read_rows

SPEC_EXAMPLE = DATA / "focus" / "virtual_currency_pricing_model_c.csv"


def _period_of(text: str) -> str:
    """'10/1/25' → '2025-10', by the documented rule (2000 + two-digit year)."""
    month, _day, year = text.split("/")
    return f"{2000 + int(year)}-{int(month):02d}"


def test_two_digit_years_are_read_as_this_century(importer: Importer) -> None:
    rows = read_rows(SPEC_EXAMPLE)
    periods = {_period_of(row["BillingPeriodStart"]) for row in rows}
    assert periods == {"2025-10"}
    expected = sum((Decimal(row["BilledCost"]) for row in rows), Decimal(0))

    importer(SPEC_EXAMPLE)
    summary = importer.summary("2025-10")
    assert Decimal(summary["totals"]["USD"]["billed_cost"]) == expected
    assert int(summary["totals"]["USD"]["lines"]) == len(rows)


def _write(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    target = tmp_path / "focus.csv"
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target


@pytest.mark.parametrize(
    ("start", "end", "column"),
    [
        ("BillingPeriodStart", "BillingPeriodEnd", "BillingPeriodStart"),
        ("ChargePeriodStart", "ChargePeriodEnd", "ChargePeriodStart"),
    ],
)
def test_a_period_starting_after_its_end_is_rejected_naming_the_row(
    importer: Importer, tmp_path: Path, start: str, end: str, column: str
) -> None:
    rows = read_rows(SPEC_EXAMPLE)
    rows[1][start], rows[1][end] = rows[1][end], rows[1][start]  # row 2: start > end
    with pytest.raises(RejectedFile) as caught:
        importer(_write(tmp_path, rows))
    errors = caught.value.errors
    assert [error["row"] for error in errors] == [2]
    assert f"{column} " in errors[0]["message"] and "is after" in errors[0]["message"]


def test_a_year_not_written_with_four_digits_is_rejected_not_read_as_year_25(
    importer: Importer, tmp_path: Path
) -> None:
    rows = read_rows(SPEC_EXAMPLE)
    rows[0]["BillingPeriodStart"] = "25-10-01"  # neither M/D/YY nor a four-digit year
    with pytest.raises(RejectedFile) as caught:
        importer(_write(tmp_path, rows))
    errors = caught.value.errors
    assert [error["row"] for error in errors] == [1]
    assert "BillingPeriodStart: cannot read 25-10-01 as timestamp" in errors[0]["message"]
