"""Housekeeping of the slice store (a directory or a bucket) and of the local usage dir.

Slice files are immutable and named after their import. A superseded file is kept for a
grace period, because a reader that took its snapshot of current slices just before a
swap may still be scanning it.

A killed import leaves three kinds of debris, all collected here: its ``processing`` row
(failed once its heartbeat is older than ``usage_import_stale_minutes``), its work folder
``_work/<import id>`` and slice files, and the request's upload folder under ``_uploads``
(removed once untouched for the same time; a live import keeps touching its own).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath

from sqlalchemy import or_, select

from billbyte.kit.clock import utcnow
from billbyte.runtime import Runtime
from billbyte.usage import service
from billbyte.usage.models import UsageImport, UsageSlice
from billbyte.usage.repository import slice_store

GRACE = timedelta(hours=1)
# Temporary folders that connectors download vendor files into, in the local usage dir.
_COLLECTOR_PREFIX = "collect-"


@dataclass
class Collected:
    """What one ``gc`` run removed (slice keys, and paths relative to the local usage dir)."""

    failed_imports: list[str] = field(default_factory=list)
    slice_files: list[str] = field(default_factory=list)
    work_folders: list[str] = field(default_factory=list)
    upload_folders: list[str] = field(default_factory=list)
    bytes_freed: int = 0

    @property
    def removed(self) -> int:
        return len(self.slice_files) + len(self.work_folders) + len(self.upload_folders)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _last_touched(path: Path) -> float:
    """The newest mtime of the entry and what it holds: a file still being written counts."""
    newest = path.stat().st_mtime
    if path.is_dir():
        for item in path.rglob("*"):
            try:
                newest = max(newest, item.stat().st_mtime)
            except FileNotFoundError:  # removed meanwhile by the import that owns it
                continue
    return newest


def collect_garbage(runtime: Runtime, grace: timedelta = GRACE) -> Collected:
    """Fail abandoned imports, delete slice files no slice row refers to (in the slice
    store: the directory or the bucket), then the local work and upload leftovers."""
    root = runtime.settings.usage_store_dir
    slices = slice_store(runtime.settings)
    collected = Collected()
    before = service.stale_before(runtime)
    with runtime.uow() as uow:
        collected.failed_imports = service.fail_stale(uow.session, before)
        uow.commit()
    # Listed before the snapshot below: an object in the listing was written by an import
    # that had started by then, so the snapshot sees it running, current or finished.
    stored = list(slices.list())
    with runtime.uow() as uow:
        keep = set(
            uow.session.scalars(
                select(UsageSlice.path).where(
                    or_(
                        UsageSlice.is_current.is_(True), UsageSlice.superseded_at > utcnow() - grace
                    )
                )
            )
        )
        running = set(
            uow.session.scalars(select(UsageImport.id).where(UsageImport.status == "processing"))
        )
    for item in stored:
        if item.key in keep or PurePosixPath(item.key).stem in running:
            continue
        slices.delete(item.key)
        collected.bytes_freed += item.size
        collected.slice_files.append(item.key)
    work = root / "_work"
    if work.exists():
        for folder in work.iterdir():
            if folder.name not in running:
                collected.bytes_freed += _size(folder)
                shutil.rmtree(folder, ignore_errors=True)
                collected.work_folders.append(str(folder.relative_to(root)))
    uploads = root / service.UPLOADS
    leftovers = list(uploads.iterdir()) if uploads.exists() else []
    leftovers += [p for p in root.glob(f"{_COLLECTOR_PREFIX}*") if p.is_dir()]
    if leftovers:
        cutoff = before.timestamp()
        for entry in leftovers:
            try:
                if _last_touched(entry) >= cutoff:
                    continue
                size = _size(entry)
            except FileNotFoundError:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            collected.bytes_freed += size
            collected.upload_folders.append(str(entry.relative_to(root)))
    return collected
