"""CLI fixtures: a fresh database (SQLite file, or a fresh PostgreSQL schema) per test, and a
runner that points ``billbyte`` at it through the environment, as an operator would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from typer.testing import CliRunner, Result

from billbyte.app import create_app
from billbyte.cli import app
from billbyte.db.engine import engine_for, make_engine
from billbyte.runtime import build_runtime
from billbyte.settings import Settings, get_settings
from tests.conftest import HOW_TO_START_PG, PG_URL, _pg_reachable

SECRET_KEY = "cli-test-secret-key"


@dataclass
class Cli:
    database_url: str
    var_dir: Path
    env: dict[str, str | None]

    def run(self, *args: str, **env: str | None) -> Result:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args), env={**self.env, **env})
        finally:
            get_settings.cache_clear()

    def ok(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        """Run with --json; stdout must be exactly one JSON document on one line."""
        result = self.ok(*args, "--json")
        lines = result.stdout.splitlines()
        assert len(lines) == 1, result.stdout
        return json.loads(lines[0])

    def settings(self) -> Settings:
        return Settings(database_url=self.database_url, var_dir=self.var_dir, secret_key=SECRET_KEY)

    def api(self) -> TestClient:
        """The API served on the same database, as ``billbyte serve`` would build it."""
        return TestClient(create_app(build_runtime(self.settings())), raise_server_exceptions=False)

    def engine(self) -> Engine:
        return make_engine(self.database_url)


@pytest.fixture
def cli(backend: str, tmp_path: Path) -> Iterator[Cli]:
    var_dir = tmp_path / "var"
    env: dict[str, str | None] = {
        "BILLBYTE_VAR_DIR": str(var_dir),
        "BILLBYTE_SECRET_KEY": SECRET_KEY,
        "BILLBYTE_LOG_LEVEL": None,
        "BILLBYTE_HOST": None,
        "BILLBYTE_PORT": None,
    }
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'billbyte.sqlite3'}"
        yield Cli(url, var_dir, {**env, "BILLBYTE_DATABASE_URL": url})
        engine_for(url).dispose()
        return
    error = _pg_reachable()
    if error:
        pytest.skip(f"PostgreSQL unreachable ({error}). {HOW_TO_START_PG}")
    schema = f"bbcli_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    try:
        yield Cli(url, var_dir, {**env, "BILLBYTE_DATABASE_URL": url})
    finally:
        engine_for(url).dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
