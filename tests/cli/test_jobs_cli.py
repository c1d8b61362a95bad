"""``billbyte jobs list``: the dead letters (jobs that failed permanently) for operators, and a
broker URL in the environment makes every command publish the jobs it commits."""

from __future__ import annotations

import uuid

import pytest
import redis
from sqlalchemy.orm import Session

from billbyte.db.engine import engine_for
from billbyte.jobs import broker as jobs_broker
from billbyte.jobs.models import Job
from billbyte.jobs.service import enqueue
from tests.cli.conftest import Cli
from tests.jobs.test_broker import REDIS_URL, _reachable


def test_jobs_list_shows_the_failed_jobs_with_their_error(cli: Cli) -> None:
    cli.ok("migrate")
    with Session(cli.engine()) as session:
        session.add_all(
            [
                Job(
                    id="job_failed",
                    kind="collect",
                    key="collect:pa_1",
                    status="failed",
                    attempts=8,
                    last_error="VendorError: no cur_bucket",
                ),
                Job(id="job_done", kind="rate", key="rate:msp_1:*", status="done", attempts=1),
            ]
        )
        session.commit()
    listed = cli.json("jobs", "list")["jobs"]
    assert [(j["id"], j["attempts"], j["last_error"]) for j in listed] == [
        ("job_failed", 8, "VendorError: no cur_bucket")
    ]
    assert [j["id"] for j in cli.json("jobs", "list", "--status", "done")["jobs"]] == ["job_done"]
    human = cli.ok("jobs", "list").stdout
    assert "job_failed" in human and "no cur_bucket" in human and "1 failed job(s)" in human
    assert cli.run("jobs", "list", "--status", "lost").exit_code != 0


def test_a_broker_url_makes_commands_publish_their_jobs(cli: Cli) -> None:
    engine = engine_for(cli.database_url)
    cli.ok("jobs", "list")
    assert jobs_broker.installed(engine) is None  # no broker URL: today's behaviour
    if _reachable("redis") is not None:
        pytest.skip("Redis unreachable (tests/jobs/test_broker.py says so loudly)")
    queue = f"billbyte-test-{uuid.uuid4().hex}"
    result = cli.run("jobs", "list", BILLBYTE_BROKER_URL=REDIS_URL, BILLBYTE_BROKER_QUEUE=queue)
    assert result.exit_code == 0, result.output
    installed = jobs_broker.installed(engine)
    assert installed is not None and (installed.url, installed.queue) == (REDIS_URL, queue)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        with Session(engine) as session:  # what any command's unit of work does
            enqueue(session, "rate", "msp_1:*", {"msp_id": "msp_1", "period": None})
            session.commit()
        assert client.hlen(f"dramatiq:{queue}.msgs") == 1
    finally:
        installed.close()
        for key in client.scan_iter(f"dramatiq:*{queue}*"):
            client.delete(key)
