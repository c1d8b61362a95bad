"""What ``billbyte serve --sandbox`` (``make run``) prints: once the sandboxes and the server
are up, one block with the addresses, the demo's sign-ins and its API key, last; the
simulated vendor requests are not logged at the default level (issue 12: the key scrolled
away among sandbox log lines). Run as a person runs it: a process of its own, on free ports."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.cli.conftest import Cli

# A line per simulated request: httpx's client log, uvicorn's access log of a simulator.
REQUEST_LINE = re.compile(r'HTTP Request:|"(GET|POST|PATCH|PUT|DELETE) /')


def _free_ports(count: int) -> list[int]:
    holders = [socket.socket() for _ in range(count)]
    try:
        for holder in holders:
            holder.bind(("127.0.0.1", 0))
        return [holder.getsockname()[1] for holder in holders]
    finally:
        for holder in holders:
            holder.close()


class Output:
    """The process's stdout and stderr, merged, read line by line in a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        stream = process.stdout

        def read() -> None:
            for line in stream:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        threading.Thread(target=read, daemon=True).start()

    def until(self, wanted: str, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while not any(wanted in line for line in self.lines):
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no {wanted!r} in:\n" + "\n".join(self.lines)) from None
            if line is None:
                raise AssertionError(f"ended without {wanted!r}:\n" + "\n".join(self.lines))
            self.lines.append(line)
        return list(self.lines)

    def rest(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
        return list(self.lines)


def test_serve_sandbox_prints_the_key_block_last_and_no_request_lines(cli: Cli) -> None:
    api_port, aws, partner_center, channel = _free_ports(4)
    ports = {
        "BILLBYTE_PORT": str(api_port),
        "BILLBYTE_SANDBOX_AWS_PORT": str(aws),
        "BILLBYTE_SANDBOX_PARTNER_CENTER_PORT": str(partner_center),
        "BILLBYTE_SANDBOX_GOOGLE_CHANNEL_PORT": str(channel),
    }
    assert cli.run("demo", **ports).exit_code == 0
    key = (cli.var_dir / "demo_api_key").read_text().strip()
    env = {k: v for k, v in {**os.environ, **cli.env, **ports}.items() if v is not None}
    env.pop("BILLBYTE_LOG_LEVEL", None)  # the default level, as `make run` has it
    process = subprocess.Popen(
        [sys.executable, "-m", "billbyte.cli", "serve", "--sandbox", "--tick-seconds", "1"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        lines = output.until(f"Demo admin API key (also in {cli.var_dir}/demo_api_key)", 120)
        base = f"http://127.0.0.1:{api_port}"
        start = lines.index("BillByte is running:")
        block = lines[start:]
        assert block[1:3] == [f"  API:      {base}/v1", f"  API docs: {base}/docs"]
        assert block[3].startswith(f"  Portal:   {base}/portal/sign-in?brand=msp_")
        assert f"  Console:  {base}/console/sign-in" in block
        assert "  Password for every demo user: billbyte-demo-2026" in block
        assert block[-1] == f"  Demo admin API key (also in {cli.var_dir}/demo_api_key): {key}"
        before = lines[:start]
        # After the sandboxes' lines and uvicorn's own "running on" line.
        assert any(f"sandbox aws           http://127.0.0.1:{aws}" in line for line in before)
        assert any(line.startswith("sandboxes: ") for line in before)
        assert any(f"Uvicorn running on {base}" in line for line in before)

        # Vendor traffic happens (the demo's Newco is provisioned on the simulators, usage is
        # collected every tick), and none of it is a line of the default output.
        deadline = time.monotonic() + 60
        while True:
            state = httpx.get(f"http://127.0.0.1:{partner_center}/_sandbox/state").json()
            if any(p["customers"] for p in state["partners"].values()):
                break
            assert time.monotonic() < deadline, state
            time.sleep(0.5)
        time.sleep(2)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    lines = output.rest(5)
    requests = [line for line in lines if REQUEST_LINE.search(line)]
    assert requests == [], "\n".join(lines)
    assert sum(key in line for line in lines) == 1
