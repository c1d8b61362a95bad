"""AWS Cost and Usage Report deliveries in S3 (legacy CUR and CUR 2.0 / Data Exports).

Every billing period whose manifest changed since the watermark is downloaded, manifest and
parts, and returned as one delivery (the whole restated month replaces its slice on import).
The manifest is read by ``usage.manifests``, as an upload of it is.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import botocore.exceptions as bce

from billbyte.connectors.aws.clients import calling, error_code, paginate, s3_client
from billbyte.connectors.base import CollectedFile, Collection, PartnerContext, VendorError
from billbyte.kit.errors import InvalidInput
from billbyte.usage import manifests

log = logging.getLogger(__name__)

_LEGACY_PERIOD = re.compile(r"^(\d{4})(\d{2})01-\d{8}$")  # 20261101-20261201
_CUR2_PERIOD = re.compile(r"^BILLING_PERIOD=(\d{4})-(\d{2})$")  # BILLING_PERIOD=2026-11
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")
_CHUNK = 1024 * 1024


def _as_utc(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass(frozen=True)
class ManifestObject:
    """A manifest object in the bucket and the billing period it belongs to."""

    key: str
    etag: str
    last_modified: datetime
    group: str  # <prefix>/<report>/<period dir>: one entry of the watermark
    report: str
    period: str  # YYYY-MM
    layout: str  # "cur" (legacy) | "cur2" (Data Exports)


def parse_manifest_key(key: str, prefix: str) -> tuple[str, str, str, str] | None:
    """(group, report, period, layout) of a manifest key, None if it is not one.

    legacy: ``<prefix>/<report>/<YYYYMMDD-YYYYMMDD>/[<assemblyId>/]<report>-Manifest.json``
    CUR 2.0: ``<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/[<id>/]<export>-Manifest.json``
    """
    if not key.endswith("-Manifest.json"):
        return None
    rest = key[len(prefix) :].lstrip("/") if prefix else key
    segments = rest.split("/")
    for index in range(len(segments) - 1):
        segment = segments[index]
        legacy = _LEGACY_PERIOD.match(segment)
        cur2 = _CUR2_PERIOD.match(segment)
        if legacy and index >= 1:
            report, layout, period = segments[index - 1], "cur", legacy
        elif cur2 and index >= 2 and segments[index - 1] == "metadata":
            report, layout, period = segments[index - 2], "cur2", cur2
        else:
            continue
        if segments[-1] != f"{report}-Manifest.json":
            return None
        group = "/".join([p for p in [prefix.strip("/")] if p] + segments[: index + 1])
        return group, report, f"{period.group(1)}-{period.group(2)}", layout
    return None


def _load_watermark(watermark: str | None) -> dict[str, Any]:
    if not watermark:
        return {"v": 1, "periods": {}}
    try:
        state = json.loads(watermark)
    except ValueError:
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("periods"), dict):
        log.warning("unreadable AWS watermark %r: collecting every delivery again", watermark)
        return {"v": 1, "periods": {}}
    return state


def _object_of(listed: str, bucket: str) -> tuple[str, str]:
    """(bucket, key) of a listed report file: an ``s3://`` URI names its own bucket."""
    if listed.startswith("s3://"):
        owner, _, key = listed.removeprefix("s3://").partition("/")
        return owner or bucket, key
    return bucket, listed


def _usage_end_column(header: list[str]) -> str | None:
    for name in header:
        if name in ("lineItem/UsageEndDate", "line_item_usage_end_date"):
            return name
    return None


def newest_usage(paths: list[Path]) -> datetime | None:
    """The newest usage end time in the delivery (vectorised, streamed), for data lag.

    Best effort: a file this cannot read gives no value (the import reports real errors).
    """
    # why: pyarrow is slow to import and only a collection needs it
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    newest: datetime | None = None
    for path in paths:
        try:
            name = path.name.lower()
            values: list[Any] = []
            if name.endswith(".parquet") or name.endswith(".snappy.parquet"):
                schema_names = pq.ParquetFile(path).schema_arrow.names
                column = _usage_end_column(schema_names)
                if column is None:
                    continue
                table = pq.read_table(path, columns=[column])
                values.append(pc.max(table.column(column).cast(pa.string())).as_py())
            else:
                opener: Callable[..., Any] = gzip.open if name.endswith(".gz") else open
                with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
                    header = handle.readline().rstrip("\r\n").split(",")
                column = _usage_end_column([h.strip('"') for h in header])
                if column is None:
                    continue
                reader = pacsv.open_csv(
                    path,
                    read_options=pacsv.ReadOptions(block_size=4 * _CHUNK),
                    convert_options=pacsv.ConvertOptions(
                        include_columns=[column], column_types={column: pa.string()}
                    ),
                )
                for batch in reader:
                    values.append(pc.max(batch.column(0)).as_py())
            for value in values:
                if value is None:
                    continue
                moment = _as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
                newest = max(newest, moment) if newest else moment
        except Exception as exc:  # best effort: never fail a collection over a lag figure
            log.debug("no usage end time from %s: %s", path, exc)
    return newest


class CurCollector:
    """The connector's usage collection (no state of its own)."""

    # -- usage --

    def collect_usage(
        self, ctx: PartnerContext, watermark: str | None, work_dir: Path
    ) -> Collection:
        creds = ctx.credentials or {}
        bucket = creds.get("cur_bucket")
        if not bucket:
            raise VendorError(
                "The AWS partner account has no cur_bucket: set cur_bucket (and cur_prefix) "
                "to where the Cost and Usage Report is delivered.",
                retryable=False,
            )
        bucket = str(bucket)
        prefix = str(creds.get("cur_prefix") or "").strip("/")
        only_report = creds.get("cur_report")
        s3 = s3_client(ctx)
        state = _load_watermark(watermark)
        periods: dict[str, Any] = dict(state["periods"])

        latest = self._latest_manifests(s3, bucket, prefix, only_report)
        deliveries: list[CollectedFile] = []
        newest: list[datetime] = []
        if state.get("data_until"):
            with contextlib.suppress(ValueError, TypeError):
                newest.append(_as_utc(datetime.fromisoformat(str(state["data_until"]))))
        for item in sorted(latest.values(), key=lambda m: (m.period, m.group)):
            seen = periods.get(item.group) or {}
            if seen.get("etag") == item.etag and seen.get("key") == item.key:
                continue
            fetched = self._fetch(s3, bucket, item, work_dir)
            if fetched is None:
                continue  # incomplete or superseded while downloading: next run
            parts, etag, delivery_id = fetched
            entry = {"key": item.key, "etag": etag, "delivery_id": delivery_id}
            if delivery_id and seen.get("delivery_id") == delivery_id:
                periods[item.group] = entry  # same delivery, rewritten manifest
                continue
            periods[item.group] = entry
            deliveries.append(
                CollectedFile(
                    paths=parts, format="aws_cur2" if item.layout == "cur2" else "aws_cur"
                )
            )
            until = newest_usage(parts)
            if until:
                newest.append(until)
        # A daily CUR's open day ends at midnight: usage is never newer than now.
        data_until = min(max(newest), datetime.now(UTC)).isoformat() if newest else None
        new_state = {"v": 1, "periods": periods, "data_until": data_until}
        return Collection(
            deliveries=deliveries,
            watermark=json.dumps(new_state, sort_keys=True, separators=(",", ":")),
            data_until=data_until,
        )

    @staticmethod
    def _latest_manifests(
        s3: Any, bucket: str, prefix: str, only_report: Any
    ) -> dict[str, ManifestObject]:
        """The newest manifest of each report × billing period (legacy CUR keeps a copy in
        each assembly folder; the top-level one, written last, names the current delivery)."""
        latest: dict[str, ManifestObject] = {}
        listing = {"Bucket": bucket, "Prefix": f"{prefix}/" if prefix else ""}
        with calling("s3:ListObjectsV2"):
            for obj in paginate(s3, "list_objects_v2", "Contents", **listing):
                parsed = parse_manifest_key(obj["Key"], prefix)
                if parsed is None:
                    continue
                group, report, period, layout = parsed
                if only_report and report != only_report:
                    continue
                item = ManifestObject(
                    key=obj["Key"],
                    etag=str(obj.get("ETag", "")).strip('"'),
                    last_modified=obj["LastModified"],
                    group=group,
                    report=report,
                    period=period,
                    layout=layout,
                )
                current = latest.get(group)
                rank = (item.last_modified, -len(item.key))
                if current is None or rank > (current.last_modified, -len(current.key)):
                    latest[group] = item
        return latest

    def _fetch(
        self, s3: Any, bucket: str, item: ManifestObject, work_dir: Path
    ) -> tuple[list[Path], str, str | None] | None:
        """Download a manifest and every part it lists into their own folder: the parts,
        the manifest's ETag and the delivery id it names.

        None when the delivery is not whole: a part is missing (still being written or
        already removed) or newer than the manifest (a later delivery is overwriting the
        files), or the manifest changed meanwhile. The next collection takes it again.
        """
        folder = work_dir / _UNSAFE.sub("_", item.group.replace("/", "__"))
        folder.mkdir(parents=True, exist_ok=True)
        manifest_path = folder / PurePosixPath(item.key).name
        with calling("s3:GetObject"):
            head = self._download(s3, bucket, item.key, manifest_path)
        if head is None:
            return None
        etag, manifest_time = head
        try:
            listing = manifests.read_listing(manifest_path)
        except InvalidInput as exc:
            raise VendorError(
                f"AWS CUR manifest s3://{bucket}/{item.key} cannot be used: {exc.detail}",
                retryable=False,
            ) from exc
        parts: list[Path] = []
        for key in listing.keys:
            part_bucket, part_key = _object_of(key, bucket)
            path = folder / manifests.file_name(key)
            with calling("s3:GetObject"):
                got = self._download(s3, part_bucket, part_key, path)
            if got is None or got[1] > manifest_time:
                log.info("CUR delivery %s is not whole yet; collecting it next time", item.key)
                return None
            parts.append(path)
        with calling("s3:HeadObject"):
            try:
                again = s3.head_object(Bucket=bucket, Key=item.key)
            except bce.ClientError as exc:
                if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        if str(again.get("ETag", "")).strip('"') != etag:
            return None
        return parts, etag, listing.delivery_id

    @staticmethod
    def _download(s3: Any, bucket: str, key: str, path: Path) -> tuple[str, datetime] | None:
        """Stream one object to ``path``; (ETag, LastModified), or None if it is missing."""
        try:
            answer = s3.get_object(Bucket=bucket, Key=key)
        except bce.ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        partial = path.with_name(path.name + ".part")
        body = answer["Body"]
        try:
            with partial.open("wb") as handle:
                for chunk in body.iter_chunks(_CHUNK):
                    handle.write(chunk)
        finally:
            body.close()
        partial.replace(path)
        return str(answer.get("ETag", "")).strip('"'), answer["LastModified"]
