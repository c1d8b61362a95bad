"""Where webhooks may go: the outbound guard (``billbyte.kit.outbound``) applied to webhook
URLs — when the endpoint is registered, and again (resolved once and pinned) when each
delivery connects, since the name may resolve differently later. Single-MSP installations
and tests set BILLBYTE_OUTBOUND_ALLOW_PRIVATE=1 (formerly BILLBYTE_WEBHOOK_ALLOW_PRIVATE).
"""

from __future__ import annotations

from billbyte.kit import outbound
from billbyte.kit.outbound import OutboundPolicy


def check_destination(url: str, policy: OutboundPolicy) -> None:
    """422 ``webhook_url_not_public`` (field ``url``) when BillByte may not call ``url``."""
    outbound.check_destination(url, policy, field="url", code="webhook_url_not_public")
