"""The FOCUS 1.2 vocabulary BillByte uses: allowed values of the columns that usage readers
parse, catalog offers carry and the FOCUS export writes (FinOps FOCUS 1.2 specification)."""

from __future__ import annotations

SERVICE_CATEGORIES = (
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
)
CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
CHARGE_FREQUENCIES = ("One-Time", "Recurring", "Usage-Based")
CHARGE_CLASSES = ("Correction",)
