"""The usage store on S3-compatible object storage (``BILLBYTE_USAGE_STORE_URL=s3://…``).

Against moto's S3 *server* on 127.0.0.1 (boto3 and polars talk HTTP to it exactly as to
AWS; fake credentials, never a real AWS host): the import → rate → invoice chain gives the
same charges to the last digit as the same run on the local directory, ``gc`` collects
orphans from the bucket, and a bad store URL is a configuration error at start-up.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from billbyte.invoicing import runs
from billbyte.invoicing import tasks as _invoicing_tasks  # noqa: F401  (job handler)
from billbyte.runtime import Runtime
from billbyte.settings import Settings
from billbyte.usage import store
from billbyte.usage.models import UsageImport, UsageSlice
from billbyte.usage.object_store import LocalStore, S3Store, for_settings
from tests.conftest import Tenant
from tests.invoicing.conftest import admin
from tests.rating.factories import PERIOD, Scenario, row
from tests.usage.conftest import Importer
from tests.usage.generate import write_focus

SRC = Path(__file__).resolve().parents[2] / "src"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Costs with many decimals, so that "to the last digit" means something.
COSTS = ["12.345678901234567891", "0.000000000000000007", "98.7654321", "3.3333333333", "41"]
MARKUP = Decimal("7.5")


@dataclass
class S3Server:
    endpoint: str

    def bucket(self) -> str:
        name = f"bb-usage-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        listing = boto3.client("s3", endpoint_url=self.endpoint).list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer  # why: slow to import

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise

    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_AWS.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        _, port = server.get_host_and_port()
        try:
            yield S3Server(endpoint=f"http://127.0.0.1:{port}")
        finally:
            server.stop()


def use_s3(runtime: Runtime, server: S3Server, prefix: str = "billbyte/usage") -> str:
    bucket = server.bucket()
    runtime.settings.usage_store_url = f"s3://{bucket}/{prefix}"
    runtime.settings.s3_endpoint_url = server.endpoint
    return bucket


def local_parquet(runtime: Runtime) -> list[Path]:
    return sorted(runtime.settings.usage_store_dir.rglob("*.parquet"))


def current_paths(runtime: Runtime, msp_id: str) -> list[str]:
    with runtime.uow() as uow:
        return sorted(
            uow.session.scalars(
                select(UsageSlice.path).where(
                    UsageSlice.msp_id == msp_id, UsageSlice.is_current.is_(True)
                )
            )
        )


def chain(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> dict[str, Any]:
    """Import (through the API), rate (the job), read the charges, close the month."""
    tmp_path.mkdir()
    s = Scenario(tenant, runtime, tmp_path)
    s.account("aws")
    a = s.customer("A")
    b = s.customer("B")
    s.link(a, "111111111111")
    s.link(b, "222222222222")
    s.plan([{"vendor": "aws", "adjustment": "markup_percent", "value": str(MARKUP)}])
    s.upload(
        [row(c, day=i + 1) for i, c in enumerate(COSTS)]
        + [row(c, day=i + 1, sub="222222222222", service="Amazon S3") for i, c in enumerate(COSTS)]
    )
    s.drain()
    summary = tenant.get(
        "/v1/usage/summary", params={"period": PERIOD, "group_by": "sub_account"}
    ).json()
    charges = {
        external: sorted(
            (line["service_name"], line["amount_exact"], line["amount"]) for line in s.lines(c)
        )
        for external, c in (("A", a), ("B", b))
    }
    exact = {external: s.exact(c) for external, c in (("A", a), ("B", b))}
    run = runs.close_period(runtime, admin(tenant.msp_id), PERIOD, force=True)
    invoices = tenant.get("/v1/invoices", params={"limit": 100}).json()["data"]
    return {
        "summary": {g["key"]: g["billed_cost"] for g in summary["groups"]},
        "charges": charges,
        "exact": exact,
        "invoices_created": run.invoices_created,
        "invoice_totals": sorted(Decimal(i["total"]) for i in invoices),
    }


def test_import_rate_invoice_on_s3_equals_the_local_directory(
    tenant: Tenant, other_tenant: Tenant, runtime: Runtime, tmp_path: Path, s3_server: S3Server
) -> None:
    on_disk = chain(tenant, runtime, tmp_path / "file")
    disk_slices = current_paths(runtime, tenant.msp_id)
    # The local store keeps its layout: the slice files are the rows' paths under var/usage.
    assert [
        p.relative_to(runtime.settings.usage_store_dir).as_posix() for p in local_parquet(runtime)
    ] == disk_slices

    bucket = use_s3(runtime, s3_server)
    on_s3 = chain(other_tenant, runtime, tmp_path / "s3")
    s3_slices = current_paths(runtime, other_tenant.msp_id)
    # The slices went to the bucket, under the same keys, and nothing new to the local disk.
    assert s3_server.keys(bucket) == [f"billbyte/usage/{key}" for key in s3_slices]
    assert [
        p.relative_to(runtime.settings.usage_store_dir).as_posix() for p in local_parquet(runtime)
    ] == disk_slices
    # msp/partner account/period/scope digest/import: the same period and scope digest.
    assert [k.split("/")[2:4] for k in s3_slices] == [k.split("/")[2:4] for k in disk_slices]

    assert on_s3 == on_disk
    # ... and both are right, by hand: the sum of the costs with the markup, per customer.
    total = sum((Decimal(c) for c in COSTS), Decimal(0))
    # Charge lines are stored at 18 decimals (Money, NUMERIC(38,18)), rounded half-even.
    expected = (total * (1 + MARKUP / 100)).quantize(Decimal("1e-18"), rounding=ROUND_HALF_EVEN)
    assert on_disk["exact"] == {"A": expected, "B": expected}
    assert on_disk["summary"] == {"111111111111": str(total), "222222222222": str(total)}
    rounded = expected.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    assert on_disk["invoices_created"] == 2
    assert on_disk["invoice_totals"] == [rounded, rounded]


def test_gc_on_s3_removes_orphans_and_keeps_current_slices(
    importer: Importer, tmp_path: Path, s3_server: S3Server
) -> None:
    runtime = importer.runtime
    bucket = use_s3(runtime, s3_server, prefix="")
    first = tmp_path / "first.csv"
    write_focus(first, 50, seed=1)
    importer(first)
    second = tmp_path / "second.csv"
    expected = write_focus(second, 60, seed=2)  # the same month again: a restatement
    importer(second)
    current = current_paths(runtime, importer.subject.msp_id)
    assert len(current) == 1
    with runtime.uow() as uow:
        superseded = [s.path for s in uow.session.scalars(select(UsageSlice)) if not s.is_current]
    assert len(superseded) == 1

    # A killed import's slice (its row failed) and a running import's (still processing).
    slices = for_settings(runtime.settings)
    assert isinstance(slices, S3Store)
    folder = current[0].rsplit("/", 1)[0]
    with runtime.uow() as uow:
        running = UsageImport(
            msp_id=importer.subject.msp_id,
            partner_account_id=importer.partner_accounts["aws"],
            actor="test",
            files=[],
        )
        uow.session.add(running)
        uow.commit()
        running_key = f"{folder}/{running.id}.parquet"
    orphan_file = tmp_path / "orphan.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(orphan_file)
    orphan_key = f"{folder}/imp_killed0000000000000000.parquet"
    slices.put(orphan_file, orphan_key)
    slices.put(orphan_file, running_key)
    assert slices.exists(orphan_key) and slices.exists(running_key)

    collected = store.collect_garbage(runtime)
    assert collected.slice_files == [orphan_key]
    assert collected.bytes_freed == orphan_file.stat().st_size
    assert not slices.exists(orphan_key)
    # Current, recently superseded and running imports' slices stay.
    assert s3_server.keys(bucket) == sorted([*current, *superseded, running_key])
    assert local_parquet(runtime) == []

    # Past the grace period the superseded slice goes too; the current one never does.
    collected = store.collect_garbage(runtime, grace=timedelta(0))
    assert collected.slice_files == superseded
    assert s3_server.keys(bucket) == sorted([*current, running_key])
    totals = importer.summary("2026-10")["totals"]
    assert {c: Decimal(t["billed_cost"]) for c, t in totals.items()} == {
        "USD": expected["BilledCost"]
    }


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_unchanged_reimport_leaves_no_object_behind(
    importer: Importer, tmp_path: Path, s3_server: S3Server
) -> None:
    runtime = importer.runtime
    bucket = use_s3(runtime, s3_server)
    path = tmp_path / "usage.csv"
    write_focus(path, 30, seed=3)
    importer(path)
    again = importer(path)
    assert again.outcome == "unchanged"
    # The second import's piece was put, then deleted once the swap found it unchanged.
    assert s3_server.keys(bucket) == [
        f"billbyte/usage/{k}" for k in current_paths(runtime, importer.subject.msp_id)
    ]


@pytest.mark.parametrize(
    ("url", "bucket"),
    [
        ("s3://bucket-1", ("bucket-1", "")),
        ("s3://bucket-1/", ("bucket-1", "")),
        ("s3://my.bucket/a/b/", ("my.bucket", "a/b/")),
        ("", None),
        ("file:///srv/usage", None),
    ],
)
def test_store_urls(url: str, bucket: tuple[str, str] | None) -> None:
    assert Settings(usage_store_url=url).usage_store_s3 == bucket


def test_a_file_url_is_the_local_store_at_that_directory(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var", usage_store_url=f"file://{tmp_path}/shared")
    local = for_settings(settings)
    assert isinstance(local, LocalStore) and local.root == tmp_path / "shared"
    assert settings.usage_store_dir == tmp_path / "shared" and local.root.is_dir()
    default = for_settings(Settings(var_dir=tmp_path / "var"))
    assert isinstance(default, LocalStore) and default.root == tmp_path / "var" / "usage"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/usage", "is not supported: use file:///path/to/dir or s3://"),
        ("s3://", "names no valid bucket"),
        ("s3:///usage", "names no valid bucket"),
        ("s3://Bad_Bucket/usage", "names no valid bucket"),
        ("file://", "needs a directory"),
        ("/srv/usage", "is not supported"),
    ],
)
def test_a_bad_store_url_is_a_configuration_error(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match="usage_store_url") as error:
        Settings(usage_store_url=url)
    assert message in str(error.value)


def test_the_command_line_names_the_bad_setting(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(SRC),
        "BILLBYTE_VAR_DIR": str(tmp_path / "var"),
        "BILLBYTE_USAGE_STORE_URL": "s3:///no-bucket",
    }
    done = subprocess.run(
        [sys.executable, "-m", "billbyte.cli", "usage", "gc"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "invalid configuration: BILLBYTE_USAGE_STORE_URL:" in done.stderr
    assert "names no valid bucket" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "var").exists()  # refused before touching anything


def test_usage_gc_command_on_a_bucket_from_the_environment(
    tmp_path: Path, s3_server: S3Server
) -> None:
    """The settings come from BILLBYTE_* and AWS_* variables only, as in production."""
    bucket = s3_server.bucket()
    orphan = tmp_path / "orphan.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(orphan)
    boto3.client("s3", endpoint_url=s3_server.endpoint).upload_file(
        str(orphan), bucket, "usage/msp_x/pa_x/2026-10/0123456789abcdef/imp_gone.parquet"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(SRC),
        "BILLBYTE_VAR_DIR": str(tmp_path / "var"),
        "BILLBYTE_SECRET_KEY": "test-secret-key",
        "BILLBYTE_USAGE_STORE_URL": f"s3://{bucket}/usage",
        "BILLBYTE_S3_ENDPOINT_URL": s3_server.endpoint,
        **FAKE_AWS,
    }
    done = subprocess.run(
        [sys.executable, "-m", "billbyte.cli", "usage", "gc"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "removed slice file msp_x/pa_x/2026-10/0123456789abcdef/imp_gone.parquet" in done.stdout
    assert s3_server.keys(bucket) == []
