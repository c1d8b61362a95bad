"""``billbyte serve --workers 2``: two API processes behind one port, started and stopped as
an operator does (a process of its own, SIGINT), on SQLite and PostgreSQL; the background
work (here: rating an import) still runs, once, in the supervising process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx

from tests.cli.conftest import Cli
from tests.cli.test_serve_output import Output, _free_ports
from tests.rating.factories import PERIOD, row, write_csv


def _api_children(parent: int) -> list[int]:
    """The processes uvicorn's supervisor started (multiprocessing ``spawn`` children; its
    resource tracker excepted)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # ended meanwhile
        parent_of = int(stat.rsplit(")", 1)[1].split()[1])
        if parent_of == parent and "spawn_main" in command:
            found.append(int(entry.name))
    return found


def test_two_workers_serve_the_api_and_stop_cleanly(cli: Cli, tmp_path: Path) -> None:
    created = json.loads(cli.ok("msp", "create", "--name", "Alpha Hosting", "--json").stdout)
    headers = {"Authorization": f"Bearer {created['api_key']}"}
    [port] = _free_ports(1)
    env = {k: v for k, v in {**os.environ, **cli.env}.items() if v is not None}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "billbyte.cli", "serve", "--workers", "2"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    base = f"http://127.0.0.1:{port}"
    try:
        output.until("BillByte is running:", 180)  # printed once a worker answers
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        workers = _api_children(process.pid)
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            workers = _api_children(process.pid)
        assert len(workers) == 2, workers

        with httpx.Client(base_url=base, headers=headers, timeout=30) as api:
            assert api.get("/v1/customers").json()["data"] == []
            assert (
                api.get("/v1/customers", headers={"Authorization": "Bearer bb_x_y"}).status_code
                == 401
            )
            partner = api.post(
                "/v1/partner-accounts", json={"vendor": "aws", "display_name": "payer"}
            ).json()["id"]
            customer = api.post(
                "/v1/customers", json={"external_id": "C-1", "name": "Acme", "currency": "USD"}
            ).json()["id"]
            linked = api.post(
                f"/v1/customers/{customer}/vendor-accounts",
                json={"partner_account_id": partner, "vendor_identifier": "111111111111"},
            )
            assert linked.status_code == 201, linked.text
            plan = {
                "name": "std",
                "is_default": True,
                "rules": [{"adjustment": "markup_percent", "value": "10"}],
            }
            assert api.post("/v1/price-plans", json=plan).status_code == 201
            usage = write_csv(tmp_path / "usage.csv", [row("10"), row("2.5", day=2)])
            with usage.open("rb") as handle:
                imported = api.post(
                    "/v1/usage/imports",
                    data={"partner_account_id": partner},
                    files={"file": ("usage.csv", handle)},
                )
            assert imported.status_code == 201, imported.text
            # Rated by the supervising process's job thread: (10 + 2.5) × 1.10.
            url = f"/v1/customers/{customer}/charges"
            deadline = time.monotonic() + 120
            while True:
                charges = api.get(url, params={"period": PERIOD}).json()
                if charges["groups"] or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert Decimal(charges["total"]) == Decimal("13.75"), charges
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    lines = output.rest(2)
    assert code == 0, "\n".join(lines)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert "Traceback" not in "\n".join(lines)
