"""An MSP's brand as pages show it: name, logo, primary colour, support contact.

The colour is checked for contrast (WCAG 2.1 relative luminance): text on the brand colour
is white or near-black, whichever reads better, so no MSP colour makes the header unreadable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_COLOUR = "#1f4e79"
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def _luminance(colour: str) -> float:
    # Presentation arithmetic on a colour, not money: floats are right here.
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    a, b = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def text_colour_on(background: str) -> str:
    white, dark = "#ffffff", "#000000"  # the pair whose contrasts multiply to 21
    return white if contrast_ratio(background, white) >= contrast_ratio(background, dark) else dark


@dataclass(frozen=True)
class Brand:
    name: str = "BillByte"
    primary_colour: str = DEFAULT_COLOUR
    logo_url: str | None = None
    support_email: str | None = None
    support_phone: str | None = None
    support_url: str | None = None

    @property
    def colour(self) -> str:
        return self.primary_colour if HEX_COLOUR.match(self.primary_colour) else DEFAULT_COLOUR

    @property
    def on_colour(self) -> str:
        return text_colour_on(self.colour)
