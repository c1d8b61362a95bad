"""``jobs.service.run_now``: a feature runs a higher one's job kind by name, now."""

from __future__ import annotations

from typing import Any

import pytest

from billbyte.jobs import service as jobs
from billbyte.runtime import Runtime


def test_run_now_calls_the_registered_handler_with_the_payload(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Runtime, dict[str, Any]]] = []
    monkeypatch.setitem(jobs.HANDLERS, "test-kind", lambda rt, payload: seen.append((rt, payload)))
    jobs.run_now(runtime, "test-kind", {"msp_id": "msp_1", "periods": ["2026-10"]})
    assert seen == [(runtime, {"msp_id": "msp_1", "periods": ["2026-10"]})]


def test_run_now_of_an_unregistered_kind_says_so(runtime: Runtime) -> None:
    with pytest.raises(RuntimeError, match="No handler for job kind 'no-such-kind'"):
        jobs.run_now(runtime, "no-such-kind", {})
