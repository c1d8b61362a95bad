"""The usage store on S3 (moto's server) behind a proxy that fails a share of the requests.

Between the ``billbyte`` processes and moto sits a small HTTP proxy of this test's that, for
a seeded quarter of the requests, answers 500 without forwarding, forwards and then answers
500 anyway (the write happened, the client is told it did not), stalls 1.5 s before
forwarding, or stalls and drops the connection without an answer. It fails one object at
most twice in a row, so a client that retries (boto3's standard mode: 5 attempts; polars'
object store: 10) gets through. Imports (``billbyte usage import``) and ratings (``billbyte
jobs run``) must then give exact totals, and no slice may be current whose object is not
whole in the bucket. The test reads the bucket directly, not through the proxy.

A client-side *timeout* is not provoked: boto3 waits 60 s for an answer and BillByte has no
setting to shorten it, so a stall long enough to time out would cost minutes; the stalls
that end in a dropped connection are the same failure seen from the client, sooner.
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import polars as pl
import pytest
from sqlalchemy import select

from billbyte.usage.models import UsageSlice
from billbyte.usage.object_store import S3Store
from tests.reliability.harness import Stack, write_usage

PERIOD = "2025-03"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
FAULTS = ("500 before", "500 after", "stall", "drop")
StackFactory = Callable[..., Stack]


class FaultyProxy:
    """Forwards to ``upstream``; fails ``rate`` of the requests (seeded), one object at most
    ``burst`` times in a row."""

    def __init__(self, upstream: str, rng: random.Random, rate: float = 0.25, burst: int = 2):
        self.upstream = upstream.removeprefix("http://")
        self.rng = rng
        self.rate = rate
        self.burst = burst
        self.injected: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self.requests = 0
        self._streak: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _fault(self, method: str, path: str) -> str | None:
        key = f"{method} {path.split('?')[0]}"
        with self._lock:
            self.requests += 1
            if self._streak.get(key, 0) < self.burst and self.rng.random() < self.rate:
                fault = FAULTS[self.rng.randrange(len(FAULTS))]
                self._streak[key] = self._streak.get(key, 0) + 1
                self.injected[fault] += 1
                return fault
            self._streak[key] = 0
            return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))

            def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"
                }
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                upstream.close()
                kept = [
                    (k, v)
                    for k, v in response.getheaders()
                    if k.lower() not in ("transfer-encoding", "connection", "content-length")
                ]
                return response.status, kept, payload

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self) -> None:
                body = self._body()
                fault = proxy._fault(self.command, self.path)
                error = (
                    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
                    b"<Message>injected</Message></Error>"
                )
                if fault == "500 before":
                    self._answer(500, [("Content-Type", "application/xml")], error)
                    return
                if fault == "drop":
                    time.sleep(0.5)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "stall":
                    time.sleep(1.5)
                status, headers, payload = self._forward(body)
                if fault == "500 after":
                    self._answer(500, [("Content-Type", "application/xml")], error)
                    return
                self._answer(status, headers, payload)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer  # why: slow to import

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_import_and_rating_through_500s_stalls_and_dropped_connections(
    make_stack: StackFactory, moto_endpoint: str, rng: random.Random, rounds: int, seed: int
) -> None:
    bucket = f"bbrel-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    proxy = FaultyProxy(moto_endpoint, random.Random(rng.random()))
    proxy.start()
    store_url = f"s3://{bucket}/usage"
    # The processes go through the proxy; this side reads moto directly.
    stack = make_stack(
        {**FAKE_AWS, "BILLBYTE_USAGE_STORE_URL": store_url, "BILLBYTE_S3_ENDPOINT_URL": proxy.url},
        usage_store_url=store_url,
        s3_endpoint_url=moto_endpoint,
    )
    direct = S3Store(bucket, "usage/", moto_endpoint)
    try:
        customers = stack.set_up_customers()
        account = stack.partner_account_id
        reruns = 0
        for number in range(max(3, rounds // 4)):
            generated = write_usage(
                stack.tmp / f"usage-{number}.csv", rng, PERIOD, rng.randint(150, 300), f"s{number}"
            )
            args = ("usage", "import", str(generated.path), "--partner-account", account)
            process = stack.start(*args, role="import")
            if process.popen.wait(timeout=240) != 0:
                # Retries exhausted: the import failed whole; nothing of it may be current.
                reruns += 1
                stack.run(*args, role="rerun", timeout=240)
            with stack.runtime.uow(read_only=True) as uow:
                current = list(
                    uow.session.scalars(select(UsageSlice).where(UsageSlice.is_current.is_(True)))
                )
            assert len(current) == 1
            # Whole in the bucket: the object read directly holds exactly the file's rows.
            frame = pl.concat([f.collect() for f in direct.scan([current[0].path])])
            assert frame.height == generated.rows == current[0].row_count
            assert stack.current_usage(PERIOD).by_sub_account == generated.cost_by_sub_account

            stack.run("jobs", "run", role="rate", timeout=240)
            if not stack.no_job_left("rate"):  # an attempt failed: it is retried after backoff
                reruns += 1
                time.sleep(11)
                stack.run("jobs", "run", role="rate", timeout=240)
            assert stack.no_job_left("rate")
            assert stack.charges(PERIOD) == generated.sell_by_customer(customers), (seed, number)
        stack.check_change_feed()
        assert sum(proxy.injected.values()) > 0
        print(
            f"reliability[object store faults] seed={seed}: {number + 1} imports and ratings, "
            f"{proxy.requests} requests, faults injected {proxy.injected}, {reruns} reruns"
        )
    finally:
        proxy.stop()
