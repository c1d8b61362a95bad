"""Roles and what they may do. Help desk is read-only; billing may not manage keys."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    BILLING = "billing"
    HELPDESK = "helpdesk"


WRITE_ROLES = frozenset({Role.ADMIN, Role.BILLING})
