"""The AWS connector: AWS Organizations for customer accounts, S3 for the CUR.

* Provisioning = Organizations ``CreateAccount`` (asynchronous: polled with
  ``DescribeCreateAccountStatus``). ``CreateAccount`` has no client token, so the connector
  first looks for an account with the customer's deterministic email and reuses it.
* Suspend = attach the service control policy ``billbyte-deny-all`` (created once, denies
  every action) to the account; resume = detach it; purge = ``CloseAccount``.
* Usage = the payer's Cost and Usage Report deliveries in S3 (legacy CUR and CUR 2.0 / Data
  Exports): every billing period whose manifest changed since the watermark is downloaded,
  manifest and parts, and returned as one delivery (the whole restated month replaces its
  slice on import).

Every vendor failure is a ``VendorError``: throttling, 5xx, timeouts and connection
failures are retryable, anything else is not and carries the AWS error code. botocore's
own retries are switched off: the connector framework retries with backoff and records
each failure. ``docs/vendors/aws-connector.md`` lists the IAM permissions and S3 layouts.
"""

from __future__ import annotations

from billbyte.connectors.aws.accounts import AwsAccounts
from billbyte.connectors.aws.clients import VENDOR
from billbyte.connectors.aws.cur import CurCollector

__all__ = ["AwsConnector"]


class AwsConnector(AwsAccounts, CurCollector):
    """Accounts (``accounts.py``) and usage (``cur.py``) over the clients of ``clients.py``."""

    vendor = VENDOR
