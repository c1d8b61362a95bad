"""Issue 12: the ragged-row error names the true data record (1-based, the header not
counted), the file line it starts on, its own field count and the header's, on small
generated files (a quoted value spanning lines and a blank line make record and line differ).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from billbyte.kit.errors import InvalidInput
from tests.usage.conftest import Importer

HEADER = [
    "identity/LineItemId",
    "bill/BillingPeriodStartDate",
    "lineItem/UsageStartDate",
    "lineItem/UnblendedCost",
    *[f"resourceTags/user:tag{i}" for i in range(127)],
]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


def _record(index: int, width: int) -> list[str]:
    return [f"id-{index}", "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", "1.5"] + [""] * (
        width - 4
    )


def _detail(importer: Importer, path: Path) -> str:
    with pytest.raises(InvalidInput) as caught:
        importer(path)
    assert caught.value.code == "ragged_row"
    return caught.value.detail


def test_a_134_field_record_4_in_a_131_column_file_is_named(
    importer: Importer, tmp_path: Path
) -> None:
    assert len(HEADER) == 131
    records = [_record(i, 130) for i in range(1, 8)]
    records[3] = _record(4, 134)
    detail = _detail(importer, _write(tmp_path / "cur.csv", [HEADER, *records]))
    assert "data record 4 (line 5 of the file) has 134 fields" in detail
    assert "the header has 131" in detail
    assert "row 1 has 130 fields" not in detail


def test_record_and_line_differ_after_a_multi_line_value_and_a_blank_line(
    importer: Importer, tmp_path: Path
) -> None:
    records = [_record(i, 131) for i in range(1, 8)]
    records[1][4] = "a tag\nover two lines"  # record 2 spans file lines 4 and 5
    records[5] = _record(6, 134)
    path = _write(tmp_path / "cur.csv", [HEADER, *records])
    # a blank line after the header: line 2 is blank, record 1 is on line 3
    lines = path.read_text(encoding="utf-8").split("\n", 1)
    path.write_text(lines[0] + "\n\n" + lines[1], encoding="utf-8")
    detail = _detail(importer, path)
    # header 1, blank 2, record 1 on 3, record 2 on 4-5, 3 on 6, 4 on 7, 5 on 8, 6 on 9
    assert "data record 6 (line 9 of the file) has 134 fields, the header has 131." in detail
