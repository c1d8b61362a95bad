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
from typing import Any

from billbyte.sandbox.google_channel import start_google_channel_sandbox
from billbyte.sandbox.partner_center import start_partner_center_sandbox

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"aws": 8811, "partner_center": 8812, "google_channel": 8813}


@dataclass
class Sandboxes:
    aws: Any
    partner_center: Any
    google_channel: Any
    _stop: threading.Event = field(default_factory=threading.Event)

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

    def start_ticking(self, interval_seconds: float) -> None:
        """Usage keeps arriving: every interval each simulator produces the next delivery."""

        def run() -> None:
            while not self._stop.wait(interval_seconds):
                self.tick()

        threading.Thread(target=run, name="billbyte-sandbox-ticks", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        for sandbox in (self.aws, self.partner_center, self.google_channel):
            try:
                sandbox.stop()
            except Exception:
                log.exception("sandbox stop failed")


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
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            flag, env = PORT_FLAGS.get(vendor, ("", ""))
            how = f": choose another with {flag} or {env}" if flag else ""
            return f"sandbox port {port} ({vendor}) is already in use{how}"
        finally:
            probe.close()
    return None


def start_all(ports: dict[str, int | None] | None = None) -> Sandboxes:
    """Start the three simulators on 127.0.0.1 (``None`` ports: free ports)."""
    from billbyte.sandbox.aws import start_aws_sandbox  # why: boto3 and moto are slow to import

    chosen = {**DEFAULT_PORTS, **(ports or {})}
    aws = start_aws_sandbox(chosen["aws"])
    try:
        partner_center = start_partner_center_sandbox(chosen["partner_center"])
        google_channel = start_google_channel_sandbox(chosen["google_channel"])
    except Exception:
        aws.stop()
        raise
    sandboxes = Sandboxes(aws=aws, partner_center=partner_center, google_channel=google_channel)
    sandboxes.tick()  # a first delivery, so that there is usage at once
    return sandboxes
