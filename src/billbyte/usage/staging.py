"""Turn an uploaded file into something polars can scan lazily, with bounded memory.

Gzip is decompressed and CSV text with a BOM or in UTF-16 re-encoded as BOM-less UTF-8 in
1 MiB chunks (never a line at a time); a plain UTF-8 CSV is only decoded, for the checks, and
scanned where it is; JSON pages are flattened into Parquet; Parquet is scanned as is. Every
problem is raised as ``BadFile`` with a message a person can act on.

Nothing is trusted to be as small as it looks: sizes, compression ratio, line length and
JSON shape are bounded by ``UploadLimits`` while streaming (see ``limits.py``), and a
refused file leaves no staged copy behind.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv

from billbyte.kit.errors import InvalidInput
from billbyte.usage.limits import (
    MAX_COLUMNS,
    MAX_JSON_DEPTH,
    BoundedDecompression,
    DecompressedTooLarge,
    RecordTooLarge,
    UnsupportedContainer,
    UploadLimits,
    check_parquet,
    container_of,
    mib,
)

CHUNK = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
_LOCALIZED = re.compile(r"^.*\(([A-Za-z][A-Za-z0-9_/.]*)\)$")


class BadFile(InvalidInput):
    code = "bad_file"
    title = "Unreadable file"


@dataclass
class StagedFile:
    name: str
    path: Path
    kind: str  # "csv" | "parquet"
    sha256: str
    size: int
    columns: list[str] = field(default_factory=list)
    source_columns: list[str] = field(default_factory=list)


def normalize_header(name: str) -> str:
    """Trim, drop a BOM, and take the English name from localized Azure headers such as
    'Abonnement-GUID (SubscriptionGuid)'."""
    name = name.replace("\ufeff", "").strip()
    match = _LOCALIZED.match(name)
    return match.group(1) if match and " " in name else name


def _open_source(path: Path, name: str, limits: UploadLimits) -> tuple[io.BufferedIOBase, bool]:
    raw = path.open("rb")
    magic = raw.read(2)
    raw.seek(0)
    if magic == GZIP_MAGIC:
        return io.BufferedReader(BoundedDecompression(raw, name, limits), CHUNK), True
    return raw, False


def _sniff(head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] in (b"{", b"["):
        return "json"
    return "csv"


def stage(
    source: Path, work_dir: Path, name: str, limits: UploadLimits | None = None
) -> StagedFile:
    """Copy ``source`` into ``work_dir`` as plain UTF-8 CSV, Parquet, or flattened JSON."""
    limits = limits or UploadLimits()
    work_dir.mkdir(parents=True, exist_ok=True)
    size = source.stat().st_size
    # The upload limit is the request's (endpoints.py); a file already on disk (CLI,
    # collectors) only has to fit the decoded limit, which it cannot if it is larger.
    if size > limits.decompressed_bytes:
        raise DecompressedTooLarge(
            f"{name}: {mib(size)} is more than the {mib(limits.decompressed_bytes)} a usage "
            "file may be.",
            limit=limits.decompressed_bytes,
        )
    digest = hashlib.sha256()
    with source.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    if size == 0:
        raise BadFile(f"{name}: the file is empty.")
    with source.open("rb") as handle:
        container = container_of(handle.read(8))
    if container:
        # Archives are refused unopened: BillByte reads no archive format except gzip, and
        # refusing them before inflation keeps zip bombs (many members, nesting) harmless.
        raise UnsupportedContainer(
            f"{name}: a {container} archive; send the CSV, CSV.gz, Parquet or JSON inside it."
        )

    stream, compressed = _open_source(source, name, limits)
    try:
        head = stream.read(4096)
    except (OSError, EOFError, zlib.error) as exc:
        raise BadFile(f"{name}: the compressed file is truncated or corrupt ({exc}).") from None
    finally:
        stream.close()
    if compressed and (head.startswith(GZIP_MAGIC) or container_of(head)):
        raise UnsupportedContainer(
            f"{name}: an archive inside the gzip file; nested archives are not read."
        )
    kind = _sniff(head)
    if kind == "parquet":
        if compressed:
            raise BadFile(f"{name}: gzip-compressed Parquet is not a thing; send the .parquet.")
        check_parquet(source, name, limits)
        staged = StagedFile(name, source, "parquet", sha, size)
        _parquet_columns(staged)
        return staged
    if kind == "json":
        return _stage_json(source, work_dir, name, sha, size, limits)
    return _stage_csv(source, work_dir, name, sha, size, limits)


def _stage_csv(
    source: Path, work_dir: Path, name: str, sha: str, size: int, limits: UploadLimits
) -> StagedFile:
    target = work_dir / f"{sha[:16]}-{len(list(work_dir.iterdir()))}.csv"
    stream, compressed = _open_source(source, name, limits)
    decoder: codecs.IncrementalDecoder | None = None
    offset = 0
    last_chunk = ""
    # Characters since the last line end: polars holds a whole line in memory, so one
    # endless line (3 GiB of zeros) would be read whole however the file is streamed.
    line_length = 0
    # A plain UTF-8 file without BOM is read where it is: its copy would be the same bytes
    # (2.7 GB written and read again for 10M lines). It is still decoded here, chunk by
    # chunk, for the encoding and line-length checks.
    out: io.TextIOBase | None = None
    try:
        with stream, contextlib.ExitStack() as closing:
            first = True
            while True:
                try:
                    chunk = stream.read(CHUNK)
                except (OSError, EOFError, zlib.error) as exc:
                    raise BadFile(
                        f"{name}: the compressed file is truncated or corrupt ({exc})."
                    ) from None
                if first:
                    encoding = "utf-8"
                    rewrite = compressed
                    if chunk.startswith(codecs.BOM_UTF8):
                        chunk = chunk[3:]
                        rewrite = True
                    elif chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                        encoding = "utf-16"
                        rewrite = True
                    decoder = codecs.getincrementaldecoder(encoding)("strict")
                    first = False
                    if rewrite:
                        out = closing.enter_context(target.open("w", encoding="utf-8", newline=""))
                assert decoder is not None
                try:
                    decoded = decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    raise BadFile(
                        f"{name}: not valid UTF-8 (byte {offset + exc.start}); export the file "
                        "as UTF-8.",
                        code="bad_encoding",
                    ) from None
                offset += len(chunk)
                if decoded:
                    first_end = _first_line_end(decoded)
                    # The line running on from the previous chunk, then the chunk's last one
                    # (lines wholly inside a 1 MiB chunk cannot be longer than the chunk).
                    longest = line_length + (len(decoded) if first_end < 0 else first_end)
                    last_end = max(decoded.rfind("\n"), decoded.rfind("\r"))
                    line_length = longest if last_end < 0 else len(decoded) - last_end - 1
                    if max(longest, line_length) > limits.record_bytes:
                        raise RecordTooLarge(
                            f"{name}: a line longer than {mib(limits.record_bytes)} (the "
                            "limit); no billing export has records that long.",
                            limit=limits.record_bytes,
                        )
                    if out is not None:
                        out.write(decoded)
                    last_chunk = (last_chunk + decoded)[-65536:]
                if not chunk:
                    break
    except BaseException:
        # Nothing partial stays on disk, whatever stopped the copy (a limit, a bad byte).
        target.unlink(missing_ok=True)
        raise
    staged = StagedFile(name, target if out is not None else source, "csv", sha, size)
    _csv_columns(staged)
    _check_not_truncated(staged, last_chunk)
    check_field_counts(staged)
    return staged


def _first_line_end(text: str) -> int:
    ends = [i for i in (text.find("\n"), text.find("\r")) if i >= 0]
    return min(ends) if ends else -1


def _csv_columns(staged: StagedFile) -> None:
    with staged.path.open(encoding="utf-8", newline="") as handle:
        try:
            header = next(csv.reader(handle))
        except (StopIteration, csv.Error) as exc:
            raise BadFile(f"{staged.name}: no CSV header ({exc or 'empty file'}).") from None
    if len(header) < 2:
        raise BadFile(
            f"{staged.name}: the first line is not a CSV header ({header[:1]!r}).",
            code="unrecognised_format",
        )
    if len(header) > MAX_COLUMNS:
        raise BadFile(
            f"{staged.name}: {len(header)} columns (at most {MAX_COLUMNS}).",
            code="too_many_columns",
        )
    staged.source_columns = header
    staged.columns = [normalize_header(h) for h in header]
    duplicated = sorted({c for c in staged.columns if staged.columns.count(c) > 1})
    if duplicated:
        raise BadFile(
            f"{staged.name}: duplicate column names {duplicated}.", code="duplicate_columns"
        )


def _check_not_truncated(staged: StagedFile, tail: str) -> None:
    if not tail or tail.endswith(("\n", "\r")):
        return
    last_line = tail.splitlines()[-1]
    try:
        fields = next(csv.reader([last_line]))
    except (StopIteration, csv.Error):
        return
    if 1 < len(fields) < len(staged.columns) or tail.count('"') % 2 == 1:
        raise BadFile(
            f"{staged.name}: the file looks truncated: its last record has "
            f"{len(fields)} of {len(staged.columns)} fields and no line end.",
            code="truncated_file",
        )


def _parquet_columns(staged: StagedFile) -> None:
    try:
        names = pl.scan_parquet(staged.path).collect_schema().names()
    except Exception as exc:  # polars raises several types for broken files
        raise BadFile(f"{staged.name}: unreadable Parquet ({exc}).") from None
    staged.source_columns = names
    staged.columns = [normalize_header(n) for n in names]


def _stage_json(
    source: Path, work_dir: Path, name: str, sha: str, size: int, limits: UploadLimits
) -> StagedFile:
    """Partner Center pages ({"items": [...]}), arrays, or JSON lines (Google exports).

    A JSON document is parsed whole (the vendors' pages are bounded by their page size), so
    it is read only up to ``limits.json_bytes`` and its shape (depth, string length, number
    of distinct keys) is checked before polars builds a frame from it.
    """
    stream, _ = _open_source(source, name, limits)
    try:
        with stream:
            data = stream.read(limits.json_bytes + 1)
        if len(data) > limits.json_bytes:
            raise JsonTooLarge(
                f"{name}: a JSON document larger than {mib(limits.json_bytes)} (the limit for "
                "JSON, which is parsed in memory); send smaller pages, or CSV/Parquet.",
                limit=limits.json_bytes,
            )
        text = data.decode("utf-8-sig")
        del data
    except (OSError, EOFError, zlib.error) as exc:
        raise BadFile(f"{name}: the compressed file is truncated or corrupt ({exc}).") from None
    except UnicodeDecodeError as exc:
        raise BadFile(f"{name}: not valid UTF-8 (byte {exc.start}).", code="bad_encoding") from None
    stripped = text.lstrip()
    try:
        if stripped.startswith("{") and "\n{" in stripped.rstrip():
            for line in text.splitlines():
                if line.strip():
                    _check_json_shape(json.loads(line), name, limits)
            frame = pl.read_ndjson(io.StringIO(text), infer_schema_length=None)
        else:
            document = json.loads(text, parse_float=str, parse_int=str)  # numbers exact, as text
            _check_json_shape(document, name, limits)
            records = _records(document, name)
            if not records:
                raise BadFile(f"{name}: the JSON holds no line items.", code="empty_file")
            frame = pl.from_dicts(records, infer_schema_length=None)
    except json.JSONDecodeError as exc:
        raise BadFile(
            f"{name}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}.",
            code="bad_json",
        ) from None
    except RecursionError:
        raise BadFile(
            f"{name}: JSON nested deeper than {MAX_JSON_DEPTH} levels.", code="json_too_deep"
        ) from None
    except pl.exceptions.PolarsError as exc:
        raise BadFile(f"{name}: malformed JSON lines ({exc}).", code="bad_json") from None
    frame = flatten(frame)
    target = work_dir / f"{sha[:16]}-{len(list(work_dir.iterdir()))}.parquet"
    try:
        frame.write_parquet(target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    staged = StagedFile(name, target, "parquet", sha, size)
    _parquet_columns(staged)
    return staged


class JsonTooLarge(BadFile):
    status = 413
    code = "json_too_large"
    title = "JSON document too large"


def _check_json_shape(document: object, name: str, limits: UploadLimits) -> None:
    """Depth, string length and distinct keys, walked without recursion: each would
    otherwise be paid for in polars (a column per key, a frame per level) or the stack."""
    keys: set[str] = set()
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if len(value) > limits.record_bytes:
                raise RecordTooLarge(
                    f"{name}: a JSON string longer than {mib(limits.record_bytes)} (the limit).",
                    limit=limits.record_bytes,
                )
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise BadFile(
                f"{name}: JSON nested deeper than {MAX_JSON_DEPTH} levels.", code="json_too_deep"
            )
        if isinstance(value, dict):
            keys.update(value)
            if len(keys) > MAX_COLUMNS:
                raise BadFile(
                    f"{name}: more than {MAX_COLUMNS} distinct JSON keys.",
                    code="too_many_columns",
                )
            pending.extend((item, depth + 1) for item in value.values())
            pending.extend((key, depth) for key in value)
        else:
            pending.extend((item, depth + 1) for item in value)


def _records(document: object, name: str) -> list[dict[str, object]]:
    if isinstance(document, dict):
        for key in ("items", "value", "lineItems", "data"):
            if isinstance(document.get(key), list):
                return list(document[key])
        return [document]
    if isinstance(document, list):
        return list(document)
    raise BadFile(f"{name}: expected a JSON object or array.", code="bad_json")


def flatten(frame: pl.DataFrame) -> pl.DataFrame:
    """Structs become 'parent.child' columns; lists become JSON text (e.g. Google credits)."""
    while True:
        structs = [n for n, t in frame.schema.items() if isinstance(t, pl.Struct)]
        if not structs:
            break
        for name in structs:
            fields = frame.schema[name].fields  # type: ignore[attr-defined]
            frame = frame.with_columns(
                pl.col(name).struct.field(f.name).alias(f"{name}.{f.name}") for f in fields
            ).drop(name)
    lists = [n for n, t in frame.schema.items() if isinstance(t, pl.List | pl.Array)]
    for name in lists:
        prefix = len(json.dumps(name)) + 2  # strip the '{"name":' wrapper json_encode adds
        frame = frame.with_columns(
            pl.struct(pl.col(name))
            .struct.json_encode()
            .str.slice(prefix, None)
            .str.strip_suffix("}")
            .alias(name)
        )
    return frame


def as_text(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Every column as text, whatever Parquet typed it as: readers work on strings."""
    schema = frame.collect_schema()
    exprs = []
    for name, dtype in schema.items():
        column = pl.col(name)
        if dtype == pl.String:
            exprs.append(column)
        elif isinstance(dtype, pl.Datetime):
            if dtype.time_zone:
                column = column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            exprs.append(column.dt.to_string("%Y-%m-%dT%H:%M:%S%.f").alias(name))
        elif dtype.is_nested():
            prefix = len(json.dumps(name)) + 2
            exprs.append(
                pl.struct(column)
                .struct.json_encode()
                .str.slice(prefix, None)
                .str.strip_suffix("}")
                .alias(name)
            )
        else:
            exprs.append(column.cast(pl.String).alias(name))
    return frame.select(exprs)


def scan(staged: StagedFile) -> pl.LazyFrame:
    """A lazy, all-text frame over the staged file with normalised column names."""
    if staged.kind == "csv":
        frame = pl.scan_csv(
            staged.path,
            infer_schema=False,
            new_columns=staged.columns,
            encoding="utf8",
            raise_if_empty=False,
            quote_char='"',
        )
    else:
        frame = as_text(pl.scan_parquet(staged.path)).rename(
            dict(zip(staged.source_columns, staged.columns, strict=True))
        )
    return frame


class RaggedRow(InvalidInput):
    code = "ragged_row"
    title = "Ragged row"


def ragged_record(staged: StagedFile) -> str | None:
    """The first record whose field count breaks the rule, described; None if none does.

    The rule (docs/usage.md): every record has as many fields as the header, except that an
    exporter which never writes the header's trailing column(s) — every record short by the
    same number of fields, like koku's 131-column CUR whose rows all have 130 — is read with
    those columns empty. So the first record sets the width and any other width is named.
    One pass in pyarrow's C++ parser; Python runs only for the first differing record.
    """
    if staged.kind != "csv":
        return None
    expected = len(staged.columns)
    with staged.path.open(encoding="utf-8", newline="") as handle:
        records = csv.reader(handle)
        next(records, None)
        try:
            # Blank lines are no records (pyarrow skips them too).
            first = next((r for r in records if r), None)
        except csv.Error:
            first = None
    if first is None:
        return None
    width = len(first)

    def described(number: int, fields: int) -> str:
        where = f"data record {number} (line {_line_of_record(staged.path, number)} of the file)"
        if width != expected and number > 1:
            return (
                f"{staged.name}: {where} has {fields} fields but data record 1 has {width} "
                f"(the header has {expected})."
            )
        return f"{staged.name}: {where} has {fields} fields, the header has {expected}."

    if width > expected:
        return described(1, width)
    found: list[tuple[int, int]] = []

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        # The parser numbers physical records from the header (1); data rows count from 1.
        found.append(((row.number or 1) - 1, row.actual_columns))
        return "error"  # the first one is all the message needs

    names = [f"c{index}" for index in range(width)]
    try:
        reader = pa_csv.open_csv(
            staged.path,
            read_options=pa_csv.ReadOptions(
                skip_rows=1, column_names=names, block_size=CHUNK, use_threads=False
            ),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pa_csv.ConvertOptions(
                include_columns=names[:1], column_types={names[0]: pa.string()}
            ),
        )
        for _batch in reader:
            pass
    except (pa.ArrowInvalid, StopIteration):
        if not found:
            return None  # not a field-count problem: the CSV parser of polars will say what
    if found:
        return described(*found[0])
    return None


def _line_of_record(path: Path, number: int) -> int:
    """The file line on which data record ``number`` (1-based, the header excluded, blank
    lines skipped) starts; a quoted value may span lines, so the two can differ."""
    with path.open(encoding="utf-8", newline="") as handle:
        records = csv.reader(handle)
        next(records, None)
        seen = 0
        start = records.line_num + 1
        for record in records:
            if record:
                seen += 1
                if seen == number:
                    return start
            start = records.line_num + 1
    return start


def check_field_counts(staged: StagedFile) -> None:
    problem = ragged_record(staged)
    if problem:
        raise RaggedRow(problem)


def locate_ragged_record(staged: StagedFile) -> str | None:
    """On the error path: the ragged record behind a parser error, if that is what it is."""
    return ragged_record(staged)
