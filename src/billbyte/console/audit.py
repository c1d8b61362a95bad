"""Console pages: the audit log, filterable by action and target, paginated."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from billbyte.api.deps import RuntimeDep
from billbyte.console import audit_views as views
from billbyte.console.common import PAGES, Staff, acting, brand

router = APIRouter(include_in_schema=False)
Text = Annotated[str | None, Query(max_length=300)]


@router.get("/console/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    runtime: RuntimeDep,
    subject: Staff,
    action: Text = None,
    target: Text = None,
    cursor: Text = None,
) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        page_brand = brand(uow.session, subject)
        found = views.events(
            uow.session, acting(subject), action=action, target=target, cursor=cursor
        )
    return PAGES.render(
        request,
        "audit/list.html",
        brand=page_brand,
        subject=subject,
        active="/console/audit",
        events=found,
        action=action or "",
        target=target or "",
    )
