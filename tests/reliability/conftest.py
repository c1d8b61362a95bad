"""Fixtures of the reliability suite: the rounds, a seeded random source, a stack per test.

The seed is printed at the start of every test (pytest shows it with a failure's captured
output); ``--reliability-seed N`` replays a failed run's kill points and usage exactly.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_PG, _pg_reachable
from tests.reliability.harness import Stack, fresh_database


@pytest.fixture
def rounds(request: pytest.FixtureRequest) -> int:
    count = int(request.config.getoption("--reliability-rounds"))
    assert count >= 1, "--reliability-rounds must be at least 1"
    return count


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    chosen = request.config.getoption("--reliability-seed")
    value = int(chosen) if chosen is not None else random.SystemRandom().randrange(10**9)
    print(f"reliability seed {value} (replay: --reliability-seed {value})")
    return value


@pytest.fixture
def rng(seed: int) -> random.Random:
    return random.Random(seed)


def require_postgres() -> None:
    error = _pg_reachable()
    if error:
        if REQUIRE_PG:
            pytest.fail(f"BILLBYTE_REQUIRE_POSTGRES=1 but PostgreSQL is unreachable: {error}")
        pytest.skip(f"PostgreSQL unreachable ({error}): the reliability suite needs it")


StackFactory = Callable[..., Stack]


@pytest.fixture
def make_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StackFactory]:
    """Builds stacks (a database and usage directory of their own, the MSP set up), with
    extra environment for the processes and settings for the test's side; closes them."""
    require_postgres()
    tag = re.sub(r"[^a-z0-9]+", "_", request.node.name.removeprefix("test_").lower())[:24]
    built: list[Stack] = []
    with ExitStack() as cleanup:

        def factory(extra_env: dict[str, str] | None = None, **settings_overrides: object) -> Stack:
            database = cleanup.enter_context(fresh_database(tag))
            made = Stack(
                database,
                tmp_path / f"stack{len(built)}",
                extra_env=dict(extra_env or {}),
                settings_overrides=dict(settings_overrides),
            )
            built.append(made)
            cleanup.callback(made.close)
            return made

        yield factory


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    return make_stack()
