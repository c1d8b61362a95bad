"""JSON logs: one object a line, with the request's id (echoed in X-Request-ID) and the
running job's id and kind."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from billbyte.api.request_context import RequestContextMiddleware
from billbyte.app import create_app
from billbyte.jobs import service as jobs
from billbyte.jobs.models import Job
from billbyte.kit import logs
from billbyte.kit.logs import JsonFormatter, job_id_var, request_id_var
from billbyte.runtime import Runtime
from billbyte.settings import Settings
from tests.api.factories import assert_problem
from tests.observability.conftest import JsonLines

pytestmark = pytest.mark.storage

probe_log = logging.getLogger("tests.observability.probe")


@pytest.fixture
def json_client(runtime: Runtime) -> Iterator[TestClient]:
    """An app as `BILLBYTE_LOG_FORMAT=json` builds it, with a route that logs from inside
    the request (a sync route: FastAPI runs it in its thread pool)."""
    runtime.settings.log_format = "json"
    app = create_app(runtime)

    def probe() -> dict[str, str]:
        probe_log.info("inside the request")
        return {"ok": "yes"}

    app.add_api_route("/probe", probe)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _of(records: list[dict[str, Any]], logger: str) -> list[dict[str, Any]]:
    return [r for r in records if r["logger"] == logger]


def test_json_lines_carry_the_request_id_sent_and_echo_it(
    json_client: TestClient, json_logs: JsonLines
) -> None:
    response = json_client.get("/probe", headers={"X-Request-ID": "trace-42.a_B"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-42.a_B"
    for line in json_logs.lines():
        json.loads(line)  # every line is one JSON object
    (inside,) = _of(json_logs.records(), probe_log.name)
    assert inside["request_id"] == "trace-42.a_B"
    assert inside["message"] == "inside the request"
    assert inside["level"] == "INFO"
    assert {"time", "level", "logger", "message"} <= inside.keys()
    (access,) = _of(json_logs.records(), "billbyte.access")
    assert access["request_id"] == "trace-42.a_B"
    assert access["route"] == "/probe" and access["status"] == 200


def test_a_request_without_id_gets_one_and_the_logs_carry_it(
    json_client: TestClient, json_logs: JsonLines
) -> None:
    response = json_client.get("/probe")
    generated = response.headers["x-request-id"]
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,100}", generated)
    (inside,) = _of(json_logs.records(), probe_log.name)
    assert inside["request_id"] == generated
    assert json_client.get("/probe").headers["x-request-id"] != generated


@pytest.mark.parametrize(
    "hostile",
    ["x" * 1000, "x" * 101, "two words", 'quo"te', "semi;colon", "ünï"],
)
def test_a_hostile_request_id_is_replaced(
    json_client: TestClient, json_logs: JsonLines, hostile: str
) -> None:
    response = json_client.get("/probe", headers={"X-Request-ID": hostile.encode("utf-8")})
    assert response.status_code == 200
    replaced = response.headers["x-request-id"]
    assert replaced != hostile and re.fullmatch(r"[A-Za-z0-9._-]{1,100}", replaced)
    assert hostile not in "\n".join(json_logs.lines())
    (inside,) = _of(json_logs.records(), probe_log.name)
    assert inside["request_id"] == replaced


def test_the_longest_sane_request_id_is_kept(json_client: TestClient) -> None:
    longest = "a" * 100
    assert (
        json_client.get("/probe", headers={"X-Request-ID": longest}).headers["x-request-id"]
        == longest
    )


def test_a_request_id_with_a_newline_never_reaches_a_header_or_a_log(
    json_logs: JsonLines,
) -> None:
    """Clients refuse to send CR/LF in a header, so the middleware gets one directly."""
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["request_id"] = request_id_var.get()
        probe_log.info("inside")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    evil = b"abc\r\nSet-Cookie: session=stolen"
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [(b"x-request-id", evil)]}
    import asyncio
    import threading

    # In a thread of its own: a browser test earlier in this worker leaves Playwright's
    # event loop running in the main thread, where asyncio.run() refuses to start.
    failures: list[BaseException] = []

    def serve_once() -> None:
        try:
            asyncio.run(RequestContextMiddleware(app)(scope, receive, send))
        except BaseException as exc:  # re-raised below, in the test's thread
            failures.append(exc)

    worker = threading.Thread(target=serve_once)
    worker.start()
    worker.join()
    if failures:
        raise failures[0]
    headers = dict(sent[0]["headers"])
    assert headers[b"x-request-id"].decode() == seen["request_id"]
    assert b"\n" not in headers[b"x-request-id"] and b"stolen" not in headers[b"x-request-id"]
    assert "stolen" not in json_logs.stream.getvalue()
    assert request_id_var.get() is None  # reset after the request


def test_problem_bodies_carry_the_request_id(json_client: TestClient) -> None:
    response = json_client.get("/v1/customers", headers={"X-Request-ID": "req-for-support"})
    problem = assert_problem(response, 401)
    assert problem["request_id"] == "req-for-support"
    assert response.headers["x-request-id"] == "req-for-support"


def test_a_500_carries_the_same_request_id_in_body_header_and_log(
    json_client: TestClient, json_logs: JsonLines
) -> None:
    def boom() -> None:
        raise RuntimeError("kaboom")

    json_client.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    response = json_client.get("/boom", headers={"X-Request-ID": "req-500"})
    problem = assert_problem(response, 500, "internal_error")
    assert problem["request_id"] == "req-500"
    assert response.headers["x-request-id"] == "req-500"
    (error,) = [r for r in json_logs.records() if r["level"] == "ERROR"]
    assert error["request_id"] == "req-500" and "kaboom" in error["exception"]


def test_job_log_lines_carry_the_job_id_and_kind(
    runtime: Runtime, json_logs: JsonLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    def handler(runtime: Runtime, payload: dict[str, Any]) -> None:
        probe_log.info("working on %s", payload["n"])

    def failing(runtime: Runtime, payload: dict[str, Any]) -> None:
        raise ValueError("broken on purpose")

    monkeypatch.setitem(jobs.HANDLERS, "obs-probe", handler)
    monkeypatch.setitem(jobs.HANDLERS, "obs-fail", failing)
    with runtime.uow() as uow:
        jobs.enqueue(uow.session, "obs-probe", "one", {"n": 1})
        jobs.enqueue(uow.session, "obs-fail", "two", {})
        uow.commit()
    with runtime.uow() as uow:
        ids = {job.kind: job.id for job in uow.session.query(Job)}
    assert jobs.run_pending(runtime) == 2
    probe_log.info("after the jobs")
    records = json_logs.records()
    (working,) = [r for r in records if r["message"] == "working on 1"]
    assert working["job_id"] == ids["obs-probe"] and working["job_kind"] == "obs-probe"
    (failed,) = [r for r in records if r["logger"] == "billbyte.jobs.service"]
    assert failed["job_id"] == ids["obs-fail"] and failed["job_kind"] == "obs-fail"
    assert "broken on purpose" in failed["exception"]
    (after,) = [r for r in records if r["message"] == "after the jobs"]
    assert "job_id" not in after and "job_kind" not in after
    assert job_id_var.get() is None


def test_a_record_is_one_line_whatever_its_message() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "a\nb %s", ("c\nd",), None)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line)["message"] == "a\nb c\nd"


def test_extra_fields_are_kept_and_uvicorn_colour_copies_dropped() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "up", (), None)
    record.color_message = "\x1b[1mup\x1b[0m"
    record.route = "/v1/customers/{customer_id}"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["route"] == "/v1/customers/{customer_id}"
    assert "color_message" not in entry


def test_log_format_defaults_to_text_and_refuses_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BILLBYTE_LOG_FORMAT", raising=False)
    assert Settings().log_format == "text"
    monkeypatch.setenv("BILLBYTE_LOG_FORMAT", "JSON")
    assert Settings().log_format == "json"
    monkeypatch.setenv("BILLBYTE_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="not a log format"):
        Settings()


def test_text_apps_log_no_access_lines_of_their_own(runtime: Runtime, json_logs: JsonLines) -> None:
    app: FastAPI = create_app(runtime)  # log_format text: uvicorn writes access lines
    with TestClient(app) as client:
        client.get("/healthz")
    assert not _of(json_logs.records(), "billbyte.access")


def test_configure_writes_json_lines_and_leaves_an_existing_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    logs.configure("info", "json")
    (handler,) = root.handlers
    assert isinstance(handler.formatter, JsonFormatter) and root.level == logging.INFO
    token = request_id_var.set("req-configured")
    try:
        probe_log.info("configured")
    finally:
        request_id_var.reset(token)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert json.loads(line)["request_id"] == "req-configured"
    logs.configure("debug", "text")  # already configured: unchanged
    assert root.handlers == [handler] and root.level == logging.INFO
