"""From staged files to validated, de-duplicated slices in the slice store — all vectorised.

Nothing here touches the database: the service decides what becomes current.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from billbyte.kit.errors import InvalidInput
from billbyte.kit.money import known_currencies, plain_decimal
from billbyte.usage.canonical import (
    COLUMNS,
    COST_COLUMNS,
    LINEAGE_COLUMNS,
    MONEY_SCALE,
    PRICE_COLUMNS,
    REQUIRED,
    SCHEMA,
)
from billbyte.usage.limits import UploadLimits
from billbyte.usage.normalize import Field, Kind, digits_beyond, infer_timestamp_format
from billbyte.usage.object_store import UsageStore
from billbyte.usage.readers.base import ColumnMapping, Reader
from billbyte.usage.readers.formats import detect
from billbyte.usage.staging import StagedFile, locate_ragged_record, scan, stage

MAX_ERRORS = 50
Progress = Callable[[str, float], None]


class RejectedFile(InvalidInput):
    code = "file_rejected"
    title = "File rejected"

    def __init__(
        self,
        detail: str,
        errors: list[dict[str, Any]],
        rows_read: int,
        rows_rejected: int,
        detected_format: str | None,
    ) -> None:
        super().__init__(detail)
        self.errors = errors
        self.rows_read = rows_read
        self.rows_rejected = rows_rejected
        self.detected_format = detected_format


@dataclass
class SliceFile:
    billing_period: str
    scope_key: str
    key: str  # in the slice store
    path: Path  # the local file written (the stored one itself in a local store)
    row_count: int
    fingerprint: str
    totals: dict[str, dict[str, str]]
    retires: list[str] = field(default_factory=list)


@dataclass
class PipelineResult:
    reader: str
    files: list[dict[str, Any]]
    content_sha256: str
    rows_read: int
    rows_accepted: int
    duplicate_rows: int
    rounded_values: int
    totals: dict[str, dict[str, str]]
    sub_accounts: list[str]
    slices: list[SliceFile] = field(default_factory=list)
    # Distinct (sub_account_id, billing_account_id) pairs: a line is attributed by either.
    accounts: list[tuple[str | None, str | None]] = field(default_factory=list)


def _noop(_stage: str, _fraction: float) -> None:
    return None


def _raw_name(name: str) -> str:
    return f"__raw_{name}"


SAMPLE_ROWS = 2000


def build_frame(
    staged: Sequence[StagedFile], reader: Reader, report: str | None, *, fast: bool = True
) -> tuple[pl.LazyFrame, ColumnMapping]:
    """The typed canonical frame plus the raw text needed to explain errors.

    With ``fast``, each timestamp column is parsed with the one format that a sample of the
    file uses; the caller retries with ``fast=False`` (all formats) if any value fails.
    """
    frames = []
    for index, item in enumerate(staged):
        frame = scan(item).with_row_index("__row", offset=1)
        frames.append(frame.with_columns(pl.lit(index, dtype=pl.Int32).alias("__file")))
    raw = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    columns = list(dict.fromkeys(c for item in staged for c in item.columns))
    mapping = reader.mapping(columns)
    if mapping.keep is not None:
        raw = raw.filter(mapping.keep)

    formats: dict[str, str | None] = {}
    if fast:
        stamp_fields = {n: f for n, f in mapping.fields.items() if f.kind == Kind.TIMESTAMP}
        if stamp_fields:
            sample = (
                raw.head(SAMPLE_ROWS)
                .select([f.raw.alias(n) for n, f in stamp_fields.items()])
                .collect()
            )
            formats = {n: infer_timestamp_format(sample[n]) for n in stamp_fields}
    typed: list[pl.Expr] = []
    checks: list[pl.Expr] = []
    for name in COLUMNS:
        if name in LINEAGE_COLUMNS:
            continue
        spec: Field | None = mapping.fields.get(name)
        if spec is None:
            typed.append(pl.lit(None, dtype=SCHEMA[name]).alias(name))
            continue
        typed.append(spec.typed(formats.get(name)).cast(SCHEMA[name]).alias(name))
        if spec.kind != Kind.TEXT:
            checks.append(spec.raw.alias(_raw_name(name)))
    # The row's whole content identifies exact duplicates; polars' hash is fast and stable
    # for a given BillByte version, which is all a within-file comparison needs.
    content = pl.concat_str([pl.col(c).fill_null("\x00") for c in columns], separator="\x1f")
    identity = mapping.line_identity if mapping.line_identity is not None else pl.lit("")
    scope = (
        pl.lit(report)
        if report
        else mapping.scope
        if mapping.scope is not None
        else pl.coalesce(
            [
                mapping.fields["billing_account_id"].raw,
                mapping.fields["sub_account_id"].raw,
                pl.lit("default"),
            ]
        )
        if "billing_account_id" in mapping.fields
        else pl.lit("default")
    )
    frame = raw.select(
        pl.col("__file"),
        pl.col("__row"),
        *typed,
        *checks,
        content.hash(seed=20261125).alias("__hash"),
        identity.fill_null("").alias("__identity"),
        scope.cast(pl.String).fill_null("default").alias("__scope"),
        (mapping.retires if mapping.retires is not None else pl.lit(None, dtype=pl.String))
        .cast(pl.String)
        .alias("__retires"),
    )
    return frame, mapping


def _where(staged: Sequence[StagedFile], file_index: int, row: int) -> dict[str, Any]:
    where: dict[str, Any] = {"row": row}
    if len(staged) > 1:
        where["file"] = staged[file_index].name
    return where


def _problems(schema: pl.Schema, mapping: ColumnMapping) -> list[tuple[pl.Expr, pl.Expr]]:
    """Each reason a row cannot be billed: (whether it applies, what to say)."""
    problems: list[tuple[pl.Expr, pl.Expr]] = []
    for name in COLUMNS:
        raw = _raw_name(name)
        if raw in schema:
            spec = mapping.fields[name]
            problems.append(
                (
                    pl.col(raw).is_not_null() & pl.col(name).is_null(),
                    pl.format(
                        "{}: cannot read {} as {}",
                        pl.lit(spec.source or name),
                        pl.col(raw).str.slice(0, 60),
                        pl.lit(spec.kind.value),
                    ),
                )
            )
    for name in REQUIRED:
        spec_ = mapping.fields.get(name)
        source = spec_.source if spec_ and spec_.source else name
        problems.append(
            (
                pl.col(name).is_null()
                & (
                    pl.col(_raw_name(name)).is_null() if _raw_name(name) in schema else pl.lit(True)
                ),
                pl.lit(f"{source}: missing (required for billing)"),
            )
        )
    for start, end in (
        ("billing_period_start", "billing_period_end"),
        ("charge_period_start", "charge_period_end"),
    ):
        # A period runs forward: a start after its end is a broken row, not an empty period.
        problems.append(
            (
                pl.col(start) > pl.col(end),
                pl.format(
                    "{} {} is after {} {}",
                    pl.lit(_source(mapping, start)),
                    pl.col(start).dt.strftime("%Y-%m-%d %H:%M:%S"),
                    pl.lit(_source(mapping, end)),
                    pl.col(end).dt.strftime("%Y-%m-%d %H:%M:%S"),
                ),
            )
        )
    currencies = pl.Series(sorted(known_currencies()), dtype=pl.String)
    problems.append(
        (
            pl.col("billing_currency").is_not_null()
            & ~pl.col("billing_currency").str.to_uppercase().is_in(currencies.implode()),
            pl.format("unknown currency {}", pl.col("billing_currency")),
        )
    )
    return problems


def problem_columns(frame: pl.LazyFrame, mapping: ColumnMapping) -> pl.LazyFrame:
    """Adds ``__bad`` (the row cannot be billed) and ``__rounded`` (cost values beyond 24
    decimals) and drops the raw text: computed in the same streaming pass as the parsing,
    so the raw columns are never written out. Only flags: the messages (text for every row
    of every column, a quarter of the pass) are written for the few rows that have one,
    by ``problem_messages``."""
    schema = frame.collect_schema()
    raw_columns = [c for c in schema if c.startswith("__raw_")]
    bad = pl.any_horizontal([when.fill_null(False) for when, _ in _problems(schema, mapping)])
    money_raw = [_raw_name(n) for n in COST_COLUMNS + PRICE_COLUMNS if _raw_name(n) in schema]
    rounded = (
        pl.sum_horizontal([_beyond(pl.col(n), MONEY_SCALE) for n in money_raw])
        if money_raw
        else pl.lit(0)
    )
    return frame.with_columns(bad.alias("__bad"), rounded.cast(pl.Int32).alias("__rounded")).drop(
        raw_columns
    )


def problem_messages(frame: pl.LazyFrame, mapping: ColumnMapping, limit: int) -> pl.DataFrame:
    """The first ``limit`` rows that cannot be billed, each with every reason, from the
    frame before ``problem_columns`` (typed and raw columns)."""
    problems = _problems(frame.collect_schema(), mapping)
    bad = pl.any_horizontal([when.fill_null(False) for when, _ in problems])
    message = pl.concat_str(
        [pl.when(when).then(text) for when, text in problems], separator="; ", ignore_nulls=True
    )
    return (
        frame.filter(bad)
        .head(limit)
        .select("__file", "__row", message.alias("__problem"))
        .collect()
    )


def _source(mapping: ColumnMapping, name: str) -> str:
    spec = mapping.fields.get(name)
    return spec.source if spec is not None and spec.source else name


def validate(checks_path: Path) -> tuple[int, int, int]:
    """Returns (rows, rows_with_errors, rounded_values), reading only the check columns of
    the pass."""
    stats = (
        pl.scan_parquet(checks_path)
        .select(
            pl.len().alias("rows"),
            pl.col("__bad").sum().alias("bad"),
            pl.col("__rounded").sum().alias("rounded"),
        )
        .collect()
    )
    rows, bad_rows = int(stats["rows"][0]), int(stats["bad"][0])
    return rows, bad_rows, 0 if bad_rows else int(stats["rounded"][0] or 0)


def first_errors(
    staged: Sequence[StagedFile], frame: pl.LazyFrame, mapping: ColumnMapping
) -> list[dict[str, Any]]:
    """Where and why the first rows that cannot be billed fail (``frame``: build_frame's)."""
    return [
        {**_where(staged, item["__file"], item["__row"]), "message": item["__problem"]}
        for item in problem_messages(frame, mapping, MAX_ERRORS).iter_rows(named=True)
    ]


def _beyond(expr: pl.Expr, scale: int) -> pl.Expr:
    return digits_beyond(expr, scale).fill_null(False).cast(pl.Int64)


def totals_of(frame: pl.LazyFrame) -> dict[str, dict[str, str]]:
    """Exact sums per currency of each cost column, as decimal strings."""
    grouped = (
        frame.group_by(pl.col("billing_currency").str.to_uppercase())
        .agg([pl.col(c).sum() for c in COST_COLUMNS] + [pl.len().alias("lines")])
        .sort("billing_currency")
        .collect()
    )
    result: dict[str, dict[str, str]] = {}
    for row in grouped.iter_rows(named=True):
        result[row["billing_currency"]] = {
            **{c: _decimal_text(row[c]) for c in COST_COLUMNS},
            "lines": str(row["lines"]),
        }
    return result


def _decimal_text(value: Decimal | None) -> str:
    if value is None:
        return "0"
    return plain_decimal(value)


def fingerprint(frame: pl.LazyFrame) -> str:
    """Order-independent identity of a slice's content: sha256 over its sorted row hashes."""
    hashes = frame.select(pl.col("__hash").sort()).collect()["__hash"].rechunk().to_arrow()
    digest = hashlib.sha256()
    for buffer in hashes.buffers()[1:]:
        if buffer is not None:
            digest.update(buffer.to_pybytes())
    return digest.hexdigest()


# Written by the one pass over the input: the lines in slice form (what a slice file holds),
# and beside them, row for row, what validation and the split into slices read.
LINES = "lines.parquet"
CHECKS = "checks.parquet"
_CHECK_COLUMNS = ("__file", "__row", "__bad", "__rounded", "__hash", "__scope", "__retires")


def _sink_pass(
    parsed: pl.LazyFrame,
    mapping: ColumnMapping,
    work_dir: Path,
    import_id: str,
    staged: Sequence[StagedFile],
    reader: Reader,
) -> None:
    """One streaming pass over the input writes both files (polars evaluates the shared
    parse once for the two sinks)."""
    frame = problem_columns(parsed, mapping)
    lines = frame.with_columns(
        pl.col("billing_currency").str.to_uppercase(),
        pl.lit(import_id).alias("import_id"),
        pl.col("__row").cast(pl.Int64).alias("row_number"),
        pl.concat_str([pl.col("__identity"), pl.lit("#"), pl.col("__hash").cast(pl.String)]).alias(
            "line_key"
        ),
    ).select([*COLUMNS, "__hash"])
    checks = frame.select(*_CHECK_COLUMNS, "billing_period_start")
    try:
        pl.collect_all(
            [
                lines.sink_parquet(work_dir / LINES, lazy=True),
                checks.sink_parquet(work_dir / CHECKS, lazy=True),
            ]
        )
    except pl.exceptions.PolarsError as exc:
        located = next(filter(None, map(locate_ragged_record, staged)), None)
        reason = str(exc).splitlines()[0]
        raise InvalidInput(
            located or f"{staged[0].name}: cannot parse the file as {reader.name}: {reason}",
            code="ragged_row" if located else "bad_file",
        ) from None


def _write_slices(
    work_dir: Path, store: UsageStore, slice_prefix: str, import_id: str
) -> list[SliceFile]:
    """The pass's lines split by billing period and scope, exact duplicates collapsed to
    their first row; identical rows in different slices are different lines (another month
    or account), so de-duplication is per slice. The usual file (one slice, no duplicate)
    is the pass's lines file as it is: nothing is rewritten."""
    checks = pl.scan_parquet(work_dir / CHECKS)
    month = pl.col("billing_period_start").dt.truncate("1mo")
    keys = (
        checks.group_by(month.alias("__month"), "__scope")
        .agg(
            pl.len().alias("rows"),
            pl.col("__hash").n_unique().alias("distinct"),
            pl.col("__retires").drop_nulls().unique().alias("retires"),
        )
        .with_columns(pl.col("__month").dt.strftime("%Y-%m").alias("__period"))
        .sort(["__period", "__scope"])
        .collect()
    )
    single = keys.height == 1 and keys["rows"][0] == keys["distinct"][0]
    slices: list[SliceFile] = []
    for row in keys.iter_rows(named=True):
        period, scope = row["__period"], row["__scope"]
        scope_digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
        key = f"{slice_prefix}/{period}/{scope_digest}/{import_id}.parquet"
        target = store.staging_path(key, work_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        if single:
            shutil.move(work_dir / LINES, target)
        else:
            lines = pl.concat(
                [
                    pl.scan_parquet(work_dir / LINES),
                    checks.select(month.alias("__month"), pl.col("__scope").alias("__in")),
                ],
                how="horizontal",
            )
            (
                lines.filter((pl.col("__month") == row["__month"]) & (pl.col("__in") == scope))
                .unique(subset=["__hash"], keep="first", maintain_order=True)
                .select([*COLUMNS, "__hash"])
                .sink_parquet(target)
            )
        written = pl.scan_parquet(target)
        slices.append(
            SliceFile(
                billing_period=period,
                scope_key=scope,
                key=key,
                path=target,
                row_count=int(written.select(pl.len()).collect().item()),
                fingerprint=fingerprint(written),
                totals=totals_of(written),
                retires=sorted(v for v in row["retires"] if v != scope),
            )
        )
    return slices


def run(
    paths: Sequence[tuple[Path, str]],
    work_dir: Path,
    store: UsageStore,
    slice_prefix: str,
    import_id: str,
    requested_format: str | None,
    report: str | None,
    progress: Progress = _noop,
    limits: UploadLimits | None = None,
) -> PipelineResult:
    """Stage, parse, validate, de-duplicate and split into slice files put into ``store``
    (under keys no other import uses: nothing is current until the service says so)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _run(
            paths,
            work_dir,
            store,
            slice_prefix,
            import_id,
            requested_format,
            report,
            progress,
            limits or UploadLimits(),
        )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _run(
    paths: Sequence[tuple[Path, str]],
    work_dir: Path,
    store: UsageStore,
    slice_prefix: str,
    import_id: str,
    requested_format: str | None,
    report: str | None,
    progress: Progress,
    limits: UploadLimits,
) -> PipelineResult:
    staged: list[StagedFile] = []
    for index, (path, name) in enumerate(paths):
        progress("reading", index / max(len(paths), 1))
        staged.append(stage(path, work_dir / "staged", name, limits))
    reader = detect(staged[0].columns, requested_format)
    for item in staged[1:]:
        other = detect(item.columns, requested_format)
        if other.name != reader.name:
            raise InvalidInput(
                f"{item.name} is {other.name} but {staged[0].name} is "
                f"{reader.name}: one import holds one format.",
                code="mixed_formats",
            )
    content_sha = hashlib.sha256("".join(s.sha256 for s in staged).encode()).hexdigest()
    files = [{"name": s.name, "sha256": s.sha256, "bytes": s.size} for s in staged]

    progress("parsing", 0.2)
    frame, mapping = build_frame(staged, reader, report)
    _sink_pass(frame, mapping, work_dir, import_id, staged, reader)
    progress("validating", 0.5)
    rows, bad_rows, rounded = validate(work_dir / CHECKS)
    if bad_rows:
        # Perhaps only the sampled timestamp format was too narrow: try every format.
        frame, mapping = build_frame(staged, reader, report, fast=False)
        _sink_pass(frame, mapping, work_dir, import_id, staged, reader)
        rows, bad_rows, rounded = validate(work_dir / CHECKS)
    if rows == 0:
        raise RejectedFile(
            f"{staged[0].name}: the file has a header but no line items.", [], 0, 0, reader.name
        )
    if bad_rows:
        errors = first_errors(staged, frame, mapping)
        first = errors[0]
        where = f"row {first['row']}" + (f" of {first['file']}" if "file" in first else "")
        raise RejectedFile(
            f"{bad_rows} of {rows} rows cannot be billed; nothing was imported. "
            f"First problem, {where}: {first['message']}",
            errors,
            rows,
            bad_rows,
            reader.name,
        )

    progress("writing", 0.65)
    slices = _write_slices(work_dir, store, slice_prefix, import_id)
    stored = pl.concat([pl.scan_parquet(piece.path) for piece in slices], how="vertical_relaxed")
    accepted = sum(piece.row_count for piece in slices)
    totals = slices[0].totals if len(slices) == 1 else totals_of(stored)
    accounts = [
        (sub, billing)
        for sub, billing in stored.select("sub_account_id", "billing_account_id")
        .unique()
        .collect()
        .iter_rows()
    ]
    sub_accounts = sorted({sub for sub, _ in accounts if sub})
    for piece in slices:
        store.put(piece.path, piece.key)
    progress("done", 1.0)
    return PipelineResult(
        reader=reader.name,
        files=files,
        content_sha256=content_sha,
        rows_read=rows,
        rows_accepted=accepted,
        duplicate_rows=rows - accepted,
        rounded_values=rounded,
        totals=totals,
        sub_accounts=sub_accounts,
        slices=slices,
        accounts=accounts,
    )
