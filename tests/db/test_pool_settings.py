"""The BILLBYTE_DB_POOL_* settings reach the PostgreSQL engine a process runs on."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from billbyte.runtime import build_runtime
from billbyte.settings import Settings, describe_invalid
from tests.conftest import PG_URL, _pg_reachable


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    monkeypatch.setenv("BILLBYTE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BILLBYTE_SECRET_KEY", "test-secret-key")
    monkeypatch.setenv("BILLBYTE_DATABASE_URL", PG_URL)
    for name, value in env.items():
        monkeypatch.setenv(f"BILLBYTE_{name}", value)
    return Settings()


def test_pool_settings_reach_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if _pg_reachable():
        pytest.skip(f"PostgreSQL unreachable: {_pg_reachable()}")
    settings = _settings(
        tmp_path,
        monkeypatch,
        DB_POOL_SIZE="3",
        DB_MAX_OVERFLOW="4",
        DB_POOL_TIMEOUT="2.5",
        DB_POOL_PRE_PING="false",
        DB_POOL_RECYCLE="600",
        DB_PREPARED_STATEMENTS="false",
    )
    engine = build_runtime(settings).engine
    try:
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.size() == 3
        assert pool._max_overflow == 4
        assert pool._timeout == 2.5
        assert pool._pre_ping is False
        assert pool._recycle == 600
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
            driver = connection.connection.driver_connection
            assert driver.prepare_threshold is None  # type: ignore[union-attr]
    finally:
        engine.dispose()


def test_defaults_keep_prepared_statements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if _pg_reachable():
        pytest.skip(f"PostgreSQL unreachable: {_pg_reachable()}")
    engine = build_runtime(_settings(tmp_path, monkeypatch)).engine
    try:
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow, pool._timeout) == (10, 20, 30.0)
        assert pool._pre_ping is True and pool._recycle == 1800
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert driver.prepare_threshold == 5  # type: ignore[union-attr]  # psycopg's default
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("name", "value"),
    [("DB_POOL_SIZE", "0"), ("DB_MAX_OVERFLOW", "-1"), ("DB_POOL_TIMEOUT", "0")],
)
def test_a_bad_pool_setting_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _settings(tmp_path, monkeypatch, **{name: value})
    assert describe_invalid(caught.value).startswith(f"BILLBYTE_{name}:")
