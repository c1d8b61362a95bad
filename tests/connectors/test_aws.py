"""The AWS connector against moto in server mode (the AWS sandbox), over HTTP on 127.0.0.1.

boto3 talks to moto exactly as to AWS; every outcome is checked through the AWS API itself
(Organizations ``describe_account``, ``list_policies_for_target``, S3 objects), and the
imported totals against an independent ``Decimal`` sum of the CSV the sandbox delivered.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import botocore.exceptions as bce
import pytest

from billbyte.connectors.aws import AwsConnector
from billbyte.connectors.aws.accounts import SCP_NAME
from billbyte.connectors.aws.clients import vendor_error
from billbyte.connectors.aws.cur import newest_usage, parse_manifest_key
from billbyte.connectors.base import CustomerSpec, PartnerContext, VendorError
from billbyte.kit.outbound import LOCAL_SANDBOXES
from billbyte.sandbox.aws import AwsSandbox, start_aws_sandbox
from billbyte.usage.manifests import read_manifest
from tests.usage import conftest as usage_fixtures
from tests.usage.conftest import Importer, stored

CONNECTOR = AwsConnector()
importer = usage_fixtures.importer  # the ingestion tests' fixture


@pytest.fixture(scope="module")
def moto_server() -> Iterator[AwsSandbox]:
    sandbox = start_aws_sandbox(rows_per_part=10)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def aws(moto_server: AwsSandbox) -> AwsSandbox:
    moto_server.reset()  # a fresh organization and bucket for each test
    return moto_server


def context(aws: AwsSandbox, **credentials: Any) -> PartnerContext:
    return PartnerContext(
        partner_account_id="pa_test",
        vendor="aws",
        vendor_account_id=aws.management_account_id,
        endpoint_url=aws.endpoint_url,
        sandbox=True,
        outbound=LOCAL_SANDBOXES,  # the simulators run on http://127.0.0.1
        credentials={**aws.credentials(), **credentials},
    )


def spec(customer_id: str, name: str = "Contoso GmbH") -> CustomerSpec:
    return CustomerSpec(
        customer_id=customer_id,
        external_id=f"CRM-{customer_id}",
        name=name,
        country="DE",
        email_domain=f"{customer_id}.customers.example",
    )


def provision(aws: AwsSandbox, customer_id: str, name: str = "Contoso GmbH") -> str:
    ctx = context(aws)
    pending = CONNECTOR.provision_customer(ctx, spec(customer_id, name), f"idem-{customer_id}")
    assert pending.state == "pending" and pending.reference
    active = CONNECTOR.poll_provisioning(ctx, pending.reference)
    assert active.state == "active" and active.vendor_identifier
    return active.vendor_identifier


def s3_rows(aws: AwsSandbox, keys: list[str]) -> list[dict[str, str]]:
    """The delivered report parts, read from the bucket with the standard library."""
    s3 = aws.client("s3")
    rows: list[dict[str, str]] = []
    for key in keys:
        body = s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()
        text = gzip.decompress(body).decode("utf-8")
        rows.extend(csv.DictReader(io.StringIO(text)))
    return rows


def total(rows: list[dict[str, str]], column: str = "lineItem/UnblendedCost") -> Decimal:
    return sum((Decimal(row[column]) for row in rows), Decimal(0))


def by_account(rows: list[dict[str, str]]) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for row in rows:
        account = row["lineItem/UsageAccountId"]
        sums[account] = sums.get(account, Decimal(0)) + Decimal(row["lineItem/UnblendedCost"])
    return sums


def manifest_keys(aws: AwsSandbox, key: str) -> list[str]:
    body = aws.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read()
    return list(json.loads(body)["reportKeys"])


# --- provisioning ------------------------------------------------------------------------


def test_provisioning_is_asynchronous_and_creates_the_account(aws: AwsSandbox) -> None:
    ctx = context(aws)
    pending = CONNECTOR.provision_customer(ctx, spec("cus_01ALPHA", "Müller AG"), "idem-1")
    assert pending.state == "pending"
    assert pending.reference and pending.vendor_identifier is None

    active = CONNECTOR.poll_provisioning(ctx, pending.reference)
    assert active.state == "active" and active.kind == "aws_account"
    account_id = active.vendor_identifier
    assert account_id and len(account_id) == 12
    assert active.portal_url == f"https://{account_id}.signin.aws.amazon.com/console"

    # verified through the vendor API itself
    org = aws.client("organizations")
    account = org.describe_account(AccountId=account_id)["Account"]
    assert account["Email"] == "aws+cus_01alpha@cus_01alpha.customers.example"
    assert account["Name"] == "Muller AG"  # AWS account names are printable ASCII
    assert account["Status"] == "ACTIVE"
    tags = org.list_tags_for_resource(ResourceId=account_id)["Tags"]
    assert {"Key": "billbyte:customer_id", "Value": "cus_01ALPHA"} in tags
    assert CONNECTOR.status(ctx, account_id) == "active"


def test_provisioning_twice_reuses_the_account(aws: AwsSandbox) -> None:
    ctx = context(aws)
    first = provision(aws, "cus_02BETA")
    again = CONNECTOR.provision_customer(ctx, spec("cus_02BETA"), "idem-other")
    assert again.state == "active" and again.vendor_identifier == first
    assert again.portal_url and first in again.portal_url

    emails = [
        a["Email"]
        for page in aws.client("organizations").get_paginator("list_accounts").paginate()
        for a in page["Accounts"]
    ]
    assert emails.count("aws+cus_02beta@cus_02beta.customers.example") == 1
    listed = {a["vendor_identifier"]: a for a in CONNECTOR.list_accounts(ctx)}
    assert listed[first]["status"] == "active" and not listed[first]["management"]
    assert listed[aws.management_account_id]["management"]


# --- service management ------------------------------------------------------------------


def scp_names(aws: AwsSandbox, account_id: str) -> list[str]:
    policies = aws.client("organizations").list_policies_for_target(
        TargetId=account_id, Filter="SERVICE_CONTROL_POLICY"
    )["Policies"]
    return [p["Name"] for p in policies]


def test_suspend_resume_and_purge(aws: AwsSandbox) -> None:
    ctx = context(aws)
    account_id = provision(aws, "cus_03GAMMA")
    bystander = provision(aws, "cus_03OTHER")

    assert CONNECTOR.suspend(ctx, account_id).state == "suspended"
    assert CONNECTOR.suspend(ctx, account_id).state == "suspended"  # idempotent
    assert scp_names(aws, account_id).count(SCP_NAME) == 1
    assert SCP_NAME not in scp_names(aws, bystander)
    assert CONNECTOR.status(ctx, account_id) == "suspended"
    org = aws.client("organizations")
    policies = org.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]
    deny_all = [p for p in policies if p["Name"] == SCP_NAME]
    assert len(deny_all) == 1  # created once, reused
    content = json.loads(org.describe_policy(PolicyId=deny_all[0]["Id"])["Policy"]["Content"])
    assert content["Statement"] == [
        {"Sid": "BillByteSuspended", "Effect": "Deny", "Action": "*", "Resource": "*"}
    ]

    assert CONNECTOR.resume(ctx, account_id).state == "active"
    assert CONNECTOR.resume(ctx, account_id).state == "active"  # not attached is fine
    assert SCP_NAME not in scp_names(aws, account_id)
    assert CONNECTOR.status(ctx, account_id) == "active"

    CONNECTOR.suspend(ctx, account_id)
    assert CONNECTOR.purge(ctx, account_id).state == "purged"
    assert CONNECTOR.purge(ctx, account_id).state == "purged"  # already closed is fine
    assert org.describe_account(AccountId=account_id)["Account"]["Status"] == "SUSPENDED"
    assert CONNECTOR.status(ctx, account_id) == "closed"
    assert CONNECTOR.status(ctx, bystander) == "active"

    # a closed account is not handed out again to the same customer
    again = CONNECTOR.provision_customer(ctx, spec("cus_03GAMMA"), "idem")
    assert again.state == "failed" and again.vendor_identifier == account_id


def test_the_management_account_is_never_suspended_or_closed(aws: AwsSandbox) -> None:
    ctx = context(aws)
    for action in (CONNECTOR.suspend, CONNECTOR.purge):
        with pytest.raises(VendorError) as caught:
            action(ctx, aws.management_account_id)
        assert not caught.value.retryable and "management" in caught.value.message
    with pytest.raises(VendorError) as bad_id:
        CONNECTOR.suspend(ctx, "not-an-account")
    assert not bad_id.value.retryable


def test_resume_before_any_suspension(aws: AwsSandbox) -> None:
    account_id = provision(aws, "cus_04DELTA")
    assert CONNECTOR.resume(context(aws), account_id).state == "active"


# --- usage collection --------------------------------------------------------------------


@pytest.mark.storage
def test_collected_deliveries_import_exactly_and_restatements_replace_them(
    aws: AwsSandbox, importer: Importer, tmp_path: Path
) -> None:
    ctx = context(aws)
    accounts = {provision(aws, "cus_05A"), provision(aws, "cus_05B")}
    now = datetime.now(UTC) + timedelta(days=2, hours=5)
    delivered = aws.tick(now)
    assert delivered and all(d.rows > 0 for d in delivered)

    collection = CONNECTOR.collect_usage(ctx, None, tmp_path / "run1")
    assert len(collection.deliveries) == len(delivered)
    assert collection.data_until is not None
    for delivery, files in zip(delivered, collection.deliveries, strict=True):
        assert len(files.paths) == len(delivery.report_keys) > 1  # a multi-part delivery
        assert [p.name for p in files.paths] == [k.rsplit("/", 1)[1] for k in delivery.report_keys]
        rows = s3_rows(aws, manifest_keys(aws, delivery.manifest_key))
        assert {r["lineItem/UsageAccountId"] for r in rows} <= accounts
        imported = importer(*files.paths, vendor="aws", fmt=files.format)
        assert imported.status == "completed"
        assert stored(imported) == {"USD": total(rows)}
        assert stored(imported, "list_cost") == {"USD": total(rows, "pricing/publicOnDemandCost")}
        summary = importer.summary(delivery.period)
        per_account = {g["key"]: Decimal(g["billed_cost"]) for g in summary["groups"]}
        assert per_account == by_account(rows)

    # nothing new: nothing collected, the watermark stays put
    quiet = CONNECTOR.collect_usage(ctx, collection.watermark, tmp_path / "run2")
    assert quiet.deliveries == []
    assert (
        json.loads(quiet.watermark or "")["periods"]
        == json.loads(collection.watermark or "")["periods"]
    )

    # a restated month (new assemblyId, more usage) is collected again and replaces it
    later = aws.tick(now + timedelta(hours=7))
    restated = CONNECTOR.collect_usage(ctx, quiet.watermark, tmp_path / "run3")
    assert len(restated.deliveries) == len(later) >= 1
    for delivery, files in zip(later, restated.deliveries, strict=True):
        rows = s3_rows(aws, manifest_keys(aws, delivery.manifest_key))
        importer(*files.paths, vendor="aws", fmt=files.format)
        summary = importer.summary(delivery.period)
        assert Decimal(summary["totals"]["USD"]["billed_cost"]) == total(rows)
        assert summary["slices"] == 1  # replaced, not added
    assert CONNECTOR.collect_usage(ctx, restated.watermark, tmp_path / "run4").deliveries == []


def test_a_delivery_missing_a_part_is_left_for_the_next_run(
    aws: AwsSandbox, tmp_path: Path
) -> None:
    ctx = context(aws)
    provision(aws, "cus_06A")
    now = datetime.now(UTC) + timedelta(days=1)
    delivery = aws.tick(now)[-1]
    s3 = aws.client("s3")
    s3.delete_object(Bucket=aws.bucket, Key=delivery.report_keys[-1])

    partial = CONNECTOR.collect_usage(ctx, None, tmp_path / "a")
    assert partial.deliveries == []
    assert json.loads(partial.watermark or "")["periods"] == {}

    aws.tick(now + timedelta(hours=1))
    whole = CONNECTOR.collect_usage(ctx, partial.watermark, tmp_path / "b")
    assert len(whole.deliveries) == 1


def test_only_the_newest_manifest_of_a_month_counts(aws: AwsSandbox, tmp_path: Path) -> None:
    """Legacy CUR keeps a manifest copy in every assembly folder; two deliveries between
    two collections are one delivery: the newest."""
    ctx = context(aws)
    provision(aws, "cus_07A")
    now = datetime.now(UTC) + timedelta(days=1)
    aws.tick(now)
    newest = aws.tick(now + timedelta(hours=3))[-1]
    collection = CONNECTOR.collect_usage(ctx, None, tmp_path)
    periods = json.loads(collection.watermark or "")["periods"]
    assert [e["delivery_id"] for e in periods.values()][-1] == newest.assembly_id
    assert [p.name for p in collection.deliveries[-1].paths] == [
        k.rsplit("/", 1)[1] for k in newest.report_keys
    ]


def test_cur2_data_exports_layout(aws: AwsSandbox, tmp_path: Path) -> None:
    """CUR 2.0: metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json naming s3:// data files."""
    s3 = aws.client("s3")
    header = "line_item_usage_account_id,line_item_unblended_cost,line_item_currency_code,"
    header += "line_item_usage_start_date,line_item_usage_end_date,bill_payer_account_id\n"
    row = "444455556666,1.25,USD,2026-10-03T00:00:00Z,2026-10-04T00:00:00Z,123456789012\n"
    data_key = "exports/focus-cur2/data/BILLING_PERIOD=2026-10/focus-cur2-00001.csv.gz"
    s3.put_object(Bucket=aws.bucket, Key=data_key, Body=gzip.compress((header + row).encode()))
    manifest = {
        "executionId": "exec-1",
        "exportName": "focus-cur2",
        "billingPeriod": {"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
        "dataFiles": [f"s3://{aws.bucket}/{data_key}"],
    }
    s3.put_object(
        Bucket=aws.bucket,
        Key="exports/focus-cur2/metadata/BILLING_PERIOD=2026-10/focus-cur2-Manifest.json",
        Body=json.dumps(manifest).encode(),
    )
    ctx = context(aws, cur_prefix="exports", cur_report=None)
    collection = CONNECTOR.collect_usage(ctx, None, tmp_path)
    assert len(collection.deliveries) == 1
    delivery = collection.deliveries[0]
    assert delivery.format == "aws_cur2"
    assert [p.name for p in delivery.paths] == ["focus-cur2-00001.csv.gz"]
    assert newest_usage(delivery.paths) == datetime(2026, 10, 4, tzinfo=UTC)
    assert CONNECTOR.collect_usage(ctx, collection.watermark, tmp_path).deliveries == []


def test_the_connector_downloads_what_an_import_of_the_manifest_reads(
    aws: AwsSandbox, tmp_path: Path
) -> None:
    """The connector and imports read a manifest's entries the same way (usage.manifests).

    They used to disagree on entries naming their file under ``path``: an import of the
    manifest read them, the connector skipped them and found "no report files"."""
    s3 = aws.client("s3")
    header = "line_item_usage_account_id,line_item_unblended_cost,line_item_currency_code,"
    header += "line_item_usage_start_date,line_item_usage_end_date,bill_payer_account_id\n"
    row = "444455556666,2.50,USD,2026-09-03T00:00:00Z,2026-09-04T00:00:00Z,123456789012\n"
    data_key = "paths/pathed/data/BILLING_PERIOD=2026-09/pathed-00001.csv.gz"
    s3.put_object(Bucket=aws.bucket, Key=data_key, Body=gzip.compress((header + row).encode()))
    manifest = {
        "executionId": "exec-path",
        "exportName": "pathed",
        "dataFiles": [{"path": f"s3://{aws.bucket}/{data_key}"}],
    }
    s3.put_object(
        Bucket=aws.bucket,
        Key="paths/pathed/metadata/BILLING_PERIOD=2026-09/pathed-Manifest.json",
        Body=json.dumps(manifest).encode(),
    )
    ctx = context(aws, cur_prefix="paths", cur_report=None)
    collection = CONNECTOR.collect_usage(ctx, None, tmp_path)
    [delivery] = collection.deliveries
    assert [p.name for p in delivery.paths] == ["pathed-00001.csv.gz"]
    listed = read_manifest(delivery.paths[0].parent / "pathed-Manifest.json")
    assert listed.files == delivery.paths
    assert listed.delivery_id == "exec-path"


def test_manifest_keys_are_recognised() -> None:
    legacy = "cur/billbyte/20261101-20261201/billbyte-Manifest.json"
    assert parse_manifest_key(legacy, "cur") == (
        "cur/billbyte/20261101-20261201",
        "billbyte",
        "2026-11",
        "cur",
    )
    copy = "cur/billbyte/20261101-20261201/0f1e-assembly/billbyte-Manifest.json"
    assert parse_manifest_key(copy, "cur") == parse_manifest_key(legacy, "cur")
    cur2 = "x/exp/metadata/BILLING_PERIOD=2026-02/exp-Manifest.json"
    assert parse_manifest_key(cur2, "x") == (
        "x/exp/metadata/BILLING_PERIOD=2026-02",
        "exp",
        "2026-02",
        "cur2",
    )
    assert parse_manifest_key("rep/20261101-20261201/rep-Manifest.json", "") is not None
    for other in (
        "cur/billbyte/20261101-20261201/0f1e/billbyte-1.csv.gz",
        "cur/billbyte/20261101-20261201/other-Manifest.json",
        "cur/billbyte/billbyte-Manifest.json",
        "x/exp/data/BILLING_PERIOD=2026-02/exp-Manifest.json",
    ):
        assert parse_manifest_key(other, "cur" if other.startswith("cur") else "x") is None


# --- credentials and errors --------------------------------------------------------------


def test_role_assumption(aws: AwsSandbox) -> None:
    ctx = PartnerContext(
        partner_account_id="pa_role",
        vendor="aws",
        vendor_account_id=aws.management_account_id,
        endpoint_url=aws.endpoint_url,
        sandbox=True,
        outbound=LOCAL_SANDBOXES,  # the simulators run on http://127.0.0.1
        credentials={"role_arn": f"arn:aws:iam::{aws.management_account_id}:role/billbyte"},
    )
    accounts = CONNECTOR.list_accounts(ctx)
    assert any(a["management"] for a in accounts)


def test_configuration_errors_are_not_retryable(aws: AwsSandbox, tmp_path: Path) -> None:
    real = PartnerContext("pa", "aws", None, None, False, {})
    with pytest.raises(VendorError) as no_credentials:
        CONNECTOR.list_accounts(real)
    assert not no_credentials.value.retryable
    with pytest.raises(VendorError) as no_bucket:
        CONNECTOR.collect_usage(context(aws, cur_bucket=None), None, tmp_path)
    assert not no_bucket.value.retryable and "cur_bucket" in no_bucket.value.message
    with pytest.raises(VendorError) as missing_bucket:
        CONNECTOR.collect_usage(context(aws, cur_bucket="no-such-bucket"), None, tmp_path)
    assert not missing_bucket.value.retryable
    assert "NoSuchBucket" in missing_bucket.value.message
    with pytest.raises(VendorError) as unknown:
        CONNECTOR.poll_provisioning(context(aws), "car-doesnotexist0000000000000000000")
    assert not unknown.value.retryable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_endpoint_that_is_down_is_retryable(tmp_path: Path) -> None:
    ctx = PartnerContext(
        partner_account_id="pa_down",
        vendor="aws",
        vendor_account_id="123456789012",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        sandbox=True,
        outbound=LOCAL_SANDBOXES,  # the simulators run on http://127.0.0.1
        credentials={"cur_bucket": "billbyte-cur"},
    )
    calls = [
        lambda: CONNECTOR.provision_customer(ctx, spec("cus_down"), "idem"),
        lambda: CONNECTOR.poll_provisioning(ctx, "car-x"),
        lambda: CONNECTOR.suspend(ctx, "111122223333"),
        lambda: CONNECTOR.status(ctx, "111122223333"),
        lambda: CONNECTOR.collect_usage(ctx, None, tmp_path),
    ]
    for call in calls:
        with pytest.raises(VendorError) as caught:
            call()
        assert caught.value.retryable, caught.value.message


def client_error(code: str, status: int, message: str = "boom") -> bce.ClientError:
    return bce.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "CreateAccount",
    )


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("TooManyRequestsException", 400, True),
        ("ThrottlingException", 400, True),
        ("SlowDown", 503, True),
        ("ServiceException", 500, True),
        ("SomethingNew", 502, True),
        ("AnyCode", 429, True),
        ("ConcurrentModificationException", 400, True),
        ("AccessDeniedException", 403, False),
        ("ConstraintViolationException", 400, False),
        ("AWSOrganizationsNotInUseException", 400, False),
    ],
)
def test_aws_errors_map_to_vendor_errors(code: str, status: int, retryable: bool) -> None:
    error = vendor_error(client_error(code, status), "organizations:CreateAccount")
    assert error.retryable is retryable
    assert code in error.message and error.status == status
    timeout = vendor_error(bce.ReadTimeoutError(endpoint_url="http://x"), "s3:GetObject")
    assert timeout.retryable
