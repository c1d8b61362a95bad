"""``billbyte sandbox``: run the vendor simulators; ``serve --sandbox`` starts them too."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from billbyte.cli_support import emit
from billbyte.sandbox import Sandboxes, start_all


def start_beside_server(
    tick_seconds: float, ports: dict[str, int | None], state_dir: Path
) -> Sandboxes:
    """The simulators on the chosen ports, for ``billbyte serve --sandbox``, with their state
    restored from ``state_dir`` (and saved there)."""
    sandboxes = start_all(ports, state_dir)
    sandboxes.start_ticking(tick_seconds)
    for vendor, url in sandboxes.endpoints().items():
        typer.echo(f"sandbox {vendor:<13} {url}", err=True)
    typer.echo(sandboxes.restored, err=True)
    return sandboxes


def sandbox_command(
    tick_seconds: Annotated[float, typer.Option(help="Delivery interval.")] = 60.0,
    aws_port: Annotated[int, typer.Option(help="moto (AWS) port.")] = 8811,
    partner_center_port: Annotated[int, typer.Option(help="Partner Center port.")] = 8812,
    channel_port: Annotated[int, typer.Option(help="Cloud Channel port.")] = 8813,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run the vendor simulators (AWS via moto, Partner Center, Cloud Channel) until Ctrl-C.

    Point sandbox partner accounts' endpoint_url at the printed addresses."""
    sandboxes = start_all(
        {"aws": aws_port, "partner_center": partner_center_port, "google_channel": channel_port}
    )
    sandboxes.start_ticking(tick_seconds)

    def human() -> None:
        for vendor, url in sandboxes.endpoints().items():
            typer.echo(f"{vendor:<13} {url}")

    emit(
        as_json, {"endpoints": sandboxes.endpoints(), "credentials": sandboxes.credentials()}, human
    )
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    sandboxes.stop()
