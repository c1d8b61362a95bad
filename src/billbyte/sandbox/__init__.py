"""Sandboxes that speak the vendors' real protocols: the demo, the tests and an MSP trying its
integration before going live run on them (``billbyte sandbox``, ``billbyte serve --sandbox``).

- AWS: moto in server mode (Organizations, SCPs, S3 with CUR deliveries) — ``sandbox.aws``
- Microsoft Partner Center: BillByte's simulator — ``sandbox.partner_center``
- Google Cloud Channel: BillByte's simulator — ``sandbox.google_channel``
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from billbyte.sandbox.google_channel import start_google_channel_sandbox
from billbyte.sandbox.partner_center import start_partner_center_sandbox
from billbyte.sandbox.state import read_state, write_state

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"aws": 8811, "partner_center": 8812, "google_channel": 8813}


@dataclass
class Sandboxes:
    aws: Any
    partner_center: Any
    google_channel: Any
    state_dir: Path | None = None  # where the state is saved; None: in memory only
    restored: str | None = None  # what ``restore`` said
    _stop: threading.Event = field(default_factory=threading.Event)
    _saving: threading.Lock = field(default_factory=threading.Lock)

    def endpoints(self) -> dict[str, str]:
        return {
            "aws": self.aws.endpoint_url,
            "azure": self.partner_center.base_url,
            "microsoft365": self.partner_center.base_url,
            "gcp": self.google_channel.base_url,
        }

    def credentials(self) -> dict[str, dict[str, Any]]:
        """What to store on sandbox partner accounts, per vendor."""
        return {
            "aws": self.aws.credentials(),
            "azure": {"currencies": "EUR,USD"},
            "microsoft365": {"currencies": "EUR,USD"},
            "gcp": {},
        }

    def tick(self) -> None:
        for sandbox in (self.aws, self.partner_center, self.google_channel):
            try:
                sandbox.tick()
            except Exception:  # one simulator failing must not stop the others
                log.exception("sandbox tick failed")
        self.save()

    def _stateful(self) -> dict[str, Any]:
        """Each simulator by the name of its state file: what has ``export_state`` and
        ``restore_state``."""
        return {
            "aws": self.aws,
            "partner_center": self.partner_center.app,
            "google_channel": self.google_channel.app,
        }

    def save(self) -> None:
        """Write each simulator's state to ``state_dir`` (after every delivery and at stop)."""
        if self.state_dir is None:
            return
        with self._saving:
            for name, simulator in self._stateful().items():
                try:
                    write_state(self.state_dir / f"{name}.json", simulator.export_state())
                except Exception:  # a failed save must not stop the sandboxes
                    log.exception("saving the %s sandbox's state failed", name)

    def restore(self) -> str:
        """Load what ``save`` wrote; returns the one line saying what was restored."""
        assert self.state_dir is not None
        counts: dict[str, int] = {}
        problems: list[str] = []
        for name, simulator in self._stateful().items():
            path = self.state_dir / f"{name}.json"
            try:
                saved = read_state(path)
                if saved is not None:
                    counts[name] = simulator.restore_state(saved)
            except Exception as exc:  # an unreadable file: keep it aside, start that one empty
                log.debug("restoring %s failed", path, exc_info=True)
                if path.exists():
                    path.replace(path.with_name(path.name + ".unreadable"))
                problems.append(f"{path} unreadable ({type(exc).__name__}), kept as .unreadable")
        where = f"{self.state_dir}/"
        if counts:
            detail = ", ".join(f"{LABELS[name]} {count}" for name, count in counts.items())
            line = (
                f"sandboxes: restored {sum(counts.values())} customer accounts from {where} "
                f"({detail})"
            )
        else:
            line = f"sandboxes: no saved state in {where}, started empty (saved there from now on)"
        return "; ".join([line, *problems])

    def start_ticking(self, interval_seconds: float) -> None:
        """Usage keeps arriving: every interval each simulator produces the next delivery."""

        def run() -> None:
            while not self._stop.wait(interval_seconds):
                self.tick()

        threading.Thread(target=run, name="billbyte-sandbox-ticks", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.save()  # before the simulators stop: moto's state is read through its API
        for sandbox in (self.aws, self.partner_center, self.google_channel):
            try:
                sandbox.stop()
            except Exception:
                log.exception("sandbox stop failed")


LABELS = {
    "aws": "AWS accounts",
    "partner_center": "Partner Center",
    "google_channel": "Cloud Channel",
}

PORT_FLAGS = {
    "aws": ("--sandbox-aws-port", "BILLBYTE_SANDBOX_AWS_PORT"),
    "partner_center": ("--sandbox-partner-center-port", "BILLBYTE_SANDBOX_PARTNER_CENTER_PORT"),
    "google_channel": ("--sandbox-google-channel-port", "BILLBYTE_SANDBOX_GOOGLE_CHANNEL_PORT"),
}


def taken_port(ports: dict[str, int]) -> str | None:
    """A one-line message for the first sandbox port already in use, else ``None``: checked
    before anything long-running starts, so that a taken port fails at once."""
    for vendor, port in ports.items():
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # As the simulators bind: connections of a sandbox just stopped (TIME_WAIT) do not
        # make its port "taken"; a listening process still does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            flag, env = PORT_FLAGS.get(vendor, ("", ""))
            how = f": choose another with {flag} or {env}" if flag else ""
            return f"sandbox port {port} ({vendor}) is already in use{how}"
        finally:
            probe.close()
    return None


def start_all(
    ports: dict[str, int | None] | None = None, state_dir: Path | None = None
) -> Sandboxes:
    """Start the three simulators on 127.0.0.1 (``None`` ports: free ports). With a
    ``state_dir``, what was saved there is restored first (``restored`` says what) and the
    state is saved there after every delivery and at ``stop()``."""
    from billbyte.sandbox.aws import start_aws_sandbox  # why: boto3 and moto are slow to import

    chosen = {**DEFAULT_PORTS, **(ports or {})}
    aws = start_aws_sandbox(chosen["aws"])
    try:
        partner_center = start_partner_center_sandbox(chosen["partner_center"])
        google_channel = start_google_channel_sandbox(chosen["google_channel"])
    except Exception:
        aws.stop()
        raise
    sandboxes = Sandboxes(
        aws=aws, partner_center=partner_center, google_channel=google_channel, state_dir=state_dir
    )
    if state_dir is not None:
        sandboxes.restored = sandboxes.restore()
    sandboxes.tick()  # a first delivery, so that there is usage at once
    return sandboxes
