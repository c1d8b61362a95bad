"""The audit log page's data: the query ``GET /v1/audit-events`` runs (audit's service),
filtered by action and target, a page at a time with the API's cursor."""

from __future__ import annotations

from sqlalchemy.orm import Session

from billbyte.audit import service
from billbyte.audit.endpoints import AuditEventOut
from billbyte.auth.subject import AuthSubject
from billbyte.console.admin_views import cursor_of
from billbyte.kit.errors import InvalidInput
from billbyte.kit.pagination import DEFAULT_LIMIT, ListResponse

FILTER_MAX = 200


def _filter(value: str | None, field: str) -> str | None:
    value = (value or "").strip()
    if len(value) > FILTER_MAX:
        raise InvalidInput(f"{field} has at most {FILTER_MAX} characters.", field=field)
    return value or None


def events(
    session: Session,
    subject: AuthSubject,
    *,
    action: str | None,
    target: str | None,
    cursor: str | None,
) -> ListResponse[AuditEventOut]:
    page = service.list_events(
        session,
        subject,
        target_id=_filter(target, "target"),
        action=_filter(action, "action"),
        cursor=cursor_of(cursor),
        limit=DEFAULT_LIMIT,
    )
    return ListResponse.of(page, AuditEventOut.model_validate)
