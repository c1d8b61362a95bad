"""The ECB euro reference-rate files (``eurofxref-hist.csv``, ``eurofxref.csv``): parsing,
checked whole before anything is stored, and import."""

from __future__ import annotations

import calendar
import csv
import io
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from billbyte.auth.subject import AuthSubject
from billbyte.fx.rates import RateEntry, UpsertSummary, upsert_rates
from billbyte.fx.schemas import LIMIT, MAX_PLACES, decimal_places
from billbyte.kit.errors import InvalidInput
from billbyte.kit.money import validate_currency

ECB_BASE = "EUR"
ECB_SOURCE = "ecb"
_MISSING = frozenset({"", "N/A", "NA", "-"})
_ECB_RATE = re.compile(r"\d+(\.\d+)?")
_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}


def _file_error(path: Path, detail: str, **extra: Any) -> InvalidInput:
    return InvalidInput(
        f"{path.name}: {detail} Nothing was imported.",
        code="fx_file_invalid",
        file=path.name,
        **extra,
    )


def _ecb_date(text: str) -> date | None:
    """``2024-11-22`` (eurofxref-hist.csv) or ``22 November 2024`` (eurofxref.csv)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    parts = text.split()
    if len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit():
        month = _MONTHS.get(parts[1].lower())
        if month is not None:
            try:
                return date(int(parts[2]), month, int(parts[0]))
            except ValueError:
                return None
    return None


def parse_ecb_csv(path: Path) -> list[RateEntry]:
    """Read an ECB euro reference-rate CSV (``eurofxref-hist.csv`` or ``eurofxref.csv``).

    The whole file is checked before anything is returned: an unknown currency column, a
    malformed date or number, or a repeated date rejects the file. ``N/A`` and empty cells
    are rates the ECB did not publish that day, and are skipped.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_error(path, "not a UTF-8 text file.") from None
    except OSError as exc:
        raise InvalidInput(
            f"Cannot read {path}: {exc.strerror}.", code="fx_file_unreadable"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    columns: list[tuple[int, str]] = []
    width = 0
    entries: list[RateEntry] = []
    dates: dict[date, int] = {}
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            if header is None:
                header = cells
                columns, width = _ecb_columns(path, header)
                continue
            line = reader.line_num
            _check_width(path, cells, width, line)
            day = _ecb_date(cells[0])
            if day is None:
                raise _file_error(
                    path, f"line {line}: {cells[0]!r} is not a date.", line=line, column="Date"
                )
            if day in dates:
                raise _file_error(
                    path,
                    f"line {line}: {day} already appears on line {dates[day]}.",
                    line=line,
                    column="Date",
                )
            dates[day] = line
            for index, currency in columns:
                value = cells[index] if index < len(cells) else ""
                if value.upper() in _MISSING:
                    continue
                entries.append(
                    RateEntry(ECB_BASE, currency, day, _ecb_rate(path, value, line, currency))
                )
    except csv.Error as exc:
        raise _file_error(path, f"line {reader.line_num}: {exc}.", line=reader.line_num) from None
    if header is None:
        raise _file_error(path, "the file is empty.")
    if not entries:
        raise _file_error(path, "the file contains no rates.")
    return entries


def _ecb_columns(path: Path, header: list[str]) -> tuple[list[tuple[int, str]], int]:
    if header[0].lower() != "date":
        raise _file_error(
            path,
            f"the first column is {header[0]!r}, not 'Date': not an ECB reference-rate file.",
        )
    columns: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, name in enumerate(header[1:], start=1):
        if not name:
            continue  # the trailing comma of eurofxref-hist.csv
        try:
            currency = validate_currency(name)
        except InvalidInput:
            raise InvalidInput(
                f"{path.name}: unknown currency column {name!r} (column {index + 1}): "
                "expected ISO 4217 codes such as USD. Nothing was imported.",
                code="unknown_currency",
                file=path.name,
                column=name,
            ) from None
        if currency == ECB_BASE:
            raise _file_error(path, "an EUR column makes no sense: the rates are per euro.")
        if currency in seen:
            raise _file_error(path, f"the currency column {currency} appears twice.")
        seen.add(currency)
        columns.append((index, currency))
    if not columns:
        raise _file_error(path, "the header names no currency.")
    named = [index for index, name in enumerate(header) if name]
    return columns, named[-1] + 1


def _check_width(path: Path, cells: list[str], width: int, line: int) -> None:
    used = len(cells)
    while used > 0 and not cells[used - 1]:
        used -= 1
    if used > width:
        raise _file_error(
            path, f"line {line} has more values than the header has columns.", line=line
        )
    if len(cells) < width:
        raise _file_error(
            path,
            f"line {line} has {len(cells)} fields, the header {width}: truncated line?",
            line=line,
        )


def _ecb_rate(path: Path, value: str, line: int, currency: str) -> Decimal:
    if not _ECB_RATE.fullmatch(value):
        raise _file_error(
            path,
            f"line {line}, column {currency}: {value!r} is not a decimal rate.",
            line=line,
            column=currency,
        )
    rate = Decimal(value)
    if rate <= 0 or rate >= LIMIT or decimal_places(rate) > MAX_PLACES:
        raise _file_error(
            path,
            f"line {line}, column {currency}: {value!r} is out of range "
            f"(above zero, below 10^20, at most {MAX_PLACES} decimals).",
            line=line,
            column=currency,
        )
    return rate


def import_ecb_rates(session: Session, subject: AuthSubject, path: Path) -> UpsertSummary:
    """Import an ECB file in the caller's transaction. Idempotent: importing the same file
    again changes nothing."""
    subject.require_write()
    return upsert_rates(session, subject, parse_ecb_csv(path), source=ECB_SOURCE)
