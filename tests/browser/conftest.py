"""A live BillByte server and Debian's Chromium driven by Playwright, for pages people use.

Playwright cannot download its own browsers offline, so the tests use the system Chromium
(`apt-get install chromium`, done by .ci/run). Without it the browser tests are skipped,
loudly, unless BILLBYTE_REQUIRE_CHROMIUM=1 (as in .ci/run), which fails them.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from playwright.sync_api import Browser, sync_playwright

from billbyte.app import create_app
from billbyte.runtime import Runtime

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRE_CHROMIUM = os.environ.get("BILLBYTE_REQUIRE_CHROMIUM") == "1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE_CHROMIUM:
            pytest.fail(f"BILLBYTE_REQUIRE_CHROMIUM=1 but {message}")
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()
