"""A broken file is rejected whole, with a message that names the problem and the row."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import select

from billbyte.kit.errors import InvalidInput
from billbyte.usage.models import UsageImport
from tests.usage.conftest import Importer
from tests.usage.generate import write_focus


def _stored_lines(importer: Importer) -> int:
    totals = importer.summary("2026-10")["totals"]
    return sum(int(v["lines"]) for v in totals.values())


@pytest.fixture
def good(importer: Importer, tmp_path: Path) -> Path:
    path = tmp_path / "good.csv"
    write_focus(path, 30, seed=5)
    importer(path)
    return path


def _reject(
    importer: Importer, path: Path, *, contains: str, code: str | None = None
) -> InvalidInput:
    before = _stored_lines(importer)
    with pytest.raises(InvalidInput) as caught:
        importer(path)
    assert contains.lower() in caught.value.detail.lower(), caught.value.detail
    if code:
        assert caught.value.code == code
    assert _stored_lines(importer) == before  # nothing partial
    with importer.runtime.uow() as uow:
        last = uow.session.scalars(select(UsageImport).order_by(UsageImport.id.desc())).first()
    assert last is not None and last.status == "rejected" and last.message
    return caught.value


def test_bad_value_names_the_row_and_column(importer: Importer, good: Path, tmp_path: Path) -> None:
    lines = good.read_text().splitlines(keepends=True)
    cells = lines[7].split(",")
    cells[0] = "12.34x"
    lines[7] = ",".join(cells)
    broken = tmp_path / "broken.csv"
    broken.write_text("".join(lines))
    error = _reject(importer, broken, contains="row 7")
    assert "BilledCost" in error.detail


def test_missing_required_value(importer: Importer, good: Path, tmp_path: Path) -> None:
    lines = good.read_text().splitlines(keepends=True)
    cells = lines[3].split(",")
    cells[5] = ""  # BillingCurrency
    lines[3] = ",".join(cells)
    broken = tmp_path / "no-currency.csv"
    broken.write_text("".join(lines))
    _reject(importer, broken, contains="BillingCurrency: missing")


def test_unknown_currency(importer: Importer, good: Path, tmp_path: Path) -> None:
    broken = tmp_path / "xxx.csv"
    broken.write_text(good.read_text().replace(",USD,", ",XYZ,", 1))
    _reject(importer, broken, contains="unknown currency XYZ")


def test_truncated_gzip(importer: Importer, good: Path, tmp_path: Path) -> None:
    data = gzip.compress(good.read_bytes())
    broken = tmp_path / "cut.csv.gz"
    broken.write_bytes(data[: len(data) // 2])
    _reject(importer, broken, contains="truncated or corrupt")


def test_truncated_csv(importer: Importer, good: Path, tmp_path: Path) -> None:
    text = good.read_text()
    broken = tmp_path / "cut.csv"
    broken.write_text(text[: len(text) - 40])
    _reject(importer, broken, contains="truncated", code="truncated_file")


def test_not_utf8(importer: Importer, good: Path, tmp_path: Path) -> None:
    broken = tmp_path / "latin1.csv"
    broken.write_bytes(good.read_bytes().replace(b"Hours", "Stünden".encode("latin-1"), 1))
    _reject(importer, broken, contains="not valid UTF-8", code="bad_encoding")


def test_unrecognised_header(importer: Importer, good: Path, tmp_path: Path) -> None:
    broken = tmp_path / "other.csv"
    broken.write_text("name,amount\nfoo,1\n")
    _reject(importer, broken, contains="matches no known format", code="unrecognised_format")


def test_wrong_format_requested(importer: Importer, good: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        importer(good, fmt="no_such_format")
    assert caught.value.code == "unknown_format"


def test_header_only_and_empty(importer: Importer, good: Path, tmp_path: Path) -> None:
    header_only = tmp_path / "header.csv"
    header_only.write_text(good.read_text().splitlines()[0] + "\n")
    _reject(importer, header_only, contains="no line items")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    _reject(importer, empty, contains="empty")


def test_malformed_json(importer: Importer, good: Path, tmp_path: Path) -> None:
    broken = tmp_path / "page.json"
    broken.write_text('{"items": [{"a": 1}, ')
    _reject(importer, broken, contains="malformed JSON", code="bad_json")


def test_ragged_row(importer: Importer, good: Path, tmp_path: Path) -> None:
    lines = good.read_text().splitlines(keepends=True)
    lines[4] = lines[4].rstrip("\n") + ",extra,cells\n"
    broken = tmp_path / "ragged.csv"
    broken.write_text("".join(lines))
    _reject(importer, broken, contains="data record 4 (line 5 of the file) has", code="ragged_row")
