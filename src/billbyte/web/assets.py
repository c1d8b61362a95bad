"""Static assets: the web platform's own CSS and JavaScript, and plotly.js served from the
``plotly`` PyPI package that setup installs (nothing from a CDN, nothing pasted in)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from billbyte.web.pages import STATIC_PREFIX
from billbyte.web.sessions import SignInRequired, sign_in_redirect

PLOTLY_PATH = f"{STATIC_PREFIX}/vendor/plotly.min.js"
CACHE = {"cache-control": "public, max-age=86400"}


def _plotly_bundle() -> Path:
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def install(app: FastAPI) -> None:
    bundle = _plotly_bundle()

    @app.get(PLOTLY_PATH, include_in_schema=False)
    def plotly_js() -> Response:
        return FileResponse(bundle, media_type="text/javascript", headers=CACHE)

    app.mount(
        f"{STATIC_PREFIX}/web",
        StaticFiles(packages=[("billbyte.web", "static")]),
        name="web-static",
    )

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> RedirectResponse:
        return sign_in_redirect(exc.audience, exc.path)
