"""Issue #9 finding 8: 300 wrong keys in 1.4 s were answered 300 × 401, never 429.

Now: per-IP and per-key limits, and a stricter per-IP limit on failed authentication that
then refuses every request from that IP, a correct key included."""

from __future__ import annotations

import dataclasses
import os
import uuid
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from billbyte.app import create_app
from billbyte.runtime import Runtime
from billbyte.settings import Settings
from billbyte.tenancy import service as tenancy

ATTACKER = "203.0.113.7"
NEIGHBOUR = "198.51.100.20"
HIGH = "1000/minute"


def limited_app(runtime: Runtime, **limits: str) -> FastAPI:
    settings = runtime.settings.model_copy(
        update={
            "rate_limit_per_ip": HIGH,
            "rate_limit_per_key": HIGH,
            "rate_limit_failed_auth_per_ip": HIGH,
            **limits,
        }
    )
    return create_app(dataclasses.replace(runtime, settings=settings))


def from_ip(app: FastAPI, ip: str) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, client=(ip, 40000))


def issue_msp_key(runtime: Runtime, name: str) -> str:
    with runtime.uow() as uow:
        _, issued = tenancy.create_msp(uow.session, name)
        uow.commit()
    return issued.secret


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_throttled(response: Any, code: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert response.json()["status"] == 429
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60  # the window is one minute


def test_wrong_keys_from_one_ip_end_in_429_even_for_a_correct_key(runtime: Runtime) -> None:
    good_key = issue_msp_key(runtime, "Alpha Hosting")
    app = limited_app(runtime, rate_limit_failed_auth_per_ip="5/minute")
    attacker = from_ip(app, ATTACKER)
    for n in range(5):
        wrong = attacker.get("/v1/customers", headers=bearer(f"bb_guess{n}_wrongsecret"))
        assert wrong.status_code == 401, wrong.text
    assert_throttled(
        attacker.get("/v1/customers", headers=bearer("bb_guess9_wrongsecret")),
        "too_many_failed_authentications",
    )
    # Guessing right is indistinguishable from guessing wrong once the limit is reached.
    assert_throttled(
        attacker.get("/v1/customers", headers=bearer(good_key)), "too_many_failed_authentications"
    )
    # Another address is not affected.
    assert from_ip(app, NEIGHBOUR).get("/v1/customers", headers=bearer(good_key)).status_code == 200


def test_requests_without_a_key_are_not_counted_as_failed_authentication(
    runtime: Runtime,
) -> None:
    good_key = issue_msp_key(runtime, "Alpha Hosting")
    app = limited_app(runtime, rate_limit_failed_auth_per_ip="2/minute")
    browser = from_ip(app, ATTACKER)
    for _ in range(4):
        assert browser.get("/v1/customers").status_code == 401
    assert browser.get("/v1/customers", headers=bearer(good_key)).status_code == 200


def test_per_key_limit_leaves_other_keys_alone(runtime: Runtime) -> None:
    busy_key = issue_msp_key(runtime, "Alpha Hosting")
    calm_key = issue_msp_key(runtime, "Beta Telecom")
    app = limited_app(runtime, rate_limit_per_key="3/minute")
    client = from_ip(app, ATTACKER)
    for _ in range(3):
        assert client.get("/v1/customers", headers=bearer(busy_key)).status_code == 200
    assert_throttled(client.get("/v1/customers", headers=bearer(busy_key)), "rate_limited")
    # The same key is limited from any address; another key from the same address is not.
    assert_throttled(
        from_ip(app, NEIGHBOUR).get("/v1/customers", headers=bearer(busy_key)), "rate_limited"
    )
    assert client.get("/v1/customers", headers=bearer(calm_key)).status_code == 200


def test_per_ip_limit_leaves_other_addresses_alone(runtime: Runtime) -> None:
    key = issue_msp_key(runtime, "Alpha Hosting")
    app = limited_app(runtime, rate_limit_per_ip="4/minute")
    crowded = from_ip(app, ATTACKER)
    for _ in range(4):
        assert crowded.get("/v1/customers", headers=bearer(key)).status_code == 200
    assert_throttled(crowded.get("/v1/customers", headers=bearer(key)), "rate_limited")
    assert_throttled(crowded.get("/openapi.json"), "rate_limited")
    assert from_ip(app, NEIGHBOUR).get("/v1/customers", headers=bearer(key)).status_code == 200
    # Load-balancer probes stay answered.
    assert crowded.get("/healthz").status_code == 200
    assert crowded.get("/readyz").status_code == 200


def test_a_wrong_secret_with_someone_elses_prefix_does_not_spend_their_budget(
    runtime: Runtime,
) -> None:
    victim_key = issue_msp_key(runtime, "Alpha Hosting")
    prefix = victim_key.split("_")[1]
    app = limited_app(runtime, rate_limit_per_key="3/minute")
    attacker = from_ip(app, ATTACKER)
    for _ in range(5):
        attacker.get("/v1/customers", headers=bearer(f"bb_{prefix}_notthesecret"))
    victim = from_ip(app, NEIGHBOUR)
    assert victim.get("/v1/customers", headers=bearer(victim_key)).status_code == 200


def test_the_default_limits_throttle_guessing(tmp_path: Any) -> None:
    settings = Settings(var_dir=tmp_path / "var", secret_key="k")
    assert settings.rate_limit_failed_auth_per_ip == "20/minute"
    assert settings.rate_limit_per_ip and settings.rate_limit_per_key


@pytest.mark.parametrize("field", ["rate_limit_per_ip", "rate_limit_failed_auth_per_ip"])
def test_a_malformed_limit_is_refused_at_startup(field: str, tmp_path: Any) -> None:
    with pytest.raises(ValidationError, match="is not a rate limit"):
        Settings(var_dir=tmp_path, secret_key="k", **{field: "lots per minute"})


def test_an_unsupported_storage_is_refused_at_startup(tmp_path: Any) -> None:
    with pytest.raises(ValidationError, match="not supported"):
        Settings(var_dir=tmp_path, secret_key="k", rate_limit_storage_url="async+memory://")


REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def test_redis_storage_shares_counters_between_api_processes(runtime: Runtime) -> None:
    if not _redis_reachable():
        # CI (.ci/run) requires Redis: there this is a failure, elsewhere a loud skip.
        if os.environ.get("BILLBYTE_REQUIRE_REDIS") == "1":
            pytest.fail(f"BILLBYTE_REQUIRE_REDIS=1 but Redis at {REDIS_URL} is unreachable")
        pytest.skip(f"Redis at {REDIS_URL} unreachable")
    key = issue_msp_key(runtime, "Alpha Hosting")
    # A fresh address per run: counters in a shared Redis outlive the test by a minute.
    address = f"test-{uuid.uuid4().hex}"
    first, second = (
        limited_app(runtime, rate_limit_per_ip="3/minute", rate_limit_storage_url=REDIS_URL)
        for _ in range(2)
    )
    for _ in range(3):
        assert from_ip(first, address).get("/v1/customers", headers=bearer(key)).status_code == 200
    assert_throttled(
        from_ip(second, address).get("/v1/customers", headers=bearer(key)), "rate_limited"
    )


def test_an_unreachable_redis_does_not_take_the_api_down(runtime: Runtime) -> None:
    key = issue_msp_key(runtime, "Alpha Hosting")
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    app = limited_app(runtime, rate_limit_storage_url="redis://127.0.0.1:9/0")
    assert from_ip(app, ATTACKER).get("/v1/customers", headers=bearer(key)).status_code == 200
