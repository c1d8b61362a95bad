"""``billbyte --help`` reads like a command line, not like Python: no ``<bool>``, ``<str>`` or
``{files}`` placeholders (typer 0.29 prints its own type names; pyproject pins a range that does
not). Every command and group of the tree is checked, so a new command is checked as it is added."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from billbyte.cli import app

# Python type names and brace-wrapped argument names, as typer >= 0.29 prints them.
PYTHON_PLACEHOLDER = re.compile(r"<(bool|str|int|float|list\[[^\]]*\]|Path|Decimal)>|\{[a-z_]+\}")


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]

    # Duck-typed: typer 0.29 vendors its own click, whose Group is not click.Group.
    def walk(command: Any, prefix: list[str]) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


def test_the_tree_is_walked() -> None:
    paths = _command_paths()
    assert ["usage", "import"] in paths and ["invoices", "close"] in paths, paths
    assert len(paths) > 20


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "billbyte")
def test_help_has_no_python_placeholders(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert not PYTHON_PLACEHOLDER.search(result.output), result.output


def test_usage_import_names_its_files_argument_for_people() -> None:
    output = CliRunner().invoke(app, ["usage", "import", "--help"], env={"COLUMNS": "100"}).output
    assert "FILES..." in output and "--json" in output
