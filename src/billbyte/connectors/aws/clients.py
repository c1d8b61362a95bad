"""boto3 clients for a partner account, and AWS failures as ``VendorError``.

Clients are cached per target (endpoint, region, credentials, outbound policy); an endpoint
that is not AWS's own is reached through the guarded, address-pinning HTTP client
(kit.outbound). botocore's own retries are off: the connector framework retries.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import boto3
import botocore.exceptions as bce
import httpx
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config

from billbyte.connectors.base import PartnerContext, VendorError, checked_endpoint, vendor_detail
from billbyte.kit.outbound import OutboundPolicy, OutboundRefused, guarded_client, is_official

VENDOR = "aws"
DEFAULT_REGION = "us-east-1"
SANDBOX_KEY = "billbyte-sandbox"

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
def calling(operation: str) -> Iterator[None]:
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
        with calling("sts:AssumeRole"):
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


def organizations(ctx: PartnerContext) -> Any:
    target = _target(ctx)
    # Organizations is a global service served from us-east-1.
    return _client("organizations", _replace_region(target, DEFAULT_REGION))


def s3_client(ctx: PartnerContext) -> Any:
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


def paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def forget() -> None:
    """Drop every cached client and assumed-role credential (tests change the identity)."""
    _client.cache_clear()
    _assumed.clear()
