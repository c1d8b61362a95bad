"""Runs in other processes: a run killed half-way is finished by the next one, and two runs
started at once against PostgreSQL give each customer exactly one invoice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from billbyte.charges.models import ChargeLine
from billbyte.customers.models import Customer
from billbyte.invoicing.models import Invoice
from billbyte.runtime import Runtime
from tests.conftest import Tenant


def _url(runtime: Runtime) -> str:
    rendered = runtime.engine.url.render_as_string(hide_password=False)
    if runtime.engine.dialect.name == "postgresql":
        # Tests run PostgreSQL in a private schema; pass it via the libpq options.
        with runtime.engine.connect() as connection:
            path = connection.exec_driver_sql("SHOW search_path").scalar()
        rendered += ("&" if "?" in rendered else "?") + f"options=-csearch_path%3D{path}"
    return rendered


def _env(runtime: Runtime) -> dict[str, str]:
    return {
        **os.environ,
        "BILLBYTE_DATABASE_URL": _url(runtime),
        "BILLBYTE_VAR_DIR": str(runtime.settings.var_dir),
        "BILLBYTE_SECRET_KEY": runtime.secret_key,
    }


def _customers_with_charges(runtime: Runtime, msp_id: str, count: int, lines: int) -> list[str]:
    """Customers and their September charge lines, written straight into the tables."""
    ids = [f"cus_T{index:06d}" for index in range(count)]
    with runtime.uow() as uow:
        uow.session.execute(
            insert(Customer),
            [
                {"id": cid, "msp_id": msp_id, "external_id": cid, "name": cid, "currency": "EUR"}
                for cid in ids
            ],
        )
        uow.session.execute(
            insert(ChargeLine),
            [
                {
                    "msp_id": msp_id,
                    "customer_id": cid,
                    "period": "2026-09",
                    "line_key": f"k{line:03d}",
                    "vendor": "aws",
                    "service_name": f"Service {line % 7}",
                    "sub_account_id": f"{100 + line % 3}",
                    "description": f"Service {line % 7} / Usage",
                    "quantity": 1,
                    "billing_currency": "EUR",
                    "cost": 1,
                    "list_cost": 1,
                    "sell": 1,
                    "currency": "EUR",
                    "cost_local": 1,
                    "list_local": 1,
                    "sell_local": f"1.{line:03d}5",
                }
                for cid in ids
                for line in range(lines)
            ],
        )
        uow.commit()
    return ids


def _close_command(msp_id: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "billbyte.cli",
        "invoices",
        "close",
        "--period",
        "2026-09",
        "--msp",
        msp_id,
        "--json",
    ]


def _invoices(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.uow() as uow:
        return [(c, n) for c, n in uow.session.execute(select(Invoice.customer_id, Invoice.number))]


def _assert_one_each(runtime: Runtime, customers: list[str]) -> None:
    invoices = _invoices(runtime)
    assert sorted(c for c, _ in invoices) == sorted(customers)  # one per customer
    numbers = sorted(n for _, n in invoices)
    assert numbers == [f"INV-{n:06d}" for n in range(1, len(customers) + 1)]  # gap-free


def test_a_run_killed_half_way_is_finished_by_the_next(tenant: Tenant, runtime: Runtime) -> None:
    # Enough customers that the run is still going when it is killed, even on a fast machine.
    customers = _customers_with_charges(runtime, tenant.msp_id, 1500, 2)
    env = _env(runtime)
    process = subprocess.Popen(
        _close_command(tenant.msp_id), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        # A reader: on SQLite a writer's unit of work would queue behind the run's batches
        # and only get its turn once the run was over.
        with runtime.uow(read_only=True) as uow:
            if (uow.session.scalar(select(func.count()).select_from(Invoice)) or 0) >= 20:
                break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    _, err = process.communicate()
    done = len(_invoices(runtime))
    assert 20 <= done < len(customers), f"not killed half-way ({done} done): {err!r}"

    rerun = subprocess.run(_close_command(tenant.msp_id), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    (result,) = json.loads(rerun.stdout)["data"]
    assert result["invoices_created"] == len(customers) - done
    assert result["already_closed"] == done
    _assert_one_each(runtime, customers)
    runs = tenant.get("/v1/invoice-runs").json()["data"]
    assert sorted(r["status"] for r in runs) == ["completed", "running"]  # the killed one


def test_two_runs_at_once_give_one_invoice_per_customer(
    tenant: Tenant, runtime: Runtime, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("row locks and concurrent writers: PostgreSQL's case")
    customers = _customers_with_charges(runtime, tenant.msp_id, 800, 3)
    env = _env(runtime)
    processes = [
        subprocess.Popen(
            _close_command(tenant.msp_id),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results: list[dict[str, Any]] = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results += json.loads(out)["data"]
    assert sum(r["invoices_created"] for r in results) == len(customers)
    for result in results:  # each run accounted for every customer, once
        assert result["invoices_created"] + result["already_closed"] == len(customers)
        assert result["failed"] == 0
    _assert_one_each(runtime, customers)
