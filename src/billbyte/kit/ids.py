"""Prefixed, time-sortable identifiers (``cus_01J...``).

Time-sortable ids make cursor pagination a plain ``WHERE id > :cursor ORDER BY id``.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: sortable as text
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


# Two characters (ten bits) per step: an invoice run asks for hundreds of thousands of ids.
_PAIRS = [first + second for first in _ALPHABET for second in _ALPHABET]


def _encode(value: int, length: int) -> str:
    """``value`` in ``length`` base-32 characters (``length`` even)."""
    pairs = []
    for _ in range(length // 2):
        pairs.append(_PAIRS[value & 1023])
        value >>= 10
    return "".join(reversed(pairs))


def new_id(prefix: str) -> str:
    """A ULID-like id: 48-bit milliseconds + 80-bit counter seeded randomly per millisecond.

    Within one process ids are strictly increasing, even inside the same millisecond.
    """
    global _last_ms, _last_rand
    with _lock:
        now = int(time.time() * 1000)
        if now <= _last_ms:
            now = _last_ms
            _last_rand += 1
        else:
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1  # leave room to count
        _last_ms = now
        rand = _last_rand
    return f"{prefix}_{_encode(now, 10)}{_encode(rand, 16)}"


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` ids as ``new_id`` gives them one by one (strictly increasing, after every id
    this process gave before), with the lock taken and the time read once: bulk writes ask
    for hundreds of thousands."""
    global _last_ms, _last_rand
    if count <= 0:
        return []
    with _lock:
        now = int(time.time() * 1000)
        if now <= _last_ms:
            now = _last_ms
            first = _last_rand + 1
        else:
            first = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms = now
        _last_rand = first + count - 1
    stamp = f"{prefix}_{_encode(now, 10)}"
    return [stamp + _encode(rand, 16) for rand in range(first, first + count)]
