"""Chart specifications for plotly.js, which pages load from the ``plotly`` PyPI package
(``/static/vendor/plotly.min.js``) — never from a CDN.

A chart is a dict (``data`` and ``layout``) embedded in the page as JSON and drawn by
``static/charts.js``. Amounts go in as decimal strings (plotly reads numeric strings as
numbers), so no amount passes through a float on the server. Every chart on a page comes with
a table of the same figures, for screen readers and for people who prefer numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from markupsafe import Markup


def _layout(title: str, currency: str, colour: str) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 15}},
        "margin": {"l": 60, "r": 20, "t": 40, "b": 60},
        "yaxis": {"title": {"text": currency}, "rangemode": "tozero"},
        "colorway": [colour, "#e07b39", "#4c9a2a", "#8e44ad", "#c0392b", "#16a085"],
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "height": 320,
    }


def bars(
    title: str,
    labels: Sequence[str],
    amounts: Sequence[Decimal],
    currency: str,
    colour: str,
    horizontal: bool = False,
) -> dict[str, Any]:
    values = [format(amount, "f") for amount in amounts]
    trace: dict[str, Any] = {"type": "bar", "name": currency}
    if horizontal:
        trace.update(x=values, y=list(labels), orientation="h")
    else:
        trace.update(x=list(labels), y=values)
    layout = _layout(title, currency, colour)
    if horizontal:
        layout["yaxis"] = {"automargin": True, "autorange": "reversed"}
        layout["xaxis"] = {"title": {"text": currency}}
    return {"data": [trace], "layout": layout}


def line(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[Decimal]],
    currency: str,
    colour: str,
) -> dict[str, Any]:
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": list(labels),
            "y": [format(amount, "f") for amount in amounts],
        }
        for name, amounts in series.items()
    ]
    return {"data": data, "layout": _layout(title, currency, colour)}


def embed(chart_id: str, spec: dict[str, Any]) -> Markup:
    """The chart's placeholder and its data; ``</`` is escaped so that no label can end the
    script element early."""
    payload = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")
    return Markup(
        f'<div class="chart" data-chart="{chart_id}-data" aria-hidden="true"></div>'
        f'<script type="application/json" id="{chart_id}-data">{payload}</script>'
    )
