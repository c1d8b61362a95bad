"""AWS CUR delivery manifests: which report files make up one delivery.

AWS delivers a CUR to S3 as one or more report files plus a manifest naming them:

* legacy CUR — ``<report>-Manifest.json`` with ``assemblyId``, ``billingPeriod``,
  ``columns`` and ``reportKeys`` (S3 keys of the parts, e.g.
  ``prefix/report/20180801-20180901/<assemblyId>/report-1.csv.gz``);
* CUR 2.0 / Data Exports — ``<export>-Manifest.json`` with ``dataFiles`` (``s3://`` URIs
  of the parts), ``executionId``, ``billingPeriod`` and ``columns``.

The parts of one delivery are one import: the payer's month is one slice (see the AWS
reader), so importing part 2 alone would replace part 1. The files are looked up by
their base name in the manifest's directory (S3 prefixes do not exist locally).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from billbyte.kit.errors import InvalidInput

MAX_MANIFEST_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Manifest:
    path: Path
    kind: str  # "cur" (legacy reportKeys) | "cur2" (Data Exports dataFiles)
    keys: list[str]
    files: list[Path]
    report_name: str | None = None
    # legacy assemblyId / CUR 2.0 executionId: changes with every delivery, so it must
    # never be used as the slice scope (a re-delivery would then add, not replace).
    delivery_id: str | None = None
    billing_period_start: str | None = None
    billing_period_end: str | None = None
    columns: list[str] = field(default_factory=list)


def _load(path: Path) -> Any:
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise InvalidInput(f"{path.name}: too large for a CUR manifest.", code="bad_manifest")
    try:
        with path.open(encoding="utf-8-sig") as handle:
            return json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            f"{path.name}: not a readable JSON manifest ({exc}).", code="bad_manifest"
        ) from None
    except RecursionError:
        # A deeply nested upload is no manifest; staging refuses it as json_too_deep.
        raise InvalidInput(
            f"{path.name}: not a JSON manifest (nested too deeply).", code="bad_manifest"
        ) from None


def _is_manifest_document(document: Any) -> bool:
    return isinstance(document, dict) and ("reportKeys" in document or "dataFiles" in document)


def is_manifest(path: Path) -> bool:
    """True for a legacy CUR or CUR 2.0 manifest (a JSON object listing report files)."""
    if not path.is_file() or path.suffix.lower() != ".json":
        return False
    try:
        return _is_manifest_document(_load(path))
    except (InvalidInput, OSError):
        return False


def _key_of(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):  # tolerate {"key": ...} / {"s3Uri": ...} shaped entries
        for name in ("key", "s3Key", "s3Uri", "uri", "path"):
            if isinstance(entry.get(name), str):
                return str(entry[name])
    return None


def _basename(key: str) -> str:
    key = key.removeprefix("s3://")
    return PurePosixPath(key.rstrip("/")).name


def _columns(document: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for item in document.get("columns") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            category = item.get("category")
            names.append(f"{category}/{item['name']}" if category else item["name"])
    return names


@dataclass(frozen=True)
class Listing:
    """What a manifest says, before its report files are looked for."""

    kind: str  # "cur" (legacy reportKeys) | "cur2" (Data Exports dataFiles)
    keys: list[str]  # as listed: S3 keys or s3:// URIs, in order, each file once
    report_name: str | None = None
    delivery_id: str | None = None
    billing_period_start: str | None = None
    billing_period_end: str | None = None
    columns: list[str] = field(default_factory=list)


def read_listing(path: Path) -> Listing:
    """Parse a manifest: the report files it lists and what it says about the delivery.

    The one reading of a manifest's entries, shared by imports (``read_manifest``) and the
    AWS connector (which downloads what is listed): an entry is an S3 key or ``s3://`` URI,
    or an object naming one under ``key``, ``s3Key``, ``s3Uri``, ``uri`` or ``path``."""
    document = _load(path)
    if not _is_manifest_document(document):
        raise InvalidInput(
            f"{path.name}: not an AWS CUR manifest (no 'reportKeys' or 'dataFiles').",
            code="bad_manifest",
        )
    kind = "cur" if "reportKeys" in document else "cur2"
    entries = document.get("reportKeys" if kind == "cur" else "dataFiles")
    if not isinstance(entries, list) or not entries:
        raise InvalidInput(f"{path.name}: the manifest lists no report files.", code="bad_manifest")
    keys: list[str] = []
    seen: dict[str, str] = {}
    for entry in entries:
        key = _key_of(entry)
        name = _basename(key) if key else ""
        if not key or name in ("", ".", ".."):
            raise InvalidInput(
                f"{path.name}: unusable report file entry {entry!r}.", code="bad_manifest"
            )
        if name in seen:
            if seen[name] == key:
                continue  # listed twice: one file
            raise InvalidInput(
                f"{path.name}: two report files share the name {name!r} ({seen[name]} and "
                f"{key}); they cannot both sit beside the manifest.",
                code="bad_manifest",
            )
        seen[name] = key
        keys.append(key)
    period = document.get("billingPeriod")
    period = period if isinstance(period, dict) else {}
    report_name = document.get("reportName") or document.get("exportName")
    delivery_id = document.get("assemblyId") or document.get("executionId")
    return Listing(
        kind=kind,
        keys=keys,
        report_name=str(report_name) if report_name else None,
        delivery_id=str(delivery_id) if delivery_id else None,
        billing_period_start=str(period["start"]) if period.get("start") else None,
        billing_period_end=str(period["end"]) if period.get("end") else None,
        columns=_columns(document),
    )


def file_name(key: str) -> str:
    """The name a listed report file has beside its manifest."""
    return _basename(key)


def read_manifest(path: Path) -> Manifest:
    """Parse a manifest and resolve its report files beside it (all must exist)."""
    listing = read_listing(path)
    files = [path.parent / _basename(key) for key in listing.keys]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise InvalidInput(
            f"{path.name} lists {len(listing.keys)} report file(s) but {len(missing)} are not "
            f"in {path.parent}: {', '.join(missing)}. Put every file the manifest lists beside "
            "it (a partial delivery would replace the whole month with a part of it).",
            code="manifest_file_missing",
        )
    return Manifest(
        path=path,
        kind=listing.kind,
        keys=listing.keys,
        files=files,
        report_name=listing.report_name,
        delivery_id=listing.delivery_id,
        billing_period_start=listing.billing_period_start,
        billing_period_end=listing.billing_period_end,
        columns=listing.columns,
    )


def resolve_manifest(path: Path) -> list[Path]:
    """The report files a manifest lists, in its order, resolved beside the manifest."""
    return read_manifest(path).files


def expand(files: Sequence[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """Each CUR manifest replaced by the report files it lists (found beside it).

    Shared by the CLI, the API upload and the connectors. A part given as well as listed by
    a manifest (an upload of the manifest with its parts) is one file, imported once.
    """
    expanded: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for path, name in files:
        entries = (
            [(part, part.name) for part in resolve_manifest(path)]
            if is_manifest(path)
            else [(path, name)]
        )
        for entry, entry_name in entries:
            key = entry.resolve()
            if key not in seen:
                seen.add(key)
                expanded.append((entry, entry_name))
    return expanded
