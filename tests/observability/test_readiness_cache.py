"""/readyz is unauthenticated and not rate limited: within BILLBYTE_READINESS_CACHE_SECONDS a
flood of calls costs one probe, the calls that come while it runs waiting for its answer."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from billbyte.app import create_app
from billbyte.observability import readiness
from billbyte.runtime import Runtime

CALLS = 12
WAIT_SECONDS = 30.0

Scope = MutableMapping[str, Any]
Asgi = Callable[[Scope, Any, Any], Awaitable[None]]


class Arrivals:
    """Counts the /readyz requests that have reached the application."""

    def __init__(self, app: Asgi) -> None:
        self.app = app
        self.count = 0
        self.lock = threading.Lock()
        self.all_in = threading.Event()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/readyz":
            with self.lock:
                self.count += 1
                if self.count == CALLS:
                    self.all_in.set()
        await self.app(scope, receive, send)


class SlowCheck:
    """A dependency check that counts its probes and answers only once every call is in."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.probes = 0

    def __call__(self, _runtime: Runtime) -> None:
        self.probes += 1
        assert self.release.wait(WAIT_SECONDS), "not every call reached /readyz"


@pytest.fixture
def slow_check(monkeypatch: pytest.MonkeyPatch) -> Callable[[threading.Event], SlowCheck]:
    monkeypatch.setattr(readiness, "CHECKS", dict(readiness.CHECKS))

    def install(release: threading.Event) -> SlowCheck:
        check = SlowCheck(release)
        readiness.register("slow", check)
        return check

    return install


@pytest.mark.storage
def test_concurrent_calls_within_the_period_cost_one_probe(
    runtime: Runtime, slow_check: Callable[[threading.Event], SlowCheck]
) -> None:
    runtime.settings.readiness_cache_seconds = 3600
    app = Arrivals(create_app(runtime))  # type: ignore[arg-type]
    check = slow_check(app.all_in)  # the probe ends once all the calls are waiting on it
    answers: list[int] = []
    with TestClient(app) as client:  # type: ignore[arg-type]

        def call() -> None:
            answers.append(client.get("/readyz").status_code)

        threads = [threading.Thread(target=call) for _ in range(CALLS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_SECONDS)
        assert answers == [200] * CALLS
        assert check.probes == 1
        assert client.get("/readyz").status_code == 200  # and later calls, from the answer
        assert check.probes == 1


@pytest.mark.storage
def test_with_no_period_every_call_probes_afresh(
    runtime: Runtime, slow_check: Callable[[threading.Event], SlowCheck]
) -> None:
    released = threading.Event()
    released.set()
    check = slow_check(released)
    assert runtime.settings.readiness_cache_seconds == 0  # the tests' setting
    with TestClient(create_app(runtime)) as client:
        for _ in range(3):
            assert client.get("/readyz").status_code == 200
    assert check.probes == 3
