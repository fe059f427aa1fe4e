"""`corral keys create|list|revoke`: API keys in the ledger database (DATABASE_URL).

Running gateways pick changes up within a few seconds (they refresh their key cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from gateway.config import ConfigError, load_settings
from gateway.keys.store import KeyRequestError, KeyStore

keys_app = typer.Typer(help="Create, list and revoke API keys (stored hashed in the ledger database).")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML config file (for its database_url).")]


def _store(config: Path | None) -> KeyStore:
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(f"corral: {exc}", err=True)
        raise typer.Exit(2) from exc
    return KeyStore.from_url(settings.database_url)


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"corral: {exc}", err=True)
    return typer.Exit(2 if isinstance(exc, KeyRequestError) else 1)


@keys_app.command("create")
def create(
    scopes: Annotated[str, typer.Option("--scopes", help="Comma-separated: chat, spend:read, admin.")],
    team: Annotated[str | None, typer.Option("--team", help="Team the key's requests and spend belong to.")] = None,
    rpm: Annotated[int | None, typer.Option("--rpm", min=1, help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", min=1, help="Tokens per minute (prompt + max output).")] = None,
    budget_usd: Annotated[str | None, typer.Option("--budget-usd", help="Spend limit in USD per period.")] = None,
    budget_period: Annotated[str | None, typer.Option("--budget-period", help="day or month.")] = None,
    name: Annotated[str, typer.Option("--name", help="A note for humans.")] = "",
    config: ConfigOption = None,
) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only as a hash."""
    store = _store(config)
    try:
        key, record = store.create(
            team=team,
            scopes=scopes,
            rpm=rpm,
            tpm=tpm,
            budget_usd=budget_usd,
            budget_period=budget_period,
            name=name,
        )
    except (KeyRequestError, SQLAlchemyError) as exc:
        raise _fail(exc) from exc
    finally:
        store.close()
    info = record.public()
    typer.echo(f"created {record.key_id}: team={info['team'] or '-'} scopes={','.join(info['scopes'])}", err=False)
    limits = f"rpm={record.rpm or '-'} tpm={record.tpm or '-'}"
    budget = f"budget={info['budget_usd']} USD/{record.budget_period}" if record.budget_usd is not None else "budget=-"
    typer.echo(f"{limits} {budget}")
    typer.echo("the key is shown only now; store it safely:")
    typer.echo(key)


@keys_app.command("list")
def list_keys(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    config: ConfigOption = None,
) -> None:
    """List keys (ids, never the keys themselves)."""
    store = _store(config)
    try:
        records = store.list(include_revoked=all_keys)
    except SQLAlchemyError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()
    header = ("id", "team", "scopes", "rpm", "tpm", "budget", "created", "revoked", "name")
    rows = [header]
    for r in records:
        p = r.public()
        budget = f"{p['budget_usd']}/{r.budget_period}" if r.budget_usd is not None else "-"
        rows.append(
            (
                str(r.key_id),
                r.team or "-",
                ",".join(p["scopes"]),
                str(r.rpm or "-"),
                str(r.tpm or "-"),
                budget,
                (p["created_at"] or "-")[:19],
                (p["revoked_at"] or "-")[:19],
                r.name or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, e.g. key_1a2b3c4d5e6f.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key (the row stays, with its revocation time)."""
    store = _store(config)
    try:
        record = store.revoke(key_id)
    except SQLAlchemyError as exc:
        raise _fail(exc) from exc
    finally:
        store.close()
    if record is None:
        typer.echo(f"corral: no API key {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id} at {record.revoked_at.isoformat() if record.revoked_at else '?'}")
