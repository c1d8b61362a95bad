"""The one billing-period type: a calendar month written ``YYYY-MM``.

Every endpoint, schema and CLI command that takes a period parses it here, and every date
a caller supplies (a subscription's start, a price change's first day) is checked against
the same range. The range is what BillByte supports end to end: months before 2000 or
after 2100 have no use in billing, and unbounded years reach code that cannot represent
them (``date(0, 1, 1)`` does not exist; ``9999-12-31`` plus one day overflows), which
turned a typo into a 500 or an invoice run that failed forever in the job queue.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from billbyte.kit.errors import InvalidInput

FIRST_YEAR = 2000
LAST_YEAR = 2100
FIRST_DAY = date(FIRST_YEAR, 1, 1)
LAST_DAY = date(LAST_YEAR, 12, 31)
SUPPORTED = f"between {FIRST_YEAR}-01 and {LAST_YEAR}-12"

# ASCII digits only: \d would also take other scripts' digits ("２０２６-11").
_SHAPE = re.compile(r"([0-9]{4})-([0-9]{2})")
# The supported range as a regular expression, for the OpenAPI document only (parsing is
# ``Period.parse``): clients and fuzzers see exactly what is accepted.
PERIOD_PATTERN = r"^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])$"


def period_problem(field: str = "period") -> str:
    """The one sentence shown for a bad period, naming the field."""
    return f"{field} must look like 2026-11 and lie {SUPPORTED}"


@dataclass(frozen=True, order=True)
class Period:
    """A supported calendar month. Ordered; ``str()`` gives ``YYYY-MM``."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not (FIRST_YEAR <= self.year <= LAST_YEAR and 1 <= self.month <= 12):
            raise ValueError(period_problem())

    @classmethod
    def parse(cls, text: object) -> Period:
        """``'2026-11'`` → Period; anything else (wrong shape, month 13, year 0000 or
        2101) raises ValueError with the user-facing sentence."""
        match = _SHAPE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(period_problem())
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def add_months(self, months: int) -> Period:
        """The period ``months`` later (earlier if negative); ValueError past the range."""
        index = self.year * 12 + self.month - 1 + months
        return Period(index // 12, index % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def parse_period(text: object, field: str = "period") -> Period:
    """Parse in service code: a bad value is a 422 problem naming ``field``."""
    try:
        return Period.parse(text)
    except ValueError:
        raise InvalidInput(f"{period_problem(field)}, not {text!r}.", field=field) from None


def validate_period(text: str, field: str = "period") -> str:
    """The period text, checked (for code that keeps periods as ``YYYY-MM`` strings)."""
    return str(parse_period(text, field))


def _period_text(value: Any) -> str:
    try:
        return str(Period.parse(value))
    except ValueError:
        # A custom error keeps the message free of pydantic's "Value error, " prefix; the
        # problem's errors[] names the field.
        raise PydanticCustomError(
            "invalid_period", f"must look like 2026-11 and lie {SUPPORTED}"
        ) from None


def _in_range(day: date) -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise PydanticCustomError(
            "date_out_of_range",
            f"must lie between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}",
        )
    return day


# For FastAPI/pydantic: a query parameter or body field holding a supported period, kept as
# its canonical ``YYYY-MM`` text (the services and the database store periods as text).
PeriodText = Annotated[
    str,
    BeforeValidator(_period_text),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": PERIOD_PATTERN,
            "description": f"A month, YYYY-MM, {SUPPORTED}.",
            "examples": ["2026-11"],
        }
    ),
]
# A date within the supported range (also as ``SupportedDate | None``).
SupportedDate = Annotated[date, AfterValidator(_in_range)]
