"""Collection under failure: a collector killed mid-run loses and doubles nothing; a vendor
answering 500/429 or hanging is retried, shows in the sync status, and imports nothing
partial."""

from __future__ import annotations

import csv
import gzip
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from billbyte.connectors import service as connectors
from billbyte.connectors.base import VendorError
from billbyte.kit.clock import utcnow
from billbyte.sandbox.aws import AwsSandbox, start_aws_sandbox
from billbyte.sandbox.partner_center import start_partner_center_sandbox
from billbyte.sandbox.runtime import SandboxServer
from tests.conftest import Tenant
from tests.usage.test_lifecycle import _url


@pytest.fixture
def aws() -> Iterator[AwsSandbox]:
    sandbox = start_aws_sandbox(None, rows_per_part=8)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def partner_center() -> Iterator[SandboxServer]:
    server = start_partner_center_sandbox(None)
    yield server
    server.stop()


def _latest_delivery_total(aws: AwsSandbox) -> tuple[Decimal, int]:
    """Independently of BillByte: read the newest manifest's report parts from S3 and sum
    lineItem/UnblendedCost with Decimal."""
    import json

    s3 = aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=aws.bucket)["Contents"]]
    manifests = sorted(
        (k for k in keys if k.endswith("Manifest.json")),
        key=lambda k: s3.head_object(Bucket=aws.bucket, Key=k)["LastModified"],
    )
    manifest = json.loads(s3.get_object(Bucket=aws.bucket, Key=manifests[-1])["Body"].read())
    total, rows = Decimal(0), 0
    for key in manifest["reportKeys"]:
        data = gzip.decompress(s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())
        for row in csv.DictReader(io.StringIO(data.decode("utf-8"))):
            total += Decimal(row["lineItem/UnblendedCost"])
            rows += 1
    return total, rows


def _billed(tenant: Tenant, pa: str) -> tuple[Decimal, int]:
    period = utcnow().strftime("%Y-%m")
    summary = tenant.get(
        "/v1/usage/summary", params={"period": period, "partner_account_id": pa}
    ).json()
    usd = summary["totals"].get("USD", {"billed_cost": "0", "lines": "0"})
    return Decimal(usd["billed_cost"]), int(usd["lines"])


@pytest.mark.parametrize("delay", [0.4, 1.0, 1.8])
def test_collector_killed_midway_loses_and_doubles_nothing(
    tenant: Tenant, runtime: Any, aws: AwsSandbox, delay: float
) -> None:
    organizations = aws.client("organizations")
    for index in range(8):
        organizations.create_account(Email=f"acct{index}@kill.example", AccountName=f"A{index}")
    aws.tick(utcnow() + timedelta(hours=20))
    expected, rows = _latest_delivery_total(aws)
    assert rows > 30  # several report parts
    pa = tenant.post(
        "/v1/partner-accounts",
        json={
            "vendor": "aws",
            "display_name": "payer",
            "sandbox": True,
            "endpoint_url": aws.endpoint_url,
            "credentials": aws.credentials(),
        },
    ).json()["id"]
    env = {
        **os.environ,
        "BILLBYTE_DATABASE_URL": _url(SimpleNamespace(runtime=runtime)),  # type: ignore[arg-type]
        "BILLBYTE_VAR_DIR": str(runtime.settings.var_dir),
        "BILLBYTE_SECRET_KEY": runtime.secret_key,
        # The AWS simulator runs on http://127.0.0.1 (refused by default: kit.outbound).
        "BILLBYTE_OUTBOUND_ALLOW_PRIVATE": "1",
        "BILLBYTE_OUTBOUND_ALLOW_HTTP": "1",
        "BILLBYTE_OUTBOUND_ALLOWED_PORTS": "*",
    }
    command = [sys.executable, "-m", "billbyte.cli", "collect", "--partner-account", pa]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(delay)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait()
    seen = _billed(tenant, pa)
    assert seen in {(Decimal(0), 0), (expected, rows)}  # all or nothing, never a part
    rerun = subprocess.run(command, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    again = subprocess.run(command, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert _billed(tenant, pa) == (expected, rows)


def test_vendor_errors_are_retried_visible_and_import_nothing_partial(
    tenant: Tenant, runtime: Any, partner_center: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connectors, "call_vendor", _fast_retry)
    pa = tenant.post(
        "/v1/partner-accounts",
        json={
            "vendor": "azure",
            "display_name": "csp",
            "sandbox": True,
            "endpoint_url": partner_center.base_url,
            "credentials": {"currencies": "EUR", "timeout_seconds": 1},
        },
    ).json()["id"]
    customer = tenant.post(
        "/v1/customers",
        json={"external_id": "R-1", "name": "Resilient", "currency": "EUR", "vendors": ["azure"]},
    )
    assert customer.status_code == 201
    from billbyte.jobs.service import run_pending

    for round_ in range(4):
        run_pending(runtime, now=utcnow() + timedelta(minutes=round_ + 1))
    partner_center.tick(utcnow() + timedelta(days=2))
    faults = partner_center.app.faults
    # A 500, then a 429: retried inside the collection, which then succeeds.
    faults.fail(count=1, status=500, path="/lineitems")
    faults.throttle(count=1, retry_after=0, path="/lineitems")
    result = connectors.collect(runtime, pa)
    assert result["imports"] and faults.pending == 0
    before = tenant.get(
        "/v1/usage/summary", params={"period": utcnow().strftime("%Y-%m"), "partner_account_id": pa}
    ).json()
    # More usage, but the vendor fails on the second page every time: nothing partial.
    partner_center.tick(utcnow() + timedelta(days=3))
    faults.fail(count=50, status=503, path="/lineitems")
    with pytest.raises(VendorError) as caught:
        connectors.collect(runtime, pa)
    assert caught.value.retryable
    sync = tenant.get(f"/v1/partner-accounts/{pa}/sync").json()
    assert "503" in sync["last_error"] and sync["consecutive_failures"] == 1
    after = tenant.get(
        "/v1/usage/summary", params={"period": utcnow().strftime("%Y-%m"), "partner_account_id": pa}
    ).json()
    assert after["totals"] == before["totals"]
    # A vendor that hangs beyond the client's timeout is a retryable failure too.
    faults.clear()
    faults.hang(count=50, seconds=3.0, path="/lineitems")
    with pytest.raises(VendorError) as hung:
        connectors.collect(runtime, pa)
    assert hung.value.retryable
    faults.clear()
    connectors.collect(runtime, pa)
    sync = tenant.get(f"/v1/partner-accounts/{pa}/sync").json()
    assert sync["last_error"] is None and sync["consecutive_failures"] == 0


def _fast_retry(function: Any, attempts: int = 3) -> Any:
    """The production retry policy without its sleeps (the attempts are what matter)."""
    for attempt in range(attempts):
        try:
            return function()
        except VendorError as exc:
            if not exc.retryable or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
