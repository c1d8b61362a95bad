"""The connector interface. Connectors are plain classes with no database access: the
``connectors.service`` module records states, retries, audits and imports what they return.

Every call must be idempotent (safe to repeat after a timeout): provisioning takes an
``idempotency_key`` the vendor can deduplicate on (AWS ``CreateAccount`` is not idempotent
itself, so the AWS connector first looks for an existing account with the same email).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from billbyte.kit.outbound import (
    MAX_MESSAGE_CHARS,
    STRICT,
    OutboundPolicy,
    custom_endpoint_refusal,
    short_message,
)

# A VendorError's message is shown to the MSP (sync status, provisioning state): a vendor's
# answer is cut to a short line there (vendor_detail), the whole message to this.
MAX_VENDOR_MESSAGE_CHARS = 400


class VendorError(Exception):
    """A vendor call failed. ``retryable`` (HTTP 429/5xx, timeouts, throttling) tells the
    framework to retry with backoff; otherwise the failure is recorded and reported."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        message = short_message(message, MAX_VENDOR_MESSAGE_CHARS)
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after  # the vendor's own hint (Retry-After), in seconds


def vendor_detail(text: object) -> str:
    """What a vendor (or whatever the endpoint reached) answered, fit to show the MSP: one
    line, control characters stripped, at most 200 characters — never the whole body."""
    return short_message(text, MAX_MESSAGE_CHARS)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (the HTTP-date form is rare from these APIs and ignored)."""
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class PartnerContext:
    """What a connector knows about the MSP's partner account."""

    partner_account_id: str
    vendor: str  # aws | azure | microsoft365 | gcp
    vendor_account_id: str | None  # AWS payer id, Partner Center tenant, Channel account
    endpoint_url: str | None  # sandbox or override endpoint; None = the vendor's real one
    sandbox: bool
    credentials: dict[str, Any]
    # What the operator allows for MSP-set URLs (billbyte.kit.outbound); the default refuses
    # all but public https. connectors.service builds it from the settings.
    outbound: OutboundPolicy = STRICT


def checked_endpoint(ctx: PartnerContext, url: str, field: str) -> str:
    """``url`` if this partner account may call it, else a non-retryable ``VendorError``.

    Checked again when connecting (the address is resolved once, checked and pinned, by the
    guarded HTTP client): this is the check of the URL as written and of whose it is."""
    reason = custom_endpoint_refusal(
        ctx.vendor, url, sandbox=ctx.sandbox, policy=ctx.outbound, resolve_name=False
    )
    if reason is not None:
        raise VendorError(
            f"{field} {vendor_detail(url)} cannot be used: {reason}.", retryable=False
        )
    return url


@dataclass(frozen=True)
class CustomerSpec:
    customer_id: str  # BillByte's id: stable, used in idempotency keys and tags
    external_id: str
    name: str
    country: str | None
    email_domain: str  # e.g. "<external_id>.customers.example" for account emails


@dataclass(frozen=True)
class ProvisionResult:
    state: str  # "active" | "pending" | "failed"
    vendor_identifier: str | None = None  # AWS account id, customer tenant id, Channel name
    kind: str | None = None  # a customers.schemas.VendorAccountKind value
    portal_url: str | None = None  # the vendor's own order/management portal for this customer
    reference: str | None = None  # what to poll while pending (request/operation id)
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionResult:
    state: str  # "suspended" | "active" | "purged" | "pending" | "failed"
    reference: str | None = None  # a long-running operation to poll, if any
    message: str | None = None


@dataclass(frozen=True)
class CollectedFile:
    """A delivery to import as one import (all parts of one report together)."""

    paths: list[Path]
    report: str | None = None  # the slice scope, when the vendor identity is not in the file
    format: str | None = None  # a usage reader name, to skip detection


@dataclass(frozen=True)
class Collection:
    deliveries: list[CollectedFile]
    watermark: str | None  # opaque; passed back on the next call
    data_until: str | None = None  # ISO timestamp of the newest usage seen (for data lag)


class Connector(Protocol):
    vendor: str

    def provision_customer(
        self, ctx: PartnerContext, spec: CustomerSpec, idempotency_key: str
    ) -> ProvisionResult: ...

    def poll_provisioning(self, ctx: PartnerContext, reference: str) -> ProvisionResult: ...

    def list_accounts(self, ctx: PartnerContext) -> list[dict[str, Any]]: ...

    def collect_usage(
        self, ctx: PartnerContext, watermark: str | None, work_dir: Path
    ) -> Collection: ...

    def suspend(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult: ...

    def resume(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult: ...

    def purge(self, ctx: PartnerContext, vendor_identifier: str) -> ActionResult: ...

    def status(self, ctx: PartnerContext, vendor_identifier: str) -> str:
        """The vendor's own view: "active", "suspended", "closed" (used for verification)."""
        ...
