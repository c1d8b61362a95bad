"""Saving the simulators' state under ``var/sandbox/`` and loading it again, so that a
restarted ``billbyte serve --sandbox`` (``make run``) finds the customers it provisioned.

One JSON file per simulator. Decimals, instants and days keep their exact type through a
tagged form (``{"$decimal": "0.0416"}``, ``{"$datetime": "…"}``, ``{"$date": "…"}``), so a
restored simulator computes exactly what the one that saved it would have.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

STATE_VERSION = 1


def encode(value: Any) -> Any:
    """``value`` as plain JSON data (a deep copy), its Decimals, datetimes and dates tagged."""
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, text), *_ = value.items()
            if tag == "$decimal":
                return Decimal(text)
            if tag == "$datetime":
                return datetime.fromisoformat(text)
            if tag == "$date":
                return date.fromisoformat(text)
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write atomically (a reader never sees half a file), owner-only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"version": STATE_VERSION, "state": state}, handle)
    os.replace(temporary, path)


def read_state(path: Path) -> dict[str, Any] | None:
    """The state saved at ``path``, ``None`` if there is none. A file of another version or
    that is not this format raises ``ValueError``."""
    if not path.is_file():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
        raise ValueError(f"{path} is not a sandbox state file of version {STATE_VERSION}")
    state = document.get("state")
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds no state")
    return state
