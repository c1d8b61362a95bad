"""The one CSV writer: every CSV file BillByte hands out is written here.

Customer names and vendor text (service names, SKUs, descriptions, units, sub-account
names) end up in files that people open in a spreadsheet. A cell starting with ``=``,
``+``, ``-`` or ``@`` (or a tab or carriage return, which some spreadsheets skip before
looking for one) is read as a formula there: ``=HYPERLINK(...)`` or ``=cmd|...`` in a
customer name becomes live in the MSP's accounting. Following OWASP ("CSV Injection"),
such a text cell is written with a leading ``'``, which spreadsheets show as plain text.

Neutralisation goes by *column*, not by value: amounts such as ``-12.50`` are numbers
and must reach the spreadsheet as numbers, so a writer is told which of its columns are
numeric (formatted by BillByte from Decimals, never vendor text) and leaves those alone.
Machine formats (the JSON API, Parquet) keep the raw value; only CSV is altered.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Sequence

import polars as pl

# OWASP: = + - @ start a formula; TAB and CR are skipped by some spreadsheets first.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START_PATTERN = r"^[=+\-@\t\r]"
ESCAPE = "'"


def neutralise(text: str) -> str:
    """A text cell as a spreadsheet will show it, never evaluate it."""
    return ESCAPE + text if text.startswith(FORMULA_STARTS) else text


class CsvTable:
    """Rows of a CSV file with named columns; ``numeric`` columns are written as given,
    every other cell is text and neutralised. Lines end in CRLF (RFC 4180): the csv module
    quotes a cell holding a CR or LF only if that character is in the line terminator, so a
    vendor's stray CR would otherwise split a row."""

    def __init__(
        self,
        columns: Sequence[str],
        *,
        numeric: Collection[str] = (),
        delimiter: str = ",",
    ) -> None:
        unknown = set(numeric) - set(columns)
        if unknown:
            raise ValueError(f"numeric columns not in the table: {sorted(unknown)}")
        self.columns = list(columns)
        self._is_text = [name not in numeric for name in self.columns]
        self._out = io.StringIO()
        self._writer = csv.writer(self._out, delimiter=delimiter, lineterminator="\r\n")
        self._writer.writerow([neutralise(name) for name in self.columns])

    def row(self, values: Sequence[object | None]) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"a row has {len(values)} cells, the table {len(self.columns)}")
        self._writer.writerow(
            [_cell(value, is_text) for value, is_text in zip(values, self._is_text, strict=True)]
        )

    def rows(self, rows: Iterable[Sequence[object | None]]) -> None:
        for values in rows:
            self.row(values)

    def text(self) -> str:
        return self._out.getvalue()


def _cell(value: object | None, is_text: bool) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return neutralise(text) if is_text else text


def frame_to_csv(frame: pl.DataFrame, *, numeric: Collection[str] = ()) -> str:
    """A polars frame as CSV text (nulls empty, ``\\n`` line ends): every String column not
    in ``numeric`` is neutralised; other dtypes are numbers, dates or booleans already."""
    unknown = set(numeric) - set(frame.columns)
    if unknown:
        raise ValueError(f"numeric columns not in the frame: {sorted(unknown)}")
    text_columns = [
        name for name, dtype in frame.schema.items() if dtype == pl.String and name not in numeric
    ]
    safe = frame.with_columns(
        pl.when(pl.col(name).str.contains(_FORMULA_START_PATTERN))
        .then(pl.lit(ESCAPE) + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text_columns
    )
    return safe.write_csv(null_value="", quote_style="necessary", line_terminator="\n")
