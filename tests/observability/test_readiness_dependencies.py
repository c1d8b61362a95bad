"""/readyz checks the message broker and an object-store usage store where they are configured
(issue 13), against the real Redis and RabbitMQ and moto's S3 server; a dead one is a 503
naming it, with neither its address nor its password in the answer."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from billbyte.runtime import Runtime
from tests.api.factories import assert_problem
from tests.jobs.test_broker import broker_url  # noqa: F401  (fixture: the real brokers)
from tests.usage.test_object_store import S3Server, s3_server, use_s3  # noqa: F401

SECRET = "pw-not-to-be-shown"


@pytest.mark.storage
def test_without_broker_or_bucket_only_the_database_and_directory_are_checked(
    client: TestClient,
) -> None:
    assert set(client.get("/readyz").json()["checks"]) == {"database", "usage_store"}


@pytest.mark.storage
def test_a_reachable_broker_is_ready(
    runtime: Runtime,
    client: TestClient,
    broker_url: str,  # noqa: F811
) -> None:
    runtime.settings.broker_url = broker_url
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["broker"] == {"status": "ok", "reason": None}


@pytest.mark.storage
@pytest.mark.parametrize(
    "url",
    [f"redis://:{SECRET}@127.0.0.1:1/0", f"amqp://guest:{SECRET}@127.0.0.1:1/%2F"],
    ids=["redis", "rabbitmq"],
)
def test_a_dead_broker_is_not_ready_and_its_address_is_not_shown(
    runtime: Runtime, client: TestClient, url: str
) -> None:
    runtime.settings.broker_url = url
    response = client.get("/readyz")
    problem = assert_problem(response, 503, "not_ready")
    assert problem["checks"]["broker"]["status"] == "failed"
    assert problem["checks"]["broker"]["reason"].startswith("broker unreachable")
    assert problem["checks"]["database"]["status"] == "ok"
    assert SECRET not in response.text and "127.0.0.1" not in response.text


@pytest.mark.storage
def test_a_reachable_bucket_is_ready_and_a_missing_one_is_not(
    runtime: Runtime,
    client: TestClient,
    s3_server: S3Server,  # noqa: F811
) -> None:
    bucket = use_s3(runtime, s3_server)
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert checks["object_store"] == {"status": "ok", "reason": None}
    assert checks["usage_store"]["status"] == "ok"  # the local work directory, still there

    runtime.settings.usage_store_url = f"s3://{bucket}-gone/usage"
    response = client.get("/readyz")
    problem = assert_problem(response, 503, "not_ready")
    assert problem["checks"]["object_store"]["status"] == "failed"
    assert bucket not in response.text and s3_server.endpoint not in response.text
