"""``billbyte collect``: collect a partner account's usage from its vendor now."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from billbyte.cli_support import fail, runtime_ready
from billbyte.connectors import service as connectors
from billbyte.connectors.base import VendorError


def collect_command(
    partner_account: Annotated[str, typer.Option("--partner-account", help="Partner account id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Collect usage from the vendor now, for one partner account (imports what is new)."""
    with runtime_ready() as runtime:
        try:
            result = connectors.collect(runtime, partner_account)
        except VendorError as exc:
            fail(f"the vendor failed: {exc.message}")
            return
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        typer.echo(f"collected: {len(result['imports'])} import(s) {', '.join(result['imports'])}")
