"""The README's "Five minutes with the API", run verbatim: its ``sh`` blocks, in order, in one
``bash -euo pipefail`` session, against ``billbyte serve`` (the real command, in a subprocess)
on a fresh database. The charges it ends with must be the sample file's cost with the
walk-through's 15 % markup, converted at its rate — computed here from the CSV itself."""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import HOW_TO_START_PG, PG_URL, _pg_reachable

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Five minutes with the API"
SAMPLE = REPO / "examples" / "aws-cur-sample.csv"
# The README runs the repository's own installation, as `make run` sets it up.
BILLBYTE = REPO / ".venv" / "bin" / "billbyte"
SECRET_KEY = "readme-walkthrough-secret-key"

# What the walk-through sets, restated here: the plan's rule and the rate it stores.
MARKUP = Decimal("15")  # markup_percent on cost: sell = cost × (1 + 15/100)
EUR_USD = Decimal("1.0842")  # 1 EUR = 1.0842 USD, so EUR = USD / 1.0842
CENT = Decimal("0.01")


def walkthrough_script(markdown: str) -> str:
    """The section's ``sh`` blocks, exactly as written, in order."""
    assert SECTION in markdown, f"README.md has no section {SECTION!r}"
    section = markdown.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, flags=re.S | re.M)
    assert blocks, "the walk-through has no sh blocks"
    return "\n".join(blocks)


def test_script_is_the_sections_blocks_in_order() -> None:
    markdown = (
        "# T\n## Five minutes with the API\ntext\n```sh\none\n```\n```json\n{}\n```\n"
        "more\n```sh\ntwo\nthree\n```\n## Next\n```sh\nnot this\n```\n"
    )
    assert walkthrough_script(markdown) == "one\n\ntwo\nthree\n"


@dataclass
class Server:
    url: str
    env: dict[str, str]  # what the walk-through's own `billbyte` commands need too
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'billbyte.sqlite3'}"
        return
    error = _pg_reachable()
    if error:
        pytest.skip(f"PostgreSQL unreachable ({error}). {HOW_TO_START_PG}")
    schema = f"bbreadme_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    if not BILLBYTE.exists():
        pytest.fail(f"{BILLBYTE} is missing: the README runs it; `make setup` creates it")
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BILLBYTE_") and key.lower() not in ("http_proxy", "https_proxy")
    }
    env.update(
        BILLBYTE_DATABASE_URL=database_url,
        BILLBYTE_VAR_DIR=str(tmp_path / "var"),
        BILLBYTE_SECRET_KEY=SECRET_KEY,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BILLBYTE), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"billbyte serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"billbyte serve did not answer /healthz:\n{log.read_text()}")
            time.sleep(0.2)
        yield Server(url, env, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _last_charges(output: str) -> dict[str, Any]:
    """The last charges answer the walk-through printed (curl prints answers back to back)."""
    start = output.rfind('{"object":"charges"')
    assert start >= 0, f"the walk-through printed no charges:\n{output}"
    answer, _ = json.JSONDecoder().raw_decode(output, start)
    return dict(answer)


def _sample_costs() -> dict[tuple[str, str], Decimal]:
    """(service, unit) → the sample's unblended cost in USD, summed from the CSV itself."""
    cost: dict[tuple[str, str], Decimal] = {}
    with SAMPLE.open(newline="") as handle:
        for row in csv.DictReader(handle):
            assert row["lineItem/CurrencyCode"] == "USD"
            key = (row["product/ProductName"], row["pricing/unit"])
            cost[key] = cost.get(key, Decimal(0)) + Decimal(row["lineItem/UnblendedCost"])
    return cost


def _close(value: str, exact: Decimal) -> bool:
    # The engine converts at the stored rate's inverse (18 decimals) and multiplies at 24.
    return abs(Decimal(value) - exact) < Decimal("1e-12")


def test_readme_walkthrough_runs_verbatim_and_charges(server: Server, tmp_path: Path) -> None:
    walkthrough = walkthrough_script((REPO / "README.md").read_text())
    # The reader starts the server in another terminal; a block that starts one (or sets the
    # project up) would hang here or touch the repository's .venv and var/.
    for command in ("make ", "billbyte serve", "billbyte demo"):
        assert command not in walkthrough, f"a walk-through block runs {command!r}"
    script = tmp_path / "walkthrough.sh"
    script.write_text(walkthrough)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", str(script)],
        cwd=REPO,
        env={**server.env, "API": server.url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (
        f"the walk-through failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
        f"server log:\n{server.log.read_text()}"
    )
    charges = _last_charges(done.stdout)

    with SAMPLE.open(newline="") as handle:
        rows = sum(1 for _ in csv.DictReader(handle))
    assert charges["rating"]["status"] == "ok", charges["rating"]
    assert charges["rating"]["usage_lines"] == rows == 30
    assert charges["currency"] == "EUR"
    assert charges["period"] == "2023-11"

    costs = _sample_costs()
    assert sum(costs.values(), Decimal(0)) == Decimal("1.4501160237")  # as examples/README.md says
    cost_eur = {key: usd / EUR_USD for key, usd in costs.items()}
    sell_eur = {key: usd * (1 + MARKUP / 100) / EUR_USD for key, usd in costs.items()}

    lines = [line for group in charges["groups"] for line in group["lines"]]
    assert len(lines) == len(costs) == 3
    assert {(line["service_name"], line["unit"]) for line in lines} == set(costs)
    for line in lines:
        sell = sell_eur[(line["service_name"], line["unit"])]
        assert line["currency"] == "EUR" and line["billing_currency"] == "USD"
        assert _close(line["amount_exact"], sell), (line, sell)
        # each line is its exact amount rounded, or moved by less than a cent so that the
        # lines add up to the total
        assert abs(Decimal(line["amount"]) - sell) < CENT, (line, sell)
        assert [rate["date"] for rate in line["fx_rates"]] == ["2023-11-30"]

    total = sum(sell_eur.values(), Decimal(0))
    cost_total = sum(cost_eur.values(), Decimal(0))
    assert _close(charges["total_exact"], total)
    assert charges["total"] == str(total.quantize(CENT, ROUND_HALF_EVEN)) == "1.54"
    assert charges["cost_total"] == str(cost_total.quantize(CENT, ROUND_HALF_EVEN)) == "1.34"
    margin = (total - cost_total).quantize(CENT, ROUND_HALF_EVEN)
    assert charges["margin_total"] == str(margin) == "0.20"
    assert sum((Decimal(line["amount"]) for line in lines), Decimal(0)) == Decimal(charges["total"])
