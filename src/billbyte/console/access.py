"""Console pages: staff users (add with a one-time sign-in link, new link, disable, enable,
role) and API keys (issue: the secret is on the response page only; revoke after a
confirmation page). Every write is an admin's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billbyte.api.deps import RuntimeDep
from billbyte.auth.web_sessions import WebSubject
from billbyte.console import access_views as views
from billbyte.console.admin_views import notices
from billbyte.console.common import PAGES, ConsoleForm, Staff, acting, brand, text
from billbyte.kit.errors import Conflict, InvalidInput
from billbyte.runtime import Runtime

router = APIRouter(include_in_schema=False)
ACTIVE = "/console/access"
DONE = {
    "disabled": "The user is disabled and signed out everywhere.",
    "enabled": "The user may sign in again.",
    "role": "The role was changed.",
    "revoked": "The API key is revoked: requests with it are refused from now on.",
}
# Pages that show a secret must not be kept by the browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


def _render(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    template: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        page_brand = brand(uow.session, subject)
        data = (
            views.access(uow.session, acting(subject)) if template == "access/index.html" else None
        )
    return PAGES.render(
        request,
        template,
        brand=page_brand,
        subject=subject,
        active=ACTIVE,
        status_code=status_code,
        headers=headers,
        access=data,
        roles=views.ROLES,
        **context,
    )


def _index(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    *,
    done: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    return _render(
        request,
        runtime,
        subject,
        "access/index.html",
        status_code=status_code,
        notices=notices(done, DONE),
        error=error,
        values=values or {"email": "", "role": "billing", "name": "", "key_role": "billing"},
    )


@router.get("/console/access", response_class=HTMLResponse)
def index(
    request: Request,
    runtime: RuntimeDep,
    subject: Staff,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    return _index(request, runtime, subject, done=done)


def _shown_once(
    request: Request, runtime: Runtime, subject: WebSubject, **context: Any
) -> Response:
    return _render(request, runtime, subject, "access/secret.html", headers=NO_STORE, **context)


@router.post("/console/access/users", response_class=HTMLResponse)
def add_user(request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm) -> Response:
    try:
        with runtime.uow() as uow:
            invited = views.add_user(
                uow.session, acting(subject), form, runtime.settings.public_url
            )
            uow.commit()
    except (InvalidInput, Conflict) as exc:
        values = {
            "email": text(form, "email"),
            "role": text(form, "role"),
            "name": "",
            "key_role": "billing",
        }
        return _index(
            request, runtime, subject, error=exc.detail, status_code=exc.status, values=values
        )
    return _shown_once(
        request, runtime, subject, kind="link", email=invited.email, secret=invited.link
    )


@router.post("/console/access/users/{user_id}/link", response_class=HTMLResponse)
def new_link(
    request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm, user_id: str
) -> Response:
    with runtime.uow() as uow:
        invited = views.new_link(uow.session, acting(subject), user_id, runtime.settings.public_url)
        uow.commit()
    return _shown_once(
        request, runtime, subject, kind="link", email=invited.email, secret=invited.link
    )


def _user_change(runtime: Runtime, subject: WebSubject, change: Any, done: str) -> Response:
    with runtime.uow() as uow:
        change(uow.session, acting(subject))
        uow.commit()
    return RedirectResponse(f"/console/access?done={done}", status_code=303)


@router.post("/console/access/users/{user_id}/disable")
def disable_user(runtime: RuntimeDep, subject: Staff, form: ConsoleForm, user_id: str) -> Response:
    return _user_change(
        runtime, subject, lambda s, a: views.set_disabled(s, a, user_id, True), "disabled"
    )


@router.post("/console/access/users/{user_id}/enable")
def enable_user(runtime: RuntimeDep, subject: Staff, form: ConsoleForm, user_id: str) -> Response:
    return _user_change(
        runtime, subject, lambda s, a: views.set_disabled(s, a, user_id, False), "enabled"
    )


@router.post("/console/access/users/{user_id}/role")
def change_role(runtime: RuntimeDep, subject: Staff, form: ConsoleForm, user_id: str) -> Response:
    return _user_change(runtime, subject, lambda s, a: views.set_role(s, a, user_id, form), "role")


@router.post("/console/access/keys", response_class=HTMLResponse)
def issue_key(request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm) -> Response:
    try:
        with runtime.uow() as uow:
            issued = views.issue_key(uow.session, acting(subject), form)
            name, secret = issued.key.name, issued.secret
            uow.commit()
    except (InvalidInput, Conflict) as exc:
        values = {
            "email": "",
            "role": "billing",
            "name": text(form, "name"),
            "key_role": text(form, "role"),
        }
        return _index(
            request, runtime, subject, error=exc.detail, status_code=exc.status, values=values
        )
    return _shown_once(request, runtime, subject, kind="key", email=name, secret=secret)


@router.get("/console/access/keys/{key_id}/revoke", response_class=HTMLResponse)
def confirm_revoke(request: Request, runtime: RuntimeDep, subject: Staff, key_id: str) -> Response:
    with runtime.uow(read_only=True) as uow:
        found = views.key(uow.session, acting(subject), key_id)
    return _render(request, runtime, subject, "access/revoke.html", key=found)


@router.post("/console/access/keys/{key_id}/revoke")
def revoke_key(runtime: RuntimeDep, subject: Staff, form: ConsoleForm, key_id: str) -> Response:
    with runtime.uow() as uow:
        views.revoke_key(uow.session, acting(subject), key_id)
        uow.commit()
    return RedirectResponse("/console/access?done=revoked", status_code=303)
