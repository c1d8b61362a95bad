"""Console pages: webhook endpoints (list, create — the signing secret shown once —,
disable after a confirmation page), events with their deliveries' status, and replay."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billbyte.api.deps import RuntimeDep
from billbyte.auth.web_sessions import WebSubject
from billbyte.console import webhooks_views as views
from billbyte.console.admin_views import cursor_of, notices
from billbyte.console.common import PAGES, ConsoleForm, Staff, acting, brand, text
from billbyte.kit.errors import Conflict, InvalidInput
from billbyte.runtime import Runtime

router = APIRouter(include_in_schema=False)
ACTIVE = "/console/webhooks"
DONE = {
    "disabled": "The endpoint is disabled: nothing more is delivered to it.",
    "replayed": "The event is queued for delivery again.",
}
Text = Annotated[str | None, Query(max_length=80)]


def _render(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    template: str,
    load: Any,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        page_brand = brand(uow.session, subject)
        loaded = load(uow.session) if load else {}
    return PAGES.render(
        request,
        template,
        brand=page_brand,
        subject=subject,
        active=ACTIVE,
        status_code=status_code,
        **loaded,
        **context,
    )


def _index(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    *,
    cursor: str | None = None,
    event_type: str | None = None,
    done: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    values: dict[str, Any] | None = None,
) -> HTMLResponse:
    checked = cursor_of(cursor)
    return _render(
        request,
        runtime,
        subject,
        "webhooks/index.html",
        lambda session: {
            "overview": views.overview(session, acting(subject), checked, event_type or None)
        },
        status_code=status_code,
        notices=notices(done, DONE),
        error=error,
        choices=views.EVENT_CHOICES,
        event_type=event_type or "",
        values=values or {"url": "", "description": "", "event_types": []},
    )


@router.get("/console/webhooks", response_class=HTMLResponse)
def index(
    request: Request,
    runtime: RuntimeDep,
    subject: Staff,
    cursor: Text = None,
    type: Text = None,
    done: Text = None,
) -> Response:
    return _index(request, runtime, subject, cursor=cursor, event_type=type, done=done)


@router.post("/console/webhooks/endpoints", response_class=HTMLResponse)
def create(request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm) -> Response:
    try:
        with runtime.uow() as uow:
            created = views.create(runtime, uow.session, acting(subject), form)
            uow.commit()
    except (InvalidInput, Conflict) as exc:
        values = {
            "url": text(form, "url"),
            "description": text(form, "description"),
            "event_types": form.getlist("event_types"),
        }
        return _index(
            request, runtime, subject, error=exc.detail, status_code=exc.status, values=values
        )
    return _render(
        request,
        runtime,
        subject,
        "webhooks/created.html",
        None,
        endpoint=created.endpoint,
        secret=created.secret,
    )


@router.get("/console/webhooks/endpoints/{endpoint_id}/disable", response_class=HTMLResponse)
def confirm_disable(
    request: Request, runtime: RuntimeDep, subject: Staff, endpoint_id: str
) -> Response:
    return _render(
        request,
        runtime,
        subject,
        "webhooks/disable.html",
        lambda session: {"endpoint": views.endpoint(session, acting(subject), endpoint_id)},
    )


@router.post("/console/webhooks/endpoints/{endpoint_id}/disable")
def disable(runtime: RuntimeDep, subject: Staff, form: ConsoleForm, endpoint_id: str) -> Response:
    with runtime.uow() as uow:
        views.disable(uow.session, acting(subject), endpoint_id)
        uow.commit()
    return RedirectResponse("/console/webhooks?done=disabled", status_code=303)


@router.get("/console/webhooks/events/{event_id}", response_class=HTMLResponse)
def event(
    request: Request, runtime: RuntimeDep, subject: Staff, event_id: str, done: Text = None
) -> Response:
    return _render(
        request,
        runtime,
        subject,
        "webhooks/event.html",
        lambda session: {"event": views.event(session, acting(subject), event_id)},
        notices=notices(done, DONE),
    )


@router.post("/console/webhooks/events/{event_id}/replay")
def replay(runtime: RuntimeDep, subject: Staff, form: ConsoleForm, event_id: str) -> Response:
    with runtime.uow() as uow:
        views.replay(uow.session, acting(subject), event_id, form)
        uow.commit()
    return RedirectResponse(f"/console/webhooks/events/{event_id}?done=replayed", status_code=303)
