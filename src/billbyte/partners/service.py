from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.audit.service import record
from billbyte.kit.crypto import decrypt_json, encrypt_json
from billbyte.kit.errors import InvalidInput, NotFound
from billbyte.kit.pagination import Page, paginate
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


def snapshot(account: PartnerAccount) -> dict[str, Any]:
    """Audit view: never includes credentials, only whether they are set."""
    data: dict[str, Any] = {name: getattr(account, name) for name in _AUDITED}
    data["partner_discount_percent"] = format(account.partner_discount_percent, "f")
    data["has_credentials"] = account.credentials_encrypted is not None
    data["vendor"] = account.vendor
    return data


def create(
    session: Session, subject: AuthSubject, data: PartnerAccountCreate, secret_key: str
) -> PartnerAccount:
    subject.require_write()
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
    account = session.scalar(
        select(PartnerAccount).where(
            PartnerAccount.id == account_id, PartnerAccount.msp_id == subject.msp_id
        )
    )
    if account is None:
        raise NotFound(f"No partner account {account_id!r}.", code="partner_account_not_found")
    return account


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
) -> PartnerAccount:
    subject.require_write()
    account = get(session, subject, account_id)
    before = snapshot(account)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None and name not in _NULLABLE:
            raise InvalidInput(f"{name} cannot be null.", field=name)
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


def credentials_of(account: PartnerAccount, secret_key: str) -> dict[str, Any] | None:
    """For connectors only; never exposed through the API."""
    if account.credentials_encrypted is None:
        return None
    return decrypt_json(secret_key, account.credentials_encrypted)
