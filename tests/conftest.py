"""Test fixtures. Storage tests run once per backend: SQLite and PostgreSQL.

PostgreSQL is taken from BILLBYTE_TEST_POSTGRES_URL (default: the local server on
127.0.0.1:5432, database ``test``). If it cannot be reached the PostgreSQL half is
skipped *loudly* — unless BILLBYTE_REQUIRE_POSTGRES=1 (as in .ci/run), which fails the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, text

from billbyte import models  # noqa: F401  (fills Base.metadata)
from billbyte.app import create_app
from billbyte.db.base import Base
from billbyte.db.engine import make_engine
from billbyte.db.migrate import upgrade
from billbyte.runtime import Runtime
from billbyte.settings import Settings
from billbyte.tenancy import service as tenancy

PG_URL = os.environ.get(
    "BILLBYTE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_PG = os.environ.get("BILLBYTE_REQUIRE_POSTGRES") == "1"
HOW_TO_START_PG = (
    "Start PostgreSQL (e.g. 'pg_ctlcluster 15 main start' or 'docker run -p 5432:5432 "
    "-e POSTGRES_HOST_AUTH_METHOD=trust postgres') and create a database 'test', or point "
    "BILLBYTE_TEST_POSTGRES_URL at one."
)

_pg_state: dict[str, Any] = {}
TEST_RATE_LIMIT = "1000000/minute"


def _pg_reachable() -> str | None:
    if "error" not in _pg_state:
        try:
            probe = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with probe.connect() as connection:
                connection.execute(text("SELECT 1"))
            probe.dispose()
            _pg_state["error"] = None
        except Exception as exc:  # any failure means "not reachable"
            _pg_state["error"] = str(exc).splitlines()[0]
    return _pg_state["error"]  # type: ignore[no-any-return]


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here, not in tests/reliability/conftest.py: pytest reads options only from the
    # conftest files of the directories it is started on.
    group = parser.getgroup("reliability", "tests/reliability (docs/reliability.md)")
    group.addoption(
        "--reliability-rounds",
        type=int,
        default=20,
        help="Kill rounds per pipeline in tests/reliability (default 20, as in CI).",
    )
    group.addoption(
        "--reliability-seed",
        type=int,
        default=None,
        help="Seed of the kill points and generated usage (default: a new one, printed).",
    )


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_PG and _pg_reachable():
        raise pytest.UsageError(
            f"BILLBYTE_REQUIRE_POSTGRES=1 but PostgreSQL at {PG_URL} is unreachable: "
            f"{_pg_reachable()}. {HOW_TO_START_PG}"
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(chromium):
        terminalreporter.write_sep("!", "Browser tests NOT RUN", red=True, bold=True)
        terminalreporter.write_line(
            f"Chromium is not installed at {chromium}: tests/browser (the portal and the "
            "console in a real browser, /docs offline) were skipped. Install it with "
            "'apt-get install chromium'; CI sets BILLBYTE_REQUIRE_CHROMIUM=1 so this fails there."
        )
    error = _pg_state.get("error")
    if error:
        terminalreporter.write_sep("!", "PostgreSQL tests NOT RUN", red=True, bold=True)
        terminalreporter.write_line(f"PostgreSQL at {PG_URL} is unreachable: {error}")
        terminalreporter.write_line(HOW_TO_START_PG)
        terminalreporter.write_line("CI sets BILLBYTE_REQUIRE_POSTGRES=1 so this fails there.")


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@dataclass
class Backend:
    name: str
    template: Any  # SQLite template path or PostgreSQL schema name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)  # the migrations themselves are under test here
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    error = _pg_reachable()
    if error:
        pytest.skip(f"PostgreSQL unreachable ({error}). {HOW_TO_START_PG}")
    schema = f"bbtest_{_worker()}_{os.getpid()}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = pg_engine(schema)
    upgrade(engine)
    engine.dispose()
    yield schema
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def pg_engine(schema: str) -> Engine:
    engine = make_engine(PG_URL)

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET search_path TO {schema}")
        cursor.close()
        dbapi_connection.commit()

    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "db.sqlite3"
        shutil.copy(template, path)
        engine = make_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    schema: str = request.getfixturevalue("pg_schema")
    engine = pg_engine(schema)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    yield engine
    engine.dispose()


@pytest.fixture
def runtime(engine: Engine, tmp_path: Path) -> Runtime:
    # The test receivers and vendor simulators listen on http://127.0.0.1 at any port, which
    # production refuses by default (billbyte.kit.outbound). Rate limits stay on (the
    # middleware runs in every test) but far above what a test sends;
    # tests/security/test_rate_limits.py sets low ones.
    settings = Settings(
        var_dir=tmp_path / "var",
        secret_key="test-secret-key",
        outbound_allow_private=True,
        outbound_allow_http=True,
        outbound_allowed_ports="*",
        rate_limit_per_ip=TEST_RATE_LIMIT,
        rate_limit_per_key=TEST_RATE_LIMIT,
        rate_limit_failed_auth_per_ip=TEST_RATE_LIMIT,
        readiness_cache_seconds=0,  # each /readyz a fresh probe; tests/observability sets one
    )
    return Runtime(settings=settings, engine=engine, secret_key=settings.secret_key)


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class Tenant:
    msp_id: str
    key: str
    client: TestClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.client.post(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def patch(self, url: str, **kw: Any) -> Any:
        return self.client.patch(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.client.delete(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def issue_key(self, role: str) -> str:
        response = self.post("/v1/api-keys", json={"name": role, "role": role})
        assert response.status_code == 201, response.text
        return str(response.json()["secret"])


def make_tenant(runtime: Runtime, client: TestClient, name: str) -> Tenant:
    with runtime.uow() as uow:
        msp, issued = tenancy.create_msp(uow.session, name)
        uow.commit()
    return Tenant(msp_id=msp.id, key=issued.secret, client=client)


@pytest.fixture
def tenant(runtime: Runtime, client: TestClient) -> Tenant:
    return make_tenant(runtime, client, "Alpha Hosting")


@pytest.fixture
def other_tenant(runtime: Runtime, client: TestClient) -> Tenant:
    return make_tenant(runtime, client, "Beta Telecom")
