"""The AWS sandbox: moto in server mode, an organization, a CUR bucket, and usage over time.

``start_aws_sandbox()`` starts moto's server on 127.0.0.1 (a free port unless one is
given), creates the organization (moto's default management account ``123456789012``
is the payer) with service control policies enabled, and the bucket the Cost and Usage
Report is delivered to. boto3 — and so the AWS connector — talks to it exactly as to AWS.

``UsageGenerator.tick(now)`` plays AWS's CUR delivery: it re-delivers the *whole* current
month, up to ``now``, as a legacy CUR (``lineItem/...`` columns, CSV.gz parts) with a new
``assemblyId``, for every member account of the organization:

    <prefix>/<report>/<YYYYMMDD-YYYYMMDD>/<assemblyId>/<report>-<n>.csv.gz
    <prefix>/<report>/<YYYYMMDD-YYYYMMDD>/<assemblyId>/<report>-Manifest.json
    <prefix>/<report>/<YYYYMMDD-YYYYMMDD>/<report>-Manifest.json   (written last)

Each delivery restates the month: earlier days keep their lines (same ids, same amounts),
today's line grows and new days are added. When the month changes, the previous month
gets one final delivery. Usage is deterministic per account and day (EC2 instance hours,
EBS and S3 storage, S3 requests, data transfer out, RDS for some accounts), starts when an
account joins the organization and stops when it is closed. An account suspended with a
service control policy keeps its running resources, so it keeps costing — as on AWS.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import logging
import threading
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import boto3
from botocore.config import Config

from billbyte.sandbox.state import decode, encode

log = logging.getLogger(__name__)

SANDBOX_KEY = "billbyte-sandbox"
REGION = "us-east-1"
BUCKET = "billbyte-cur"
PREFIX = "cur"
REPORT = "billbyte"
CLOSED = {"SUSPENDED", "PENDING_CLOSURE", "CLOSED"}

# The columns of the generated report, in order (a subset every legacy CUR has).
COLUMNS = [
    "identity/LineItemId",
    "identity/TimeInterval",
    "bill/InvoiceId",
    "bill/InvoicingEntity",
    "bill/BillingEntity",
    "bill/BillType",
    "bill/PayerAccountId",
    "bill/BillingPeriodStartDate",
    "bill/BillingPeriodEndDate",
    "lineItem/UsageAccountId",
    "lineItem/LineItemType",
    "lineItem/UsageStartDate",
    "lineItem/UsageEndDate",
    "lineItem/ProductCode",
    "lineItem/UsageType",
    "lineItem/Operation",
    "lineItem/AvailabilityZone",
    "lineItem/ResourceId",
    "lineItem/UsageAmount",
    "lineItem/CurrencyCode",
    "lineItem/UnblendedRate",
    "lineItem/UnblendedCost",
    "lineItem/BlendedRate",
    "lineItem/BlendedCost",
    "lineItem/LineItemDescription",
    "lineItem/LegalEntity",
    "product/ProductName",
    "product/productFamily",
    "product/instanceType",
    "product/location",
    "product/region",
    "product/sku",
    "pricing/publicOnDemandCost",
    "pricing/publicOnDemandRate",
    "pricing/term",
    "pricing/unit",
    "resourceTags/user:Environment",
]

_COST = Decimal("1E-10")
_QTY = Decimal("1E-8")
_LOCATION = "US East (N. Virginia)"


@dataclass(frozen=True)
class _Product:
    code: str
    name: str
    family: str
    usage_type: str
    operation: str
    unit: str
    rate: Decimal
    sku: str
    description: str
    resource: str  # prefix of the resource id
    kind: str  # "hours" | "storage" | "requests" | "transfer"
    instance_type: str = ""
    optional: bool = False  # only some accounts use it


CATALOGUE = [
    _Product(
        "AmazonEC2",
        "Amazon Elastic Compute Cloud",
        "Compute Instance",
        "BoxUsage:t3.medium",
        "RunInstances",
        "Hrs",
        Decimal("0.0416"),
        "DQ578CGN99KG6ECF",
        "$0.0416 per On Demand Linux t3.medium Instance Hour",
        "i-",
        "hours",
        instance_type="t3.medium",
    ),
    _Product(
        "AmazonEC2",
        "Amazon Elastic Compute Cloud",
        "Storage",
        "EBS:VolumeUsage.gp3",
        "CreateVolume-Gp3",
        "GB-Mo",
        Decimal("0.08"),
        "7Y9ZZ3FXWPC86CZY",
        "$0.08 per GB-month of General Purpose (gp3) provisioned storage - US East",
        "vol-",
        "storage",
    ),
    _Product(
        "AmazonEC2",
        "Amazon Elastic Compute Cloud",
        "Data Transfer",
        "DataTransfer-Out-Bytes",
        "RunInstances",
        "GB",
        Decimal("0.09"),
        "HQEH3ZYJSQF4VJAD",
        "$0.090 per GB - first 10 TB / month data transfer out beyond the global free tier",
        "i-",
        "transfer",
    ),
    _Product(
        "AmazonS3",
        "Amazon Simple Storage Service",
        "Storage",
        "TimedStorage-ByteHrs",
        "StandardStorage",
        "GB-Mo",
        Decimal("0.023"),
        "WP9ANXZGBYYSGJEA",
        "$0.023 per GB - first 50 TB / month of storage used",
        "billbyte-data-",
        "storage",
    ),
    _Product(
        "AmazonS3",
        "Amazon Simple Storage Service",
        "API Request",
        "Requests-Tier1",
        "PutObject",
        "Requests",
        Decimal("0.000005"),
        "JDRN5JGEKNMV3YT5",
        "$0.005 per 1,000 PUT, COPY, POST, or LIST requests",
        "billbyte-data-",
        "requests",
    ),
    _Product(
        "AmazonRDS",
        "Amazon Relational Database Service",
        "Database Instance",
        "InstanceUsage:db.t3.micro",
        "CreateDBInstance:0002",
        "Hrs",
        Decimal("0.017"),
        "KJCYJFR8JTZ4XDVH",
        "$0.017 per RDS db.t3.micro Single-AZ instance hour (or partial hour) running MySQL",
        "arn:aws:rds:us-east-1:{account}:db:app-",
        "hours",
        instance_type="db.t3.micro",
        optional=True,
    ),
]


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()


def _pick(low: int, high: int, *parts: object) -> int:
    """A deterministic integer in [low, high] from the parts."""
    return low + int.from_bytes(_digest(*parts)[:8], "big") % (high - low + 1)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True)
class _Account:
    id: str
    joined: datetime
    closed: datetime | None


@dataclass(frozen=True)
class Delivery:
    """One CUR delivery written to the bucket."""

    period: str  # YYYY-MM
    assembly_id: str
    manifest_key: str
    report_keys: list[str]
    rows: int
    final: bool


@dataclass
class UsageGenerator:
    """Writes restated legacy CUR deliveries of the organization's member accounts."""

    s3: Any
    organizations: Any
    bucket: str = BUCKET
    prefix: str = PREFIX
    report: str = REPORT
    rows_per_part: int = 2000
    _closed_at: dict[str, datetime] = field(default_factory=dict)
    _open: set[datetime] = field(default_factory=set)  # months delivered, not final yet
    _assemblies: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self, now: datetime | None = None) -> list[Delivery]:
        """Deliver the current month up to ``now`` (and close a month that has ended)."""
        now = (now or datetime.now(UTC)).astimezone(UTC)
        with self._lock:
            payer, accounts = self._accounts(now)
            current = _month_start(now)
            deliveries: list[Delivery] = []
            for start in sorted(p for p in self._open if p < current):
                delivery = self._deliver(payer, accounts, start, _next_month(start), final=True)
                if delivery:
                    deliveries.append(delivery)
                self._open.discard(start)
            delivery = self._deliver(payer, accounts, current, now, final=False)
            if delivery:
                deliveries.append(delivery)
                self._open.add(current)
            return deliveries

    def _accounts(self, now: datetime) -> tuple[str, list[_Account]]:
        payer = str(self.organizations.describe_organization()["Organization"]["MasterAccountId"])
        accounts: list[_Account] = []
        for page in self.organizations.get_paginator("list_accounts").paginate():
            for item in page["Accounts"]:
                if item["Id"] == payer:
                    continue
                if item.get("Status") in CLOSED or item.get("State") in CLOSED:
                    self._closed_at.setdefault(item["Id"], now)
                joined = item.get("JoinedTimestamp") or now
                if joined.tzinfo is None:
                    joined = joined.replace(tzinfo=UTC)
                accounts.append(
                    _Account(item["Id"], joined.astimezone(UTC), self._closed_at.get(item["Id"]))
                )
        return payer, accounts

    def rows(
        self, payer: str, accounts: list[_Account], start: datetime, until: datetime
    ) -> list[list[str]]:
        """The report lines of the month beginning at ``start``, up to ``until``."""
        end = _next_month(start)
        until = min(until, end)
        month_hours = Decimal((end - start).days * 24)
        rows: list[list[str]] = []
        for account in sorted(accounts, key=lambda a: a.id):
            first = max(start, account.joined)
            last = min(until, account.closed) if account.closed else until
            day = first.replace(hour=0, minute=0, second=0, microsecond=0)
            while day < last:
                day_end = day + timedelta(days=1)
                covered_from, covered_to = max(day, first), min(day_end, last)
                seconds = int((covered_to - covered_from).total_seconds())
                if seconds > 0:
                    hours = (Decimal(seconds) / Decimal(3600)).quantize(_QTY, ROUND_HALF_EVEN)
                    for product in CATALOGUE:
                        line = self._line(
                            payer, account.id, product, day, start, end, hours, month_hours
                        )
                        if line:
                            rows.append(line)
                day = day_end
        return rows

    @staticmethod
    def _line(
        payer: str,
        account: str,
        product: _Product,
        day: datetime,
        start: datetime,
        end: datetime,
        hours: Decimal,
        month_hours: Decimal,
    ) -> list[str] | None:
        if product.optional and _pick(0, 1, account, product.usage_type) == 0:
            return None
        jitter = Decimal(_pick(85, 115, account, day.date(), product.usage_type)) / 100
        if product.kind == "hours":
            count = _pick(1, 3, account, product.usage_type, "count")
            quantity = hours * count
        elif product.kind == "storage":
            size = Decimal(_pick(20, 800, account, product.usage_type, "size"))
            quantity = size * hours / month_hours
        elif product.kind == "requests":
            per_hour = Decimal(_pick(200, 20000, account, product.usage_type, "rate"))
            quantity = (per_hour * hours * jitter).quantize(Decimal(1), ROUND_HALF_EVEN)
        else:  # transfer
            per_hour = Decimal(_pick(5, 300, account, product.usage_type, "rate")) / 100
            quantity = per_hour * hours * jitter
        quantity = quantity.quantize(_QTY, ROUND_HALF_EVEN)
        if quantity <= 0:
            return None
        cost = (quantity * product.rate).quantize(_COST, ROUND_HALF_EVEN)
        suffix = hashlib.sha1(f"{account}{product.usage_type}".encode()).hexdigest()[:17]
        resource = product.resource.format(account=account) + suffix
        line_id = hashlib.sha1(f"{account}|{day.date()}|{product.usage_type}".encode()).hexdigest()
        day_end = day + timedelta(days=1)
        environment = ("production", "staging", "development")[_pick(0, 2, account, "env")]
        values = {
            "identity/LineItemId": line_id,
            "identity/TimeInterval": f"{_stamp(day)}/{_stamp(day_end)}",
            "bill/InvoiceId": "",
            "bill/InvoicingEntity": "Amazon Web Services, Inc.",
            "bill/BillingEntity": "AWS",
            "bill/BillType": "Anniversary",
            "bill/PayerAccountId": payer,
            "bill/BillingPeriodStartDate": _stamp(start),
            "bill/BillingPeriodEndDate": _stamp(end),
            "lineItem/UsageAccountId": account,
            "lineItem/LineItemType": "Usage",
            "lineItem/UsageStartDate": _stamp(day),
            "lineItem/UsageEndDate": _stamp(day_end),
            "lineItem/ProductCode": product.code,
            "lineItem/UsageType": product.usage_type,
            "lineItem/Operation": product.operation,
            "lineItem/AvailabilityZone": "us-east-1a" if product.kind == "hours" else "",
            "lineItem/ResourceId": resource,
            "lineItem/UsageAmount": str(quantity),
            "lineItem/CurrencyCode": "USD",
            "lineItem/UnblendedRate": str(product.rate),
            "lineItem/UnblendedCost": str(cost),
            "lineItem/BlendedRate": str(product.rate),
            "lineItem/BlendedCost": str(cost),
            "lineItem/LineItemDescription": product.description,
            "lineItem/LegalEntity": "Amazon Web Services, Inc.",
            "product/ProductName": product.name,
            "product/productFamily": product.family,
            "product/instanceType": product.instance_type,
            "product/location": _LOCATION,
            "product/region": REGION,
            "product/sku": product.sku,
            "pricing/publicOnDemandCost": str(cost),
            "pricing/publicOnDemandRate": str(product.rate),
            "pricing/term": "OnDemand",
            "pricing/unit": product.unit,
            "resourceTags/user:Environment": environment,
        }
        return [values[name] for name in COLUMNS]

    def _deliver(
        self,
        payer: str,
        accounts: list[_Account],
        start: datetime,
        until: datetime,
        *,
        final: bool,
    ) -> Delivery | None:
        rows = self.rows(payer, accounts, start, until)
        if not rows:
            return None
        end = _next_month(start)
        period_dir = f"{start:%Y%m%d}-{end:%Y%m%d}"
        base = "/".join(p for p in (self.prefix.strip("/"), self.report, period_dir) if p)
        assembly = str(uuid.uuid4())
        keys: list[str] = []
        size = max(1, self.rows_per_part)
        for number, offset in enumerate(range(0, len(rows), size), start=1):
            key = f"{base}/{assembly}/{self.report}-{number}.csv.gz"
            body = _csv_gz(rows[offset : offset + size])
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
            keys.append(key)
        manifest = {
            "assemblyId": assembly,
            "account": payer,
            "columns": [
                {"category": name.split("/")[0], "name": name.split("/", 1)[1], "type": "String"}
                for name in COLUMNS
            ],
            "charset": "UTF-8",
            "compression": "GZIP",
            "contentType": "text/csv",
            "reportId": hashlib.sha256(f"{payer}{self.report}".encode()).hexdigest(),
            "reportName": self.report,
            "billingPeriod": {
                "start": f"{start:%Y%m%d}T000000.000Z",
                "end": f"{end:%Y%m%d}T000000.000Z",
            },
            "bucket": self.bucket,
            "reportKeys": keys,
            "additionalArtifactKeys": [],
        }
        body = json.dumps(manifest, indent=2).encode()
        self.s3.put_object(
            Bucket=self.bucket, Key=f"{base}/{assembly}/{self.report}-Manifest.json", Body=body
        )
        manifest_key = f"{base}/{self.report}-Manifest.json"
        self.s3.put_object(Bucket=self.bucket, Key=manifest_key, Body=body)  # written last
        self._housekeep(base, assembly)
        return Delivery(
            period=f"{start:%Y-%m}",
            assembly_id=assembly,
            manifest_key=manifest_key,
            report_keys=keys,
            rows=len(rows),
            final=final,
        )

    def _housekeep(self, base: str, assembly: str) -> None:
        """Keep the last two deliveries of a month (a collector may still be reading the
        previous one); older assembly folders are removed."""
        history = self._assemblies.setdefault(base, [])
        history.append(assembly)
        while len(history) > 2:
            old = history.pop(0)
            listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"{base}/{old}/")
            for obj in listing.get("Contents", []):
                self.s3.delete_object(Bucket=self.bucket, Key=obj["Key"])


def _csv_gz(rows: list[list[str]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return gzip.compress(text.getvalue().encode("utf-8"), mtime=0)


def client(endpoint_url: str, service: str, region: str = REGION) -> Any:
    """A boto3 client for the sandbox (any access key works with moto)."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 2})
    if service == "s3":
        config = config.merge(Config(s3={"addressing_style": "path"}))
    return boto3.session.Session(
        aws_access_key_id=SANDBOX_KEY, aws_secret_access_key=SANDBOX_KEY, region_name=region
    ).client(service, endpoint_url=endpoint_url, config=config)


@dataclass
class AwsSandbox:
    """A running AWS sandbox. Stop it with ``stop()`` (or use it as a context manager)."""

    endpoint_url: str
    host: str
    port: int
    generator: UsageGenerator
    region: str = REGION
    management_account_id: str = ""
    organization_id: str = ""
    root_id: str = ""
    _server: Any = None
    _ticker: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def bucket(self) -> str:
        return self.generator.bucket

    @property
    def prefix(self) -> str:
        return self.generator.prefix

    @property
    def report(self) -> str:
        return self.generator.report

    def credentials(self) -> dict[str, str]:
        """What to store as the AWS partner account's credentials (with endpoint_url)."""
        return {
            "access_key_id": SANDBOX_KEY,
            "secret_access_key": SANDBOX_KEY,
            "region": self.region,
            "cur_bucket": self.bucket,
            "cur_prefix": self.prefix,
            "cur_report": self.report,
        }

    def client(self, service: str) -> Any:
        return client(self.endpoint_url, service, self.region)

    def setup(self) -> None:
        """Create the organization (SCPs enabled) and the CUR bucket, if missing."""
        organizations = self.client("organizations")
        s3 = self.client("s3")
        try:
            organization = organizations.create_organization(FeatureSet="ALL")["Organization"]
        except organizations.exceptions.AlreadyInOrganizationException:
            organization = organizations.describe_organization()["Organization"]
        root = organizations.list_roots()["Roots"][0]
        enabled = {t["Type"] for t in root.get("PolicyTypes", []) if t["Status"] == "ENABLED"}
        if "SERVICE_CONTROL_POLICY" not in enabled:
            organizations.enable_policy_type(RootId=root["Id"], PolicyType="SERVICE_CONTROL_POLICY")
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=self.bucket)
        self.management_account_id = str(organization["MasterAccountId"])
        self.organization_id = str(organization["Id"])
        self.root_id = str(root["Id"])

    def reset(self) -> None:
        """Forget everything (accounts, policies, objects — moto's state is per process)
        and set the organization and bucket up again."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        generator = self.generator
        self.generator = UsageGenerator(
            s3=generator.s3,
            organizations=generator.organizations,
            bucket=generator.bucket,
            prefix=generator.prefix,
            report=generator.report,
            rows_per_part=generator.rows_per_part,
        )
        self.setup()

    def tick(self, now: datetime | None = None) -> list[Delivery]:
        """Deliver the current month again (a restatement), up to ``now``."""
        return self.generator.tick(now)

    # -- saving and restoring (``sandbox.state``) --

    def export_state(self) -> dict[str, Any]:
        """The organization's member accounts (ids, names, emails, status, when they joined,
        tags) and its own service control policies with their targets, read through the API.
        The bucket is not saved: the next delivery restates the month from the accounts."""
        organizations = self.client("organizations")
        accounts = []
        for page in organizations.get_paginator("list_accounts").paginate():
            for item in page["Accounts"]:
                if item["Id"] == self.management_account_id:
                    continue
                tags = organizations.list_tags_for_resource(ResourceId=item["Id"])["Tags"]
                accounts.append(
                    {
                        "id": item["Id"],
                        "name": item["Name"],
                        "email": item["Email"],
                        "status": item.get("Status"),
                        "joined": item.get("JoinedTimestamp"),
                        "tags": tags,
                    }
                )
        policies = []
        scp = {"Filter": "SERVICE_CONTROL_POLICY"}
        for page in organizations.get_paginator("list_policies").paginate(**scp):
            for summary in page["Policies"]:
                if summary.get("AwsManaged"):
                    continue
                policy = organizations.describe_policy(PolicyId=summary["Id"])["Policy"]
                targets = [
                    target["TargetId"]
                    for target_page in organizations.get_paginator(
                        "list_targets_for_policy"
                    ).paginate(PolicyId=summary["Id"])
                    for target in target_page["Targets"]
                ]
                policies.append(
                    {
                        "name": summary["Name"],
                        "description": summary.get("Description", ""),
                        "content": policy["Content"],
                        "targets": targets,
                    }
                )
        with self.generator._lock:
            generator = {
                "closed_at": dict(self.generator._closed_at),
                "open": sorted(self.generator._open),
            }
        return encode({"accounts": accounts, "policies": policies, "generator": generator})

    def restore_state(self, saved: dict[str, Any]) -> int:
        """Create the saved member accounts again with their own ids and join dates (so their
        usage is the same as before), close the closed ones, and attach the saved policies.
        Returns how many accounts it restored."""
        # why: moto gives every new account a random id and the current time; the sandbox runs
        # moto in this process, so its backend is reachable to put the saved ones back.
        from moto.organizations.models import organizations_backends

        state = decode(saved)
        organizations = self.client("organizations")
        backend = organizations_backends[self.management_account_id]["aws"]
        for account in state["accounts"]:
            organizations.create_account(
                Email=account["email"], AccountName=account["name"], Tags=account["tags"]
            )
            created = backend.accounts[-1]
            random_id, created.id = created.id, account["id"]
            if account["joined"] is not None:
                created.create_time = account["joined"].astimezone(UTC).replace(tzinfo=None)
            owners = organizations_backends.master_accounts
            owners[created.id] = owners.pop(random_id)
            if account["status"] in CLOSED:
                organizations.close_account(AccountId=created.id)
        for policy in state["policies"]:
            policy_id = organizations.create_policy(
                Name=policy["name"],
                Description=policy["description"],
                Type="SERVICE_CONTROL_POLICY",
                Content=policy["content"],
            )["Policy"]["PolicySummary"]["Id"]
            for target in policy["targets"]:
                if target.isdigit():  # accounts (the root and OUs are not saved)
                    organizations.attach_policy(PolicyId=policy_id, TargetId=target)
        with self.generator._lock:
            self.generator._closed_at = dict(state["generator"]["closed_at"])
            self.generator._open = set(state["generator"]["open"])
        return len(state["accounts"])

    def start_ticking(
        self, interval_seconds: float, on_error: Callable[[Exception], None] | None = None
    ) -> None:
        """Deliver every ``interval_seconds`` in a background thread until ``stop()``."""
        if self._ticker is not None:
            return

        def run() -> None:
            while not self._stopping.is_set():
                try:
                    self.tick()
                except Exception as exc:  # keep the sandbox delivering
                    log.exception("AWS sandbox delivery failed")
                    if on_error:
                        on_error(exc)
                self._stopping.wait(interval_seconds)

        self._ticker = threading.Thread(target=run, name="aws-sandbox-usage", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join(timeout=10)
            self._ticker = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> AwsSandbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_aws_sandbox(
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    bucket: str = BUCKET,
    prefix: str = PREFIX,
    report: str = REPORT,
    rows_per_part: int = 2000,
    reset: bool = True,
) -> AwsSandbox:
    """Start moto on ``host:port`` (a free port if None) and set up the organization and
    the CUR bucket. ``reset`` clears moto's state first: moto keeps it per process, so a
    second sandbox in the same process would otherwise see the first one's accounts."""
    from moto.server import ThreadedMotoServer  # why: slow to import

    # werkzeug logs every request at INFO: keep the sandbox quiet unless asked.
    if logging.getLogger("werkzeug").level == logging.NOTSET:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port or 0, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    endpoint = f"http://{host}:{bound_port}"
    sandbox = AwsSandbox(
        endpoint_url=endpoint,
        host=str(bound_host),
        port=int(bound_port),
        generator=UsageGenerator(
            s3=client(endpoint, "s3"),
            organizations=client(endpoint, "organizations"),
            bucket=bucket,
            prefix=prefix,
            report=report,
            rows_per_part=rows_per_part,
        ),
        _server=server,
    )
    try:
        if reset:
            sandbox.reset()
        else:
            sandbox.setup()
    except Exception:
        sandbox.stop()
        raise
    log.info("AWS sandbox (moto) on %s", endpoint)
    return sandbox
