"""Usage imports and the usage summary, over the slice store.

An import runs in three steps, so that a crash at any point changes no total:
1. the import is recorded as ``processing`` (its own small transaction);
2. the pipeline writes new slice files beside the current ones (no database change);
3. one transaction makes the new slices current and retires the old ones.
A crash before 3 leaves orphan files (removed by ``gc``) and a ``processing`` row whose
heartbeat stops; once it is older than ``usage_import_stale_minutes`` the next import of the
partner account (or ``gc``) marks it ``failed``. A crash after 3 leaves nothing to do.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.auth.subject import AuthSubject
from billbyte.customers import mapping
from billbyte.jobs import follow_up
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import BillByteError, InvalidInput
from billbyte.kit.pagination import Page, paginate
from billbyte.kit.periods import validate_period  # analytics and rating.preview import it here
from billbyte.kit.repository import get_owned
from billbyte.partners import repository as partners
from billbyte.partners.models import PartnerAccount
from billbyte.runtime import Runtime
from billbyte.usage import manifests, pipeline
from billbyte.usage.canonical import COST_COLUMNS
from billbyte.usage.limits import UploadLimits
from billbyte.usage.models import UsageImport, UsageSlice
from billbyte.usage.object_store import UsageStore
from billbyte.usage.pipeline import Progress, RejectedFile
from billbyte.usage.repository import scan_slices, slice_store
from billbyte.webhooks import service as webhooks

log = logging.getLogger(__name__)

UPLOADS = "_uploads"  # under the local usage dir: request bodies waiting to be imported
GROUPS = {"customer", "sub_account", "service", "charge_category", "provider"}


def import_files(
    runtime: Runtime,
    subject: AuthSubject,
    partner_account_id: str,
    files: Sequence[tuple[Path, str]],
    *,
    requested_format: str | None = None,
    report: str | None = None,
    progress: Progress | None = None,
) -> UsageImport:
    """Import vendor files; returns the import (status completed) or raises.

    A rejected file raises ``RejectedFile`` after the import has been recorded as rejected
    (so it can be looked up); no usage line of it is stored.
    """
    subject.require_write()
    if not files:
        raise InvalidInput("No file given.", code="no_file")
    if report is not None and not report.strip():
        raise InvalidInput("report must not be blank.", field="report")
    with runtime.uow() as uow:
        account = partners.get_account(uow.session, subject.msp_id, partner_account_id)
        fail_stale(uow.session, stale_before(runtime), account.id)
        item = UsageImport(
            msp_id=subject.msp_id,
            partner_account_id=account.id,
            actor=subject.actor,
            requested_format=requested_format,
            report=report,
            files=[{"name": name} for _, name in files],
            heartbeat_at=utcnow(),
        )
        uow.session.add(item)
        uow.commit()
        import_id = item.id

    local = runtime.settings.usage_store_dir  # work and uploads, whatever the slice store
    store = slice_store(runtime.settings)
    inside = local.resolve()
    heartbeat = Heartbeat(
        runtime,
        import_id,
        # Upload and collector folders in the store must outlive a long import: gc judges
        # them by mtime. (Files given from elsewhere, e.g. on the CLI, are never touched.)
        keep_fresh=sorted({p.parent for p, _ in files if p.resolve().is_relative_to(inside)}),
    )
    try:
        with heartbeat:
            result = pipeline.run(
                files,
                work_dir=local / "_work" / import_id,
                store=store,
                slice_prefix=f"{subject.msp_id}/{partner_account_id}",
                import_id=import_id,
                requested_format=requested_format,
                report=report,
                progress=progress or (lambda _s, _f: None),
                limits=UploadLimits.from_settings(runtime.settings),
            )
    except RejectedFile as exc:
        _finish_rejected(
            runtime,
            import_id,
            exc.detail,
            exc.errors,
            exc.rows_read,
            exc.rows_rejected,
            exc.detected_format,
        )
        exc.extra["import_id"] = import_id
        exc.extra["errors"] = exc.errors
        raise
    except BillByteError as exc:
        _finish_rejected(runtime, import_id, exc.detail, [{"message": exc.detail}], 0, 0, None)
        exc.extra["import_id"] = import_id
        raise
    except Exception:
        log.exception("import %s failed", import_id)
        _finish_rejected(
            runtime, import_id, "internal error while importing", [], 0, 0, None, status="failed"
        )
        raise

    for attempt in range(3):
        discard: list[str] = []
        try:
            item = _commit_slices(runtime, subject, import_id, result, discard)
        except IntegrityError:
            # A concurrent import made the same slice current first; retry against it.
            if attempt == 2:
                raise
            continue
        _discard(store, discard)
        return item
    raise AssertionError("unreachable")


def _discard(store: UsageStore, keys: Sequence[str]) -> None:
    """Delete the pieces the committed swap did not use (unchanged or superseded): only
    after the commit, which decided it; one left behind is an orphan for ``gc``."""
    for key in keys:
        try:
            store.delete(key)
        except Exception:
            log.warning("could not delete unused slice %s (gc will)", key, exc_info=True)


def expand_manifests(files: Sequence[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """Replace each CUR delivery manifest by the report files it lists (see manifests)."""
    return manifests.expand(files)


def stale_before(runtime: Runtime) -> datetime:
    """A processing import last heard of before this moment has been abandoned."""
    return utcnow() - timedelta(minutes=runtime.settings.usage_import_stale_minutes)


def fail_stale(
    session: Session, before: datetime, partner_account_id: str | None = None
) -> list[str]:
    """Marks abandoned ``processing`` imports failed; returns their ids. Nothing of them is
    current, so no total changes (their files are left to ``gc``)."""
    last_heard = func.coalesce(UsageImport.heartbeat_at, UsageImport.created_at)
    stmt = select(UsageImport).where(UsageImport.status == "processing", last_heard < before)
    if partner_account_id is not None:
        stmt = stmt.where(UsageImport.partner_account_id == partner_account_id)
    stale = list(session.scalars(stmt.with_for_update()))
    for item in stale:
        heard = item.heartbeat_at or item.created_at
        item.status = "failed"
        item.message = (
            f"interrupted: no heartbeat from the importing process since {heard:%Y-%m-%d %H:%M} "
            "UTC (it stopped or was killed); nothing of it was stored, import the file again."
        )
        item.completed_at = utcnow()
    session.flush()
    return [item.id for item in stale]


class Heartbeat:
    """While an import runs, a daemon thread refreshes its ``heartbeat_at`` (and the mtime of
    its upload folders), so only a dead import goes stale, however long a live one takes."""

    def __init__(self, runtime: Runtime, import_id: str, keep_fresh: Sequence[Path] = ()) -> None:
        self.runtime = runtime
        self.import_id = import_id
        self.keep_fresh = list(keep_fresh)
        # Five beats per stale period: one missed beat (a slow database) is not a death.
        self.interval = max(1.0, min(60.0, runtime.settings.usage_import_stale_minutes * 12.0))
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{import_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        try:
            with self.runtime.uow() as uow:
                uow.session.execute(
                    update(UsageImport)
                    .where(UsageImport.id == self.import_id, UsageImport.status == "processing")
                    .values(heartbeat_at=utcnow())
                )
                uow.commit()
            for folder in self.keep_fresh:
                os.utime(folder)
        except Exception:  # a missed beat must never break the import itself
            log.warning("heartbeat of import %s failed", self.import_id, exc_info=True)


def _finish_rejected(
    runtime: Runtime,
    import_id: str,
    message: str,
    errors: list[dict[str, Any]],
    rows_read: int,
    rows_rejected: int,
    detected: str | None,
    status: str = "rejected",
) -> None:
    with runtime.uow() as uow:
        item = uow.session.get(UsageImport, import_id)
        assert item is not None
        item.status = status
        item.message = message
        item.errors = errors
        item.rows_read = rows_read
        item.rows_rejected = rows_rejected
        item.detected_format = detected
        item.completed_at = utcnow()
        uow.commit()


def _commit_slices(
    runtime: Runtime,
    subject: AuthSubject,
    import_id: str,
    result: pipeline.PipelineResult,
    discard: list[str],
) -> UsageImport:
    """The swap, in one transaction; the keys of pieces it does not use go to ``discard``."""
    with runtime.uow() as uow:
        session = uow.session
        item = session.get(UsageImport, import_id)
        assert item is not None
        # Commits of one partner account's imports are serialised: whether a billed slice
        # supersedes an unbilled one is decided across slices, which row locks on the
        # slices alone cannot make safe against a concurrent import of the other.
        session.execute(
            select(PartnerAccount.id)
            .where(PartnerAccount.id == item.partner_account_id)
            .with_for_update()
        )
        replaced = unchanged = superseded = 0
        changed_periods: set[str] = set()
        superseded_scopes = _superseded_scopes(session, item.partner_account_id, result.slices)
        for piece in result.slices:
            current = _current_slice(
                session, item.partner_account_id, piece.billing_period, piece.scope_key
            )
            if piece.scope_key in superseded_scopes.get(piece.billing_period, set()):
                # A provisional slice (e.g. "unbilled") whose period already has the billed
                # slice that supersedes it, from this import or an earlier one: not counted,
                # so the arrival order of the pages never changes a total.
                superseded += 1
                discard.append(piece.key)
                continue
            if current is not None and current.fingerprint == piece.fingerprint:
                unchanged += 1
                discard.append(piece.key)
                continue
            if current is not None:
                current.is_current = False
                current.superseded_at = utcnow()
                session.flush()
            session.add(
                UsageSlice(
                    msp_id=item.msp_id,
                    partner_account_id=item.partner_account_id,
                    billing_period=piece.billing_period,
                    scope_key=piece.scope_key,
                    import_id=item.id,
                    path=piece.key,
                    row_count=piece.row_count,
                    fingerprint=piece.fingerprint,
                    totals=piece.totals,
                    supersedes=piece.retires,
                )
            )
            replaced += 1
            changed_periods.add(piece.billing_period)
        retired = 0
        for period, scopes in superseded_scopes.items():
            for scope_key in sorted(scopes):
                provisional = _current_slice(session, item.partner_account_id, period, scope_key)
                if provisional is not None:
                    provisional.is_current = False
                    provisional.superseded_at = utcnow()
                    changed_periods.add(period)
                    retired += 1
        session.flush()
        item.status = "completed"
        item.outcome = "unchanged" if replaced == 0 and retired == 0 else "imported"
        item.detected_format = result.reader
        item.files = result.files
        item.content_sha256 = result.content_sha256
        item.rows_read = result.rows_read
        item.rows_accepted = result.rows_accepted
        item.duplicate_rows = result.duplicate_rows
        item.rounded_values = result.rounded_values
        item.slices_replaced = replaced
        item.slices_unchanged = unchanged
        item.totals = result.totals
        if superseded:
            item.message = (
                f"{superseded} provisional slice(s) of this import not counted: a billed "
                "invoice of the same period supersedes them."
            )
        item.unassigned_sub_accounts = _unassigned_sub_accounts(session, item, result)
        item.completed_at = utcnow()
        record(
            session,
            subject,
            "usage.imported",
            "usage_import",
            item.id,
            before=None,
            after={
                "format": result.reader,
                "rows_accepted": result.rows_accepted,
                "slices_replaced": replaced,
                "slices_unchanged": unchanged,
            },
        )
        if changed_periods:
            follow_up.usage_changed(session, item.msp_id, changed_periods)
        webhooks.emit(
            session,
            item.msp_id,
            "usage.imported",
            {
                "import_id": item.id,
                "partner_account_id": item.partner_account_id,
                "format": result.reader,
                "outcome": item.outcome,
                "rows_accepted": result.rows_accepted,
                "periods": sorted(changed_periods),
                "totals": result.totals,
            },
        )
        uow.commit()
        return item


def _current_slice(
    session: Session, partner_account_id: str, period: str, scope_key: str
) -> UsageSlice | None:
    return session.scalar(
        select(UsageSlice)
        .where(
            UsageSlice.partner_account_id == partner_account_id,
            UsageSlice.billing_period == period,
            UsageSlice.scope_key == scope_key,
            UsageSlice.is_current.is_(True),
        )
        .with_for_update()
    )


def _superseded_scopes(
    session: Session, partner_account_id: str, pieces: Sequence[pipeline.SliceFile]
) -> dict[str, set[str]]:
    """Per billing period, the provisional scopes superseded by a slice of this import or by
    one already current: one rule whichever arrives first."""
    scopes: dict[str, set[str]] = {}
    for piece in pieces:
        scopes.setdefault(piece.billing_period, set()).update(piece.retires)
    periods = {piece.billing_period for piece in pieces}
    if periods:
        stored = session.execute(
            select(UsageSlice.billing_period, UsageSlice.supersedes).where(
                UsageSlice.partner_account_id == partner_account_id,
                UsageSlice.billing_period.in_(periods),
                UsageSlice.is_current.is_(True),
            )
        )
        for period, supersedes in stored:
            scopes.setdefault(period, set()).update(supersedes or [])
    return {period: found for period, found in scopes.items() if found}


def _unassigned_sub_accounts(
    session: Session, item: UsageImport, result: pipeline.PipelineResult
) -> list[str]:
    """Sub-accounts of the import that no customer link attributes, by the same rule as the
    summary and rating (a sub-account link, or failing that a billing-account link)."""
    pairs = [(sub, billing) for sub, billing in result.accounts if sub]
    if not pairs:
        return []
    lines = pl.LazyFrame(
        {
            "partner_account_id": [item.partner_account_id] * len(pairs),
            "sub_account_id": [sub for sub, _ in pairs],
            "billing_account_id": [billing for _, billing in pairs],
        },
        schema={
            name: pl.String
            for name in ("partner_account_id", "sub_account_id", "billing_account_id")
        },
    )
    attributed = (
        mapping.map_to_customers(lines, mapping.links_frame(session, item.msp_id))
        .select("sub_account_id")
        .collect()["sub_account_id"]
        .to_list()
    )
    return sorted({sub for sub, _ in pairs} - set(attributed))


def get_import(session: Session, subject: AuthSubject, import_id: str) -> UsageImport:
    return get_owned(
        session,
        UsageImport,
        subject.msp_id,
        import_id,
        what="usage import",
        code="usage_import_not_found",
    )


def list_imports(
    session: Session,
    subject: AuthSubject,
    *,
    partner_account_id: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page[UsageImport]:
    stmt = select(UsageImport).where(UsageImport.msp_id == subject.msp_id)
    if partner_account_id:
        stmt = stmt.where(UsageImport.partner_account_id == partner_account_id)
    if status:
        stmt = stmt.where(UsageImport.status == status)
    return paginate(session, stmt, UsageImport.id, cursor, limit)


def current_slices(
    session: Session, subject: AuthSubject, period: str, partner_account_id: str | None
) -> list[UsageSlice]:
    """One consistent snapshot: a single query decides which slice versions are read."""
    stmt = select(UsageSlice).where(
        UsageSlice.msp_id == subject.msp_id,
        UsageSlice.billing_period == period,
        UsageSlice.is_current.is_(True),
    )
    if partner_account_id:
        stmt = stmt.where(UsageSlice.partner_account_id == partner_account_id)
    return list(session.scalars(stmt.order_by(UsageSlice.id)))


def summary(
    runtime: Runtime,
    session: Session,
    subject: AuthSubject,
    *,
    period: str,
    partner_account_id: str | None,
    group_by: str,
) -> dict[str, Any]:
    validate_period(period)
    if group_by not in GROUPS:
        raise InvalidInput(
            f"group_by must be one of {', '.join(sorted(GROUPS))}.", field="group_by"
        )
    if partner_account_id:
        partners.get_account(session, subject.msp_id, partner_account_id)
    slices = current_slices(session, subject, period, partner_account_id)
    frame = scan_slices(slice_store(runtime.settings), slices)
    groups: list[dict[str, Any]] = []
    totals: dict[str, dict[str, str]] = {}
    if frame is not None:
        if group_by == "customer":
            frame = mapping.map_to_customers(
                frame, mapping.links_frame(session, subject.msp_id), keep_unlinked=True
            )
        frame = frame.with_columns(_group_key(group_by).alias("__group"))
        grouped = (
            frame.group_by("__group", "billing_currency")
            .agg([pl.col(c).sum() for c in COST_COLUMNS] + [pl.len().alias("lines")])
            .sort(["__group", "billing_currency"], nulls_last=True)
            .collect()
        )
        for row in grouped.iter_rows(named=True):
            groups.append(
                {
                    "key": row["__group"],
                    "currency": row["billing_currency"],
                    **{c: pipeline._decimal_text(row[c]) for c in COST_COLUMNS},
                    "lines": row["lines"],
                }
            )
        totals = pipeline.totals_of(frame)
    return {
        "object": "usage_summary",
        "period": period,
        "partner_account_id": partner_account_id,
        "group_by": group_by,
        "slices": len(slices),
        "groups": groups,
        "totals": totals,
    }


def _group_key(group_by: str) -> pl.Expr:
    if group_by == "sub_account":
        return pl.col("sub_account_id")
    if group_by == "service":
        return pl.col("service_name")
    if group_by == "charge_category":
        return pl.col("charge_category")
    if group_by == "provider":
        return pl.col("provider_name")
    return pl.col("customer_id").fill_null("unassigned")
