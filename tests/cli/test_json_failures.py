"""With ``--json`` a failure prints the problem (problem+json fields) on stdout, not nothing."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from tests.cli.conftest import Cli


def test_json_failure_prints_the_problem_on_stdout(cli: Cli) -> None:
    result = cli.run("msp", "api-key", "create", "--msp", "msp_does_not_exist", "--json")
    assert result.exit_code != 0
    problem = json.loads(result.stdout)
    assert set(problem) == {"type", "title", "detail", "status"}
    assert problem["status"] == 404
    assert "msp_does_not_exist" in problem["detail"]


def test_failure_without_json_keeps_stdout_empty(cli: Cli) -> None:
    result = cli.run("msp", "api-key", "create", "--msp", "msp_does_not_exist")
    assert result.exit_code != 0
    assert result.stdout == ""


def test_pyproject_licence_is_an_spdx_string() -> None:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text())["project"]
    assert project["license"] == "Apache-2.0"
