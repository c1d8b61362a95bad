"""Issue #9 finding 3: decompression bombs and oversized uploads.

Every bomb is generated here at test time, small because the limits are lowered through
settings (1 MiB decompressed, ...): the code paths are the ones the default limits use.
Expectations are written down independently of the code under test: status, machine code,
and that nothing of the refused upload is left on disk.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.db.migrate import ensure_schema
from billbyte.partners import service as partners
from billbyte.partners.schemas import PartnerAccountCreate
from billbyte.runtime import Runtime, build_runtime
from billbyte.tenancy import service as tenancy
from tests.cli.conftest import Cli, cli  # noqa: F401  (the CLI fixture, reused)
from tests.conftest import Tenant
from tests.usage.generate import HEADER, write_focus

MiB = 1024 * 1024
SRC = Path(__file__).resolve().parents[2] / "src"


def _limit(runtime: Runtime, **limits: int) -> None:
    runtime.settings = runtime.settings.model_copy(update=limits)


def _gzip_stream(path: Path, head: bytes, filler: bytes, total: int) -> Path:
    """``head`` then ``filler`` repeated up to ``total`` bytes, gzipped as it is generated."""
    block = filler * max(1, MiB // len(filler))
    with gzip.open(path, "wb", compresslevel=6) as out:
        out.write(head)
        written = len(head)
        while written < total:
            piece = block[: total - written]
            out.write(piece)
            written += len(piece)
    return path


def _focus_head() -> bytes:
    return (",".join(HEADER) + "\n").encode()


# One FOCUS line, so that only a size or ratio limit can stop a file made of it.
_ROW = (
    b"1,1,1,1,A,USD,2026-10-01,2026-11-01,2026-10-01,2026-10-02,Usage,Usage-Based,P,S,C,K,"
    b"R,X,1,1,h,\n"
)


def _partner(tenant: Tenant) -> str:
    response = tenant.post("/v1/partner-accounts", json={"vendor": "aws", "display_name": "payer"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _upload(tenant: Tenant, partner_account_id: str, name: str, content: bytes):
    return tenant.post(
        "/v1/usage/imports",
        data={"partner_account_id": partner_account_id},
        files={"file": (name, content, "application/octet-stream")},
    )


def _leftovers(runtime: Runtime) -> list[str]:
    """Every file under the usage store: a refused upload must leave none."""
    root = runtime.settings.usage_store_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    return dict(body)


# --- the streaming decompressor itself -------------------------------------------------


class _CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.consumed += len(data)
        return data


def test_decompression_stops_at_the_limit_not_at_the_end(tmp_path: Path) -> None:
    from billbyte.usage.limits import BoundedDecompression, DecompressedTooLarge, UploadLimits

    # 128 MiB of a repeated pattern ≈ 500 KiB of gzip; with a 1 MiB limit the refusal must
    # come after reading a small part of the compressed input, i.e. while streaming.
    bomb = _gzip_stream(tmp_path / "z.gz", b"", bytes(range(256)), 128 * MiB).read_bytes()
    assert len(bomb) > 4 * 64 * 1024  # several reads' worth, or "early" would mean nothing
    raw = _CountingReader(bomb)
    stream = BoundedDecompression(raw, "z.gz", UploadLimits(decompressed_bytes=MiB))
    produced = 0
    with pytest.raises(DecompressedTooLarge):
        while chunk := stream.read(256 * 1024):
            produced += len(chunk)
    assert produced <= MiB
    assert raw.consumed < len(bomb) / 4


# --- the API ----------------------------------------------------------------------------


def test_gzip_bomb_upload_is_a_413_and_leaves_nothing(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    _limit(runtime, usage_decompressed_max_bytes=MiB)
    pa = _partner(tenant)
    # Rows of a recognised format, so only the size can stop it.
    bomb = _gzip_stream(tmp_path / "cur.csv.gz", _focus_head(), _ROW, 5 * MiB)
    response = _upload(tenant, pa, "cur.csv.gz", bomb.read_bytes())
    body = _assert_problem(response, 413, "decompressed_too_large")
    assert "1 MiB" in body["detail"]
    assert _leftovers(runtime) == []
    listed = tenant.get("/v1/usage/imports").json()["data"]
    assert [(i["status"], i["rows_accepted"]) for i in listed] == [("rejected", 0)]


def test_compression_ratio_over_the_limit_is_a_422(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    _limit(runtime, usage_compression_ratio_max=50)
    pa = _partner(tenant)
    bomb = _gzip_stream(tmp_path / "cur.csv.gz", _focus_head(), _ROW, 40 * MiB)
    assert bomb.stat().st_size * 50 < 40 * MiB  # the premise: this really is > 50:1
    response = _upload(tenant, pa, "cur.csv.gz", bomb.read_bytes())
    _assert_problem(response, 422, "compression_ratio_exceeded")
    assert _leftovers(runtime) == []


def test_endless_line_of_zeros_is_refused_before_polars_holds_it(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    # The reported bomb: gzip of zeros (no line end). Polars holds a line whole in memory.
    pa = _partner(tenant)
    bomb = _gzip_stream(tmp_path / "zeros.csv.gz", _focus_head(), b"\0", 5 * MiB)
    response = _upload(tenant, pa, "zeros.csv.gz", bomb.read_bytes())
    _assert_problem(response, 422, "record_too_large")
    assert _leftovers(runtime) == []


def test_upload_over_the_size_limit_is_a_413(tenant: Tenant, runtime: Runtime) -> None:
    _limit(runtime, usage_upload_max_bytes=MiB)
    pa = _partner(tenant)
    response = _upload(tenant, pa, "big.csv", b"a,b\n" + b"1,2\n" * (MiB // 2))
    _assert_problem(response, 413, "upload_too_large")
    assert tenant.get("/v1/usage/imports").json()["data"] == []
    assert _leftovers(runtime) == []


def test_chunked_upload_is_cut_off_at_the_limit(tenant: Tenant, runtime: Runtime) -> None:
    # No Content-Length: the body is counted as it arrives and refused past the limit.
    _limit(runtime, usage_upload_max_bytes=MiB)
    pa = _partner(tenant)
    boundary = "bbtestboundary"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="partner_account_id"\r\n\r\n'
            f'{pa}\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\na,b\n'
        ).encode()
        for _ in range(16):  # 16 MiB offered
            yield b"1,2\n" * (MiB // 4)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = tenant.post(
        "/v1/usage/imports",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    _assert_problem(response, 413, "upload_too_large")
    assert _leftovers(runtime) == []


def test_json_page_over_the_json_limit_is_a_413(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    # The reported 4.7 MB gzipped JSON that took 2.5 GB: bounded before json.loads.
    _limit(runtime, usage_json_max_bytes=MiB)
    pa = _partner(tenant)
    item = {"billingPreTaxTotal": "1", "billingCurrency": "USD", "usageDate": "2026-10-01"}
    text = json.dumps({"items": [item] * 100_000}).encode()
    assert len(text) > 5 * MiB
    response = _upload(tenant, pa, "page.json.gz", gzip.compress(text))
    _assert_problem(response, 413, "json_too_large")
    assert _leftovers(runtime) == []


def test_deeply_nested_json_is_a_422_not_a_500(tenant: Tenant, runtime: Runtime) -> None:
    pa = _partner(tenant)
    deep = b'{"items": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    _assert_problem(_upload(tenant, pa, "deep.json", deep), 422, "json_too_deep")
    shallow_but_too_deep = b'{"items": [' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"]}"
    _assert_problem(_upload(tenant, pa, "deep2.json", shallow_but_too_deep), 422, "json_too_deep")
    assert _leftovers(runtime) == []


def test_huge_json_string_is_a_422(tenant: Tenant, runtime: Runtime) -> None:
    _limit(runtime, usage_record_max_bytes=64 * 1024)
    pa = _partner(tenant)
    page = json.dumps({"items": [{"billingCurrency": "USD", "tags": "x" * 100_000}]}).encode()
    _assert_problem(_upload(tenant, pa, "page.json", page), 422, "record_too_large")


def _zip_bomb() -> bytes:
    # Many members, each a highly compressed run of zeros, plus a nested zip.
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner.csv", b"0" * (4 * MiB))
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(200):
            archive.writestr(f"part-{index}.csv", b"0" * MiB)
        archive.writestr("nested.zip", inner.getvalue())
    return outer.getvalue()


def test_zip_and_other_archives_are_refused_unopened(tenant: Tenant, runtime: Runtime) -> None:
    pa = _partner(tenant)
    body = _assert_problem(
        _upload(tenant, pa, "export.zip", _zip_bomb()), 422, "unsupported_container"
    )
    assert "zip" in body["detail"]
    import bz2
    import lzma

    for name, content in (
        ("export.csv.bz2", bz2.compress(b"a,b\n1,2\n")),
        ("export.csv.xz", lzma.compress(b"a,b\n1,2\n")),
    ):
        _assert_problem(_upload(tenant, pa, name, content), 422, "unsupported_container")
    assert _leftovers(runtime) == []


def test_nested_gzip_is_refused(tenant: Tenant, runtime: Runtime, tmp_path: Path) -> None:
    pa = _partner(tenant)
    inner = _gzip_stream(tmp_path / "inner.csv.gz", _focus_head(), b"0", 4 * MiB).read_bytes()
    _assert_problem(
        _upload(tenant, pa, "twice.csv.gz.gz", gzip.compress(inner)), 422, "unsupported_container"
    )
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("a.csv", b"a,b\n1,2\n")
    _assert_problem(
        _upload(tenant, pa, "zip.gz", gzip.compress(zipped.getvalue())),
        422,
        "unsupported_container",
    )


def test_parquet_bomb_is_judged_by_its_footer(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    # 6 million identical values RLE-encode to a few kilobytes.
    _limit(runtime, usage_decompressed_max_bytes=MiB)
    pa = _partner(tenant)
    path = tmp_path / "bomb.parquet"
    pl.select(
        pl.repeat(pl.lit("USD"), 6_000_000).alias("BillingCurrency"),
        pl.repeat(pl.lit("1"), 6_000_000).alias("BilledCost"),
    ).write_parquet(path)
    assert path.stat().st_size < 64 * 1024
    _assert_problem(
        _upload(tenant, pa, "bomb.parquet", path.read_bytes()), 413, "decompressed_too_large"
    )
    _limit(runtime, usage_decompressed_max_bytes=20 * 1024 * MiB)
    _assert_problem(
        _upload(tenant, pa, "bomb.parquet", path.read_bytes()), 422, "compression_ratio_exceeded"
    )
    assert _leftovers(runtime) == []


def test_ordinary_gzip_and_parquet_still_import(
    tenant: Tenant, runtime: Runtime, tmp_path: Path
) -> None:
    # The limits refuse bombs, not real exports (which compress ~10:1).
    _limit(runtime, usage_decompressed_max_bytes=4 * MiB)
    pa = _partner(tenant)
    path = tmp_path / "export.csv"
    expected = write_focus(path, 300, seed=3)
    response = _upload(tenant, pa, "export.csv.gz", gzip.compress(path.read_bytes()))
    assert response.status_code == 201, response.text
    assert response.json()["totals"]["USD"]["billed_cost"] == str(expected["BilledCost"])
    parquet = tmp_path / "export.parquet"
    pl.read_csv(path, infer_schema=False).write_parquet(parquet)
    response = _upload(tenant, pa, "export.parquet", parquet.read_bytes())
    assert response.status_code == 201, response.text


# --- the CLI ----------------------------------------------------------------------------


def test_cli_refuses_a_bomb_with_a_message_and_non_zero_exit(cli: Cli, tmp_path: Path) -> None:  # noqa: F811
    runtime = build_runtime(cli.settings())
    ensure_schema(runtime.engine)
    with runtime.uow() as uow:
        msp, _ = tenancy.create_msp(uow.session, "CLI MSP")
        subject = AuthSubject(msp_id=msp.id, actor="test", role=Role.ADMIN)
        account = partners.create(
            uow.session,
            subject,
            PartnerAccountCreate(vendor="aws", display_name="payer"),
            runtime.secret_key,
        )
        uow.commit()
        pa = account.id
    bomb = _gzip_stream(tmp_path / "cur.csv.gz", _focus_head(), b"0,", 5 * MiB)
    result = cli.run(
        "usage",
        "import",
        str(bomb),
        "--partner-account",
        pa,
        BILLBYTE_USAGE_DECOMPRESSED_MAX_BYTES=str(MiB),
    )
    assert result.exit_code != 0
    assert "decompresses to more than 1 MiB" in result.output
    store = cli.var_dir / "usage"
    assert [p for p in store.rglob("*") if p.is_file()] == []


# --- memory -----------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from billbyte.db.migrate import upgrade
    from billbyte.db.engine import make_engine
    from billbyte.partners import service as partners
    from billbyte.partners.schemas import PartnerAccountCreate
    from billbyte.runtime import Runtime
    from billbyte.settings import Settings
    from billbyte.tenancy import service as tenancy
    from billbyte.auth.subject import AuthSubject
    from billbyte.auth.roles import Role
    from billbyte.usage import service
    from billbyte.kit.errors import BillByteError

    var, bomb = Path(sys.argv[1]), Path(sys.argv[2])
    settings = Settings(var_dir=var, secret_key="k", database_url=f"sqlite:///{var}/db.sqlite3")
    var.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    runtime = Runtime(settings=settings, engine=engine, secret_key="k")
    with runtime.uow() as uow:
        msp, _ = tenancy.create_msp(uow.session, "M")
        subject = AuthSubject(msp_id=msp.id, actor="t", role=Role.ADMIN)
        pa = partners.create(uow.session, subject, PartnerAccountCreate(vendor="aws",
            display_name="p"), "k").id
        uow.commit()
    def status_kb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    # Warm up (first queries, polars' thread pool) with a small real import, so that the
    # baseline is a running server's, not a fresh interpreter's.
    from tests.usage.generate import write_focus
    small = var / "small.csv"
    write_focus(small, 200, seed=1)
    service.import_files(runtime, subject, pa, [(small, small.name)])
    baseline = status_kb("VmRSS")
    code = None
    try:
        service.import_files(runtime, subject, pa, [(bomb, bomb.name)])
    except BillByteError as exc:
        code = exc.code
    except Exception as exc:
        code = type(exc).__name__
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent (pytest).
    peak = status_kb("VmHWM")
    print(json.dumps({"baseline_kb": baseline, "peak_kb": peak, "code": code}))
    print(f"peak {peak // 1024} MiB, warm baseline {baseline // 1024} MiB", file=sys.stderr)
    """
)


@pytest.mark.parametrize(
    ("filler", "code"), [(b"\0", "record_too_large"), (_ROW, "compression_ratio_exceeded")]
)
def test_refusing_a_bomb_keeps_memory_bounded(tmp_path: Path, filler: bytes, code: str) -> None:
    # 512 MiB once decompressed; the server's memory must not grow with it (the report:
    # peak ≈ 2.2 × the decompressed size). Measured in a child process, default limits.
    decompressed = 512 * MiB
    bomb = _gzip_stream(tmp_path / "bomb.csv.gz", _focus_head(), filler, decompressed)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{SRC.parent}"}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "var"), str(bomb)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    grown = (measured["peak_kb"] - measured["baseline_kb"]) * 1024
    assert grown < 64 * MiB, measured
    assert measured["code"] == code
    assert not list((tmp_path / "var" / "usage").rglob("*.csv"))


def test_parquet_dictionary_bomb_is_refused(tenant: Tenant, runtime: Runtime) -> None:
    # One 256 KiB string referenced by every row: ~60 KB on disk, 5 GiB once read. The
    # footer's sizes cannot show it; the values' lengths are summed from the dictionary.
    import pyarrow as pa
    import pyarrow.parquet as pq

    pa_id = _partner(tenant)
    rows = 20_000
    values = pa.DictionaryArray.from_arrays(
        pa.array([0] * rows, pa.int32()), pa.array(["x" * (256 * 1024)])
    )
    table = pa.table({"BillingCurrency": values, "BilledCost": pa.array(["1"] * rows)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    assert len(buffer.getvalue()) < 1024 * 1024
    _assert_problem(
        _upload(tenant, pa_id, "bomb.parquet", buffer.getvalue()), 422, "compression_ratio_exceeded"
    )
    _limit(runtime, usage_record_max_bytes=64 * 1024)
    _assert_problem(
        _upload(tenant, pa_id, "bomb.parquet", buffer.getvalue()), 422, "record_too_large"
    )
    assert _leftovers(runtime) == []
