"""Restatement, re-delivery, crashes and concurrent readers: totals stay exact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from billbyte.usage.models import UsageImport, UsageSlice
from tests.usage.conftest import Importer
from tests.usage.generate import write_focus


def billed(summary: dict) -> Decimal:
    return Decimal(summary["totals"].get("USD", {}).get("billed_cost", "0"))


def current_slices(importer: Importer) -> int:
    with importer.runtime.uow() as uow:
        return int(
            uow.session.scalar(
                select(func.count()).select_from(UsageSlice).where(UsageSlice.is_current.is_(True))
            )
            or 0
        )


def test_restated_file_replaces_the_slice(importer: Importer, tmp_path: Path) -> None:
    original = tmp_path / "cur-2026-10.csv"
    restated = tmp_path / "cur-2026-10-restated.csv"
    first = write_focus(original, 500, seed=1)
    second = write_focus(restated, 480, seed=2)
    assert first["BilledCost"] != second["BilledCost"]
    importer(original)
    assert billed(importer.summary("2026-10")) == first["BilledCost"]
    result = importer(restated)
    assert result.slices_replaced == 1
    assert billed(importer.summary("2026-10")) == second["BilledCost"]
    assert current_slices(importer) == 1
    # Re-delivering the original again is a newer delivery of that content: it wins.
    importer(original)
    assert billed(importer.summary("2026-10")) == first["BilledCost"]


def test_slices_of_other_periods_and_accounts_are_untouched(
    importer: Importer, tmp_path: Path
) -> None:
    october = write_focus(tmp_path / "a.csv", 50, seed=3, period="2026-10")
    november = write_focus(tmp_path / "b.csv", 60, seed=4, period="2026-11")
    other_account = write_focus(
        tmp_path / "c.csv", 70, seed=5, period="2026-10", billing_account="777"
    )
    importer(tmp_path / "a.csv")
    importer(tmp_path / "b.csv")
    importer(tmp_path / "c.csv")
    assert (
        billed(importer.summary("2026-10")) == october["BilledCost"] + other_account["BilledCost"]
    )
    assert billed(importer.summary("2026-11")) == november["BilledCost"]


def test_duplicate_rows_are_reported_and_stored_once(importer: Importer, tmp_path: Path) -> None:
    path = tmp_path / "dups.csv"
    expected = write_focus(path, 40, seed=6)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines + lines[1:6]))
    result = importer(path)
    assert result.duplicate_rows == 5 and result.rows_read == 45
    assert result.rows_accepted == 40
    assert billed(importer.summary("2026-10")) == expected["BilledCost"]


def test_readers_see_the_old_or_the_new_slice_never_a_mix(
    importer: Importer, tmp_path: Path
) -> None:
    versions = []
    for seed in (11, 12):
        path = tmp_path / f"v{seed}.csv"
        versions.append((path, write_focus(path, 3000, seed=seed)["BilledCost"]))
    importer(versions[0][0])
    seen: list[Decimal] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(billed(importer.summary("2026-10")))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for index in range(4):
            importer(versions[(index + 1) % 2][0])
    finally:
        stop.set()
        watcher.join()
    allowed = {versions[0][1], versions[1][1]}
    assert seen and set(seen) <= allowed


@pytest.mark.parametrize("delay", [0.3, 0.9, 1.6, 2.4])
def test_import_killed_midway_then_rerun_is_exact(
    importer: Importer, tmp_path: Path, backend: str, delay: float
) -> None:
    """SIGKILL the CLI import at some point; whatever was visible before stays or the new
    data is complete; re-running gives the exact total and no duplicate lines."""
    old = tmp_path / "old.csv"
    new = tmp_path / "new.csv"
    old_total = write_focus(old, 2000, seed=21)["BilledCost"]
    new_total = write_focus(new, 60000, seed=22)["BilledCost"]
    importer(old)
    env = {
        **os.environ,
        "BILLBYTE_DATABASE_URL": _url(importer),
        "BILLBYTE_VAR_DIR": str(importer.runtime.settings.var_dir),
        "BILLBYTE_SECRET_KEY": importer.runtime.secret_key,
    }
    command = [
        sys.executable,
        "-m",
        "billbyte.cli",
        "usage",
        "import",
        str(new),
        "--partner-account",
        importer.partner_accounts["aws"],
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(delay)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait()
    assert billed(importer.summary("2026-10")) in {old_total, new_total}
    assert current_slices(importer) == 1
    rerun = subprocess.run(command, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    summary = importer.summary("2026-10")
    assert billed(summary) == new_total
    assert summary["totals"]["USD"]["lines"] == "60000"
    assert current_slices(importer) == 1
    with importer.runtime.uow() as uow:
        statuses = set(uow.session.scalars(select(UsageImport.status)))
    assert "completed" in statuses


def _url(importer: Importer) -> str:
    url = importer.runtime.engine.url
    rendered = url.render_as_string(hide_password=False)
    schema = importer.runtime.engine.dialect.name == "postgresql"
    if schema:
        # Tests run PostgreSQL in a private schema; pass it via the libpq options.
        with importer.runtime.engine.connect() as connection:
            path = connection.exec_driver_sql("SHOW search_path").scalar()
        separator = "&" if "?" in rendered else "?"
        rendered += f"{separator}options=-csearch_path%3D{path}"
    return rendered
