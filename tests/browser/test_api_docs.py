"""/docs and /redoc render in a real browser that cannot reach the internet."""

from __future__ import annotations

from playwright.sync_api import Browser, BrowserContext, Page, Route, expect


def _offline_page(browser: Browser, base: str) -> tuple[BrowserContext, Page, list[str]]:
    """A page whose every request off this server is aborted (as on an offline machine),
    remembering what it tried to fetch."""
    context = browser.new_context()
    page = context.new_page()
    elsewhere: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    return context, page, elsewhere


def test_swagger_ui_renders_the_api_offline(browser: Browser, live_server: str) -> None:
    context, page, elsewhere = _offline_page(browser, live_server)
    page.goto(f"{live_server}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("BillByte API", timeout=60_000)
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert elsewhere == []
    context.close()


def test_redoc_renders_the_api_offline(browser: Browser, live_server: str) -> None:
    context, page, elsewhere = _offline_page(browser, live_server)
    page.goto(f"{live_server}/redoc")
    # ReDoc renders the whole 390 kB document before it shows anything.
    heading = page.get_by_role("heading", name="Register a partner account")
    expect(heading).to_be_visible(timeout=60_000)
    # ReDoc's bundle asks for its own brand logo (the "API docs by Redocly" footer) from its
    # CDN; offline that one image is missing and nothing else is.
    assert [url for url in elsewhere if url != "https://cdn.redoc.ly/redoc/logo-mini.svg"] == []
    context.close()
