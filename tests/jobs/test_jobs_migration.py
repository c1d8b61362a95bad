"""Migration 0020 names the MSP of the jobs already in the table, from what their payload
points at, on SQLite and PostgreSQL: the jobs of two MSPs, made by the API as any MSP's are,
lose their ``msp_id`` with a downgrade and get the right one back with the upgrade."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from billbyte.db.migrate import _config, upgrade
from billbyte.jobs import service
from billbyte.jobs.models import Job
from billbyte.runtime import Runtime
from tests.api.factories import make_customer, make_partner
from tests.conftest import Tenant

REVISION = "0022_jobs_msp"


def job_ids(runtime: Runtime) -> set[str]:
    with runtime.uow(read_only=True) as uow:
        return set(uow.session.scalars(select(Job.id)))


def make_jobs_of(runtime: Runtime, tenant: Tenant, external_id: str) -> set[str]:
    """Jobs of every MSP kind the API makes without a vendor: provisioning, collection,
    service action, invoice run and rating; returns their ids."""
    before = job_ids(runtime)
    partner = make_partner(tenant, "aws", sandbox=True)
    customer = make_customer(tenant, external_id, vendors=["aws"])
    assert tenant.post(f"/v1/partner-accounts/{partner['id']}/collect").status_code == 202
    suspended = tenant.post(f"/v1/customers/{customer['id']}/suspend", json={"reason": "test"})
    assert suspended.status_code == 202, suspended.text
    run = tenant.post("/v1/invoice-runs", json={"period": "2026-10", "force": True})
    assert run.status_code in (201, 202), run.text
    with runtime.uow() as uow:  # a suspension and a rating request, as credit control and
        # usage make them
        service.enqueue(
            uow.session, "suspension", f"{customer['id']}", {"customer_id": customer["id"]}
        )
        service.enqueue(uow.session, "rate", f"{tenant.msp_id}:*", {"msp_id": tenant.msp_id})
        uow.commit()
    made = job_ids(runtime) - before
    with runtime.uow(read_only=True) as uow:
        kinds = set(uow.session.scalars(select(Job.kind).where(Job.id.in_(made))))
    assert kinds == {"provision", "collect", "service_action", "invoice_run", "suspension", "rate"}
    return made


@pytest.mark.storage
def test_the_migration_names_the_msp_of_existing_jobs(
    runtime: Runtime, tenant: Tenant, other_tenant: Tenant
) -> None:
    expected = dict.fromkeys(make_jobs_of(runtime, tenant, "C-1"), tenant.msp_id)
    expected |= dict.fromkeys(make_jobs_of(runtime, other_tenant, "C-2"), other_tenant.msp_id)
    with runtime.uow() as uow:
        service.enqueue(uow.session, "system_test", "x", {})
        uow.commit()
    [system_job] = job_ids(runtime) - set(expected)
    expected[system_job] = None
    try:
        upgrade_from_0019(runtime)
    finally:
        upgrade(runtime.engine)  # the schema other tests of this process share (PostgreSQL)
    with runtime.uow(read_only=True) as uow:
        actual = {job_id: msp for job_id, msp in uow.session.execute(select(Job.id, Job.msp_id))}
    assert actual == expected


def upgrade_from_0019(runtime: Runtime) -> None:
    """Down to the revision before 0020 (whatever it is numbered at merge), then up to it."""
    config = _config(runtime.engine)
    before = ScriptDirectory.from_config(config).get_revision(REVISION).down_revision
    assert isinstance(before, str)
    command.downgrade(config, before)
    with runtime.engine.connect() as connection:
        columns = connection.execute(text("SELECT * FROM jobs")).keys()
    assert "msp_id" not in columns
    upgrade(runtime.engine, REVISION)
