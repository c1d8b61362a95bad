"""``serve --sandbox`` fails at once, naming the port and how to change it, when a sandbox
port is taken (it used to hang forever)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Cli


@pytest.fixture
def occupied_port() -> Iterator[int]:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _other_ports_free(taken: str) -> dict[str, str | None]:
    """The other sandboxes on free ports, so that the refusal names the taken one even where
    something else on the machine holds a default port (8811-8813)."""
    names = ("AWS", "PARTNER_CENTER", "GOOGLE_CHANNEL")
    return {f"BILLBYTE_SANDBOX_{n}_PORT": str(_free_port()) for n in names if n != taken}


# "Fast" is what returning at all proves (the old code waited forever for the port); no
# wall-clock bound is asserted (tests never assert timings).
def test_taken_port_by_flag_fails_fast(cli: Cli, occupied_port: int) -> None:
    result = cli.run(
        "serve", "--sandbox", "--sandbox-aws-port", str(occupied_port), **_other_ports_free("AWS")
    )
    assert result.exit_code != 0
    assert f"sandbox port {occupied_port} (aws) is already in use" in result.output
    assert "--sandbox-aws-port" in result.output
    assert "BILLBYTE_SANDBOX_AWS_PORT" in result.output


def test_taken_port_by_env_fails_fast(cli: Cli, occupied_port: int) -> None:
    result = cli.run(
        "serve",
        "--sandbox",
        BILLBYTE_SANDBOX_GOOGLE_CHANNEL_PORT=str(occupied_port),
        **_other_ports_free("GOOGLE_CHANNEL"),
    )
    assert result.exit_code != 0
    assert f"sandbox port {occupied_port} (google_channel) is already in use" in result.output
