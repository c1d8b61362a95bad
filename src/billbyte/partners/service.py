from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.kit.crypto import encrypt_json
from billbyte.kit.errors import InvalidInput
from billbyte.kit.money import format_amount
from billbyte.kit.outbound import STRICT, OutboundPolicy, custom_endpoint_refusal, refusal
from billbyte.kit.pagination import Page, paginate
from billbyte.partners import repository
from billbyte.partners.models import PartnerAccount
from billbyte.partners.schemas import PartnerAccountCreate, PartnerAccountUpdate
from billbyte.tenancy.auth import AuthSubject

_AUDITED = (
    "display_name",
    "vendor_account_id",
    "sandbox",
    "endpoint_url",
    "partner_discount_percent",
    "discount_terms",
    "status",
)
_NULLABLE = frozenset({"vendor_account_id", "endpoint_url", "credentials"})

# URLs in the credentials that BillByte calls, per vendor (path inside the credentials,
# whether the vendor's-own-endpoint rule applies). The connectors check them again, pinned,
# when they connect.
_CREDENTIAL_URLS: dict[str, tuple[tuple[tuple[str, ...], bool], ...]] = {
    "azure": ((("login_url",), True),),
    "microsoft365": ((("login_url",), True),),
    "gcp": (
        (("token_uri",), True),
        (("service_account", "token_uri"), True),
        # The MSP's own export host, never Google's: the guard applies, the rule does not.
        (("billing_export_url",), False),
    ),
}


def _credential_url(credentials: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = credentials
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def check_outbound_urls(
    vendor: str,
    *,
    sandbox: bool,
    endpoint_url: str | None,
    credentials: dict[str, Any] | None,
    policy: OutboundPolicy,
) -> None:
    """A 422 naming the field when a URL of the partner account may not be called: not the
    vendor's own and the account is no sandbox (unless the operator allows custom
    endpoints), or refused by the outbound guard (private address, scheme, port)."""
    urls: list[tuple[str, Any, bool]] = [("endpoint_url", endpoint_url, True)]
    for path, vendor_rule in _CREDENTIAL_URLS.get(vendor, ()):
        urls.append(
            ("credentials." + ".".join(path), _credential_url(credentials or {}, path), vendor_rule)
        )
    for field, url, vendor_rule in urls:
        if url is None or url == "":
            continue
        text = str(url)
        reason = (
            custom_endpoint_refusal(vendor, text, sandbox=sandbox, policy=policy)
            if vendor_rule
            else refusal(text, policy)
        )
        if reason is not None:
            raise InvalidInput(
                f"{field} cannot be used: {reason}.", code="partner_url_not_allowed", field=field
            )


def snapshot(account: PartnerAccount) -> dict[str, Any]:
    """Audit view: never includes credentials, only whether they are set."""
    data: dict[str, Any] = {name: getattr(account, name) for name in _AUDITED}
    data["partner_discount_percent"] = format_amount(account.partner_discount_percent)
    data["has_credentials"] = account.credentials_encrypted is not None
    data["vendor"] = account.vendor
    return data


def create(
    session: Session,
    subject: AuthSubject,
    data: PartnerAccountCreate,
    secret_key: str,
    *,
    outbound: OutboundPolicy = STRICT,
) -> PartnerAccount:
    subject.require_write()
    check_outbound_urls(
        data.vendor.value,
        sandbox=data.sandbox,
        endpoint_url=str(data.endpoint_url) if data.endpoint_url else None,
        credentials=data.credentials,
        policy=outbound,
    )
    account = PartnerAccount(
        msp_id=subject.msp_id,
        vendor=data.vendor.value,
        display_name=data.display_name,
        vendor_account_id=data.vendor_account_id,
        sandbox=data.sandbox,
        endpoint_url=str(data.endpoint_url) if data.endpoint_url else None,
        partner_discount_percent=data.partner_discount_percent,
        discount_terms=data.discount_terms,
        credentials_encrypted=encrypt_json(secret_key, data.credentials)
        if data.credentials is not None
        else None,
    )
    session.add(account)
    session.flush()
    record(
        session,
        subject,
        "partner_account.created",
        "partner_account",
        account.id,
        before=None,
        after=snapshot(account),
    )
    return account


def get(session: Session, subject: AuthSubject, account_id: str) -> PartnerAccount:
    return repository.get_account(session, subject.msp_id, account_id)


def list_accounts(
    session: Session, subject: AuthSubject, *, vendor: str | None, cursor: str | None, limit: int
) -> Page[PartnerAccount]:
    stmt = select(PartnerAccount).where(PartnerAccount.msp_id == subject.msp_id)
    if vendor:
        stmt = stmt.where(PartnerAccount.vendor == vendor)
    return paginate(session, stmt, PartnerAccount.id, cursor, limit)


def update(
    session: Session,
    subject: AuthSubject,
    account_id: str,
    data: PartnerAccountUpdate,
    secret_key: str,
    *,
    outbound: OutboundPolicy = STRICT,
) -> PartnerAccount:
    subject.require_write()
    account = get(session, subject, account_id)
    before = snapshot(account)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None and name not in _NULLABLE:
            raise InvalidInput(f"{name} cannot be null.", field=name)
    if {"sandbox", "endpoint_url", "credentials"} & data.model_fields_set:
        # The account as it will be: turning sandbox off re-checks the endpoints it keeps.
        endpoint = changes.get("endpoint_url", account.endpoint_url)
        check_outbound_urls(
            account.vendor,
            sandbox=changes.get("sandbox", account.sandbox),
            endpoint_url=str(endpoint) if endpoint else None,
            credentials=changes["credentials"]
            if "credentials" in changes
            else repository.credentials_of(account, secret_key),
            policy=outbound,
        )
    credentials = changes.pop("credentials", None)
    if "credentials" in data.model_fields_set:
        account.credentials_encrypted = (
            encrypt_json(secret_key, credentials) if credentials is not None else None
        )
    for name, value in changes.items():
        if name == "endpoint_url" and value is not None:
            value = str(value)
        setattr(account, name, value)
    session.flush()
    after = snapshot(account)
    if after != before or "credentials" in data.model_fields_set:
        record(
            session,
            subject,
            "partner_account.updated",
            "partner_account",
            account.id,
            before=before,
            after=after,
        )
    return account
