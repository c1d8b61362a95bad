"""``billbyte secrets ...``: key rotation for everything stored encrypted."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from billbyte.cli_support import fail, runtime_ready
from billbyte.keyring import rotation

app = typer.Typer(help="Manage the secret key that encrypts stored secrets.", no_args_is_help=True)


@app.command("rotate")
def rotate(
    batch_size: Annotated[
        int, typer.Option(help="Rows re-encrypted per transaction.", min=1)
    ] = rotation.DEFAULT_BATCH_SIZE,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Re-encrypt every stored secret under the first key of BILLBYTE_SECRET_KEY.

    Procedure (docs/security.md): add the new key *after* the old one everywhere; then put
    it first everywhere; run this; only then remove the old key. Safe to re-run, and to run
    while the API is serving."""
    with runtime_ready() as runtime:
        outcomes = rotation.rotate_secrets(runtime, batch_size=batch_size)
    undecryptable = sum(len(o.undecryptable) for o in outcomes)
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "columns": [o.as_dict() for o in outcomes],
                    "rewritten": sum(o.rewritten for o in outcomes),
                    "undecryptable": undecryptable,
                }
            )
            + "\n"
        )
    else:
        for o in outcomes:
            typer.echo(f"{o.column}: {o.rewritten} of {o.examined} re-encrypted")
    if undecryptable:
        listed = "; ".join(
            f"{o.column}: {', '.join(o.undecryptable[:10])}" for o in outcomes if o.undecryptable
        )
        fail(
            f"{undecryptable} stored value(s) cannot be decrypted with any configured key "
            f"({listed}). Do not remove old keys: add the key that encrypted them to "
            "BILLBYTE_SECRET_KEY and run again."
        )
