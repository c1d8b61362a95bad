"""Errors on a person's pages are pages: a 404 in the portal is a page that says so, in the
brand-neutral layout (the error may be that the brand's own MSP is not found)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from billbyte.web.branding import Brand
from billbyte.web.pages import Pages

PAGE_PREFIXES = ("/portal", "/console")
_pages = Pages("billbyte.web")


def is_page(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PAGE_PREFIXES)


def page_error(request: Request, status: int, title: str, detail: str) -> Response | None:
    """The HTML answer for an error on a page path; None elsewhere (the API's problem+json)."""
    if not is_page(request.url.path):
        return None
    area = request.url.path.split("/")[1]
    return _pages.render(
        request,
        "error.html",
        brand=Brand(),
        status_code=status,
        status=status,
        title=title,
        detail=detail,
        home=f"/{area}",
    )
