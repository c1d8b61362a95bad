"""Ids taken in a block are the ids one would have been given one by one: same shape,
strictly increasing, after every id given before and before every id given after."""

from __future__ import annotations

import re
import time

from billbyte.kit.ids import new_id, new_ids

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

SHAPE = re.compile(r"^inl_[0-9A-HJKMNP-TV-Z]{26}$")  # Crockford base32, no I L O U


def test_a_block_of_ids_is_strictly_increasing_between_single_ids() -> None:
    before = new_id("inl")
    block = new_ids("inl", 5000)
    after = new_id("inl")
    assert len(block) == 5000 and len(set(block)) == 5000
    assert all(SHAPE.match(value) for value in [before, *block, after])
    # Compared as texts, which is how the database orders them.
    assert [before, *block, after] == sorted({before, *block, after})


def test_consecutive_blocks_do_not_overlap() -> None:
    first, second = new_ids("x", 100), new_ids("x", 100)
    assert first == sorted(first) and second == sorted(second)
    assert first[-1] < second[0]


def test_an_empty_block_is_empty() -> None:
    assert new_ids("x", 0) == []


def test_an_id_starts_with_its_time_in_milliseconds_and_blocks_count_up_by_one() -> None:
    def number(text: str) -> int:  # Crockford base32, five bits a character
        return sum(_ALPHABET.index(c) << (5 * i) for i, c in enumerate(reversed(text)))

    started = int(time.time() * 1000)
    block = new_ids("x", 3)
    ended = int(time.time() * 1000)
    stamps = {number(value[2:12]) for value in block}
    assert len(stamps) == 1 and started <= stamps.pop() <= ended
    counters = [number(value[12:]) for value in block]
    assert counters[1] == counters[0] + 1 and counters[2] == counters[0] + 2
