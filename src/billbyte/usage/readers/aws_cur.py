"""Reader module (to be filled in)."""

from __future__ import annotations

from billbyte.usage.readers.base import Reader

READERS: list[Reader] = []
