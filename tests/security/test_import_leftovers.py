"""Issue #9 finding 5 (usage part): what a killed import leaves behind.

After ``kill -9`` during an import the row stayed ``processing`` for 6 hours and partial
uploads under ``_uploads`` were never collected. Here a killed import is simulated exactly
as the kill leaves it (a processing row whose heartbeat stopped, its work folder, an orphan
slice file, the request's upload folder, all with old mtimes), and once for real: a CLI
import subprocess killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.kit.clock import utcnow
from billbyte.partners import service as partners
from billbyte.partners.schemas import PartnerAccountCreate
from billbyte.runtime import Runtime
from billbyte.tenancy import service as tenancy
from billbyte.usage import service as usage
from billbyte.usage import store
from billbyte.usage.models import UsageImport
from tests.cli.conftest import Cli, cli  # noqa: F401  (the CLI fixture, reused)
from tests.usage.generate import write_focus

SRC = Path(__file__).resolve().parents[2] / "src"
TWENTY_MINUTES = 20 * 60


def _account(runtime: Runtime) -> tuple[AuthSubject, str]:
    with runtime.uow() as uow:
        msp, _ = tenancy.create_msp(uow.session, "Leftovers MSP")
        subject = AuthSubject(msp_id=msp.id, actor="test", role=Role.ADMIN)
        account = partners.create(
            uow.session,
            subject,
            PartnerAccountCreate(vendor="aws", display_name="payer"),
            runtime.secret_key,
        )
        uow.commit()
        return subject, account.id


def _summary(runtime: Runtime, subject: AuthSubject, pa: str) -> dict[str, Decimal]:
    with runtime.uow() as uow:
        result = usage.summary(
            runtime,
            uow.session,
            subject,
            period="2026-10",
            partner_account_id=pa,
            group_by="sub_account",
        )
    return {c: Decimal(t["billed_cost"]) for c, t in result["totals"].items()}


def _age(path: Path, seconds: int) -> None:
    """Back-date a file or folder (and everything in it) as a kill long ago leaves it."""
    then = time.time() - seconds
    for item in [*path.rglob("*"), path]:
        os.utime(item, (then, then))


def _killed_import(runtime: Runtime, subject: AuthSubject, pa: str) -> dict[str, Path]:
    """Exactly what a kill -9 in the middle of a web import leaves."""
    root = runtime.settings.usage_store_dir
    with runtime.uow() as uow:
        item = UsageImport(
            msp_id=subject.msp_id,
            partner_account_id=pa,
            actor="test",
            files=[{"name": "big.csv"}],
            # The kill stopped it before its first heartbeat: only its creation time is known.
            created_at=utcnow() - timedelta(minutes=20),
        )
        uow.session.add(item)
        uow.commit()
        killed = item.id
    work = root / "_work" / killed / "staged"
    work.mkdir(parents=True)
    (work / "0123456789abcdef-0.csv").write_bytes(b"a,b\n" * 10_000)
    orphan = root / subject.msp_id / pa / "2026-10" / "0000000000000000" / f"{killed}.parquet"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"PAR1 partial")
    upload = root / "_uploads" / "upload-killed"
    upload.mkdir(parents=True)
    (upload / "0-big.csv").write_bytes(b"x" * 100_000)
    for path in (root / "_work" / killed, orphan, upload):
        _age(path, TWENTY_MINUTES)
    return {"id": Path(killed), "work": root / "_work" / killed, "orphan": orphan, "upload": upload}


def test_killed_import_is_failed_and_its_leftovers_collected(
    runtime: Runtime, tmp_path: Path
) -> None:
    subject, pa = _account(runtime)
    first = tmp_path / "first.csv"
    expected = write_focus(first, 200, seed=5)
    usage.import_files(runtime, subject, pa, [(first, first.name)])
    totals = _summary(runtime, subject, pa)
    assert totals == {"USD": expected["BilledCost"]}

    left = _killed_import(runtime, subject, pa)
    killed = str(left["id"])
    # A live upload of another request, written just now, must survive gc.
    live = runtime.settings.usage_store_dir / "_uploads" / "upload-live"
    live.mkdir()
    (live / "0-live.csv").write_bytes(b"a,b\n")

    # The next import of the partner account proceeds and fails the abandoned one.
    again = tmp_path / "again.csv"
    write_focus(again, 200, seed=5)
    second = usage.import_files(runtime, subject, pa, [(again, again.name)])
    assert second.status == "completed" and second.outcome == "unchanged"
    with runtime.uow() as uow:
        row = uow.session.get(UsageImport, killed)
        assert row is not None
        assert row.status == "failed"
        assert row.message is not None and "interrupted" in row.message
        assert "nothing of it was stored" in row.message
        assert row.completed_at is not None

    collected = store.collect_garbage(runtime)
    root = runtime.settings.usage_store_dir
    assert collected.upload_folders == ["_uploads/upload-killed"]
    assert collected.work_folders == [f"_work/{killed}"]
    assert collected.slice_files == [str(left["orphan"].relative_to(root))]
    assert collected.bytes_freed >= 100_000 + 40_000
    assert not left["upload"].exists() and not left["work"].exists()
    assert not left["orphan"].exists()
    assert live.exists()
    assert _summary(runtime, subject, pa) == totals


def test_gc_alone_fails_abandoned_imports(runtime: Runtime) -> None:
    subject, pa = _account(runtime)
    left = _killed_import(runtime, subject, pa)
    collected = store.collect_garbage(runtime)
    assert collected.failed_imports == [str(left["id"])]
    assert not left["work"].exists() and not left["upload"].exists()


def test_a_live_import_with_a_heartbeat_is_not_failed(runtime: Runtime) -> None:
    subject, pa = _account(runtime)
    left = _killed_import(runtime, subject, pa)
    killed = str(left["id"])
    beat = usage.Heartbeat(runtime, killed, keep_fresh=[left["upload"]])
    beat.beat()  # the importing process is alive after all: it just beat
    collected = store.collect_garbage(runtime)
    assert collected.failed_imports == [] and collected.upload_folders == []
    assert left["work"].exists() and left["upload"].exists() and left["orphan"].exists()
    with runtime.uow() as uow:
        assert uow.session.get(UsageImport, killed).status == "processing"  # type: ignore[union-attr]
    # ... and once it stops beating for longer than the threshold, it is failed.
    with runtime.uow() as uow:
        uow.session.execute(
            update(UsageImport)
            .where(UsageImport.id == killed)
            .values(heartbeat_at=utcnow() - timedelta(minutes=16))
        )
        uow.commit()
    assert store.collect_garbage(runtime).failed_imports == [killed]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_kill_9_during_a_cli_import(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    """A real SIGKILL of ``billbyte usage import`` while it works on a big file."""
    big = tmp_path / "big.csv"
    expected = write_focus(big, 250_000, seed=11)
    small = tmp_path / "small.csv"
    small_expected = write_focus(small, 50, seed=12)
    runtime = cli.settings()
    from billbyte.db.migrate import ensure_schema
    from billbyte.runtime import build_runtime

    rt = build_runtime(runtime)
    ensure_schema(rt.engine)
    subject, pa = _account(rt)
    env = {
        **{k: v for k, v in cli.env.items() if v is not None},
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(SRC),
    }
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "billbyte.cli",
            "usage",
            "import",
            str(big),
            "--partner-account",
            pa,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    work = cli.var_dir / "usage" / "_work"
    deadline = time.monotonic() + 120
    # The import's work folder exists from its start (a plain CSV is read in place: no copy).
    while time.monotonic() < deadline and not (work.exists() and any(work.iterdir())):
        time.sleep(0.05)
    assert child.poll() is None, "the import finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    with rt.uow() as uow:
        rows = list(uow.session.query(UsageImport))
        assert [r.status for r in rows] == ["processing"]
        killed = rows[0].id
        # As if 16 minutes had passed since it was last heard of (the columns that exist:
        # so that this test also runs, and fails, against the code before the fix).
        then = utcnow() - timedelta(minutes=16)
        heard = {c: then for c in ("created_at", "heartbeat_at") if c in UsageImport.__table__.c}
        uow.session.execute(update(UsageImport).where(UsageImport.id == killed).values(**heard))
        uow.commit()
    assert (work / killed).exists()

    result = cli.run("usage", "import", str(small), "--partner-account", pa)
    assert result.exit_code == 0, result.output
    result = cli.run("usage", "gc")
    assert result.exit_code == 0, result.output
    assert f"removed work folder _work/{killed}" in result.output
    assert not (work / killed).exists()
    with rt.uow() as uow:
        row = uow.session.get(UsageImport, killed)
        assert row is not None and row.status == "failed" and "interrupted" in (row.message or "")
    assert _summary(rt, subject, pa) == {"USD": small_expected["BilledCost"]}
    assert expected  # the big file's lines never became visible
