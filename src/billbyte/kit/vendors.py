"""The vendors BillByte resells."""

from __future__ import annotations

from enum import StrEnum


class Vendor(StrEnum):
    AWS = "aws"
    AZURE = "azure"
    GCP = "gcp"
    MICROSOFT365 = "microsoft365"
