"""The ECB euro reference-rate CSV: import, idempotency, bad files, the CLI."""

from __future__ import annotations

import csv
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.fx import cli as fx_cli
from billbyte.fx import ecb
from billbyte.fx import rates as fx_rates
from billbyte.kit.errors import Forbidden, InvalidInput
from billbyte.runtime import Runtime
from tests.fx.factories import DATA, Msp, new_msp, rows_of

HIST = DATA / "eurofxref-hist-synthetic.csv"
DAILY = DATA / "eurofxref-synthetic.csv"


def expected_rates(path: Path) -> set[tuple[str, str, str, Decimal]]:
    """The file read with the csv module alone: (base, quote, date, rate) for every value."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [[cell.strip() for cell in row] for row in csv.reader(handle)]
    header = rows[0]
    found = set()
    for row in rows[1:]:
        for name, value in zip(header[1:], row[1:], strict=True):
            if name and value != "N/A":
                found.add(("EUR", name, row[0], Decimal(value)))
    return found


def stored(runtime: Runtime, msp_id: str) -> set[tuple[str, str, str, Decimal]]:
    return {(r[1], r[2], r[3], r[4]) for r in rows_of(runtime, msp_id)}


def run_import(msp: Msp, path: Path) -> int:
    with msp.runtime.uow() as uow:
        count = ecb.import_ecb_rates(uow.session, msp.subject, path).received
        uow.commit()
    return count


def test_history_file_imports_every_published_rate(msp: Msp) -> None:
    assert run_import(msp, HIST) == 41
    assert stored(msp.runtime, msp.msp_id) == expected_rates(HIST)
    assert len(expected_rates(HIST)) == 41
    assert {r[5] for r in rows_of(msp.runtime, msp.msp_id)} == {"ecb"}


def test_import_twice_changes_nothing(msp: Msp) -> None:
    run_import(msp, HIST)
    first = rows_of(msp.runtime, msp.msp_id)
    assert run_import(msp, HIST) == 41
    assert rows_of(msp.runtime, msp.msp_id) == first  # same ids, values and timestamps
    with msp.runtime.uow() as uow:
        summary = ecb.import_ecb_rates(uow.session, msp.subject, HIST)
    assert (summary.inserted, summary.updated, summary.unchanged) == (0, 0, 41)


def test_daily_file_with_spaces_and_long_dates(msp: Msp) -> None:
    assert run_import(msp, DAILY) == 6
    got = stored(msp.runtime, msp.msp_id)
    assert ("EUR", "USD", "2026-10-12", Decimal("1.1060")) in got
    assert {r[2] for r in got} == {"2026-10-12"}
    run_import(msp, HIST)
    assert len(stored(msp.runtime, msp.msp_id)) == 47


def test_import_replaces_a_manual_rate_of_its_own_msp_only(runtime: Runtime) -> None:
    alpha, beta = new_msp(runtime, "Alpha"), new_msp(runtime, "Beta")
    manual = [fx_rates.RateEntry("EUR", "USD", date(2026, 10, 9), Decimal("1.2"))]
    for msp in (alpha, beta):
        with runtime.uow() as uow:
            fx_rates.upsert_rates(uow.session, msp.subject, manual, source="manual")
            uow.commit()
    with runtime.uow() as uow:
        summary = ecb.import_ecb_rates(uow.session, alpha.subject, HIST)
        uow.commit()
    assert (summary.inserted, summary.updated, summary.unchanged) == (40, 1, 0)
    assert ("EUR", "USD", "2026-10-09", Decimal("1.1050")) in stored(runtime, alpha.msp_id)
    assert stored(runtime, beta.msp_id) == {("EUR", "USD", "2026-10-09", Decimal("1.2"))}


def write(tmp_path: Path, text: str, name: str = "eurofxref.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD_HEADER = "Date,USD,JPY,\n"
GOOD_ROW = "2026-10-09,1.1050,150.50,\n"


@pytest.mark.parametrize(
    ("text", "code", "words", "extra"),
    [
        (
            "Date,USD,XYZ,\n" + "2026-10-09,1.1,2.2,\n",
            "unknown_currency",
            ["'XYZ'"],
            {"column": "XYZ"},
        ),
        ("Date,USD,Dollar,\n" + "2026-10-09,1.1,2.2,\n", "unknown_currency", ["'Dollar'"], {}),
        (
            GOOD_HEADER + GOOD_ROW + "2026-10-08,1.1O40,150.40,\n",
            "fx_file_invalid",
            ["line 3", "USD", "1.1O40"],
            {"line": 3, "column": "USD"},
        ),
        (
            GOOD_HEADER + GOOD_ROW + "2026-10-08,1.1040,1e3,\n",
            "fx_file_invalid",
            ["line 3", "JPY"],
            {"line": 3},
        ),
        (
            GOOD_HEADER + GOOD_ROW + "2026-10-08,NaN,150.40,\n",
            "fx_file_invalid",
            ["line 3"],
            {"line": 3},
        ),
        (
            GOOD_HEADER + GOOD_ROW + "2026-10-08,-1.1,150.40,\n",
            "fx_file_invalid",
            ["line 3"],
            {"line": 3},
        ),
        (
            GOOD_HEADER + GOOD_ROW + "2026-10-08,0,150.40,\n",
            "fx_file_invalid",
            ["line 3", "out of range"],
            {},
        ),
        (
            GOOD_HEADER + GOOD_ROW + '2026-10-08,"1,104",150.40,\n',
            "fx_file_invalid",
            ["line 3"],
            {},
        ),
        (
            GOOD_HEADER + GOOD_ROW + "2026-02-30,1.1,150,\n",
            "fx_file_invalid",
            ["line 3", "not a date"],
            {"line": 3},
        ),
        (
            GOOD_HEADER + GOOD_ROW + "10/08/2026,1.1,150,\n",
            "fx_file_invalid",
            ["line 3", "not a date"],
            {},
        ),
        (GOOD_HEADER + GOOD_ROW + GOOD_ROW, "fx_file_invalid", ["line 3", "line 2"], {}),
        (
            GOOD_HEADER + GOOD_ROW + "2026-10-08,1.1\n",
            "fx_file_invalid",
            ["line 3", "truncated"],
            {},
        ),
        (GOOD_HEADER + GOOD_ROW + "2026-10-08,1.1,150,7,\n", "fx_file_invalid", ["line 3"], {}),
        ("Datum,USD,JPY\n" + GOOD_ROW, "fx_file_invalid", ["'Datum'"], {}),
        ("Date,USD,EUR,\n" + GOOD_ROW, "fx_file_invalid", ["EUR"], {}),
        ("Date,USD,usd,\n" + GOOD_ROW, "fx_file_invalid", ["twice"], {}),
        ("Date,,\n" + "2026-10-09,,\n", "fx_file_invalid", ["no currency"], {}),
        ("", "fx_file_invalid", ["empty"], {}),
        ("\n\n", "fx_file_invalid", ["empty"], {}),
        (GOOD_HEADER, "fx_file_invalid", ["no rates"], {}),
        (GOOD_HEADER + "2026-10-09,N/A,N/A,\n", "fx_file_invalid", ["no rates"], {}),
    ],
)
def test_bad_files_are_rejected_whole(
    msp: Msp, tmp_path: Path, text: str, code: str, words: list[str], extra: dict[str, object]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InvalidInput) as caught, msp.runtime.uow() as uow:
        ecb.import_ecb_rates(uow.session, msp.subject, path)
        uow.commit()
    error = caught.value
    assert error.code == code
    for word in words:
        assert word in error.detail, error.detail
    for key, value in extra.items():
        assert error.extra[key] == value
    assert rows_of(msp.runtime, msp.msp_id) == []


def test_a_bad_line_at_the_end_writes_nothing(msp: Msp, tmp_path: Path) -> None:
    good = HIST.read_text(encoding="utf-8")
    path = write(tmp_path, good + "2026-09-30,1.0980,oops,1.9558,N/A,23.8,0.848,0.928,\r\n")
    with pytest.raises(InvalidInput) as caught, msp.runtime.uow() as uow:
        ecb.import_ecb_rates(uow.session, msp.subject, path)
        uow.commit()
    assert caught.value.extra == {"file": path.name, "line": 9, "column": "JPY"}
    assert rows_of(msp.runtime, msp.msp_id) == []


def test_binary_and_bom_files(msp: Msp, tmp_path: Path) -> None:
    binary = tmp_path / "rates.csv"
    binary.write_bytes(b"\xff\xfe\x00D\x00a\x00t\x00e\x00\x80\x81")
    with pytest.raises(InvalidInput, match="not a UTF-8 text file"), msp.runtime.uow() as uow:
        ecb.import_ecb_rates(uow.session, msp.subject, binary)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + (GOOD_HEADER + GOOD_ROW).encode())
    assert run_import(msp, bom) == 2


def test_a_read_only_subject_cannot_import(msp: Msp) -> None:
    helpdesk = AuthSubject(msp_id=msp.msp_id, actor="test", role=Role.HELPDESK)
    with pytest.raises(Forbidden), msp.runtime.uow() as uow:
        ecb.import_ecb_rates(uow.session, helpdesk, HIST)


@pytest.fixture
def cli(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setattr("billbyte.cli_support.build_runtime", lambda: runtime)
    root = typer.Typer()
    root.add_typer(fx_cli.app, name="fx")
    return root


def test_cli_import_json_and_text(cli: typer.Typer, msp: Msp) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["fx", "import", str(HIST), "--msp", msp.msp_id, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "msp_id": msp.msp_id,
        "file": HIST.name,
        "source": "ecb",
        "rates": 41,
        "inserted": 41,
        "updated": 0,
        "unchanged": 0,
    }
    again = runner.invoke(cli, ["fx", "import", str(HIST), "--msp", msp.msp_id])
    assert again.exit_code == 0, again.output
    assert "41 ECB rates read" in again.stdout and "41 unchanged" in again.stdout
    assert stored(msp.runtime, msp.msp_id) == expected_rates(HIST)


def test_cli_errors_are_one_line_and_write_nothing(
    cli: typer.Typer, msp: Msp, tmp_path: Path
) -> None:
    runner = CliRunner()
    bad = write(tmp_path, "Date,USD,XYZ,\n2026-10-09,1.1,2.2,\n")
    result = runner.invoke(cli, ["fx", "import", str(bad), "--msp", msp.msp_id])
    assert result.exit_code == 1
    assert "unknown currency column 'XYZ'" in result.stderr
    assert "Traceback" not in result.output
    unknown_msp = runner.invoke(cli, ["fx", "import", str(HIST), "--msp", "msp_nope"])
    assert unknown_msp.exit_code == 1 and "msp_nope" in unknown_msp.stderr
    missing = runner.invoke(cli, ["fx", "import", str(tmp_path / "none.csv"), "--msp", msp.msp_id])
    assert missing.exit_code == 2
    assert rows_of(msp.runtime, msp.msp_id) == []
