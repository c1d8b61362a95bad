"""The throw-away installation the charges and portal benchmarks share: one MSP, an AWS
partner account, one customer "Big Corp" (USD) with ``accounts`` linked AWS accounts, and a
default plan of cost + 12.5 %, all through the real API in-process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from billbyte.app import create_app
from billbyte.db.engine import make_engine
from billbyte.db.migrate import upgrade
from billbyte.runtime import Runtime
from billbyte.settings import Settings
from billbyte.tenancy import service as tenancy


@dataclass(frozen=True)
class Installation:
    runtime: Runtime
    msp_id: str
    api: TestClient
    headers: dict[str, str]
    partner_account_id: str
    customer_id: str


@dataclass(frozen=True)
class Tenant:
    """An MSP with its admin key and an AWS partner account, nothing else yet."""

    runtime: Runtime
    msp_id: str
    api: TestClient
    headers: dict[str, str]
    partner_account_id: str


def tenant(work: Path, database_url: str | None, payer: str = "payer") -> Tenant:
    """A migrated database (SQLite under ``work`` unless ``database_url``) with one MSP."""
    engine = make_engine(database_url or f"sqlite:///{work / 'bench.sqlite3'}")
    upgrade(engine)
    runtime = Runtime(Settings(var_dir=work / "var", secret_key="bench"), engine, "bench")
    with runtime.uow() as uow:
        msp, key = tenancy.create_msp(uow.session, "bench")
        uow.commit()
    api = TestClient(create_app(runtime))
    headers = {"Authorization": f"Bearer {key.secret}"}
    pa = api.post(
        "/v1/partner-accounts", headers=headers, json={"vendor": "aws", "display_name": payer}
    ).json()["id"]
    return Tenant(runtime, msp.id, api, headers, pa)


def default_plan(world: Tenant) -> None:
    """The MSP's default plan: cost + 12.5 %."""
    plan = world.api.post(
        "/v1/price-plans",
        headers=world.headers,
        json={
            "name": "std",
            "is_default": True,
            "rules": [{"adjustment": "markup_percent", "value": "12.5"}],
        },
    )
    assert plan.status_code == 201, plan.text


def build(work: Path, database_url: str | None, accounts: int = 20) -> Installation:
    world = tenant(work, database_url)
    api, headers, pa = world.api, world.headers, world.partner_account_id
    customer = api.post(
        "/v1/customers",
        headers=headers,
        json={"external_id": "BIG", "name": "Big Corp", "currency": "USD"},
    ).json()["id"]
    for index in range(accounts):
        api.post(
            f"/v1/customers/{customer}/vendor-accounts",
            headers=headers,
            json={"partner_account_id": pa, "vendor_identifier": str(100000000000 + index)},
        )
    default_plan(world)
    return Installation(world.runtime, world.msp_id, api, headers, pa, customer)
