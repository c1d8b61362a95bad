"""After a restart the sandboxes still know the customers BillByte provisioned on them
(issue 12: they used to start empty while the customers stayed ``active`` and usage silently
stopped). The state is saved under ``var/sandbox/`` and restored by ``start_all``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from billbyte.connectors import service as connectors
from billbyte.kit.clock import utcnow
from billbyte.sandbox import Sandboxes, start_all
from tests.conftest import Tenant
from tests.connectors.test_end_to_end import (
    ChannelApi,
    PartnerCenterApi,
    _drain,
    provision_on_every_sandbox,
)

FREE: dict[str, int | None] = {"aws": None, "partner_center": None, "google_channel": None}


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "var" / "sandbox"


@pytest.fixture
def running() -> Iterator[list[Sandboxes]]:
    """The sandboxes a test started (stopped at the end, whatever happened)."""
    started: list[Sandboxes] = []
    yield started
    for sandboxes in started:
        sandboxes.stop()


def _ports(sandboxes: Sandboxes) -> dict[str, int | None]:
    return {
        "aws": sandboxes.aws.port,
        "partner_center": sandboxes.partner_center.port,
        "google_channel": sandboxes.google_channel.port,
    }


def test_a_restart_keeps_the_provisioned_customers_and_their_usage(
    tenant: Tenant, runtime: Any, state_dir: Path, running: list[Sandboxes]
) -> None:
    first = start_all(FREE, state_dir)
    running.append(first)
    assert first.restored is not None and "no saved state" in first.restored
    accounts, customer, states = provision_on_every_sandbox(
        tenant, runtime, first, "RESTART-1", "Restart Ltd"
    )
    assert {v: s["state"] for v, s in states.items()} == dict.fromkeys(
        ("aws", "azure", "gcp"), "active"
    ), states
    aws_account = states["aws"]["vendor_identifier"]
    joined = first.aws.client("organizations").describe_account(AccountId=aws_account)["Account"][
        "JoinedTimestamp"
    ]

    # Stop (what Ctrl-C on `make run` does) and start again on the same ports.
    ports = _ports(first)
    running.remove(first)
    first.stop()
    assert {p.name for p in state_dir.iterdir()} == {
        "aws.json",
        "partner_center.json",
        "google_channel.json",
    }
    second = start_all(ports, state_dir)
    running.append(second)
    assert second.restored == (
        f"sandboxes: restored 3 customer accounts from {state_dir}/ "
        "(AWS accounts 1, Partner Center 1, Cloud Channel 1)"
    )

    # Each vendor still knows the customer, as active, through its own API.
    described = second.aws.client("organizations").describe_account(AccountId=aws_account)[
        "Account"
    ]
    assert described["Status"] == "ACTIVE"
    assert described["JoinedTimestamp"] == joined
    assert PartnerCenterApi(second.partner_center.base_url).statuses(
        states["azure"]["vendor_identifier"]
    ) == {"active"}
    assert (
        ChannelApi(second.google_channel.base_url).entitlement_state(
            states["gcp"]["vendor_identifier"]
        )
        == "ACTIVE"
    )

    # Usage keeps arriving after the restart: a collection finds it and rating prices it.
    second.aws.tick(utcnow() + timedelta(hours=6))
    second.partner_center.tick(utcnow() + timedelta(days=1))
    second.google_channel.tick(utcnow() + timedelta(days=1))
    for account in accounts.values():
        collected = connectors.collect(runtime, account)
        assert collected["imports"], (account, collected)
    _drain(runtime)
    period = date.today().strftime("%Y-%m")
    charges = tenant.get(f"/v1/customers/{customer}/charges", params={"period": period}).json()
    assert {g["vendor"] for g in charges["groups"]} == {"aws", "azure", "gcp"}, charges
    assert Decimal(charges["total_exact"]) > 0


def test_an_unreadable_state_file_is_kept_aside_and_said(
    state_dir: Path, running: list[Sandboxes]
) -> None:
    state_dir.mkdir(parents=True)
    (state_dir / "partner_center.json").write_text("{not json")
    sandboxes = start_all(FREE, state_dir)
    running.append(sandboxes)
    assert sandboxes.restored is not None
    assert "no saved state" in sandboxes.restored
    assert f"{state_dir}/partner_center.json unreadable (JSONDecodeError)" in sandboxes.restored
    assert (state_dir / "partner_center.json.unreadable").read_text() == "{not json"
