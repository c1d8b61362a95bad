"""Rendering a page: one Jinja2 environment per page feature, over its own templates and the
web platform's (``base.html``, ``forms.html``, sign-in, errors).

Templates get, besides what the route passes: ``_``/``ngettext`` (gettext in the reader's
language), ``fmt`` (Babel formatting in the reader's locale), ``brand``, ``subject`` (the
signed-in person or None), ``csrf_token`` and ``static(path)``. Autoescaping is always on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from billbyte.auth.web_sessions import WebSubject
from billbyte.web import charts
from billbyte.web.branding import Brand
from billbyte.web.i18n import Formats, negotiate, translations

STATIC_PREFIX = "/static"


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str


def static_url(path: str) -> str:
    return f"{STATIC_PREFIX}/{path.lstrip('/')}"


class Pages:
    def __init__(self, package: str, nav: tuple[NavItem, ...] = ()) -> None:
        self.package = package
        self.nav = nav
        self.environment = Environment(
            loader=ChoiceLoader(
                [PackageLoader(package, "templates"), PackageLoader("billbyte.web", "templates")]
            ),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,  # a misspelt variable is an error, not a blank
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.globals.update(static=static_url, chart=charts.embed)

    def locale_for(self, request: Request, preferred: str | None) -> str:
        return negotiate(preferred, request.headers.get("accept-language"))

    def render(
        self,
        request: Request,
        template: str,
        *,
        brand: Brand,
        subject: WebSubject | None = None,
        locale: str | None = None,
        status_code: int = 200,
        csrf_token: str | None = None,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        chosen = locale or self.locale_for(request, subject.locale if subject else None)
        language = translations(chosen, ("billbyte.web", self.package))
        body = self.environment.get_template(template).render(
            request=request,
            subject=subject,
            brand=brand,
            nav=self.nav,
            lang=chosen.split("_")[0],
            _=language.gettext,
            gettext=language.gettext,
            ngettext=language.ngettext,
            fmt=Formats(chosen),
            csrf_token=csrf_token or (subject.csrf_token if subject else ""),
            **context,
        )
        return HTMLResponse(body, status_code=status_code, headers=headers)
