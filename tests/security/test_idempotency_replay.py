"""Issue #9, finding 1 and the idempotency part of finding 5.

1. A stored response was keyed by MSP and key string, and replayed before the role check:
   a helpdesk key re-sending an admin's ``Idempotency-Key`` got the admin's new API key
   secret (or webhook signing secret); a helpdesk key's 403 was replayed to the admin.
5. A request killed mid-way (kill -9) left its key answering 409 for 24 hours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from billbyte.idempotency import service as idempotency_service
from billbyte.runtime import Runtime
from tests.api.factories import assert_problem, customer_body
from tests.conftest import Tenant

REPO_ROOT = Path(__file__).resolve().parents[2]


def _as(tenant: Tenant, role: str) -> Tenant:
    return Tenant(tenant.msp_id, tenant.issue_key(role), tenant.client)


def _post(tenant: Tenant, url: str, body: Any, key: str) -> Any:
    return tenant.post(url, json=body, headers={"Idempotency-Key": key})


def _count(tenant: Tenant, url: str) -> int:
    return len(tenant.get(url, params={"limit": 500}).json()["data"])


# --- finding 1: replay across API keys of different roles ---------------------------


def test_an_admin_api_key_secret_is_not_replayed_to_a_helpdesk_key(tenant: Tenant) -> None:
    helpdesk = _as(tenant, "helpdesk")
    body = {"name": "deploy", "role": "admin"}
    created = _post(tenant, "/v1/api-keys", body, "deploy-key-2")
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]

    stolen = _post(helpdesk, "/v1/api-keys", body, "deploy-key-2")

    assert_problem(stolen, 403, "admin_required")
    assert "idempotent-replayed" not in stolen.headers
    assert secret not in stolen.text
    assert _count(tenant, "/v1/api-keys") == 3  # admin, helpdesk, deploy: none more
    # The admin who made the request still gets its replay.
    again = _post(tenant, "/v1/api-keys", body, "deploy-key-2")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["secret"] == secret


def test_a_webhook_signing_secret_is_not_replayed_to_a_helpdesk_key(tenant: Tenant) -> None:
    helpdesk = _as(tenant, "helpdesk")
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}
    created = _post(tenant, "/v1/webhook-endpoints", body, "hook-1")
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]

    stolen = _post(helpdesk, "/v1/webhook-endpoints", body, "hook-1")

    assert_problem(stolen, 403, "read_only_role")
    assert "idempotent-replayed" not in stolen.headers
    assert secret not in stolen.text


def test_a_helpdesk_refusal_is_not_replayed_to_the_admin(tenant: Tenant) -> None:
    helpdesk = _as(tenant, "helpdesk")
    refused = _post(helpdesk, "/v1/customers", customer_body("C-7"), "new-customer-7")
    assert_problem(refused, 403, "read_only_role")

    made = _post(tenant, "/v1/customers", customer_body("C-7"), "new-customer-7")

    assert made.status_code == 201, made.text
    assert "idempotent-replayed" not in made.headers
    assert [c["external_id"] for c in tenant.get("/v1/customers").json()["data"]] == ["C-7"]


def test_a_key_of_the_same_role_does_not_see_another_keys_response(tenant: Tenant) -> None:
    """Keys are scoped to the API key that made the request (as at Stripe): another key,
    even an admin one, re-using the string runs its own request."""
    other_admin = _as(tenant, "admin")
    body = {"name": "ci", "role": "billing"}
    first = _post(tenant, "/v1/api-keys", body, "ci-key")
    second = _post(other_admin, "/v1/api-keys", body, "ci-key")
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert second.json()["secret"] != first.json()["secret"]


# --- only successes are stored ------------------------------------------------------


def test_a_client_error_is_not_stored_so_the_corrected_retry_proceeds(tenant: Tenant) -> None:
    bad = customer_body("C-8", currency="EURO")
    refused = _post(tenant, "/v1/customers", bad, "customer-8")
    assert_problem(refused, 422)
    again = _post(tenant, "/v1/customers", bad, "customer-8")
    assert_problem(again, 422)
    assert "idempotent-replayed" not in again.headers

    corrected = _post(tenant, "/v1/customers", customer_body("C-8"), "customer-8")

    assert corrected.status_code == 201, corrected.text
    replay = _post(tenant, "/v1/customers", customer_body("C-8"), "customer-8")
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == corrected.json()["id"]
    assert _count(tenant, "/v1/customers") == 1


# --- finding 5: a request killed mid-way --------------------------------------------


def _database_url(runtime: Runtime) -> str:
    rendered = runtime.engine.url.render_as_string(hide_password=False)
    if runtime.engine.dialect.name == "postgresql":
        # Tests run PostgreSQL in a private schema; pass it via the libpq options.
        with runtime.engine.connect() as connection:
            path = connection.exec_driver_sql("SHOW search_path").scalar()
        rendered += ("&" if "?" in rendered else "?") + f"options=-csearch_path%3D{path}"
    return rendered


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


LEASE_SECONDS = 30


@pytest.fixture
def blocking_server(runtime: Runtime, tmp_path: Path) -> Iterator[tuple[str, Path, Any]]:
    """A server process on the test database whose customer creation hangs forever."""
    port, marker = _free_port(), tmp_path / "started"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)]),
        "BILLBYTE_DATABASE_URL": _database_url(runtime),
        "BILLBYTE_VAR_DIR": str(runtime.settings.var_dir),
        "BILLBYTE_SECRET_KEY": runtime.secret_key,
        "BILLBYTE_IDEMPOTENCY_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    command = [sys.executable, "-m", "tests.security.blocking_server", str(port), str(marker)]
    process = subprocess.Popen(
        command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield url, marker, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_a_request_killed_mid_way_frees_its_key_once_the_lease_expires(
    tenant: Tenant, blocking_server: tuple[str, Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, marker, process = blocking_server
    assert process.poll() is None, process.communicate()
    body, key = customer_body("C-5"), "create-c5"

    def doomed_request() -> None:
        with contextlib.suppress(httpx.TransportError):  # the server is killed under it
            httpx.post(
                f"{url}/v1/customers",
                json=body,
                headers={**tenant.headers, "Idempotency-Key": key},
                timeout=60,
            )

    sender = threading.Thread(target=doomed_request)
    sender.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not marker.exists():
        time.sleep(0.02)
    assert marker.exists(), "the request never reached the endpoint"
    # While the first request runs, a retry is refused rather than run a second time.
    assert_problem(
        _post(tenant, "/v1/customers", body, key), 409, "idempotency_request_in_progress"
    )

    process.send_signal(signal.SIGKILL)
    process.communicate()
    sender.join()
    # Nobody renews the dead request's lease: once it has run out, the key is free again.
    later = datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS + 1)
    monkeypatch.setattr(idempotency_service, "utcnow", lambda: later)

    retried = _post(tenant, "/v1/customers", body, key)

    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    replay = _post(tenant, "/v1/customers", body, key)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == retried.json()["id"]
    assert _count(tenant, "/v1/customers") == 1
