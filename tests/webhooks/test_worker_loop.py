"""The in-process background loop and the ``billbyte webhooks`` CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from billbyte.kit.clock import utcnow
from billbyte.runtime import Runtime
from billbyte.webhooks import cli as webhooks_cli
from billbyte.webhooks.signing import verify
from billbyte.webhooks.worker import start_background
from tests.conftest import Tenant
from tests.webhooks.conftest import emit, make_endpoint
from tests.webhooks.receiver import Receiver


def test_the_background_thread_delivers_and_stops(
    runtime: Runtime, tenant: Tenant, receiver: Receiver
) -> None:
    endpoint = make_endpoint(tenant, receiver)
    background = start_background(runtime, interval=0.05)
    try:
        # Due as soon as committed: the loop reads the clock itself.
        event_id = emit(runtime, tenant.msp_id, now=utcnow())
        assert receiver.arrived.wait(30), "the background worker sent nothing"
    finally:
        background.stop()
    assert not background.thread.is_alive()
    [got] = receiver.received
    assert got.event_id == event_id and got.signature_valid
    # What an integrator does with signing.verify, with the clock of the attempt.
    assert got.timestamp is not None
    assert verify(
        endpoint["secret"], got.headers["billbyte-signature"], got.body, now=got.timestamp
    )


def test_cli_deliver_makes_one_pass(
    runtime: Runtime, tenant: Tenant, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    import billbyte.cli_support

    monkeypatch.setattr(billbyte.cli_support, "build_runtime", lambda: runtime)
    make_endpoint(tenant, receiver)
    emit(runtime, tenant.msp_id, now=utcnow())
    emit(runtime, tenant.msp_id, now=utcnow())

    result = CliRunner().invoke(webhooks_cli.app, ["deliver", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"attempts": 2}
    assert len(receiver.received) == 2
    again = CliRunner().invoke(webhooks_cli.app, ["deliver"])
    assert again.exit_code == 0 and "0 delivery attempt(s)" in again.stdout
