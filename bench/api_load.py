"""API under load: ``billbyte serve --workers 2`` on PostgreSQL, driven by ``wrk -c16``.

    .venv/bin/python bench/api_load.py [--database-url URL] [--seconds 5] [--profile]

Seeds a throw-away installation (a fresh schema in the given PostgreSQL database, by default
the local one; a ``sqlite:///`` URL also works): one MSP, one customer whose usage month is
imported through the API and rated. Then starts the real server as its own process tree
(``billbyte serve --workers N``) and drives it from another process, ``wrk`` (Debian's
package), one scenario after another:

- ``GET /healthz``: the baseline of the same run — routing, middleware and one ``SELECT 1``,
  no authentication: what the framework and this machine serve at most;
- ``GET /v1/customers/{id}/charges``, ``GET /v1/charges/changes`` (the first page),
  ``POST /v1/customers`` (a new customer each request);
- ``GET charges`` with ``If-None-Match`` (a polling BSS whose charges did not change: 304).

Each prints requests/s, p50/p99 latency (wrk's own histogram) and its ratio to the baseline.
Any non-2xx/3xx answer or socket error fails the run. ``--profile`` then samples the API
processes with py-spy during one more ``GET charges`` run and prints where their time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PERIOD = "2026-10"
# High enough that the load is never refused, low enough that the limiter still counts
# (its cost is part of every request in production).
RATE_LIMIT = "1000000/hour"
WRK_DONE = """
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d,'
    .. '"status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
end
"""


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_PG)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5, help="per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--rows", type=int, default=20000, help="usage lines to seed")
    parser.add_argument("--accounts", type=int, default=20, help="the customer's accounts")
    parser.add_argument("--profile", action="store_true", help="py-spy the API processes")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    with (
        tempfile.TemporaryDirectory(prefix="bb-api-load-") as tmp,
        fresh_database(args.database_url) as url,
    ):
        work = Path(tmp)
        key, customer_id, lines = seed(work, url, args.rows, args.accounts)
        print(f"seeded: one customer, {lines} charge lines in {PERIOD} ({args.rows:,} usage lines)")
        with server(work, url, args.workers) as (base, pid):
            charges = f"/v1/customers/{customer_id}/charges?period={PERIOD}"
            etag = httpx.get(
                base + charges, headers={"Authorization": f"Bearer {key}"}
            ).headers.get("etag")
            scenarios = [
                ("GET /healthz (baseline)", get_script("/healthz", None)),
                ("GET charges", get_script(charges, key)),
                ("GET /v1/charges/changes", get_script("/v1/charges/changes?limit=50", key)),
                ("POST /v1/customers", post_customer_script(key)),
            ]
            if etag:
                scenarios.append(
                    ("GET charges, If-None-Match (304)", get_script(charges, key, etag))
                )
            else:
                print("no ETag on GET charges: the 304 scenario is skipped")
            results = [drive(wrk, work, base, name, script, args) for name, script in scenarios]
            created = count_load_customers(url)
            posted = next(r for r in results if r.name == "POST /v1/customers")
            assert created >= posted.requests, (created, posted.requests)
            report(results, args)
            if args.profile:
                profile(wrk, work, base, pid, get_script(charges, key), args)


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """PostgreSQL: a new schema in that database, dropped afterwards (the URL gets its
    ``search_path``). SQLite: the URL as given."""
    if not url.startswith("postgresql"):
        yield url
        return
    schema = f"bbbench_api_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def seed(work: Path, url: str, rows: int, accounts: int) -> tuple[str, str, int]:
    """The MSP, its customer and the customer's rated month, through the API in-process;
    returns the API key, the customer id and the number of charge lines."""
    from bench import installation
    from tests.usage.generate import write_focus

    from billbyte.jobs.service import run_pending

    world = installation.build(work, url, accounts=accounts)
    usage = work / "usage.csv"
    write_focus(usage, rows, seed=5, sub_accounts=accounts)
    with usage.open("rb") as handle:
        imported = world.api.post(
            "/v1/usage/imports",
            headers=world.headers,
            data={"partner_account_id": world.partner_account_id},
            files={"file": ("usage.csv", handle)},
        )
    assert imported.status_code == 201, imported.text
    run_pending(world.runtime)  # rating of the imported month
    charges = world.api.get(
        f"/v1/customers/{world.customer_id}/charges?period={PERIOD}", headers=world.headers
    ).json()
    lines = sum(len(group["lines"]) for group in charges["groups"])
    assert lines > 0, charges
    world.runtime.engine.dispose()
    key = world.headers["Authorization"].removeprefix("Bearer ")
    return key, world.customer_id, lines


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def server(work: Path, url: str, workers: int) -> Iterator[tuple[str, int]]:
    """``billbyte serve --workers N`` as its own process (tree); yields its address and pid."""
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "BILLBYTE_DATABASE_URL": url,
        "BILLBYTE_VAR_DIR": str(work / "var"),
        "BILLBYTE_SECRET_KEY": "bench",
        "BILLBYTE_LOG_LEVEL": "WARNING",  # no access line per request
        "BILLBYTE_RATE_LIMIT_PER_IP": RATE_LIMIT,
        "BILLBYTE_RATE_LIMIT_PER_KEY": RATE_LIMIT,
    }
    log = (work / "server.log").open("w")
    command = [sys.executable, "-m", "billbyte.cli", "serve", "--workers", str(workers)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (work / "server.log").read_text()
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (work / "server.log").read_text()
            time.sleep(0.5)
        # Every worker must be up before measuring: the first answer may be one of them.
        time.sleep(3)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def get_script(path: str, key: str | None, etag: str | None = None) -> str:
    headers = ""
    if key:
        headers += f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    if etag:
        headers += f"wrk.headers[\"If-None-Match\"] = '{etag}'\n"
    return f'wrk.method = "GET"\nwrk.path = "{path}"\n{headers}{WRK_DONE}'


def post_customer_script(key: str) -> str:
    """A new customer per request (a unique external_id per wrk thread and request)."""
    run = uuid.uuid4().hex[:8]
    return f"""
local threads = {{}}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format(
    '{{"external_id":"load-{run}-%d-%d","name":"Load %d","currency":"USD"}}',
    tid, counter, counter)
  return wrk.format("POST", "/v1/customers", {{
    ["Authorization"] = "Bearer {key}", ["Content-Type"] = "application/json"}}, body)
end
{WRK_DONE}"""


def drive(
    wrk: str, work: Path, base: str, name: str, script: str, args: argparse.Namespace
) -> Result:
    path = work / "scenario.lua"
    path.write_text(script)
    command = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s"]
    command += ["--timeout", "10s", "-s", str(path), base]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = re.search(r"^WRKJSON (\{.*\})$", output, re.MULTILINE)
    assert found, output
    figures = json.loads(found.group(1))
    failures = {k: figures[k] for k in ("status", "connect", "read", "write", "timeout")}
    assert not any(failures.values()), (name, failures, output)
    seconds = figures["duration_us"] / 1e6
    return Result(
        name,
        figures["requests"],
        figures["requests"] / seconds,
        figures["p50"] / 1000,
        figures["p99"] / 1000,
    )


def count_load_customers(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM customers WHERE external_id LIKE 'load-%'")
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def report(results: list[Result], args: argparse.Namespace) -> None:
    baseline = results[0]
    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.seconds}s, "
        f"billbyte serve --workers {args.workers}, {os.cpu_count()} cores"
    )
    print(f"{'scenario':<36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s ratio':>12}")
    for result in results:
        ratio = result.per_second / baseline.per_second
        print(
            f"{result.name:<36} {result.per_second:8.0f} {result.p50_ms:8.1f} "
            f"{result.p99_ms:8.1f} {ratio:11.2f}x"
        )


def profile(
    wrk: str, work: Path, base: str, pid: int, script: str, args: argparse.Namespace
) -> None:
    """Sample every API process (py-spy, all threads) during one more GET charges run and
    print the functions where the samples end (own time) and the BillByte and library
    frames they pass through (inclusive time)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    raw = work / "profile.txt"
    recorder = subprocess.Popen(
        [
            *(spy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw"),
            *("--duration", str(args.seconds + 1), "--nonblocking", "--output", str(raw)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    drive(wrk, work, base, "GET charges (profiled)", script, args)
    recorder.wait(timeout=60)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [frame for frame in stack.split(";") if not frame.startswith("process ")]
        if not frames:
            continue
        samples = int(count)
        total += samples
        own[_short(frames[-1])] += samples
        for frame in {_short(frame) for frame in frames}:
            inclusive[frame] += samples
    print(f"\nprofile of GET charges under load: {total} samples over the API processes")
    print("own time (where the samples end):")
    for frame, samples in own.most_common(15):
        print(f"  {samples / total:6.1%}  {frame}")
    print("inclusive time (frames a sample passes through):")
    shown = [(f, n) for f, n in inclusive.most_common(200) if n < total][:25]
    for frame, samples in shown:
        print(f"  {samples / total:6.1%}  {frame}")


def _short(frame: str) -> str:
    """``function (path/to/site-packages/pkg/mod.py:12)`` → ``function (pkg/mod.py)``."""
    found = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not found:
        return frame
    function, path = found.groups()
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{function} ({path})"


if __name__ == "__main__":
    main()
