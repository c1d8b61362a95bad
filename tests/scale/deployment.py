"""BillByte processes as an operator starts them: ``billbyte serve`` and ``billbyte worker``,
each a subprocess with its own environment, local directory and JSON log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from billbyte.db.engine import make_engine, session_factory
from billbyte.db.migrate import upgrade
from billbyte.tenancy import service as tenancy

SRC = Path(__file__).resolve().parents[2] / "src"
SECRET_KEY = "scale-out-test-secret-key"
START_SECONDS = 90.0
STOP_SECONDS = 30.0
NO_LIMIT = "1000000/minute"  # the driver sends a few thousand requests a minute from one IP


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    cpu: float = 0.0  # CPU seconds it used, measured when it is stopped

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records (BILLBYTE_LOG_FORMAT=json) among the process's output."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def job_ids(self) -> set[str]:
        return {r["job_id"] for r in self.records() if "job_id" in r}

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (Linux /proc; 0 elsewhere): reported, never asserted."""
        try:
            fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def problems(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("level") in ("ERROR", "CRITICAL")]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def base_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of every process: this test's sources, no BILLBYTE_* or proxy from the
    caller, JSON logs, loopback webhooks allowed and rate limits out of the way."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BILLBYTE_", "AWS_"))
        and key.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(
        PYTHONPATH=str(SRC),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        BILLBYTE_DATABASE_URL=database_url,
        BILLBYTE_SECRET_KEY=SECRET_KEY,
        BILLBYTE_LOG_FORMAT="json",
        BILLBYTE_OUTBOUND_ALLOW_PRIVATE="1",
        BILLBYTE_OUTBOUND_ALLOW_HTTP="1",
        BILLBYTE_OUTBOUND_ALLOWED_PORTS="*",
        BILLBYTE_RATE_LIMIT_PER_IP=NO_LIMIT,
        BILLBYTE_RATE_LIMIT_PER_KEY=NO_LIMIT,
        BILLBYTE_RATE_LIMIT_FAILED_AUTH_PER_IP=NO_LIMIT,
    )
    env.update(settings)
    return env


def start(name: str, args: list[str], env: dict[str, str], directory: Path) -> Process:
    """``billbyte ARGS`` in ``directory`` (its own var/), output to ``directory/NAME.log``."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "billbyte.cli", *args],
            cwd=directory,
            env={**env, "BILLBYTE_VAR_DIR": str(directory / "var")},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Process(name, popen, log)


def wait_until_serving(process: Process, url: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.name} exited:\n{process.log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{process.name} did not answer /healthz:\n{process.log.read_text()}"
            )
        time.sleep(0.2)


def wait_until_logged(process: Process, text: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while text not in process.log.read_text(errors="replace"):
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.name} exited:\n{process.log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{process.name} never said {text!r}:\n{process.log.read_text()}")
        time.sleep(0.2)


def stop(processes: list[Process]) -> None:
    """SIGTERM (a worker finishes its job and stops; uvicorn drains), then SIGKILL if stuck."""
    for process in processes:
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.popen.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()


@dataclass
class Deployment:
    url: str
    engine: Engine
    api: Process
    workers: list[Process]

    def create_msps(self, names: list[str]) -> dict[str, tuple[str, str]]:
        """What ``billbyte msp create`` does (the operator's step, not the MSP's API): name →
        (MSP id, admin API key)."""
        out = {}
        with session_factory(self.engine)() as session:
            for name in names:
                msp, issued = tenancy.create_msp(session, name)
                out[name] = (msp.id, issued.secret)
            session.commit()
        return out


@contextmanager
def deployed(
    database_url: str, directory: Path, workers: int, **settings: str
) -> Iterator[Deployment]:
    """The database migrated (``billbyte migrate``), then one ``billbyte serve`` and
    ``workers`` ``billbyte worker`` processes started together, all with the same settings;
    stopped at the end, their output kept."""
    engine = make_engine(database_url)
    upgrade(engine)
    env = base_env(database_url, **settings)
    port = free_port()
    api = start("api", ["serve", "--port", str(port)], env, directory / "api")
    processes = [api] + [
        start(f"worker-{n}", ["worker"], env, directory / f"worker-{n}")
        for n in range(1, workers + 1)
    ]
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(api, url)
        for worker in processes[1:]:
            wait_until_logged(worker, "worker running")
        yield Deployment(url, engine, api, processes[1:])
    finally:
        for process in processes:
            process.cpu = process.cpu_seconds()
        stop(processes)
        engine.dispose()
