"""``billbyte usage ...``: import files and check totals from the command line."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.cli_support import fail, runtime_ready
from billbyte.kit.errors import BillByteError, NotFound
from billbyte.partners.models import PartnerAccount
from billbyte.runtime import Runtime
from billbyte.usage import service, store
from billbyte.usage.pipeline import RejectedFile
from billbyte.usage.schemas import UsageImportOut, UsageSummaryOut

app = typer.Typer(help="Import vendor usage files and inspect stored usage.", no_args_is_help=True)


def _subject(runtime: Runtime, partner_account_id: str, msp: str | None) -> AuthSubject:
    with runtime.uow() as uow:
        account = uow.session.get(PartnerAccount, partner_account_id)
        if account is None or (msp is not None and account.msp_id != msp):
            raise NotFound(
                f"No partner account {partner_account_id!r}" + (f" for MSP {msp}." if msp else ".")
            )
        return AuthSubject(msp_id=account.msp_id, actor="cli", role=Role.ADMIN)


@app.command("import")
def import_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Vendor file(s): CSV, CSV.gz, Parquet, JSON pages, or a CUR manifest.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    partner_account: Annotated[str, typer.Option("--partner-account", help="Partner account id.")],
    msp: Annotated[str | None, typer.Option("--msp", help="MSP id (checked if given).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Override detection.")] = None,
    report: Annotated[str | None, typer.Option(help="Vendor report/export name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the import as JSON.")] = False,
) -> None:
    """Import usage files for a partner account (idempotent; restatements replace slices)."""
    with runtime_ready() as runtime:
        subject = _subject(runtime, partner_account, msp)
        paths = service.expand_manifests([(p, p.name) for p in files])
        show_bar = sys.stderr.isatty() and not as_json
        try:
            if show_bar:
                with Progress(
                    TextColumn("{task.description:<16}"),
                    BarColumn(),
                    TimeElapsedColumn(),
                    transient=True,
                ) as bar:
                    task = bar.add_task("reading", total=1.0)
                    item = service.import_files(
                        runtime,
                        subject,
                        partner_account,
                        paths,
                        requested_format=fmt,
                        report=report,
                        progress=lambda stage, done: bar.update(
                            task, description=stage, completed=done
                        ),
                    )
            else:
                item = service.import_files(
                    runtime, subject, partner_account, paths, requested_format=fmt, report=report
                )
        except RejectedFile as exc:
            if as_json:
                with runtime.uow() as uow:
                    rejected = service.get_import(uow.session, subject, exc.extra["import_id"])
                    sys.stdout.write(
                        UsageImportOut.model_validate(rejected).model_dump_json() + "\n"
                    )
            fail(exc.detail)
            return
        except BillByteError as exc:
            fail(exc.detail)
            return
    out = UsageImportOut.model_validate(item)
    if as_json:
        sys.stdout.write(out.model_dump_json() + "\n")
        return
    typer.echo(f"import {out.id}: {out.status} ({out.outcome}), format {out.detected_format}")
    typer.echo(
        f"  rows read {out.rows_read}, accepted {out.rows_accepted}, "
        f"duplicates {out.duplicate_rows}, slices replaced {out.slices_replaced}, "
        f"unchanged {out.slices_unchanged}"
    )
    for currency, totals in out.totals.items():
        typer.echo(
            f"  {currency}: billed {totals.billed_cost}, effective "
            f"{totals.effective_cost}, list {totals.list_cost} ({totals.lines} lines)"
        )
    if out.unassigned_sub_accounts:
        typer.echo(f"  unassigned sub-accounts: {', '.join(out.unassigned_sub_accounts)}")


@app.command("summary")
def summary_command(
    period: Annotated[str, typer.Option(help="Billing period YYYY-MM.")],
    partner_account: Annotated[str, typer.Option("--partner-account")],
    group_by: Annotated[str, typer.Option(help="customer, sub_account, service, ...")] = "customer",
    msp: Annotated[str | None, typer.Option("--msp")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Exact stored totals for a period, as the API's /v1/usage/summary returns them."""
    with runtime_ready() as runtime:
        subject = _subject(runtime, partner_account, msp)
        with runtime.uow() as uow:
            result = UsageSummaryOut.model_validate(
                service.summary(
                    runtime,
                    uow.session,
                    subject,
                    period=period,
                    partner_account_id=partner_account,
                    group_by=group_by,
                )
            )
    if as_json:
        sys.stdout.write(result.model_dump_json() + "\n")
        return
    for group in result.groups:
        typer.echo(
            f"{group.key or '-':<40} {group.currency} {group.billed_cost:>24} ({group.lines} lines)"
        )
    typer.echo(json.dumps({c: t.billed_cost for c, t in result.totals.items()}))


@app.command("gc")
def gc_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what was removed as JSON.")
    ] = False,
) -> None:
    """Fail abandoned imports; delete unreferenced slice files, work and upload folders."""
    with runtime_ready() as runtime:
        collected = store.collect_garbage(runtime)
    if as_json:
        sys.stdout.write(json.dumps(dataclasses.asdict(collected)) + "\n")
        return
    for import_id in collected.failed_imports:
        typer.echo(f"failed abandoned import {import_id}")
    for kind, paths in (
        ("slice file", collected.slice_files),
        ("work folder", collected.work_folders),
        ("upload", collected.upload_folders),
    ):
        for path in paths:
            typer.echo(f"removed {kind} {path}")
    typer.echo(
        f"removed {collected.removed} unreferenced file(s)/folder(s), "
        f"{collected.bytes_freed} bytes; failed {len(collected.failed_imports)} abandoned "
        "import(s)"
    )
