"""``billbyte msp ...``: MSP tenants, their API keys and users (platform operator)."""

from __future__ import annotations

from typing import Annotated

import typer

from billbyte.auth.roles import Role
from billbyte.cli_support import cli_subject, emit, runtime_ready
from billbyte.tenancy import service as tenancy

app = typer.Typer(help="Manage MSP tenants (platform operator).", no_args_is_help=True)
key_app = typer.Typer(help="Manage an MSP's API keys.", no_args_is_help=True)
user_app = typer.Typer(
    help="Manage an MSP's users (roles: admin, billing, helpdesk).", no_args_is_help=True
)
app.add_typer(key_app, name="api-key")
app.add_typer(user_app, name="user")


@app.command("create")
def msp_create(
    name: Annotated[str, typer.Option(help="The MSP's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an MSP tenant and its first admin API key (shown once)."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        msp, issued = tenancy.create_msp(uow.session, name)
        uow.commit()
    emit(
        as_json,
        {"id": msp.id, "api_key": issued.secret},
        lambda: typer.echo(f"MSP {msp.id} created.\nAdmin API key (shown once): {issued.secret}"),
    )


@app.command("list")
def msp_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List MSP tenants."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        msps = tenancy.list_msps(uow.session)
    rows = [{"id": m.id, "name": m.name} for m in msps]

    def human() -> None:
        for row in rows:
            typer.echo(f"{row['id']}  {row['name']}")

    emit(as_json, {"data": rows}, human)


@key_app.command("create")
def key_create(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    role: Annotated[Role, typer.Option(help="admin, billing or helpdesk.")] = Role.ADMIN,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "cli",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Issue an API key for an MSP (secret shown once)."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        tenancy.get_msp(uow.session, msp)
        issued = tenancy.issue_api_key(uow.session, cli_subject(msp), name=name, role=role.value)
        uow.commit()
    emit(
        as_json,
        {
            "id": issued.key.id,
            "prefix": issued.key.prefix,
            "role": issued.key.role,
            "api_key": issued.secret,
        },
        lambda: typer.echo(
            f"API key {issued.key.id} ({issued.key.role}), shown once:\n{issued.secret}"
        ),
    )


@key_app.command("revoke")
def key_revoke(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Revoke an API key; requests with it get 401 from now on."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        tenancy.get_msp(uow.session, msp)
        key = tenancy.revoke_api_key(uow.session, cli_subject(msp), key_id)
        uow.commit()
    emit(
        as_json,
        {"id": key.id, "revoked_at": key.revoked_at},
        lambda: typer.echo(f"API key {key.id} revoked."),
    )


@key_app.command("list")
def key_list(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List an MSP's API keys (prefixes only; secrets are never stored)."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        tenancy.get_msp(uow.session, msp)
        keys = tenancy.list_api_keys(uow.session, msp)
    rows = [
        {
            "id": k.id,
            "name": k.name,
            "role": k.role,
            "prefix": k.prefix,
            "last_used_at": k.last_used_at,
            "revoked_at": k.revoked_at,
        }
        for k in keys
    ]

    def human() -> None:
        for r in rows:
            state = "revoked" if r["revoked_at"] else "active"
            typer.echo(f"{r['id']}  bb_{r['prefix']}_…  {r['role']:<8} {state:<8} {r['name']}")

    emit(as_json, {"data": rows}, human)


@user_app.command("add")
def user_add(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    email: Annotated[str, typer.Option(help="The user's e-mail address.")],
    role: Annotated[Role, typer.Option(help="admin, billing or helpdesk.")] = Role.HELPDESK,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add a user to an MSP with a role (help desk is read-only)."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        tenancy.get_msp(uow.session, msp)
        user = tenancy.add_user(uow.session, cli_subject(msp), email, role.value)
        link = tenancy.sign_in_link(
            uow.session, cli_subject(msp), user.id, runtime.settings.effective_public_url
        )
        uow.commit()
    emit(
        as_json,
        {"id": user.id, "email": user.email, "role": user.role, "sign_in_link": link},
        lambda: typer.echo(
            f"user {user.id} {user.email} ({user.role}) added\n"
            f"hand over this one-time link to choose a console password: {link}"
        ),
    )


@user_app.command("sign-in-link")
def user_sign_in_link(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    user: Annotated[str, typer.Argument(help="The user's id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A new one-time link for a user to set their console password (unlocks the account;
    earlier links stop working)."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        tenancy.get_msp(uow.session, msp)
        link = tenancy.sign_in_link(
            uow.session, cli_subject(msp), user, runtime.settings.effective_public_url
        )
        uow.commit()
    emit(as_json, {"sign_in_link": link}, lambda: typer.echo(link))


@user_app.command("list")
def user_list(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List an MSP's users."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        tenancy.get_msp(uow.session, msp)
        users = tenancy.list_users(uow.session, msp)
    rows = [{"id": u.id, "email": u.email, "role": u.role} for u in users]

    def human() -> None:
        for row in rows:
            typer.echo(f"{row['id']}  {row['role']:<8} {row['email']}")

    emit(as_json, {"data": rows}, human)
