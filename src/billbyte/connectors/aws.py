"""The AWS connector: AWS Organizations for customer accounts, S3 for the CUR.

* Provisioning = Organizations ``CreateAccount`` (asynchronous: polled with
  ``DescribeCreateAccountStatus``). ``CreateAccount`` has no client token, so the connector
  first looks for an account with the customer's deterministic email and reuses it.
* Suspend = attach the service control policy ``billbyte-deny-all`` (created once, denies
  every action) to the account; resume = detach it; purge = ``CloseAccount``.
* Usage = the payer's Cost and Usage Report deliveries in S3 (legacy CUR and CUR 2.0 / Data
  Exports): every billing period whose manifest changed since the watermark is downloaded,
  manifest and parts, and returned as one delivery (the whole restated month replaces its
  slice on import).

Every vendor failure is a ``VendorError``: throttling, 5xx, timeouts and connection
failures are retryable, anything else is not and carries the AWS error code. botocore's
own retries are switched off: the connector framework retries with backoff and records
each failure. ``docs/vendors/aws-connector.md`` lists the IAM permissions and S3 layouts.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
import botocore.exceptions as bce
import httpx
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config

from billbyte.connectors.base import (
    ActionResult,
    CollectedFile,
    Collection,
    CustomerSpec,
    PartnerContext,
    ProvisionResult,
    VendorError,
    checked_endpoint,
    vendor_detail,
)
from billbyte.kit.outbound import OutboundPolicy, OutboundRefused, guarded_client, is_official

log = logging.getLogger(__name__)

VENDOR = "aws"
KIND = "aws_account"
SCP_NAME = "billbyte-deny-all"
SCP_TYPE = "SERVICE_CONTROL_POLICY"
DENY_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "BillByteSuspended", "Effect": "Deny", "Action": "*", "Resource": "*"}],
}
CUSTOMER_TAG = "billbyte:customer_id"
DEFAULT_REGION = "us-east-1"
SANDBOX_KEY = "billbyte-sandbox"
CLOSED_STATES = {"SUSPENDED", "PENDING_CLOSURE", "CLOSED"}

# Error codes that mean "try again later" whatever the HTTP status says.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "BandwidthLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServiceException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "ConcurrentModificationException",
    }
)

_LEGACY_PERIOD = re.compile(r"^(\d{4})(\d{2})01-\d{8}$")  # 20261101-20261201
_CUR2_PERIOD = re.compile(r"^BILLING_PERIOD=(\d{4})-(\d{2})$")  # BILLING_PERIOD=2026-11
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")
_CHUNK = 1024 * 1024


# --- errors ------------------------------------------------------------------------------


def vendor_error(exc: Exception, operation: str) -> VendorError:
    """A botocore failure as a ``VendorError`` (retryable or not, with the AWS code)."""
    if isinstance(exc, VendorError):
        return exc
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or "").strip()
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        status = int(status) if status else None
        retryable = code in RETRYABLE_CODES or status == 429 or (status or 0) >= 500
        detail = vendor_detail(message)
        text = f"AWS {operation} failed: {vendor_detail(code)}" + (f": {detail}" if detail else "")
        return VendorError(text, retryable=retryable, status=status)
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return VendorError(f"AWS {operation}: no usable credentials ({exc}).", retryable=False)
    if isinstance(exc, bce.ConnectionError | bce.HTTPClientError | bce.IncompleteReadError):
        return VendorError(f"AWS {operation}: cannot reach AWS ({exc}).", retryable=True)
    if isinstance(exc, OSError):  # a socket error while streaming a body
        return VendorError(f"AWS {operation}: connection failed ({exc}).", retryable=True)
    if isinstance(exc, bce.BotoCoreError):
        return VendorError(f"AWS {operation} failed: {exc}", retryable=False)
    raise exc


@contextmanager
def _calling(operation: str) -> Iterator[None]:
    try:
        yield
    except OutboundRefused as exc:
        raise VendorError(f"AWS {operation}: {exc.reason}", retryable=False) from None
    except (bce.BotoCoreError, bce.ClientError, OSError) as exc:
        raise vendor_error(exc, operation) from exc


def error_code(exc: bce.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


# --- clients -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """Everything a boto3 client depends on (hashable, for the client cache)."""

    endpoint_url: str | None
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    # Set for an endpoint that is not AWS's own: requests then go through the guarded,
    # address-pinning HTTP client instead of botocore's (kit.outbound).
    outbound: OutboundPolicy | None = None


_CONFIG = Config(
    connect_timeout=5,
    read_timeout=60,
    retries={"mode": "standard", "total_max_attempts": 1},
    user_agent_extra="billbyte",
)
_lock = threading.Lock()


@lru_cache(maxsize=128)
def _client(service: str, target: _Target) -> Any:
    config = _CONFIG
    if service == "s3" and target.endpoint_url:
        config = config.merge(Config(s3={"addressing_style": "path"}))
    with _lock:  # creating clients from sessions is not thread-safe
        session = boto3.session.Session(
            aws_access_key_id=target.access_key_id,
            aws_secret_access_key=target.secret_access_key,
            aws_session_token=target.session_token,
            region_name=target.region,
        )
        client = session.client(service, endpoint_url=target.endpoint_url, config=config)
    if target.outbound is not None:
        client.meta.events.register("before-send", _PinnedSender(target.outbound))
    return client


class _PinnedSender:
    """Sends botocore's (already signed) requests through the guarded HTTP client: urllib3
    would resolve the name again when connecting, this connects to the address checked."""

    def __init__(self, policy: OutboundPolicy) -> None:
        timeout = httpx.Timeout(_CONFIG.read_timeout, connect=_CONFIG.connect_timeout)
        self.http = guarded_client(policy, timeout=timeout)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        headers = {str(k): v for k, v in request.headers.items()}
        headers.setdefault("Accept-Encoding", "identity")  # bodies are read as stored
        try:
            response = self.http.send(
                self.http.build_request(request.method, request.url, headers=headers, content=body),
                stream=True,
            )
        except httpx.TimeoutException as exc:
            raise bce.ReadTimeoutError(endpoint_url=request.url, error=exc) from None
        except httpx.TransportError as exc:
            raise bce.EndpointConnectionError(endpoint_url=request.url, error=exc) from None
        return AWSResponse(
            request.url, response.status_code, response.headers.multi_items(), _RawBody(response)
        )


class _RawBody:
    """The part of urllib3's response botocore reads: ``stream()`` and ``read(amt)``."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._chunks = response.iter_raw()
        self._buffer = b""

    def stream(self, amt: int = 65536, decode_content: bool | None = None) -> Iterator[bytes]:
        if self._buffer:
            yield self._buffer
            self._buffer = b""
        yield from self._chunks

    def read(self, amt: int | None = None) -> bytes:
        while amt is None or len(self._buffer) < amt:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if amt is None:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:amt], self._buffer[amt:]
        return data

    def close(self) -> None:
        self._response.close()


_assumed: dict[tuple[Any, ...], tuple[dict[str, str], datetime]] = {}


def _assume_role(base: _Target, role_arn: str, external_id: str) -> _Target:
    """Temporary credentials of the MSP's role, cached until 5 minutes before they expire.

    The ExternalId is BillByte's partner account id, never a value the MSP types: the
    role's trust policy requires it, so one MSP cannot make BillByte assume another's role.
    """
    key = (base, role_arn, external_id)
    cached = _assumed.get(key)
    if cached is None or cached[1] - timedelta(minutes=5) <= datetime.now(UTC):
        with _calling("sts:AssumeRole"):
            answer = _client("sts", base).assume_role(
                RoleArn=role_arn, RoleSessionName="billbyte", ExternalId=external_id
            )
        credentials = answer["Credentials"]
        expires = credentials["Expiration"]
        if isinstance(expires, str):
            expires = datetime.fromisoformat(expires.replace("Z", "+00:00"))
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        cached = (
            {
                "access_key_id": credentials["AccessKeyId"],
                "secret_access_key": credentials["SecretAccessKey"],
                "session_token": credentials["SessionToken"],
            },
            expires,
        )
        _assumed[key] = cached
    values = cached[0]
    return _Target(
        base.endpoint_url,
        base.region,
        values["access_key_id"],
        values["secret_access_key"],
        values["session_token"],
        base.outbound,
    )


def _target(ctx: PartnerContext) -> _Target:
    creds = ctx.credentials or {}
    region = str(creds.get("region") or DEFAULT_REGION)
    key_id = creds.get("access_key_id")
    secret = creds.get("secret_access_key")
    token = creds.get("session_token")
    if bool(key_id) != bool(secret):
        raise VendorError(
            "AWS credentials need both access_key_id and secret_access_key.", retryable=False
        )
    if ctx.sandbox and not ctx.endpoint_url:
        raise VendorError("A sandbox AWS partner account needs an endpoint_url.", retryable=False)
    custom = bool(ctx.endpoint_url) and not is_official(VENDOR, str(ctx.endpoint_url))
    if ctx.endpoint_url:
        checked_endpoint(ctx, str(ctx.endpoint_url), "endpoint_url")
    if not key_id and ctx.sandbox:
        key_id, secret = SANDBOX_KEY, SANDBOX_KEY  # moto accepts any key
    role_arn = creds.get("role_arn")
    if custom and not key_id:
        # Assuming the role would sign sts:AssumeRole with the platform's own AWS identity
        # and send it (Authorization, security token) to a host the MSP chose.
        raise VendorError(
            "With an endpoint_url that is not AWS's own, the partner account needs its own "
            "access_key_id and secret_access_key: BillByte's identity is never sent there.",
            retryable=False,
        )
    if not key_id and not role_arn:
        # Never fall back to the host's own AWS identity for an MSP's partner account.
        raise VendorError(
            "The AWS partner account has no credentials: set access_key_id and "
            "secret_access_key, or role_arn.",
            retryable=False,
        )
    base = _Target(
        ctx.endpoint_url,
        region,
        str(key_id) if key_id else None,  # None with a role: the platform's own identity
        str(secret) if secret else None,
        str(token) if token and key_id else None,
        ctx.outbound if custom else None,
    )
    if role_arn:
        return _assume_role(base, str(role_arn), ctx.partner_account_id)
    return base


def _organizations(ctx: PartnerContext) -> Any:
    target = _target(ctx)
    # Organizations is a global service served from us-east-1.
    return _client("organizations", _replace_region(target, DEFAULT_REGION))


def _s3(ctx: PartnerContext) -> Any:
    creds = ctx.credentials or {}
    target = _target(ctx)
    region = creds.get("cur_region")
    return _client("s3", _replace_region(target, str(region)) if region else target)


def _replace_region(target: _Target, region: str) -> _Target:
    return _Target(
        target.endpoint_url,
        region,
        target.access_key_id,
        target.secret_access_key,
        target.session_token,
        target.outbound,
    )


# --- small helpers -----------------------------------------------------------------------


def account_email(spec: CustomerSpec) -> str:
    return f"aws+{spec.customer_id}@{spec.email_domain}".lower()


def account_name(spec: CustomerSpec) -> str:
    """AWS account names are printable ASCII, at most 50 characters: 'Müller AG' → 'Muller AG'."""
    ascii_name = unicodedata.normalize("NFKD", spec.name).encode("ascii", "ignore").decode()
    ascii_name = "".join(ch for ch in ascii_name if 32 <= ord(ch) < 127).strip()
    return (ascii_name or spec.external_id or spec.customer_id)[:50]


def portal_url(account_id: str) -> str:
    return f"https://{account_id}.signin.aws.amazon.com/console"


def _check_account_id(value: str) -> str:
    if not _ACCOUNT_ID.match(value or ""):
        raise VendorError(f"{value!r} is not an AWS account id (12 digits).", retryable=False)
    return value


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _as_utc(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return str(value) if value is not None else None


# --- CUR deliveries ----------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestObject:
    """A manifest object in the bucket and the billing period it belongs to."""

    key: str
    etag: str
    last_modified: datetime
    group: str  # <prefix>/<report>/<period dir>: one entry of the watermark
    report: str
    period: str  # YYYY-MM
    layout: str  # "cur" (legacy) | "cur2" (Data Exports)


def parse_manifest_key(key: str, prefix: str) -> tuple[str, str, str, str] | None:
    """(group, report, period, layout) of a manifest key, None if it is not one.

    legacy: ``<prefix>/<report>/<YYYYMMDD-YYYYMMDD>/[<assemblyId>/]<report>-Manifest.json``
    CUR 2.0: ``<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/[<id>/]<export>-Manifest.json``
    """
    if not key.endswith("-Manifest.json"):
        return None
    rest = key[len(prefix) :].lstrip("/") if prefix else key
    segments = rest.split("/")
    for index in range(len(segments) - 1):
        segment = segments[index]
        legacy = _LEGACY_PERIOD.match(segment)
        cur2 = _CUR2_PERIOD.match(segment)
        if legacy and index >= 1:
            report, layout, period = segments[index - 1], "cur", legacy
        elif cur2 and index >= 2 and segments[index - 1] == "metadata":
            report, layout, period = segments[index - 2], "cur2", cur2
        else:
            continue
        if segments[-1] != f"{report}-Manifest.json":
            return None
        group = "/".join([p for p in [prefix.strip("/")] if p] + segments[: index + 1])
        return group, report, f"{period.group(1)}-{period.group(2)}", layout
    return None


def _load_watermark(watermark: str | None) -> dict[str, Any]:
    if not watermark:
        return {"v": 1, "periods": {}}
    try:
        state = json.loads(watermark)
    except ValueError:
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("periods"), dict):
        log.warning("unreadable AWS watermark %r: collecting every delivery again", watermark)
        return {"v": 1, "periods": {}}
    return state


def _delivery_id(path: Path) -> str | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    value = document.get("assemblyId") or document.get("executionId")
    return str(value) if value else None


def _report_keys(path: Path, bucket: str) -> list[tuple[str, str]]:
    """(bucket, key) of each report file the manifest lists, in its order."""
    document = json.loads(path.read_text(encoding="utf-8-sig"))
    entries = document.get("reportKeys") or document.get("dataFiles") or []
    result: list[tuple[str, str]] = []
    for entry in entries:
        if isinstance(entry, dict):
            entry = next(
                (
                    entry[k]
                    for k in ("key", "s3Key", "s3Uri", "uri")
                    if isinstance(entry.get(k), str)
                ),
                None,
            )
        if not isinstance(entry, str) or not entry:
            continue
        if entry.startswith("s3://"):
            owner, _, key = entry.removeprefix("s3://").partition("/")
            result.append((owner or bucket, key))
        else:
            result.append((bucket, entry))
    return list(dict.fromkeys(result))


def _usage_end_column(header: list[str]) -> str | None:
    for name in header:
        if name in ("lineItem/UsageEndDate", "line_item_usage_end_date"):
            return name
    return None


def newest_usage(paths: list[Path]) -> datetime | None:
    """The newest usage end time in the delivery (vectorised, streamed), for data lag.

    Best effort: a file this cannot read gives no value (the import reports real errors).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    newest: datetime | None = None
    for path in paths:
        try:
            name = path.name.lower()
            values: list[Any] = []
            if name.endswith(".parquet") or name.endswith(".snappy.parquet"):
                schema_names = pq.ParquetFile(path).schema_arrow.names
                column = _usage_end_column(schema_names)
                if column is None:
                    continue
                table = pq.read_table(path, columns=[column])
                values.append(pc.max(table.column(column).cast(pa.string())).as_py())
            else:
                opener: Callable[..., Any] = gzip.open if name.endswith(".gz") else open
                with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
                    header = handle.readline().rstrip("\r\n").split(",")
                column = _usage_end_column([h.strip('"') for h in header])
                if column is None:
                    continue
                reader = pacsv.open_csv(
                    path,
                    read_options=pacsv.ReadOptions(block_size=4 * _CHUNK),
                    convert_options=pacsv.ConvertOptions(
                        include_columns=[column], column_types={column: pa.string()}
                    ),
                )
                for batch in reader:
                    values.append(pc.max(batch.column(0)).as_py())
            for value in values:
                if value is None:
                    continue
                moment = _as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
                newest = max(newest, moment) if newest else moment
        except Exception as exc:  # best effort: never fail a collection over a lag figure
            log.debug("no usage end time from %s: %s", path, exc)
    return newest


# --- the connector -----------------------------------------------------------------------


class AwsConnector:
    vendor = VENDOR

    # -- provisioning --

    def provision_customer(
        self, ctx: PartnerContext, spec: CustomerSpec, idempotency_key: str
    ) -> ProvisionResult:
        org = _organizations(ctx)
        email = account_email(spec)
        with _calling("organizations:ListAccounts"):
            existing = [
                a
                for a in _paginate(org, "list_accounts", "Accounts")
                if str(a.get("Email", "")).lower() == email
            ]
        if existing:
            account = existing[0]
            if _is_closed(account):
                return ProvisionResult(
                    state="failed",
                    vendor_identifier=account["Id"],
                    kind=KIND,
                    message=f"The AWS account {account['Id']} for {email} is closed.",
                )
            return self._active(account, reused=True)
        with _calling("organizations:CreateAccount"):
            answer = org.create_account(
                Email=email,
                AccountName=account_name(spec),
                IamUserAccessToBilling="ALLOW",
                Tags=[{"Key": CUSTOMER_TAG, "Value": spec.customer_id}],
            )
        status = answer["CreateAccountStatus"]
        if status.get("State") == "FAILED":
            return _failed(status)
        # CreateAccount is asynchronous on AWS (IN_PROGRESS): always poll, even when a
        # sandbox answers SUCCEEDED at once.
        return ProvisionResult(
            state="pending",
            reference=status["Id"],
            kind=KIND,
            message="AWS is creating the account.",
            extra={"email": email},
        )

    def poll_provisioning(self, ctx: PartnerContext, reference: str) -> ProvisionResult:
        org = _organizations(ctx)
        with _calling("organizations:DescribeCreateAccountStatus"):
            status = org.describe_create_account_status(CreateAccountRequestId=reference)[
                "CreateAccountStatus"
            ]
        state = status.get("State")
        if state == "IN_PROGRESS":
            return ProvisionResult(
                state="pending", reference=reference, kind=KIND, message="AWS is creating it."
            )
        if state == "FAILED":
            return _failed(status)
        with _calling("organizations:DescribeAccount"):
            account = org.describe_account(AccountId=status["AccountId"])["Account"]
        return self._active(account, reused=False, reference=reference)

    @staticmethod
    def _active(
        account: dict[str, Any], *, reused: bool, reference: str | None = None
    ) -> ProvisionResult:
        account_id = str(account["Id"])
        return ProvisionResult(
            state="active",
            vendor_identifier=account_id,
            kind=KIND,
            portal_url=portal_url(account_id),
            reference=reference,
            message="existing AWS account reused" if reused else "AWS account created",
            extra={"email": account.get("Email"), "name": account.get("Name")},
        )

    def list_accounts(self, ctx: PartnerContext) -> list[dict[str, Any]]:
        org = _organizations(ctx)
        with _calling("organizations:DescribeOrganization"):
            management = org.describe_organization()["Organization"].get("MasterAccountId")
        with _calling("organizations:ListAccounts"):
            accounts = list(_paginate(org, "list_accounts", "Accounts"))
        return [
            {
                "vendor_identifier": a["Id"],
                "kind": KIND,
                "name": a.get("Name"),
                "email": a.get("Email"),
                "status": "closed" if _is_closed(a) else "active",
                "management": a["Id"] == management,
                "joined_at": _iso(a.get("JoinedTimestamp")),
                "portal_url": portal_url(a["Id"]),
            }
            for a in accounts
        ]

    # -- service management --

    def suspend(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        account_id = _check_account_id(vendor_identifier)
        org = _organizations(ctx)
        self._refuse_management(org, account_id, "suspend")
        policy_id = self._deny_all_policy(org, create=True)
        assert policy_id is not None
        self._enable_scps(org)
        try:
            with _calling("organizations:AttachPolicy"):
                org.attach_policy(PolicyId=policy_id, TargetId=account_id)
        except VendorError as exc:
            if not isinstance(exc.__cause__, bce.ClientError) or (
                error_code(exc.__cause__) != "DuplicatePolicyAttachmentException"
            ):
                raise
        return ActionResult(state="suspended", message=f"{SCP_NAME} attached to {account_id}")

    def resume(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        account_id = _check_account_id(vendor_identifier)
        org = _organizations(ctx)
        policy_id = self._deny_all_policy(org, create=False)
        if policy_id is None:
            return ActionResult(state="active", message=f"no {SCP_NAME} policy exists")
        try:
            with _calling("organizations:DetachPolicy"):
                org.detach_policy(PolicyId=policy_id, TargetId=account_id)
        except VendorError as exc:
            if not isinstance(exc.__cause__, bce.ClientError) or (
                error_code(exc.__cause__) != "PolicyNotAttachedException"
            ):
                raise
        return ActionResult(state="active", message=f"{SCP_NAME} detached from {account_id}")

    def purge(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult:
        account_id = _check_account_id(vendor_identifier)
        org = _organizations(ctx)
        self._refuse_management(org, account_id, "close")
        try:
            with _calling("organizations:CloseAccount"):
                org.close_account(AccountId=account_id)
        except VendorError as exc:
            if not isinstance(exc.__cause__, bce.ClientError) or (
                error_code(exc.__cause__) != "AccountAlreadyClosedException"
            ):
                raise
        return ActionResult(
            state="purged",
            message=f"AWS account {account_id} closed (AWS keeps it SUSPENDED for 90 days)",
        )

    def status(self, ctx: PartnerContext, vendor_identifier: str) -> str:
        account_id = _check_account_id(vendor_identifier)
        org = _organizations(ctx)
        with _calling("organizations:DescribeAccount"):
            account = org.describe_account(AccountId=account_id)["Account"]
        if _is_closed(account):
            return "closed"
        with _calling("organizations:ListPoliciesForTarget"):
            policies = _paginate(
                org, "list_policies_for_target", "Policies", TargetId=account_id, Filter=SCP_TYPE
            )
            if any(p.get("Name") == SCP_NAME for p in policies):
                return "suspended"
        return "active"

    @staticmethod
    def _refuse_management(org: Any, account_id: str, action: str) -> None:
        with _calling("organizations:DescribeOrganization"):
            management = org.describe_organization()["Organization"].get("MasterAccountId")
        if account_id == management:
            raise VendorError(
                f"Refusing to {action} {account_id}: it is the organization's management "
                "(payer) account.",
                retryable=False,
            )

    @staticmethod
    def _deny_all_policy(org: Any, *, create: bool) -> str | None:
        def find() -> str | None:
            with _calling("organizations:ListPolicies"):
                for policy in _paginate(org, "list_policies", "Policies", Filter=SCP_TYPE):
                    if policy.get("Name") == SCP_NAME:
                        return str(policy["Id"])
            return None

        found = find()
        if found or not create:
            return found
        try:
            with _calling("organizations:CreatePolicy"):
                answer = org.create_policy(
                    Name=SCP_NAME,
                    Description="BillByte: suspends an account (denies every action)",
                    Type=SCP_TYPE,
                    Content=json.dumps(DENY_ALL),
                )
            return str(answer["Policy"]["PolicySummary"]["Id"])
        except VendorError as exc:
            cause = exc.__cause__
            if (
                isinstance(cause, bce.ClientError)
                and error_code(cause) == "DuplicatePolicyException"
            ):
                return find()  # created concurrently
            raise

    @staticmethod
    def _enable_scps(org: Any) -> None:
        """SCPs only apply once the policy type is enabled on the organization's root."""
        with _calling("organizations:ListRoots"):
            roots = list(_paginate(org, "list_roots", "Roots"))
        for root in roots:
            types = {t.get("Type"): t.get("Status") for t in root.get("PolicyTypes", [])}
            status = types.get(SCP_TYPE)
            if status == "ENABLED":
                continue
            if status == "PENDING_ENABLE":
                raise VendorError(
                    "Service control policies are being enabled on the organization.",
                    retryable=True,
                )
            try:
                with _calling("organizations:EnablePolicyType"):
                    org.enable_policy_type(RootId=root["Id"], PolicyType=SCP_TYPE)
            except VendorError as exc:
                cause = exc.__cause__
                if not isinstance(cause, bce.ClientError) or (
                    error_code(cause) != "PolicyTypeAlreadyEnabledException"
                ):
                    raise

    # -- usage --

    def collect_usage(
        self, ctx: PartnerContext, watermark: str | None, work_dir: Path
    ) -> Collection:
        creds = ctx.credentials or {}
        bucket = creds.get("cur_bucket")
        if not bucket:
            raise VendorError(
                "The AWS partner account has no cur_bucket: set cur_bucket (and cur_prefix) "
                "to where the Cost and Usage Report is delivered.",
                retryable=False,
            )
        bucket = str(bucket)
        prefix = str(creds.get("cur_prefix") or "").strip("/")
        only_report = creds.get("cur_report")
        s3 = _s3(ctx)
        state = _load_watermark(watermark)
        periods: dict[str, Any] = dict(state["periods"])

        latest = self._latest_manifests(s3, bucket, prefix, only_report)
        deliveries: list[CollectedFile] = []
        newest: list[datetime] = []
        if state.get("data_until"):
            with contextlib.suppress(ValueError, TypeError):
                newest.append(_as_utc(datetime.fromisoformat(str(state["data_until"]))))
        for item in sorted(latest.values(), key=lambda m: (m.period, m.group)):
            seen = periods.get(item.group) or {}
            if seen.get("etag") == item.etag and seen.get("key") == item.key:
                continue
            fetched = self._fetch(s3, bucket, item, work_dir)
            if fetched is None:
                continue  # incomplete or superseded while downloading: next run
            manifest_path, parts, etag = fetched
            delivery_id = _delivery_id(manifest_path)
            entry = {"key": item.key, "etag": etag, "delivery_id": delivery_id}
            if delivery_id and seen.get("delivery_id") == delivery_id:
                periods[item.group] = entry  # same delivery, rewritten manifest
                continue
            periods[item.group] = entry
            deliveries.append(
                CollectedFile(
                    paths=parts, format="aws_cur2" if item.layout == "cur2" else "aws_cur"
                )
            )
            until = newest_usage(parts)
            if until:
                newest.append(until)
        # A daily CUR's open day ends at midnight: usage is never newer than now.
        data_until = min(max(newest), datetime.now(UTC)).isoformat() if newest else None
        new_state = {"v": 1, "periods": periods, "data_until": data_until}
        return Collection(
            deliveries=deliveries,
            watermark=json.dumps(new_state, sort_keys=True, separators=(",", ":")),
            data_until=data_until,
        )

    @staticmethod
    def _latest_manifests(
        s3: Any, bucket: str, prefix: str, only_report: Any
    ) -> dict[str, ManifestObject]:
        """The newest manifest of each report × billing period (legacy CUR keeps a copy in
        each assembly folder; the top-level one, written last, names the current delivery)."""
        latest: dict[str, ManifestObject] = {}
        listing = {"Bucket": bucket, "Prefix": f"{prefix}/" if prefix else ""}
        with _calling("s3:ListObjectsV2"):
            for obj in _paginate(s3, "list_objects_v2", "Contents", **listing):
                parsed = parse_manifest_key(obj["Key"], prefix)
                if parsed is None:
                    continue
                group, report, period, layout = parsed
                if only_report and report != only_report:
                    continue
                item = ManifestObject(
                    key=obj["Key"],
                    etag=str(obj.get("ETag", "")).strip('"'),
                    last_modified=obj["LastModified"],
                    group=group,
                    report=report,
                    period=period,
                    layout=layout,
                )
                current = latest.get(group)
                rank = (item.last_modified, -len(item.key))
                if current is None or rank > (current.last_modified, -len(current.key)):
                    latest[group] = item
        return latest

    def _fetch(
        self, s3: Any, bucket: str, item: ManifestObject, work_dir: Path
    ) -> tuple[Path, list[Path], str] | None:
        """Download a manifest and every part it lists into their own folder.

        None when the delivery is not whole: a part is missing (still being written or
        already removed) or newer than the manifest (a later delivery is overwriting the
        files), or the manifest changed meanwhile. The next collection takes it again.
        """
        folder = work_dir / _UNSAFE.sub("_", item.group.replace("/", "__"))
        folder.mkdir(parents=True, exist_ok=True)
        manifest_path = folder / PurePosixPath(item.key).name
        with _calling("s3:GetObject"):
            head = self._download(s3, bucket, item.key, manifest_path)
        if head is None:
            return None
        etag, manifest_time = head
        try:
            keys = _report_keys(manifest_path, bucket)
        except (ValueError, AttributeError) as exc:
            raise VendorError(
                f"AWS CUR manifest s3://{bucket}/{item.key} is not readable JSON: {exc}",
                retryable=False,
            ) from exc
        if not keys:
            raise VendorError(
                f"AWS CUR manifest s3://{bucket}/{item.key} lists no report files.",
                retryable=False,
            )
        parts: list[Path] = []
        names: set[str] = set()
        for part_bucket, key in keys:
            name = PurePosixPath(key).name
            if name in names:
                raise VendorError(
                    f"AWS CUR manifest s3://{bucket}/{item.key} lists two files named {name}.",
                    retryable=False,
                )
            names.add(name)
            path = folder / name
            with _calling("s3:GetObject"):
                got = self._download(s3, part_bucket, key, path)
            if got is None or got[1] > manifest_time:
                log.info("CUR delivery %s is not whole yet; collecting it next time", item.key)
                return None
            parts.append(path)
        with _calling("s3:HeadObject"):
            try:
                again = s3.head_object(Bucket=bucket, Key=item.key)
            except bce.ClientError as exc:
                if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        if str(again.get("ETag", "")).strip('"') != etag:
            return None
        return manifest_path, parts, etag

    @staticmethod
    def _download(s3: Any, bucket: str, key: str, path: Path) -> tuple[str, datetime] | None:
        """Stream one object to ``path``; (ETag, LastModified), or None if it is missing."""
        try:
            answer = s3.get_object(Bucket=bucket, Key=key)
        except bce.ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        partial = path.with_name(path.name + ".part")
        body = answer["Body"]
        try:
            with partial.open("wb") as handle:
                for chunk in body.iter_chunks(_CHUNK):
                    handle.write(chunk)
        finally:
            body.close()
        partial.replace(path)
        return str(answer.get("ETag", "")).strip('"'), answer["LastModified"]


def _is_closed(account: dict[str, Any]) -> bool:
    return account.get("Status") in CLOSED_STATES or account.get("State") in CLOSED_STATES


def _failed(status: dict[str, Any]) -> ProvisionResult:
    reason = str(status.get("FailureReason") or "UNKNOWN")
    message = f"AWS could not create the account: {reason}."
    if reason == "EMAIL_ALREADY_EXISTS":
        message += (
            " An account with this email exists or is being created; provisioning again "
            "finds it by its email and reuses it."
        )
    return ProvisionResult(
        state="failed",
        kind=KIND,
        reference=status.get("Id"),
        message=message,
        extra={"failure_reason": reason, "reprovision": reason == "EMAIL_ALREADY_EXISTS"},
    )
