"""Which connector serves which vendor: the one place connectors are registered."""

from __future__ import annotations

from billbyte.connectors.base import Connector
from billbyte.kit.errors import InvalidInput

CONNECTORS: dict[str, Connector] = {}


def register(connector: Connector, *vendors: str) -> None:
    for vendor in vendors or (connector.vendor,):
        CONNECTORS[vendor] = connector


def connector_for(vendor: str) -> Connector:
    _load()
    connector = CONNECTORS.get(vendor)
    if connector is None:
        raise InvalidInput(f"No connector for vendor {vendor!r}.", code="no_connector")
    return connector


_loaded = False


def _load() -> None:
    global _loaded
    if _loaded:
        return
    # why: the AWS connector imports boto3 (slow to import); only a vendor call needs it
    from billbyte.connectors import aws, google_channel, partner_center

    register(aws.AwsConnector(), "aws")
    register(partner_center.PartnerCenterConnector(), "azure", "microsoft365")
    register(google_channel.CloudChannelConnector(), "gcp")
    _loaded = True
