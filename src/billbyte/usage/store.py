"""Housekeeping of the slice store on disk.

Slice files are immutable and named after their import. A superseded file is kept for a
grace period, because a reader that took its snapshot of current slices just before a
swap may still be scanning it.
"""

from __future__ import annotations

import shutil
from datetime import timedelta

from sqlalchemy import or_, select

from billbyte.kit.clock import utcnow
from billbyte.runtime import Runtime
from billbyte.usage.models import UsageImport, UsageSlice

GRACE = timedelta(hours=1)
_SPECIAL = ("_work", "_uploads")


def collect_garbage(runtime: Runtime, grace: timedelta = GRACE) -> int:
    root = runtime.settings.usage_store_dir
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
    removed = 0
    for path in root.rglob("*.parquet"):
        relative = path.relative_to(root)
        if relative.parts[0] in _SPECIAL or str(relative) in keep or path.stem in running:
            continue
        path.unlink(missing_ok=True)
        removed += 1
    work = root / "_work"
    if work.exists():
        for folder in work.iterdir():
            if folder.name not in running:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return removed
