from __future__ import annotations

import random
from pathlib import Path

from tests.usage.conftest import DATA, Importer, read_rows, stored, sum_by

FOCUS_SAMPLE = DATA / "focus" / "focus_sample.csv"


def test_focus_sample_totals_match_an_independent_decimal_sum(importer: Importer) -> None:
    rows = read_rows(FOCUS_SAMPLE)
    imported = importer(FOCUS_SAMPLE)
    assert imported.status == "completed" and imported.detected_format == "focus"
    assert imported.rows_read == len(rows) == imported.rows_accepted
    for cost in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
        column = {
            "BilledCost": "billed_cost",
            "EffectiveCost": "effective_cost",
            "ListCost": "list_cost",
            "ContractedCost": "contracted_cost",
        }[cost]
        assert stored(imported, column) == sum_by(rows, "BillingCurrency", cost)


def test_reimport_changes_nothing_and_shuffled_rows_give_the_same_totals(
    importer: Importer, tmp_path: Path
) -> None:
    first = importer(FOCUS_SAMPLE)
    again = importer(FOCUS_SAMPLE)
    assert again.outcome == "unchanged" and again.slices_replaced == 0
    lines = FOCUS_SAMPLE.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    body = lines[1:]
    random.Random(7).shuffle(body)
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text(lines[0] + "".join(body), encoding="utf-8")
    reordered = importer(shuffled)
    assert reordered.outcome == "unchanged"
    assert reordered.totals == first.totals
    summary = importer.summary("2024-09")
    expected = sum_by(
        [r for r in read_rows(FOCUS_SAMPLE) if r["BillingPeriodStart"].startswith("2024-09")],
        "BillingCurrency",
        "BilledCost",
    )
    assert {c: v["billed_cost"] for c, v in summary["totals"].items()} == {
        c: str(v.normalize()) if v != v.to_integral() else str(v) for c, v in expected.items()
    }
