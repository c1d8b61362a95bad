"""Installation-wide totals of the usage imports table, for the metrics.

This belongs in ``usage/repository.py``; it lives here while another change reworks
``usage/`` (issue 13's object store), and moves there once both are merged."""

from __future__ import annotations

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from billbyte.usage.models import UsageImport


def import_totals(session: Session) -> tuple[dict[str, int], int]:
    """Imports by status, and the lines accepted by completed imports; one grouped pass
    over the imports table (one row per delivered file set, not per usage line)."""
    rows = session.execute(
        select(
            UsageImport.status,
            func.count(),
            func.coalesce(
                func.sum(case((UsageImport.status == "completed", UsageImport.rows_accepted))), 0
            ),
        ).group_by(UsageImport.status)
    )
    by_status: dict[str, int] = {}
    accepted = 0
    for status, count, rows_accepted in rows:
        by_status[status] = int(count)
        accepted += int(rows_accepted)
    return by_status, accepted
