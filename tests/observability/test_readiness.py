"""GET /readyz: 200 with every check when the database and the usage store are there; a
503 problem naming the failing check otherwise, never a 500 and never a secret."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from billbyte.app import create_app
from billbyte.db.engine import make_engine
from billbyte.db.migrate import upgrade
from billbyte.observability import readiness
from billbyte.runtime import Runtime
from billbyte.settings import Settings
from tests.api.factories import assert_problem

DEAD_PG = "postgresql+psycopg://billbyte:hunter2-secret@127.0.0.1:1/test"


@pytest.mark.storage
def test_ready_when_the_database_and_the_usage_store_are_there(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {
            "database": {"status": "ok", "reason": None},
            "usage_store": {"status": "ok", "reason": None},
        },
    }


def _client(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime), raise_server_exceptions=False)


def test_not_ready_when_postgresql_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(
        var_dir=tmp_path / "var", secret_key="k", database_url=DEAD_PG, readiness_cache_seconds=0
    )
    runtime = Runtime(settings=settings, engine=create_engine(DEAD_PG), secret_key="k")
    with _client(runtime) as client:
        response = client.get("/readyz")
    problem = assert_problem(response, 503, "not_ready")
    assert problem["checks"]["database"]["status"] == "failed"
    assert problem["checks"]["usage_store"]["status"] == "ok"
    assert "database" in problem["detail"]
    assert "hunter2" not in response.text and "127.0.0.1" not in response.text
    assert response.headers["x-request-id"] == problem["request_id"]


def test_not_ready_when_the_sqlite_directory_is_removed(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    engine = make_engine(f"sqlite:///{var / 'billbyte.sqlite3'}")
    upgrade(engine)
    settings = Settings(var_dir=var, secret_key="k", readiness_cache_seconds=0)
    runtime = Runtime(settings=settings, engine=engine, secret_key="k")
    with _client(runtime) as client:
        assert client.get("/readyz").status_code == 200
        engine.dispose()  # no pooled connection to the removed file
        shutil.rmtree(var)
        response = client.get("/readyz")
        problem = assert_problem(response, 503, "not_ready")
        assert problem["checks"]["database"]["status"] == "failed"
        assert problem["checks"]["usage_store"] == {
            "status": "failed",
            "reason": "usage store directory missing",
        }
        assert str(tmp_path) not in response.text
        assert not var.exists()  # a readiness probe does not re-create the state directory
    engine.dispose()


@pytest.mark.storage
def test_not_ready_when_the_usage_store_is_not_a_directory(
    runtime: Runtime, client: TestClient
) -> None:
    store = runtime.settings.usage_store_dir
    store.rmdir()
    store.write_text("not a directory")
    problem = assert_problem(client.get("/readyz"), 503, "not_ready")
    assert problem["checks"]["usage_store"]["status"] == "failed"
    assert problem["checks"]["database"]["status"] == "ok"
    assert "usage_store" in problem["detail"]


@pytest.mark.storage
def test_a_registered_check_takes_part(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broker(runtime: Runtime) -> None:
        raise readiness.NotReady("broker unreachable")

    def buggy(runtime: Runtime) -> None:
        raise KeyError("a check's own bug")

    monkeypatch.setattr(readiness, "CHECKS", dict(readiness.CHECKS))
    readiness.register("broker", broker)
    readiness.register("object_store", buggy)
    response = client.get("/readyz")
    problem = assert_problem(response, 503, "not_ready")
    assert problem["checks"]["broker"] == {"status": "failed", "reason": "broker unreachable"}
    assert problem["checks"]["object_store"] == {"status": "failed", "reason": "KeyError"}
    assert problem["checks"]["database"]["status"] == "ok"
