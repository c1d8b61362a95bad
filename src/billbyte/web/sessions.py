"""Session cookies and the dependencies that make a route a signed-in page.

The portal's cookie is scoped to ``/portal`` and the console's to ``/console``: a portal
session is never even sent to the console, and a console route resolves only console
sessions (``auth.web_sessions.resolve`` checks the audience too). Cookies are HttpOnly and
SameSite=Lax, and Secure when the server's public URL is https.
"""

# No "from __future__ import annotations": the dependencies below are built inside functions
# and FastAPI resolves string annotations in the module globals.
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from billbyte.api.deps import get_runtime
from billbyte.auth.web_sessions import SESSION_LIFETIME, Audience, WebSubject, csrf_matches, resolve
from billbyte.kit.errors import Forbidden
from billbyte.runtime import Runtime

SESSION_COOKIE: dict[Audience, str] = {"portal": "bb_portal", "console": "bb_console"}
# Before sign-in there is no session to hold a CSRF token: the sign-in and reset forms use a
# double-submit cookie instead, so another site cannot sign a browser in as someone else.
PRE_SESSION_COOKIE = "bb_form"
CSRF_FIELD = "csrf_token"
CSRF_REFUSED = (
    "This form has expired or did not come from this site. Reload the page and try again."
)


class SignInRequired(Exception):
    """Raised by a page dependency without a valid session: answered with a redirect."""

    def __init__(self, audience: Audience, path: str) -> None:
        super().__init__(path)
        self.audience = audience
        self.path = path


def secure_cookies(runtime: Runtime) -> bool:
    return runtime.settings.public_url.startswith("https://")


def set_session_cookie(
    response: Response, runtime: Runtime, audience: Audience, token: str
) -> None:
    response.set_cookie(
        SESSION_COOKIE[audience],
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=f"/{audience}",
        httponly=True,
        secure=secure_cookies(runtime),
        samesite="lax",
    )


def clear_session_cookie(response: Response, audience: Audience) -> None:
    response.delete_cookie(SESSION_COOKIE[audience], path=f"/{audience}")


def pre_session_token(request: Request) -> str:
    existing = request.cookies.get(PRE_SESSION_COOKIE, "")
    return existing if 20 <= len(existing) <= 64 else secrets.token_urlsafe(24)


def set_pre_session_cookie(
    response: Response, runtime: Runtime, audience: Audience, token: str
) -> None:
    response.set_cookie(
        PRE_SESSION_COOKIE,
        token,
        path=f"/{audience}",
        httponly=True,
        secure=secure_cookies(runtime),
        samesite="strict",
    )


def pre_session_matches(request: Request, presented: object) -> bool:
    expected = request.cookies.get(PRE_SESSION_COOKIE, "")
    return (
        isinstance(presented, str)
        and len(expected) >= 20
        and secrets.compare_digest(expected, presented)
    )


def sign_in_redirect(audience: Audience, path: str) -> RedirectResponse:
    return RedirectResponse(f"/{audience}/sign-in?next={quote(path, safe='/')}", status_code=303)


def safe_next(audience: Audience, target: str | None) -> str:
    """Where to go after signing in: only a path of the same area (no open redirect)."""
    home = f"/{audience}"
    if not target or not target.startswith(home) or target.startswith("//") or "\\" in target:
        return home
    rest = target[len(home) :]
    return target if rest == "" or rest[0] in "/?" else home


def signed_in(audience: Audience) -> Callable[[Request, Runtime], WebSubject]:
    """A dependency: the signed-in person of ``audience``, or a redirect to its sign-in."""

    def dependency(
        request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]
    ) -> WebSubject:
        token = request.cookies.get(SESSION_COOKIE[audience])
        with runtime.uow(read_only=True) as uow:
            subject = resolve(uow.session, audience, token)
        if subject is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(audience, path if request.method == "GET" else f"/{audience}")
        return subject

    return dependency


def verified_form(
    audience: Audience,
) -> Callable[[Request, WebSubject], Awaitable[FormData]]:
    """A dependency for every POST of a signed-in page: the form, once its CSRF token has
    been checked against the session's (403 otherwise, before anything is written)."""
    person = signed_in(audience)

    async def dependency(
        request: Request, subject: Annotated[WebSubject, Depends(person)]
    ) -> FormData:
        form = await request.form()
        if not csrf_matches(subject, _text(form.get(CSRF_FIELD))):
            raise Forbidden(CSRF_REFUSED, code="csrf_failed")
        return form

    return dependency


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
