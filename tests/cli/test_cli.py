"""The ``billbyte`` command line: MSPs, API keys, demo, serve, and errors as one line."""

from __future__ import annotations

import json
import stat
from typing import Any

import pytest
import uvicorn

from billbyte.db.migrate import current_revisions, head_revisions
from tests.cli.conftest import Cli


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _assert_one_line_error(result: Any, *fragments: str) -> None:
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_msp_create_json_prints_one_object_whose_key_works(cli: Cli) -> None:
    result = cli.ok("msp", "create", "--name", "Alpha Hosting", "--json")
    assert result.stdout.count("\n") == 1
    created = json.loads(result.stdout)
    assert set(created) == {"id", "api_key"}
    assert created["id"].startswith("msp_") and created["api_key"].startswith("bb_")

    with cli.api() as api:
        headers = _bearer(created["api_key"])
        assert api.get("/v1/customers", headers=headers).json()["data"] == []
        customer = api.post(
            "/v1/customers",
            headers=headers,
            json={"external_id": "C-1", "name": "Acme", "currency": "EUR"},
        )
        assert customer.status_code == 201, customer.text
        (key,) = api.get("/v1/api-keys", headers=headers).json()["data"]
        assert key["role"] == "admin"
        assert created["api_key"].startswith(f"bb_{key['prefix']}_")
        assert (
            api.get("/v1/customers", headers=_bearer(created["api_key"] + "x")).status_code == 401
        )

    listed = cli.json("msp", "list")
    assert listed == {"data": [{"id": created["id"], "name": "Alpha Hosting"}]}


def test_msp_create_for_people_shows_the_key_once(cli: Cli) -> None:
    result = cli.ok("msp", "create", "--name", "Beta Telecom")
    assert "shown once" in result.stdout
    key = result.stdout.strip().splitlines()[-1].split()[-1]
    assert key.startswith("bb_")
    with cli.api() as api:
        assert api.get("/v1/customers", headers=_bearer(key)).status_code == 200


def test_a_secret_key_is_generated_once_into_var_dir(cli: Cli) -> None:
    first = cli.run("msp", "create", "--name", "One", "--json", BILLBYTE_SECRET_KEY=None)
    assert first.exit_code == 0, first.stderr
    assert set(json.loads(first.stdout)) == {"id", "api_key"}  # warnings stay off stdout
    key_file = cli.var_dir / "secret_key"
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    generated = key_file.read_text()
    second = cli.run("msp", "create", "--name", "Two", "--json", BILLBYTE_SECRET_KEY=None)
    assert second.exit_code == 0
    assert key_file.read_text() == generated


def test_api_key_create_list_revoke(cli: Cli) -> None:
    msp = cli.json("msp", "create", "--name", "Alpha")
    desk = cli.json("msp", "api-key", "create", "--msp", msp["id"], "--role", "helpdesk",
                    "--name", "desk")  # fmt: skip
    assert set(desk) == {"id", "prefix", "role", "api_key"}
    assert desk["role"] == "helpdesk"
    assert desk["api_key"].startswith(f"bb_{desk['prefix']}_")

    with cli.api() as api:
        assert api.get("/v1/customers", headers=_bearer(desk["api_key"])).status_code == 200
        refused = api.post(
            "/v1/customers",
            headers=_bearer(desk["api_key"]),
            json={"external_id": "C-1", "name": "Acme", "currency": "EUR"},
        )
        assert refused.status_code == 403

    listing = cli.ok("msp", "api-key", "list", "--msp", msp["id"], "--json").stdout
    assert desk["api_key"] not in listing and msp["api_key"] not in listing
    keys = {k["id"]: k for k in json.loads(listing)["data"]}
    assert keys[desk["id"]]["role"] == "helpdesk" and keys[desk["id"]]["name"] == "desk"
    assert keys[desk["id"]]["revoked_at"] is None
    assert keys[desk["id"]]["last_used_at"] is not None  # it was used above
    assert len(keys) == 2

    people = cli.ok("msp", "api-key", "list", "--msp", msp["id"]).stdout
    assert desk["id"] in people and "helpdesk" in people and desk["api_key"] not in people

    revoked = cli.json("msp", "api-key", "revoke", "--msp", msp["id"], desk["id"])
    assert revoked["id"] == desk["id"] and revoked["revoked_at"]
    with cli.api() as api:
        response = api.get("/v1/customers", headers=_bearer(desk["api_key"]))
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "revoked_api_key"
        assert api.get("/v1/customers", headers=_bearer(msp["api_key"])).status_code == 200
        audit = api.get("/v1/audit-events", headers=_bearer(msp["api_key"])).json()["data"]
        assert [(e["action"], e["actor"]) for e in audit][-1] == ("api_key.revoked", "cli")
    listed = json.loads(cli.ok("msp", "api-key", "list", "--msp", msp["id"], "--json").stdout)
    assert {k["id"]: k["revoked_at"] for k in listed["data"]}[desk["id"]] is not None


def test_revoking_another_msps_key_is_refused(cli: Cli) -> None:
    alpha = cli.json("msp", "create", "--name", "Alpha")
    beta = cli.json("msp", "create", "--name", "Beta")
    beta_key = cli.json("msp", "api-key", "create", "--msp", beta["id"])
    result = cli.run("msp", "api-key", "revoke", "--msp", alpha["id"], beta_key["id"])
    _assert_one_line_error(result, beta_key["id"])
    with cli.api() as api:
        assert api.get("/v1/customers", headers=_bearer(beta_key["api_key"])).status_code == 200


@pytest.mark.parametrize(
    "args",
    [
        ["msp", "api-key", "create", "--msp", "msp_nope"],
        ["msp", "api-key", "list", "--msp", "msp_nope"],
        ["msp", "api-key", "revoke", "--msp", "msp_nope", "key_nope"],
    ],
    ids=["create", "list", "revoke"],
)
def test_unknown_msp_is_a_one_line_error(cli: Cli, args: list[str]) -> None:
    cli.ok("msp", "create", "--name", "Alpha")  # a database that exists and is current
    _assert_one_line_error(cli.run(*args), "msp_nope")


def test_other_mistakes_are_one_line_errors(cli: Cli) -> None:
    msp = cli.json("msp", "create", "--name", "Alpha")
    _assert_one_line_error(cli.run("msp", "create", "--name", "   "), "name")
    _assert_one_line_error(
        cli.run("msp", "api-key", "revoke", "--msp", msp["id"], "key_nope"), "key_nope"
    )
    wrong_role = cli.run("msp", "api-key", "create", "--msp", msp["id"], "--role", "root")
    assert wrong_role.exit_code == 2 and "Traceback" not in wrong_role.stderr
    assert "root" in wrong_role.stderr


def test_an_unreachable_database_is_a_one_line_error(cli: Cli) -> None:
    missing_dir = cli.var_dir / "no" / "such" / "dir" / "db.sqlite3"
    result = cli.run(
        "msp", "create", "--name", "X", BILLBYTE_DATABASE_URL=f"sqlite:///{missing_dir}"
    )
    _assert_one_line_error(result, "database")


def test_demo_is_idempotent(cli: Cli) -> None:
    first = cli.json("demo")
    second = cli.json("demo")
    assert second["msp_id"] == first["msp_id"]
    assert second["api_key"] == first["api_key"]
    # three customers with existing accounts, one provisioned through the sandboxes
    assert first["customers"] == second["customers"] == 4
    assert second["partner_accounts"] == first["partner_accounts"]
    # the two past months invoiced once, for the three customers with usage
    assert first["invoices"] == second["invoices"] == 6
    assert [m["name"] for m in cli.json("msp", "list")["data"]] == ["Demo Hosting GmbH"]
    with cli.api() as api:
        headers = _bearer(second["api_key"])
        customers = api.get("/v1/customers", headers=headers).json()["data"]
        assert len(customers) == 4
        assert len({c["external_id"] for c in customers}) == 4
        newco = next(c for c in customers if c["external_id"] == "NEWCO-9")
        assert sorted(s["vendor"] for s in newco["vendor_states"]) == ["aws", "azure", "gcp"]
        partners = api.get("/v1/partner-accounts", headers=headers).json()["data"]
        assert len(partners) == 4 and all(p["has_credentials"] for p in partners)
        links = [
            link
            for c in customers
            for link in api.get(f"/v1/customers/{c['id']}/vendor-accounts", headers=headers).json()[
                "data"
            ]
        ]
        # per the demo data set: 2 + 2 + 3 (+ NEWCO-9 once provisioned)
        assert len(links) == 7
    # Even if the saved key is lost, a third run reuses the MSP and hands out a working key.
    (cli.var_dir / "demo_api_key").unlink()
    third = cli.json("demo")
    assert third["msp_id"] == first["msp_id"]
    with cli.api() as api:
        headers = _bearer(third["api_key"])
        assert len(api.get("/v1/customers", headers=headers).json()["data"]) == 4


def test_migrate_brings_an_empty_database_to_head(cli: Cli) -> None:
    result = cli.ok("migrate")
    assert "migrated" in result.stdout
    engine = cli.engine()
    try:
        assert current_revisions(engine) == head_revisions(engine)
    finally:
        engine.dispose()
    cli.ok("migrate")  # again: nothing to do, no error


class _FakeUvicorn:
    """Stands in for ``uvicorn.Server.run``: records what the server was configured with."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls = self.calls

        def run(server: uvicorn.Server, sockets: Any = None) -> None:
            config = server.config
            calls.append({"app": config.app, "host": config.host, "port": config.port})

        monkeypatch.setattr(uvicorn.Server, "run", run)


def test_serve_migrates_an_empty_database_and_answers_healthz(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    from fastapi.testclient import TestClient

    fake = _FakeUvicorn()
    fake.install(monkeypatch)
    cli.ok("serve", "--host", "0.0.0.0", "--port", "8123")
    (call,) = fake.calls
    assert (call["host"], call["port"]) == ("0.0.0.0", 8123)
    with TestClient(call["app"]) as client:
        assert client.get("/healthz").json() == {"status": "ok", "database": backend}
    engine = cli.engine()
    try:
        assert current_revisions(engine) == head_revisions(engine)
    finally:
        engine.dispose()
    # Defaults come from the environment.
    cli.ok("serve")
    assert (fake.calls[1]["host"], fake.calls[1]["port"]) == ("127.0.0.1", 8000)
    cli.run("serve", BILLBYTE_HOST="0.0.0.0", BILLBYTE_PORT="9000")
    assert (fake.calls[2]["host"], fake.calls[2]["port"]) == ("0.0.0.0", 9000)
