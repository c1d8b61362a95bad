"""Invoicing fixtures: customers and charge lines written straight into the database
(the amounts are chosen here, so expected totals are plain sums in the tests)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from billbyte.charges.models import ChargeLine
from billbyte.invoicing import runs
from billbyte.invoicing import tasks as _tasks  # noqa: F401  (registers the job handler)
from billbyte.runtime import Runtime
from billbyte.tenancy.auth import AuthSubject
from billbyte.tenancy.roles import Role
from tests.conftest import Tenant


def add_charges(
    runtime: Runtime,
    msp_id: str,
    customer_id: str,
    period: str,
    amounts: list[str],
    *,
    currency: str = "EUR",
    billing_currency: str = "USD",
    service_name: str = "Amazon Elastic Compute Cloud",
    sub_accounts: tuple[str, ...] = ("111122223333",),
    key_prefix: str = "k",
) -> None:
    """One charge line per amount (customer currency), cycling through the sub-accounts."""
    with runtime.uow() as uow:
        for index, amount in enumerate(amounts):
            uow.session.add(
                ChargeLine(
                    msp_id=msp_id,
                    customer_id=customer_id,
                    period=period,
                    line_key=f"{key_prefix}{period}{index:04d}",
                    kind="usage",
                    vendor="aws",
                    partner_account_id=None,
                    sub_account_id=sub_accounts[index % len(sub_accounts)],
                    service_category="Compute",
                    service_name=service_name,
                    charge_category="Usage",
                    pricing_unit="Hours",
                    description=f"{service_name} / Usage",
                    quantity=Decimal(index + 1),
                    billing_currency=billing_currency,
                    cost=Decimal(amount),
                    list_cost=Decimal(amount),
                    sell=Decimal(amount),
                    currency=currency,
                    cost_local=Decimal(amount) * Decimal("0.9"),
                    list_local=Decimal(amount),
                    sell_local=Decimal(amount),
                    fx_rates=[{"date": f"{period}-01", "rate": "0.9123"}],
                    rule_ids=[],
                    first_day=f"{period}-01",
                    last_day=f"{period}-28",
                )
            )
        uow.commit()


def customer(tenant: Tenant, external_id: str, **extra: Any) -> str:
    body = {
        "external_id": external_id,
        "name": f"Kunde {external_id}",
        "currency": "EUR",
        "locale": "de_DE",
        **extra,
    }
    response = tenant.post("/v1/customers", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def admin(msp_id: str) -> AuthSubject:
    return AuthSubject(msp_id=msp_id, actor="test", role=Role.ADMIN)


def close(runtime: Runtime, msp_id: str, period: str, **kw: Any) -> Any:
    return runs.close_period(runtime, admin(msp_id), period, **kw)


@dataclass
class Billing:
    tenant: Tenant
    runtime: Runtime

    def invoices(self, **params: Any) -> list[dict[str, Any]]:
        response = self.tenant.get("/v1/invoices", params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        response = self.tenant.get(f"/v1/invoices/{invoice_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
def billing(tenant: Tenant, runtime: Runtime) -> Billing:
    return Billing(tenant, runtime)
