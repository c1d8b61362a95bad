"""The reader interface: one module per vendor format, registered in ``formats.py``.

A reader never loops over rows. It inspects the header and returns polars expressions
that turn the raw text columns (every value a string, nulls already normalised by
``normalize.clean``) into canonical columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from billbyte.usage.normalize import Field


@dataclass(frozen=True)
class ColumnMapping:
    """What a reader makes of one file's header."""

    fields: Mapping[str, Field]
    # The vendor's own identity of a line (e.g. CUR LineItemId + TimeInterval); None when
    # the format has none, in which case the row's full content is its identity.
    line_identity: pl.Expr | None = None
    # The vendor's report identity inside a partner account and billing period: a re-delivery
    # with the same scope replaces the earlier slice. Defaults to the billing account.
    scope: pl.Expr | None = None
    # Rows to drop before anything else (e.g. report summary lines); None keeps all.
    keep: pl.Expr | None = None
    # Scope of an earlier, provisional slice that this row's slice supersedes (e.g. a billed
    # Partner Center invoice retires the period's "unbilled" slice); None retires nothing.
    retires: pl.Expr | None = None


class Reader(Protocol):
    name: str
    description: str

    def score(self, columns: Sequence[str]) -> int:
        """How well this reader recognises the header: 0 = not at all, higher = surer."""

    def mapping(self, columns: Sequence[str]) -> ColumnMapping:
        """Canonical fields for a file with these columns."""


def has_all(columns: Sequence[str], *names: str) -> bool:
    present = set(columns)
    return all(name in present for name in names)


def first_present(columns: Sequence[str], *names: str) -> str | None:
    """The first of ``names`` that the header has (vendors rename columns across versions)."""
    present = set(columns)
    for name in names:
        if name in present:
            return name
    return None
