"""Finance's commands: `corral report spend|requests`, `corral prices`, `corral reconcile`."""

from __future__ import annotations

import csv
import io
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from gateway.catalogue.deployments import load_catalogue
from gateway.catalogue.pool_prices import Derived
from gateway.catalogue.prices import PriceBookError, load_price_book
from gateway.cli.pool_measure import NoPool, measured_by_model
from gateway.config import ConfigError, Settings, load_settings
from gateway.metering.drill import MAX_LIMIT, requests_page
from gateway.metering.exports import LAYOUTS, ExportError, read_export
from gateway.metering.reconcile import Reconciliation, Tolerance, period_of, reconcile
from gateway.metering.render import money, report_csv, report_json, totals_csv
from gateway.metering.reports import ReportError
from gateway.metering.service import make_pool, make_query, make_report, parse_day, pool_basis, price_book
from gateway.metering.sql import SqlStore
from gateway.metering.terminal import console, prices_table, reconciliation_table, report_view
from gateway.providers.registry import specs
from gateway.providers.vllm.throughput import Measured


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


RECONCILE_COLUMNS = (
    "day",
    "model",
    "ledger_cost_usd",
    "export_cost_usd",
    "difference_usd",
    "ledger_input_tokens",
    "ledger_output_tokens",
    "export_input_tokens",
    "export_output_tokens",
    "reason",
    "detail",
)
report_app = typer.Typer(help="Spend reports from the usage ledger.", no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML config file (ledger URL, pool GPU cost).")]
FromOpt = Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day, inclusive (default: --from).")]
FormatOpt = Annotated[Format, typer.Option("--format", help="table (terminal), csv or json.")]
TeamOpt = Annotated[str | None, typer.Option(help="Only this team.")]
ModelOpt = Annotated[str | None, typer.Option(help="Only this logical model.")]
ProviderOpt = Annotated[str | None, typer.Option(help="Only this provider.")]
KeyOpt = Annotated[str | None, typer.Option(help="Only this API key id.")]
ProjectOpt = Annotated[str | None, typer.Option(help="Only this project.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"corral: {message}", err=True)
    return typer.Exit(code)


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc


def _missing_ledger(url: str) -> str | None:
    """Why a SQLite ledger URL names no ledger: a report must not create an empty one and
    report $0 from it."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:" or Path(path).is_file():
        return None
    where = Path(path).resolve()
    return (
        f"no ledger at {where} (DATABASE_URL or database_url: {url}); set DATABASE_URL to the gateway's "
        "ledger, or run where its corral.db is"
    )


def _engine(settings: Settings) -> Engine:
    missing = _missing_ledger(settings.database_url)
    if missing is not None:
        raise _fail(missing)
    store = SqlStore(settings.database_url)
    try:
        store.ensure_schema()
    except Exception as exc:
        raise _fail(f"cannot open the ledger: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    return store.engine


def _csv(rows: list[dict[str, str]], header: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@report_app.command("spend")
def spend_command(
    start: FromOpt,
    end: ToOpt = None,
    by: Annotated[str, typer.Option(help="Group by provider, model, model_id, team, project, key, day.")] = "provider",
    output: FormatOpt = Format.TABLE,
    team: TeamOpt = None,
    model: ModelOpt = None,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    project: ProjectOpt = None,
    reprice: Annotated[Path | None, typer.Option(help="Price the period with this price book instead.")] = None,
    as_provider: Annotated[str | None, typer.Option(help="Price everything at this provider's prices.")] = None,
    totals: Annotated[
        Path | None, typer.Option("--totals", help="Also write the totals, as a one-line CSV, to this file.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Spend for a period, grouped as asked; the self-hosted pool's GPU-hour economics below.
    CSV holds one line per group and nothing else (summing a column gives the total); the
    totals are in the table, the JSON, or the file `--totals` names."""
    settings = _settings(config)
    try:
        query = make_query(
            start, end, by, {"team": team, "model": model, "provider": provider, "key": key, "project": project}
        )
        book = price_book(settings)
        other = (str(reprice), load_price_book(reprice, pool_basis(settings))) if reprice else None
        engine = _engine(settings)
        report = make_report(engine, book, query, reprice=other, provider=as_provider)
        pool = make_pool(engine, book, settings, query)
    except (ReportError, PriceBookError) as exc:
        raise _fail(str(exc)) from exc
    if totals is not None:
        try:
            totals.write_text(totals_csv(report))
        except OSError as exc:
            raise _fail(f"--totals {totals}: {exc.strerror or exc}") from exc
    if output is Format.JSON:
        _emit(orjson.dumps(report_json(report, pool), option=orjson.OPT_INDENT_2).decode())
    elif output is Format.CSV:
        _emit(report_csv(report))
    else:
        console().print(report_view(report, pool))


@report_app.command("requests")
def requests_command(
    start: FromOpt,
    end: Annotated[str | None, typer.Option("--to", help="Last day, inclusive (default: today, UTC).")] = None,
    team: TeamOpt = None,
    model: ModelOpt = None,
    provider: ProviderOpt = None,
    key: KeyOpt = None,
    project: ProjectOpt = None,
    limit: Annotated[
        int, typer.Option(help=f"At most this many, newest first (up to {MAX_LIMIT}); cut rows are said on stderr.")
    ] = 100,
    config: ConfigOpt = None,
) -> None:
    """The requests behind a report line, each with its attempts (JSON lines)."""
    settings = _settings(config)
    filters = {"team": team, "model": model, "provider": provider, "key": key, "project": project}
    try:
        query = make_query(start, end or datetime.now(UTC).date().isoformat(), "provider", filters)
    except ReportError as exc:
        raise _fail(str(exc)) from exc
    rows, more = requests_page(_engine(settings), query, limit)
    for row in rows:
        _emit(orjson.dumps(row).decode())
    if more:
        typer.echo(
            f"corral: showing the newest {len(rows)} requests of {query.start} to {query.end}; more match "
            f"(raise --limit, at most {MAX_LIMIT}, or narrow the period or filters)",
            err=True,
        )


def prices_command(
    at: Annotated[str | None, typer.Option("--at", help="Show the book in force on this day (default today).")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Price book (default: the configured one).")] = None,
    measure_s: Annotated[
        float,
        typer.Option(
            "--measure-s",
            help="Also read the pool replicas' token counters this many seconds apart and show the "
            "throughput they measure now beside the stated one (never used for the price).",
            min=0,
        ),
    ] = 0,
    output: FormatOpt = Format.TABLE,
    config: ConfigOpt = None,
) -> None:
    """Show the prices in force on a day (the self-hosted pool's with the GPUs, $/GPU-hour and
    throughput they are derived from); a bad price file is refused with the reason."""
    try:
        when = parse_day(at, "--at") if at else datetime.now(UTC).date()
        settings = _settings(config)
        book = load_price_book(file, pool_basis(settings)) if file else price_book(settings)
        pool, measured = measured_by_model(settings, measure_s) if measure_s else ("", {})
    except (ReportError, PriceBookError, NoPool) as exc:
        raise _fail(str(exc)) from exc
    rows = [
        {
            "provider": p.provider,
            "model": p.model,
            "effective": p.effective.isoformat(),
            "input": str(p.input),
            "cached_input": str(p.cached_input),
            "output": str(p.output),
            "basis": p.basis,
            "derivation": p.derived.explain() if p.derived else "",
        }
        for p in book.in_force(when)
    ]
    now = {(pool, model): m for model, m in measured.items()}
    if output is Format.JSON:
        extra = [_derived(p.derived, now.get((p.provider, p.model))) if p.derived else {} for p in book.in_force(when)]
        priced = [{**row, **more} for row, more in zip(rows, extra, strict=True)]
        _emit(orjson.dumps({"at": when.isoformat(), "currency": book.currency, "prices": priced}).decode())
    elif output is Format.CSV:
        _emit(_csv(rows, ["provider", "model", "effective", "input", "cached_input", "output", "basis", "derivation"]))
    else:
        console().print(prices_table(book, when, {k: _measured_words(m) for k, m in now.items()}))


def _measured_words(now: Measured) -> str:
    return (
        f"measured now: {now.input_tokens_per_s:,.0f} input | {now.output_tokens_per_s:,.0f} output tok/s over "
        f"{now.over_s:.1f} s on {now.replicas} replica(s) (the load of the moment; not used for the price)"
    )


def _derived(derived: Derived, measured: Measured | None) -> dict[str, object]:
    """A pool price's inputs, for scripts: what `derivation` says in words (and, when asked
    for, the throughput measured now, which the price does not use)."""
    t = derived.throughput
    more: dict[str, object] = {
        "derived_from": {
            "gpus": derived.gpus,
            "gpu_hour_usd": str(derived.gpu_hour_usd),
            "input_tokens_per_s": str(t.input_tokens_per_s),
            "output_tokens_per_s": str(t.output_tokens_per_s),
            "source": t.source,
        }
    }
    if measured is not None:
        more["measured_now"] = {
            "input_tokens_per_s": round(measured.input_tokens_per_s, 1),
            "output_tokens_per_s": round(measured.output_tokens_per_s, 1),
            "over_s": round(measured.over_s, 2),
            "replicas": measured.replicas,
        }
    return more


def _print_reconciliation(result: Reconciliation, output: Format) -> None:
    if output is Format.TABLE:
        console().print(reconciliation_table(result))
        return
    lines: list[dict[str, str]] = [
        {
            "day": line.day.isoformat(),
            "model": line.model,
            "ledger_cost_usd": str(money(line.ledger_cost_usd)),
            "export_cost_usd": str(money(line.export_cost_usd)),
            "difference_usd": str(money(line.difference_usd)),
            "ledger_input_tokens": str(line.ledger_tokens[0]),
            "ledger_output_tokens": str(line.ledger_tokens[1]),
            "export_input_tokens": str(line.export_tokens[0]) if line.export_tokens else "",
            "export_output_tokens": str(line.export_tokens[1]) if line.export_tokens else "",
            "reason": line.reason,
            "detail": line.detail,
        }
        for line in result.disagreements
    ]
    if output is Format.JSON:
        body = {"provider": result.provider, "agrees": result.agrees, "disagreements": lines}
        _emit(orjson.dumps(body).decode())
    else:
        _emit(_csv(lines, list(RECONCILE_COLUMNS)))


def reconcile_epilog() -> str:
    """The export layouts, as `corral reconcile --help` shows them (paragraphs kept)."""
    return "\n\n".join(" ".join(p.split()) for p in LAYOUTS.split("\n\n"))


def reconcile_command(
    provider: Annotated[str, typer.Option(help="Whose export this is (a provider name, e.g. bedrock).")],
    file: Annotated[Path, typer.Option("--file", help="The provider's usage or billing export (CSV).")],
    start: Annotated[str | None, typer.Option("--from", help="First day (default: the export's first).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (default: the export's last).")] = None,
    tolerance_usd: Annotated[str, typer.Option(help="Absolute tolerance per day x model, USD.")] = "0.01",
    tolerance_pct: Annotated[str, typer.Option(help="Relative tolerance per day x model, percent.")] = "1",
    output: FormatOpt = Format.TABLE,
    config: ConfigOpt = None,
) -> None:
    """Compare the ledger with a provider's export, day by day and model by model; exit 1 when
    lines disagree beyond tolerance, each saying why (cost, tokens, cost and tokens, only in
    the ledger, only in the export) with the figures that differ."""
    settings = _settings(config)
    try:
        tolerance = Tolerance(Decimal(tolerance_usd), Decimal(tolerance_pct))
        layout = specs()[provider].billing_export if provider in specs() else "generic"
        export = read_export(file, provider, load_catalogue().with_overrides(settings.catalogue), layout)
        period = period_of(export)
        if period is None and not (start and end):
            raise ExportError(f"{file}: no {provider} usage lines (give --from and --to to compare anyway)")
        first = parse_day(start, "--from") if start else period[0] if period else None
        last = parse_day(end, "--to") if end else period[1] if period else None
        if first is None or last is None:
            raise ExportError(f"{file}: no period to compare")
        result = reconcile(_engine(settings), provider, export, first, last, tolerance)
    except (ExportError, ReportError, InvalidOperation) as exc:
        raise _fail(str(exc) or "tolerances must be numbers") from exc
    _print_reconciliation(result, output)
    if not result.agrees:
        raise typer.Exit(1)
