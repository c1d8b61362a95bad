from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from billbyte.api.deps import DEFAULT_PAGE, Cursor, Limit, Uow
from billbyte.api.responses import READ
from billbyte.audit import service
from billbyte.auth.deps import Subject
from billbyte.kit.pagination import ListResponse

router = APIRouter(prefix="/v1/audit-events", tags=["audit"])


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: str = "audit_event"
    actor: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    occurred_at: datetime


@router.get(
    "",
    summary="List audit events (oldest first)",
    response_model=ListResponse[AuditEventOut],
    responses=READ,
)
def list_audit_events(
    subject: Subject,
    uow: Uow,
    target_id: str | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> ListResponse[AuditEventOut]:
    page = service.list_events(
        uow.session, subject, target_id=target_id, cursor=cursor, limit=limit
    )
    return ListResponse.of(page, AuditEventOut.model_validate)
