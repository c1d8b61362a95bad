"""MSP users from the command line: roles, validation, per-MSP uniqueness."""

from __future__ import annotations

from tests.cli.conftest import Cli


def test_users_are_added_with_roles_and_listed_per_msp(cli: Cli) -> None:
    alpha = cli.json("msp", "create", "--name", "Alpha")["id"]
    beta = cli.json("msp", "create", "--name", "Beta")["id"]
    added = cli.json(
        "msp", "user", "add", "--msp", alpha, "--email", " Ops@Alpha.Example ", "--role", "billing"
    )
    assert added["email"] == "ops@alpha.example" and added["role"] == "billing"
    cli.ok("msp", "user", "add", "--msp", alpha, "--email", "desk@alpha.example")
    listed = cli.json("msp", "user", "list", "--msp", alpha)["data"]
    assert sorted((u["email"], u["role"]) for u in listed) == [
        ("desk@alpha.example", "helpdesk"),
        ("ops@alpha.example", "billing"),
    ]
    assert cli.json("msp", "user", "list", "--msp", beta)["data"] == []
    # the same address may exist in another MSP, not twice in one
    cli.ok("msp", "user", "add", "--msp", beta, "--email", "ops@alpha.example")
    again = cli.run("msp", "user", "add", "--msp", alpha, "--email", "OPS@alpha.example")
    assert again.exit_code == 1 and "already a user" in again.stderr
    assert "Traceback" not in again.stderr


def test_bad_user_input_is_a_one_line_error(cli: Cli) -> None:
    msp = cli.json("msp", "create", "--name", "Alpha")["id"]
    bad_email = cli.run("msp", "user", "add", "--msp", msp, "--email", "not-an-address")
    assert bad_email.exit_code == 1 and "not an e-mail address" in bad_email.stderr
    bad_role = cli.run(
        "msp", "user", "add", "--msp", msp, "--email", "a@b.example", "--role", "root"
    )
    assert bad_role.exit_code != 0 and "Traceback" not in bad_role.stderr
    unknown = cli.run("msp", "user", "list", "--msp", "msp_nope")
    assert unknown.exit_code == 1 and "No MSP" in unknown.stderr
