"""`billbyte usage ...` starts without what only serving and job running need (issue 14: the
job handlers, the broker client and the demo were more than a second of start-up)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("billbyte.tasks", "billbyte.demo", "dramatiq", "pika")

PROBE = """
import sys
from typer.testing import CliRunner
from billbyte.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
assert result.exit_code == 0, result.output
print(",".join(m for m in {heavy!r} if m in sys.modules))
"""


def _loaded_after(tmp_path: Path, *args: str) -> str:
    env = {**os.environ, "BILLBYTE_VAR_DIR": str(tmp_path / "var"), "BILLBYTE_SECRET_KEY": "k"}
    env.pop("BILLBYTE_DATABASE_URL", None)
    env.pop("BILLBYTE_BROKER_URL", None)
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()


def test_a_usage_command_loads_no_job_handler(tmp_path: Path) -> None:
    assert _loaded_after(tmp_path, "usage", "gc") == ""


@pytest.mark.parametrize("command", [["jobs", "list"], ["rate", "--help"]])
def test_the_other_commands_still_load_every_job_kind(tmp_path: Path, command: list[str]) -> None:
    assert "billbyte.tasks" in _loaded_after(tmp_path, *command).split(",")
