"""Fixtures for ingestion tests: an MSP with a partner account per vendor, and an importer."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.partners import service as partners
from billbyte.partners.schemas import PartnerAccountCreate
from billbyte.runtime import Runtime
from billbyte.tenancy import service as tenancy
from billbyte.usage import service as usage
from billbyte.usage.models import UsageImport

DATA = Path(__file__).resolve().parent.parent / "data" / "vendor"


@dataclass
class Importer:
    runtime: Runtime
    subject: AuthSubject
    partner_accounts: dict[str, str]

    def __call__(
        self, *paths: Path, vendor: str = "aws", fmt: str | None = None, report: str | None = None
    ) -> UsageImport:
        return usage.import_files(
            self.runtime,
            self.subject,
            self.partner_accounts[vendor],
            [(p, p.name) for p in paths],
            requested_format=fmt,
            report=report,
        )

    def summary(self, period: str, vendor: str = "aws", group_by: str = "sub_account") -> dict:
        with self.runtime.uow() as uow:
            return usage.summary(
                self.runtime,
                uow.session,
                self.subject,
                period=period,
                partner_account_id=self.partner_accounts[vendor],
                group_by=group_by,
            )


@pytest.fixture
def importer(runtime: Runtime) -> Importer:
    with runtime.uow() as uow:
        msp, _ = tenancy.create_msp(uow.session, "Ingest MSP")
        subject = AuthSubject(msp_id=msp.id, actor="test", role=Role.ADMIN)
        accounts = {}
        for vendor in ("aws", "azure", "gcp", "microsoft365"):
            account = partners.create(
                uow.session,
                subject,
                PartnerAccountCreate(vendor=vendor, display_name=f"{vendor} partner"),
                runtime.secret_key,
            )
            accounts[vendor] = account.id
        uow.commit()
    return Importer(runtime, subject, accounts)


def read_rows(path: Path) -> list[dict[str, str]]:
    """The raw file as dicts, read with the standard library only (the independent side)."""
    opener: Callable[..., Iterable[str]] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:  # type: ignore[call-overload]
        return list(csv.DictReader(handle))


NULLS = {"", "NULL", "null", "None", "NaN", "nan", "N/A", "-"}


def dec(value: str | None) -> Decimal:
    """A raw cell as Decimal, with the null spellings as zero (independent of the reader)."""
    if value is None or value.strip() in NULLS:
        return Decimal(0)
    return Decimal(value.strip())


def sum_by(rows: Iterable[dict[str, str]], currency_col: str, cost_col: str) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for row in rows:
        currency = row[currency_col].strip().upper()
        totals[currency] = totals.get(currency, Decimal(0)) + dec(row[cost_col])
    return totals


def stored(imported: UsageImport, column: str = "billed_cost") -> dict[str, Decimal]:
    return {cur: Decimal(cols[column]) for cur, cols in imported.totals.items()}
