"""Issue #16 finding 4 (and issue 12): ragged rows, by the documented rule.

Every record has as many fields as the header, except that an exporter which never writes
the header's trailing column(s) — every record short by the same count, as koku's 131-column
CUR whose 19 rows all have 130 — is read with those columns empty. Anything else rejects the
file, naming the first differing row and its field count. Field counts are taken here with
the standard csv module.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from billbyte.kit.errors import InvalidInput
from tests.usage.conftest import DATA, Importer

CUR = DATA / "aws" / "test_cur.csv"
SPEC_EXAMPLE = DATA / "focus" / "virtual_currency_pricing_model_c.csv"


def _records(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header, *records = list(csv.reader(handle))
    return header, records


def _write(tmp_path: Path, header: list[str], records: list[list[str]]) -> Path:
    target = tmp_path / "ragged.csv"
    with target.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([header, *records])
    return target


def test_fixture_premise() -> None:
    header, records = _records(CUR)
    assert len(header) == 131 and {len(r) for r in records} == {130} and len(records) == 19


def test_uniformly_short_rows_are_read_with_the_trailing_columns_empty(importer: Importer) -> None:
    _, records = _records(CUR)
    assert importer(CUR).rows_accepted == len(records)


def test_a_long_record_is_named_with_its_own_row_and_field_count(
    importer: Importer, tmp_path: Path
) -> None:
    header, records = _records(CUR)
    records[3] = [*records[3], "a", "b", "c", "d"]  # record 4: 134 fields
    with pytest.raises(InvalidInput) as caught:
        importer(_write(tmp_path, header, records))
    assert caught.value.code == "ragged_row"
    assert "data record 4 (line 5 of the file) has 134 fields" in caught.value.detail


def test_short_and_full_rows_mixed_are_rejected(importer: Importer, tmp_path: Path) -> None:
    header, records = _records(CUR)
    records[6] = [*records[6], ""]  # record 7 has the header's 131, the others 130
    with pytest.raises(InvalidInput) as caught:
        importer(_write(tmp_path, header, records))
    assert caught.value.code == "ragged_row"
    assert (
        "data record 7 (line 8 of the file) has 131 fields but data record 1 has 130"
        in caught.value.detail
    )


def test_one_short_row_rejects_the_file(importer: Importer, tmp_path: Path) -> None:
    header, records = _records(SPEC_EXAMPLE)
    assert {len(r) for r in records} == {len(header)}
    records[1] = records[1][:-1]
    with pytest.raises(InvalidInput) as caught:
        importer(_write(tmp_path, header, records))
    assert caught.value.code == "ragged_row"
    expected = f"data record 2 (line 3 of the file) has {len(header) - 1} fields, "
    assert f"{expected}the header has {len(header)}" in caught.value.detail
