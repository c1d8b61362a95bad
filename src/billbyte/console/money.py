"""Console pages: FX rates (list, add a day's rates), the FX policy, and credit control (the
defaults, and each customer's own limits and thresholds)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billbyte.api.deps import RuntimeDep
from billbyte.auth.web_sessions import WebSubject
from billbyte.console import money_views as views
from billbyte.console.admin_views import notices
from billbyte.console.common import PAGES, ConsoleForm, Staff, acting, brand
from billbyte.kit.clock import utcnow
from billbyte.kit.errors import Conflict, InvalidInput
from billbyte.runtime import Runtime

router = APIRouter(include_in_schema=False)
DONE = {
    "rates": "The rates were stored. Rating runs again where they apply.",
    "fx_policy": "The FX policy was saved.",
    "credit_policy": "The credit-control defaults were saved.",
}
Text = Annotated[str | None, Query(max_length=80)]


def _page(
    request: Request,
    runtime: Runtime,
    subject: WebSubject,
    *,
    base: str | None = None,
    quote: str | None = None,
    cursor: str | None = None,
    done: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    with runtime.uow(read_only=True) as uow:
        page_brand = brand(uow.session, subject)
        data = views.overview(uow.session, acting(subject), base, quote, cursor)
    return PAGES.render(
        request,
        "money/index.html",
        brand=page_brand,
        subject=subject,
        active="/console/fx",
        status_code=status_code,
        money=data,
        notices=notices(done, DONE),
        error=error,
        modes=views.MODES,
        actions=views.ACTIONS,
        base=base or "",
        quote=quote or "",
        typed=typed or {"date": utcnow().date().isoformat(), "base": "EUR", "rates": ""},
    )


@router.get("/console/fx", response_class=HTMLResponse)
def index(
    request: Request,
    runtime: RuntimeDep,
    subject: Staff,
    base: Text = None,
    quote: Text = None,
    cursor: Text = None,
    done: Text = None,
) -> Response:
    return _page(request, runtime, subject, base=base, quote=quote, cursor=cursor, done=done)


def _write(
    request: Request, runtime: Runtime, subject: WebSubject, form: Any, change: Any, done: str
) -> Response:
    try:
        with runtime.uow() as uow:
            change(uow.session, acting(subject), form)
            uow.commit()
    except (InvalidInput, Conflict) as exc:
        typed = {name: str(form.get(name) or "") for name in ("date", "base", "rates")}
        return _page(
            request, runtime, subject, error=exc.detail, status_code=exc.status, typed=typed
        )
    return RedirectResponse(f"/console/fx?done={done}", status_code=303)


@router.post("/console/fx/rates", response_class=HTMLResponse)
def add_rates(request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm) -> Response:
    return _write(request, runtime, subject, form, views.add_rates, "rates")


@router.post("/console/fx/policy", response_class=HTMLResponse)
def fx_policy(request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm) -> Response:
    return _write(request, runtime, subject, form, views.set_fx_policy, "fx_policy")


@router.post("/console/fx/credit-policy", response_class=HTMLResponse)
def credit_policy(
    request: Request, runtime: RuntimeDep, subject: Staff, form: ConsoleForm
) -> Response:
    return _write(request, runtime, subject, form, views.set_credit_policy, "credit_policy")
