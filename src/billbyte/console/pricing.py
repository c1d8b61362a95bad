"""Console pages: price plans and their rules, with a preview of a change's effect on a past
period before it is saved."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billbyte.api.deps import RuntimeDep
from billbyte.auth.web_sessions import WebSubject
from billbyte.console import pricing_views as views
from billbyte.console.admin_views import notices
from billbyte.console.common import PAGES, ConsoleForm, Staff, acting, brand, text
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, InvalidInput
from billbyte.runtime import Runtime

router = APIRouter(include_in_schema=False)
ACTIVE = "/console/pricing"
DONE = {
    "plan_created": "The price plan was created.",
    "rule_added": "The rule was added. Rating runs again in the background.",
    "rule_saved": "The rule was saved. Rating runs again in the background.",
    "rule_deleted": "The rule was deleted. Rating runs again in the background.",
}
Done = Annotated[str | None, Query(max_length=40)]
PeriodText = Annotated[str | None, Query(max_length=20)]


def _page(
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


def _list(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    *,
    error: str | None = None,
    status_code: int = 200,
    done: str | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    return _page(
        request,
        runtime,
        subject,
        "pricing/list.html",
        lambda session: {"plans": views.plans(session, acting(subject))},
        status_code=status_code,
        error=error,
        notices=notices(done, DONE),
        values=values or {"name": "", "description": ""},
    )


def _plan(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    plan_id: str,
    *,
    rule: dict[str, str] | None = None,
    rule_id: str | None = None,
    comparison: views.Comparison | None = None,
    period: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    done: str | None = None,
) -> HTMLResponse:
    def load(session: Any) -> dict[str, Any]:
        found = views.plan(session, acting(subject), plan_id)
        editing = views.plan_rule(session, acting(subject), rule_id) if rule_id else None
        if editing is not None and editing.plan_id != found.id:
            raise InvalidInput("The rule is not this plan's.")
        return {
            "plan": found,
            "rule": rule
            or (views.rule_values_of(editing) if editing else dict.fromkeys(views.RULE_FIELDS, "")),
        }

    return _page(
        request,
        runtime,
        subject,
        "pricing/plan.html" if rule_id is None else "pricing/rule.html",
        load,
        status_code=status_code,
        rule_id=rule_id,
        comparison=comparison,
        period=period or views.last_month(utcnow().date()),
        error=error,
        notices=notices(done, DONE),
        vendors=views.VENDORS,
        adjustments=views.ADJUSTMENTS,
        bases=views.BASES,
        categories=views.CHARGE_CATEGORIES,
    )


@router.get("/console/pricing", response_class=HTMLResponse)
def plans(request: Request, runtime: RuntimeDep, subject: Staff, done: Done = None) -> Response:
    return _list(request, runtime, subject, done=done)


@router.post("/console/pricing/plans", response_class=HTMLResponse)
def create_plan(
    request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm
) -> Response:
    try:
        with runtime.uow() as uow:
            plan = views.create_plan(uow.session, acting(subject), form)
            plan_id = plan.id
            uow.commit()
    except (InvalidInput, Conflict) as exc:
        values = {"name": text(form, "name"), "description": text(form, "description")}
        return _list(
            request, runtime, subject, error=exc.detail, status_code=exc.status, values=values
        )
    return RedirectResponse(f"/console/pricing/plans/{plan_id}?done=plan_created", 303)


@router.get("/console/pricing/plans/{plan_id}", response_class=HTMLResponse)
def plan_page(
    request: Request, runtime: RuntimeDep, subject: Staff, plan_id: str, done: Done = None
) -> Response:
    return _plan(request, runtime, subject, plan_id, done=done)


def _rule_post(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    form: Any,
    plan_id: str,
    rule_id: str | None,
) -> Response:
    acting(subject).require_write()  # help desk: 403 before anything is parsed or previewed
    values = views.rule_values(form)
    period = text(form, "period") or views.last_month(utcnow().date())
    try:
        data = views.rule_input(values)
        if text(form, "intent") == "save":
            with runtime.uow() as uow:
                if rule_id is None:
                    views.add_rule(uow.session, acting(subject), plan_id, data)
                else:
                    plan_id = views.replace_rule(uow.session, acting(subject), rule_id, data)
                uow.commit()
            done = "rule_added" if rule_id is None else "rule_saved"
            return RedirectResponse(f"/console/pricing/plans/{plan_id}?done={done}", 303)
        with runtime.uow(read_only=True) as uow:
            colour = brand(uow.session, subject).colour
            if rule_id is not None:
                plan_id = views.plan_rule(uow.session, acting(subject), rule_id).plan_id or ""
        comparison = views.compare(
            runtime,
            acting(subject),
            plan_id,
            period,
            views.rule_change(acting(subject), plan_id, rule_id, data),
            colour,
        )
    except (InvalidInput, Conflict) as exc:
        return _plan(
            request,
            runtime,
            subject,
            plan_id,
            rule=values,
            rule_id=rule_id,
            period=period,
            error=exc.detail,
            status_code=exc.status,
        )
    return _plan(
        request,
        runtime,
        subject,
        plan_id,
        rule=values,
        rule_id=rule_id,
        period=comparison.period,
        comparison=comparison,
    )


@router.post("/console/pricing/plans/{plan_id}/rules", response_class=HTMLResponse)
def add_rule(
    request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm, plan_id: str
) -> Response:
    return _rule_post(request, runtime, subject, form, plan_id, None)


@router.get("/console/pricing/rules/{rule_id}", response_class=HTMLResponse)
def rule_page(request: Request, runtime: RuntimeDep, subject: Staff, rule_id: str) -> Response:
    with runtime.uow(read_only=True) as uow:
        plan_id = views.plan_rule(uow.session, acting(subject), rule_id).plan_id or ""
    return _plan(request, runtime, subject, plan_id, rule_id=rule_id)


@router.post("/console/pricing/rules/{rule_id}", response_class=HTMLResponse)
def edit_rule(
    request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm, rule_id: str
) -> Response:
    with runtime.uow(read_only=True) as uow:
        plan_id = views.plan_rule(uow.session, acting(subject), rule_id).plan_id or ""
    return _rule_post(request, runtime, subject, form, plan_id, rule_id)


@router.get("/console/pricing/rules/{rule_id}/delete", response_class=HTMLResponse)
def confirm_delete(request: Request, runtime: RuntimeDep, subject: Staff, rule_id: str) -> Response:
    return _page(
        request,
        runtime,
        subject,
        "pricing/delete.html",
        lambda session: {"rule": views.plan_rule(session, acting(subject), rule_id)},
    )


@router.post("/console/pricing/rules/{rule_id}/delete")
def delete_rule(runtime: RuntimeDep, subject: Staff, form: ConsoleForm, rule_id: str) -> Response:
    with runtime.uow() as uow:
        plan_id = views.delete_rule(uow.session, acting(subject), rule_id)
        uow.commit()
    return RedirectResponse(f"/console/pricing/plans/{plan_id}?done=rule_deleted", 303)
