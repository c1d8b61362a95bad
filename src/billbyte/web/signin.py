"""The sign-in, sign-out and password-reset pages, the same for the portal and the console.

``sign_in_routes(audience, pages, brand_of)`` builds them under ``/<audience>``; the page
feature passes how it finds the brand to show (``brand_of(session, msp_id)``; before sign-in
the MSP comes from a ``?brand=<msp id>`` link or from the reset link itself).
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from billbyte.api.deps import RuntimeDep
from billbyte.auth import web_sessions
from billbyte.auth.web_sessions import Audience, WebSubject
from billbyte.kit.errors import Forbidden, InvalidInput
from billbyte.web.branding import Brand
from billbyte.web.pages import Pages
from billbyte.web.sessions import (
    CSRF_REFUSED,
    clear_session_cookie,
    pre_session_matches,
    pre_session_token,
    safe_next,
    set_pre_session_cookie,
    set_session_cookie,
    signed_in,
    verified_form,
)

# No "from __future__ import annotations" here: the routes are built inside a function, and
# FastAPI resolves string annotations in the module globals, where the local aliases are not.
BrandOf = Callable[[Session, str | None], Brand]


def sign_in_routes(audience: Audience, pages: Pages, brand_of: BrandOf) -> APIRouter:
    router = APIRouter(prefix=f"/{audience}", include_in_schema=False)
    person = Annotated[WebSubject, Depends(signed_in(audience))]
    form_of = Annotated[FormData, Depends(verified_form(audience))]

    def form_page(
        request: Request,
        runtime: RuntimeDep,
        template: str,
        msp_id: str | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        with runtime.uow(read_only=True) as uow:
            brand = brand_of(uow.session, msp_id)
        token = pre_session_token(request)
        response = pages.render(
            request,
            template,
            brand=brand,
            csrf_token=token,
            status_code=status_code,
            audience=audience,
            **context,
        )
        set_pre_session_cookie(response, runtime, audience, token)
        return response

    @router.get("/sign-in", response_class=HTMLResponse)
    def sign_in_page(
        request: Request,
        runtime: RuntimeDep,
        next: Annotated[str | None, Query(max_length=500)] = None,
        brand: Annotated[str | None, Query(max_length=40)] = None,
        notice: Annotated[str | None, Query(max_length=20)] = None,
    ) -> HTMLResponse:
        return form_page(
            request,
            runtime,
            "sign_in.html",
            brand,
            next=safe_next(audience, next),
            brand_id=brand or "",
            error=None,
            notice=notice,
            email="",
        )

    @router.post("/sign-in", response_class=HTMLResponse)
    def sign_in(
        request: Request,
        runtime: RuntimeDep,
        email: Annotated[str, Form(max_length=320)] = "",
        password: Annotated[str, Form(max_length=1000)] = "",
        csrf_token: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=500)] = "",
        brand: Annotated[str, Form(max_length=40)] = "",
    ) -> Response:
        common = {"next": safe_next(audience, next), "brand_id": brand, "notice": None}
        if not pre_session_matches(request, csrf_token):
            return form_page(
                request,
                runtime,
                "sign_in.html",
                brand or None,
                status_code=403,
                error=CSRF_REFUSED,
                email=email,
                **common,
            )
        with runtime.uow() as uow:
            result = web_sessions.sign_in(uow.session, audience, email, password)
            uow.commit()  # a refusal's counter (and lockout) must be kept too
        if result.token is None:
            return form_page(
                request,
                runtime,
                "sign_in.html",
                brand or None,
                status_code=429 if result.locked else 401,
                error=result.refusal,
                email=email,
                **common,
            )
        response = RedirectResponse(safe_next(audience, next), status_code=303)
        set_session_cookie(response, runtime, audience, result.token)
        return response

    @router.get("/account", response_class=HTMLResponse)
    def account(request: Request, runtime: RuntimeDep, subject: person) -> HTMLResponse:
        with runtime.uow(read_only=True) as uow:
            brand = brand_of(uow.session, subject.msp_id)
        return pages.render(
            request, "account.html", brand=brand, subject=subject, active=f"/{audience}/account"
        )

    @router.post("/sign-out")
    def sign_out(runtime: RuntimeDep, subject: person, _form: form_of) -> Response:
        with runtime.uow() as uow:
            web_sessions.sign_out(uow.session, subject)
            uow.commit()
        response = RedirectResponse(f"/{audience}/sign-in?notice=signed_out", status_code=303)
        clear_session_cookie(response, audience)
        return response

    @router.post("/sign-out-everywhere")
    def sign_out_everywhere(runtime: RuntimeDep, subject: person, _form: form_of) -> Response:
        with runtime.uow() as uow:
            web_sessions.sign_out_everywhere(uow.session, audience, subject.user_id)
            uow.commit()
        response = RedirectResponse(f"/{audience}/sign-in?notice=signed_out_all", status_code=303)
        clear_session_cookie(response, audience)
        return response

    @router.get("/reset/{token}", response_class=HTMLResponse)
    def reset_page(request: Request, runtime: RuntimeDep, token: str) -> HTMLResponse:
        with runtime.uow(read_only=True) as uow:
            holder = web_sessions.reset_holder(uow.session, audience, token)
            msp_id = holder.msp_id if holder else None
            email = holder.email if holder else None
        return form_page(
            request,
            runtime,
            "reset.html",
            msp_id,
            status_code=200 if holder else 404,
            token=token,
            email=email,
            error=None,
        )

    @router.post("/reset/{token}", response_class=HTMLResponse)
    def reset(
        request: Request,
        runtime: RuntimeDep,
        token: str,
        password: Annotated[str, Form(max_length=1000)] = "",
        confirm: Annotated[str, Form(max_length=1000)] = "",
        csrf_token: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        if not pre_session_matches(request, csrf_token):
            raise Forbidden(CSRF_REFUSED, code="csrf_failed")
        error: str | None = None
        with runtime.uow() as uow:
            holder = web_sessions.reset_holder(uow.session, audience, token)
            if holder is None:
                error = "This link is no longer valid. Ask your administrator for a new one."
            elif password != confirm:
                error = "The two passwords differ."
            else:
                try:
                    web_sessions.complete_reset(uow.session, audience, token, password)
                    uow.commit()
                except InvalidInput as exc:
                    error = exc.detail
            msp_id = holder.msp_id if holder else None
            email = holder.email if holder else None
        if error is None:
            return RedirectResponse(
                f"/{audience}/sign-in?notice=password_set&brand={msp_id}", status_code=303
            )
        return form_page(
            request,
            runtime,
            "reset.html",
            msp_id,
            status_code=422 if holder else 404,
            token=token,
            email=email,
            error=error,
        )

    return router
