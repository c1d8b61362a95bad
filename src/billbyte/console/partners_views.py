"""What the partner-account pages show and do: collection status as
``GET /v1/partner-accounts/{id}/sync`` reports it, uploads through the API's own upload
(``POST /v1/usage/imports``: the same bounded body, the same spooling to disk, the same
import), and an import's reconciliation: the file's totals next to what the store holds."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, cast

from fastapi import UploadFile as ApiUploadFile
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from billbyte.auth.subject import AuthSubject
from billbyte.connectors import service as connectors
from billbyte.kit.errors import InvalidInput, NotFound
from billbyte.partners import repository as partners
from billbyte.partners import service as partner_service
from billbyte.partners.models import PartnerAccount
from billbyte.runtime import Runtime
from billbyte.usage import endpoints as usage_api
from billbyte.usage import repository as usage
from billbyte.usage import service as usage_service
from billbyte.usage.models import UsageImport
from billbyte.usage.readers.formats import READERS

ACCOUNTS_SHOWN = 500
IMPORTS_SHOWN = 20
COST_FIELDS = ("billed_cost", "effective_cost", "list_cost", "contracted_cost")


def formats() -> list[tuple[str, str]]:
    """The choices of the upload's format field: detection, or one of the readers."""
    return [("", "Detect from the file"), *((name, name) for name in sorted(READERS))]


@dataclass(frozen=True)
class PartnerRow:
    account: PartnerAccount
    sync: dict[str, Any]  # as GET /v1/partner-accounts/{id}/sync


def partner_rows(session: Session, subject: AuthSubject) -> list[PartnerRow]:
    page = partner_service.list_accounts(
        session, subject, vendor=None, cursor=None, limit=ACCOUNTS_SHOWN
    )
    return [
        PartnerRow(account, connectors.sync_status(session, subject, account.id))
        for account in page.items
    ]


@dataclass(frozen=True)
class UploadPage:
    account: PartnerAccount
    imports: list[UsageImport]  # the latest first


def upload_page(session: Session, subject: AuthSubject, account_id: str) -> UploadPage:
    account = partners.get_account(session, subject.msp_id, account_id)
    return UploadPage(
        account, usage.latest_imports(session, subject.msp_id, account.id, IMPORTS_SHOWN)
    )


def uploaded_files(files: list[Any]) -> list[UploadFile]:
    """The form's files; an empty choice or an empty file is refused before anything is
    stored (422)."""
    uploads = [f for f in files if isinstance(f, UploadFile) and (f.filename or f.size)]
    if not uploads:
        raise InvalidInput("Choose a vendor file to upload.", field="file")
    for upload in uploads:
        if not upload.size:
            raise InvalidInput(f"{upload.filename or 'The file'} is empty.", field="file")
    return uploads


def import_upload(
    runtime: Runtime,
    subject: AuthSubject,
    account_id: str,
    files: list[Any],
    *,
    format: str | None,
    report: str | None,
) -> str:
    """Import the uploaded files exactly as ``POST /v1/usage/imports`` does; returns the
    import's id. Another MSP's account is 404 before the role is checked."""
    with runtime.uow(read_only=True) as uow:
        account = partners.get_account(uow.session, subject.msp_id, account_id)
    subject.require_write()
    uploads = uploaded_files(files)
    item = usage_api.create_import(
        subject,
        runtime,
        cast(list[ApiUploadFile], uploads),  # the form's (starlette) files, as FastAPI's are
        account.id,
        format=format or None,
        report=report or None,
    )
    return item.id


@dataclass(frozen=True)
class Reconciliation:
    currency: str
    file: dict[str, Decimal]  # the import's totals: what the file held (accepted lines)
    stored: dict[str, Decimal]  # the current slices written from it
    file_lines: int
    stored_lines: int


@dataclass(frozen=True)
class ImportPage:
    account: PartnerAccount
    item: UsageImport
    reconciliation: list[Reconciliation]
    periods: list[str]


def _amounts(totals: dict[str, Any]) -> dict[str, Decimal]:
    return {field: Decimal(str(totals.get(field) or 0)) for field in COST_FIELDS}


def import_page(
    session: Session, subject: AuthSubject, account_id: str, import_id: str
) -> ImportPage:
    account = partners.get_account(session, subject.msp_id, account_id)
    item = usage_service.get_import(session, subject, import_id)
    if item.partner_account_id != account.id:
        raise NotFound("No such import for this partner account.")
    slices = usage.slices_of_import(session, subject.msp_id, item.id)
    stored: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: dict.fromkeys(COST_FIELDS, Decimal(0))
    )
    stored_lines: dict[str, int] = defaultdict(int)
    with localcontext() as context:
        context.prec = 80  # exact sums of 24-decimal amounts
        for piece in slices:
            for currency, totals in (piece.totals or {}).items():
                for field, amount in _amounts(totals).items():
                    stored[currency][field] += amount
                stored_lines[currency] += int(totals.get("lines") or 0)
    rows = []
    file_totals: dict[str, Any] = item.totals or {}
    for currency in sorted(set(file_totals) | set(stored)):
        held = file_totals.get(currency, {})
        rows.append(
            Reconciliation(
                currency=currency,
                file=_amounts(held),
                stored=dict(stored.get(currency) or dict.fromkeys(COST_FIELDS, Decimal(0))),
                file_lines=int(held.get("lines") or 0),
                stored_lines=stored_lines.get(currency, 0),
            )
        )
    return ImportPage(
        account=account,
        item=item,
        reconciliation=rows,
        periods=sorted({piece.billing_period for piece in slices}),
    )
