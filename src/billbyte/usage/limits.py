"""Bounds on what one usage upload may cost the server, enforced while streaming.

A compressed file is never trusted to be what its size suggests: gzip expands up to about
1000:1, and Parquet's dictionary/RLE encodings further still. Every reader of uploaded
bytes therefore goes through ``BoundedDecompression`` (gzip) or ``check_parquet`` (Parquet
metadata, before any row is decoded), and the error is raised at the first byte past a
limit, so that neither memory nor disk ever holds more than the limits allow.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from billbyte.kit.errors import BillByteError, InvalidInput

if TYPE_CHECKING:
    from billbyte.settings import Settings

# Below this many decompressed bytes the ratio is not judged: tiny files compress freakishly
# well (a header and a few identical rows) and cost nothing to expand.
RATIO_FLOOR = 8 * 1024 * 1024
# A Parquet footer is a few MB even for very large files; a bigger one is an attack on the
# Thrift decoder, which holds it in memory.
MAX_PARQUET_FOOTER = 64 * 1024 * 1024
# Real vendor exports have at most a few hundred columns (AWS CUR ≈ 300 with tags); many
# thousands would make polars allocate per-column buffers for every batch.
MAX_COLUMNS = 5000
# Partner Center pages nest 3–4 levels; deeper documents only exercise the parser.
MAX_JSON_DEPTH = 32

_CONTAINER_MAGIC = {
    b"PK\x03\x04": "zip",
    b"PK\x05\x06": "zip",
    b"PK\x07\x08": "zip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"Rar!\x1a\x07": "rar",
}


class UploadTooLarge(BillByteError):
    status = 413
    code = "upload_too_large"
    title = "Upload too large"


class DecompressedTooLarge(BillByteError):
    status = 413
    code = "decompressed_too_large"
    title = "File too large once decompressed"


class CompressionRatioExceeded(InvalidInput):
    code = "compression_ratio_exceeded"
    title = "Suspicious compression ratio"


class UnsupportedContainer(InvalidInput):
    code = "unsupported_container"
    title = "Unsupported archive"


class RecordTooLarge(InvalidInput):
    code = "record_too_large"
    title = "Record too large"


@dataclass(frozen=True)
class UploadLimits:
    decompressed_bytes: int = 20 * 1024**3
    ratio: int = 200
    json_bytes: int = 64 * 1024**2
    record_bytes: int = 1024**2

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        return cls(
            decompressed_bytes=settings.usage_decompressed_max_bytes,
            ratio=settings.usage_compression_ratio_max,
            json_bytes=settings.usage_json_max_bytes,
            record_bytes=settings.usage_record_max_bytes,
        )


def mib(size: int) -> str:
    return f"{size / 1024**2:.0f} MiB" if size >= 1024**2 else f"{size} bytes"


def container_of(head: bytes) -> str | None:
    """The archive format that ``head`` starts with, if it is one BillByte does not read."""
    for magic, kind in _CONTAINER_MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


class BoundedDecompression(io.RawIOBase):
    """Streams gzip (all members) out of ``raw`` and refuses, at the first byte past a limit,
    more than ``limit`` decompressed bytes or a ratio above ``ratio``.

    Each ``read`` inflates at most ``size`` bytes (``max_length``), so memory is one chunk
    whatever the compressed input expands to.
    """

    def __init__(self, raw: io.BufferedIOBase, name: str, limits: UploadLimits) -> None:
        super().__init__()
        self._raw = raw
        self._name = name
        self._limits = limits
        self._inflater = zlib.decompressobj(wbits=31)
        self._input = b""  # compressed bytes read but not yet inflated
        self.compressed_read = 0
        self.decompressed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _read_raw(self) -> bytes:
        data = self._raw.read(64 * 1024)
        self.compressed_read += len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = 1024 * 1024  # never "everything": that is the bomb's whole point
        while True:
            if self._inflater.eof:
                # Concatenated gzip members (as `cat a.gz b.gz` makes) are one stream;
                # zero padding after the last member is tolerated, as gzip(1) does.
                rest = self._inflater.unused_data or self._read_raw()
                rest = rest.lstrip(b"\x00")
                while not rest:
                    more = self._read_raw()
                    if not more:
                        return b""
                    rest = more.lstrip(b"\x00")
                self._inflater = zlib.decompressobj(wbits=31)
                self._input = rest
            if not self._input:
                self._input = self._read_raw()
                if not self._input:
                    raise EOFError("the compressed stream ends before its end marker")
            chunk = self._inflater.decompress(self._input, size)
            self._input = self._inflater.unconsumed_tail
            if chunk:
                self._count(len(chunk))
                return chunk

    def _count(self, produced: int) -> None:
        self.decompressed += produced
        limits = self._limits
        if self.decompressed > limits.decompressed_bytes:
            raise DecompressedTooLarge(
                f"{self._name}: decompresses to more than {mib(limits.decompressed_bytes)} "
                "(the limit); split the export or send it uncompressed.",
                limit=limits.decompressed_bytes,
            )
        if self.decompressed > RATIO_FLOOR and self.decompressed > limits.ratio * max(
            self.compressed_read, 1
        ):
            raise CompressionRatioExceeded(
                f"{self._name}: expands more than {limits.ratio}:1 when decompressed, which "
                "no billing export does; refused as a decompression bomb.",
                limit=limits.ratio,
            )

    def close(self) -> None:
        self._raw.close()
        super().close()


def check_parquet(path: Path, name: str, limits: UploadLimits) -> None:
    """Judge a Parquet file by its footer, before a single row is decoded.

    The decoded size is estimated as the larger of the column chunks' uncompressed sizes and
    one byte per cell (the least each value takes once read), because RLE and dictionary
    encoding let a few kilobytes stand for billions of values.
    """
    import pyarrow.parquet as pq  # why: pyarrow adds ~0.6 s of start-up; only Parquet needs it

    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(size - 8, 0))
        tail = handle.read(8)
    if len(tail) < 8 or tail[4:] != b"PAR1":
        raise InvalidInput(f"{name}: unreadable Parquet (no footer).", code="bad_file")
    (footer,) = struct.unpack("<I", tail[:4])
    if footer > min(MAX_PARQUET_FOOTER, size):
        raise InvalidInput(
            f"{name}: the Parquet footer claims {footer} bytes; refused.", code="bad_file"
        )
    try:
        meta = pq.read_metadata(path)
    except Exception as exc:  # pyarrow raises several types for broken files
        raise InvalidInput(f"{name}: unreadable Parquet ({exc}).", code="bad_file") from None
    if meta.num_columns > MAX_COLUMNS:
        raise InvalidInput(
            f"{name}: {meta.num_columns} columns (at most {MAX_COLUMNS}).", code="too_many_columns"
        )
    encoded = sum(
        meta.row_group(g).column(c).total_uncompressed_size
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    )
    decoded = max(encoded, meta.num_rows * meta.num_columns)
    _check_ratio(decoded, size, meta.num_rows, name, limits)
    _check_dictionary_expansion(path, name, size, meta.num_rows, limits)


def _check_ratio(decoded: int, size: int, rows: int, name: str, limits: UploadLimits) -> None:
    if decoded > limits.decompressed_bytes:
        raise DecompressedTooLarge(
            f"{name}: its {rows} rows decode to more than "
            f"{mib(limits.decompressed_bytes)} (the limit); split the export.",
            limit=limits.decompressed_bytes,
        )
    if decoded > RATIO_FLOOR and decoded > limits.ratio * size:
        raise CompressionRatioExceeded(
            f"{name}: its {rows} rows decode to more than {limits.ratio} times the "
            "file's size, which no billing export does; refused as a decompression bomb.",
            limit=limits.ratio,
        )


def _check_dictionary_expansion(
    path: Path, name: str, size: int, rows: int, limits: UploadLimits
) -> None:
    """The footer cannot tell how long dictionary values are: one 1 MiB string referenced by
    every row is a few kilobytes on disk and terabytes once read. So the text columns are
    read *as dictionaries* (values once, plus indices) and their decoded length summed
    without materialising it."""
    # why: pyarrow adds ~0.6 s of start-up; only Parquet uploads need it.
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    def is_text(kind: pa.DataType) -> bool:
        if pa.types.is_dictionary(kind):  # as pyarrow records dictionary columns
            kind = kind.value_type
        return bool(
            pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind)
        )

    text = [f.name for f in pq.read_schema(path) if is_text(f.type)]
    if not text:
        return
    decoded = 0
    source = pq.ParquetFile(path, read_dictionary=text)
    for batch in source.iter_batches(batch_size=65536, columns=text):
        for column in batch.columns:
            if not isinstance(column, pa.DictionaryArray):
                decoded += column.nbytes
                continue
            lengths = pc.binary_length(column.dictionary)
            longest = pc.max(lengths).as_py() or 0
            if longest > limits.record_bytes:
                raise RecordTooLarge(
                    f"{name}: a value longer than {mib(limits.record_bytes)} (the limit).",
                    limit=limits.record_bytes,
                )
            decoded += pc.sum(pc.take(lengths, column.indices)).as_py() or 0
        _check_ratio(decoded, size, rows, name, limits)
