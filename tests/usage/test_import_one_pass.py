"""The one-pass import (issue 14): what it skips must not change what it stores."""

from __future__ import annotations

import codecs
import csv
import gzip
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from billbyte.usage import pipeline
from billbyte.usage.models import UsageSlice
from billbyte.usage.normalize import DIRECT_FORMATS, _parse_direct, to_timestamp
from billbyte.usage.repository import scan_slices, slice_store, slices_of_import
from billbyte.usage.staging import stage
from tests.usage.conftest import Importer
from tests.usage.generate import HEADER, write_focus

# Recorded with BillByte as of commit fa48963 (before the one-pass import), for the file
# ``write_focus(path, 300, seed=11, sub_accounts=3)``: slices stored by that version must
# still be recognised, or the first re-import after an upgrade would replace every slice.
FINGERPRINT_BEFORE = "270ab9ae222035b2531c4af08c3ea80207c4b4faea4c1908b14d88780b1d2e6c"


def _slices(importer: Importer, import_id: str) -> list[UsageSlice]:
    with importer.runtime.uow() as uow:
        return slices_of_import(uow.session, importer.subject.msp_id, import_id)


def test_a_slice_keeps_the_fingerprint_the_previous_version_stored(
    importer: Importer, tmp_path: Path
) -> None:
    path = tmp_path / "month.csv"
    expected = write_focus(path, 300, seed=11, sub_accounts=3)
    first = importer(path)
    [piece] = _slices(importer, first.id)
    assert piece.fingerprint == FINGERPRINT_BEFORE
    again = importer(path)
    assert again.outcome == "unchanged" and again.slices_unchanged == 1
    summary = importer.summary("2026-10")
    assert sum(int(g["lines"]) for g in summary["groups"]) == 300
    assert summary["totals"]["USD"]["billed_cost"] == str(expected["BilledCost"])


def test_a_file_of_one_slice_without_duplicates_is_stored_as_the_pass_wrote_it(
    importer: Importer, tmp_path: Path
) -> None:
    path = tmp_path / "month.csv"
    expected = write_focus(path, 120, seed=4)
    imported = importer(path)
    [piece] = _slices(importer, imported.id)
    lines = scan_slices(slice_store(importer.runtime.settings), [piece])
    assert lines is not None
    frame = lines.collect()
    assert frame.columns == [*pipeline.COLUMNS, "__hash", "partner_account_id"]
    assert frame["row_number"].to_list() == list(range(1, 121))
    assert frame["import_id"].unique().to_list() == [imported.id]
    assert frame["billing_currency"].unique().to_list() == ["USD"]
    assert str(frame["billed_cost"].sum().normalize()) == str(expected["BilledCost"].normalize())


def test_a_plain_utf8_csv_is_read_where_it_is(tmp_path: Path) -> None:
    path = tmp_path / "month.csv"
    write_focus(path, 10)
    staged = stage(path, tmp_path / "work", path.name)
    assert staged.path == path
    assert list((tmp_path / "work").iterdir()) == []


@pytest.mark.parametrize("variant", ["bom", "gzip"])
def test_a_csv_that_needs_rewriting_is_still_copied(tmp_path: Path, variant: str) -> None:
    plain = tmp_path / "plain.csv"
    write_focus(plain, 10)
    body = plain.read_bytes()
    path = tmp_path / f"{variant}.csv"
    if variant == "bom":
        path.write_bytes(codecs.BOM_UTF8 + body)
    else:
        path.write_bytes(gzip.compress(body))
    staged = stage(path, tmp_path / "work", path.name)
    assert staged.path.parent == tmp_path / "work"
    assert staged.path.read_bytes() == body


def test_timestamps_in_other_forms_after_the_sample_are_read_exactly(
    importer: Importer, tmp_path: Path
) -> None:
    """The sample (the first rows) picks a direct ISO format; later rows written otherwise
    fail it, and the import reads the whole file again with every format."""
    path = tmp_path / "mixed.csv"
    sample = pipeline.SAMPLE_ROWS
    later = {
        "2026-10-05 01:00:00 UTC": datetime(2026, 10, 5, 1),
        "10/6/2026 02:30": datetime(2026, 10, 6, 2, 30),
        "2026-10-07T03:00:00.250Z": datetime(2026, 10, 7, 3, 0, 0, 250000),
        "2026-10-08T04:00:00+02:00": datetime(2026, 10, 8, 2),
    }
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, HEADER)
        writer.writeheader()
        texts = ["2026-10-01T00:00:00Z"] * sample + list(later)
        for index, text in enumerate(texts):
            writer.writerow(
                {
                    "BilledCost": "1",
                    "BillingCurrency": "USD",
                    "BillingAccountId": "999",
                    "BillingPeriodStart": "2026-10-01T00:00:00Z",
                    "ChargePeriodStart": text,
                    "ResourceId": f"r-{index}",
                }
            )
    imported = importer(path)
    assert imported.rows_accepted == sample + len(later)
    lines = scan_slices(slice_store(importer.runtime.settings), _slices(importer, imported.id))
    assert lines is not None
    read = lines.sort("row_number").collect()["charge_period_start"].to_list()
    assert read[:sample] == [datetime(2026, 10, 1)] * sample
    assert read[sample:] == list(later.values())


TRICKY = [
    "2026-10-01T00:00:00Z",
    "2026-10-01T23:59:59Z",
    "2026-10-01T00:00:00.5Z",
    "2026-10-01T00:00:00.123456Z",
    "2026-10-01T00:00:00",
    "2026-10-01 00:00:00",
    "2026-1-1T00:00:00Z",
    "0999-10-01T00:00:00Z",
    "+2026-10-01T00:00:00Z",
    "+202-10-01T00:00:00Z",
    "12026-10-01T00:00:00Z",
    "26-10-01T00:00:00Z",
    "2026-10-01T24:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-10-01T00:00:00+00:00",
    "2026-10-01T00:00:00 UTC",
]


@pytest.mark.parametrize("fmt", DIRECT_FORMATS)
def test_a_direct_format_reads_what_the_general_path_reads_or_nothing(fmt: str) -> None:
    frame = pl.DataFrame({"v": TRICKY}).select(
        _parse_direct(pl.col("v"), fmt).alias("direct"), to_timestamp(pl.col("v")).alias("all")
    )
    read = frame.filter(pl.col("direct").is_not_null())
    assert read.height > 0
    assert read["direct"].to_list() == read["all"].to_list()
