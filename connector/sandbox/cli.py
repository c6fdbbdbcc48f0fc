"""`connector sandbox serve`: run the Adobe Target + Copernica emulator in the foreground."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from connector.sandbox.copernica_schema import SchemaError, parse_schema
from connector.sandbox.options import (
    CALLS_PER_MINUTE,
    DAILY_QUOTA,
    MAX_BATCH_BYTES,
    MAX_BATCH_ROWS,
    MAX_PROFILE_BYTES,
    STATUS_TTL_S,
    STATUS_WINDOW,
    build_options,
)
from connector.sandbox.server import SandboxServer
from connector.sandbox.state import Sandbox


def _parse_databases(specs: tuple[str, ...]) -> dict[str, list[str] | None]:
    databases: dict[str, list[str] | None] = {}
    for spec in specs:
        name, _, fields = spec.partition("=")
        if not name:
            raise click.BadParameter(f"{spec!r}: expected NAME or NAME=field1,field2")
        databases[name] = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    return databases


def _read_schema(path: Path | None) -> dict[str, object]:
    if path is None:
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parse_schema(raw)
    except (ValueError, SchemaError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--copernica-schema") from None
    return dict(raw)


class CannotListen(click.ClickException):
    """The host and port given cannot be listened on (in use, not this machine's, refused):
    a configuration problem of the command, not a crash (``connector`` exits 3 on it)."""


@click.group("sandbox")
def sandbox_group() -> None:
    """A local emulator of the Adobe Target and Copernica APIs."""


@sandbox_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int, help="0 = any free port")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep profiles and batches in SQLite in this directory (default: memory).",
)
@click.option("--seed", type=int, help="Seed of the fault RNG (reproducible faults).")
@click.option("--token", envvar="SANDBOX_TOKEN", help="Require this API token (env SANDBOX_TOKEN).")
@click.option(
    "--fail-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of calls answered 500/502."
)
@click.option(
    "--throttle-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share answered 429 (Retry-After) or 503.",
)
@click.option(
    "--latency-ms", type=click.IntRange(0), default=0, help="Delay added to every API call."
)
@click.option(
    "--drop-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of connections closed without a response.",
)
@click.option(
    "--drop-when",
    type=click.Choice(["before", "after"]),
    default="before",
    show_default=True,
    help="Drop before handling the call, or after (the call takes effect, the answer is lost).",
)
@click.option(
    "--stuck-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of batches that never complete.",
)
@click.option(
    "--processing-delay",
    "processing_delay_s",
    type=float,
    default=0.2,
    show_default=True,
    help="Seconds a batch stays 'incomplete'.",
)
@click.option(
    "--max-batch-bytes",
    type=int,
    default=MAX_BATCH_BYTES,
    show_default=True,
    help="Bodies of this size or more are refused.",
)
@click.option("--max-batch-rows", type=int, default=MAX_BATCH_ROWS, show_default=True)
@click.option(
    "--daily-quota",
    type=int,
    default=DAILY_QUOTA,
    show_default=True,
    help="Rows per client per UTC day.",
)
@click.option("--calls-per-minute", type=int, default=CALLS_PER_MINUTE, show_default=True)
@click.option("--max-profile-bytes", type=int, default=MAX_PROFILE_BYTES, show_default=True)
@click.option(
    "--status-window",
    type=int,
    default=STATUS_WINDOW,
    show_default=True,
    help="Batch statuses kept per client.",
)
@click.option(
    "--status-ttl",
    "status_ttl_s",
    type=float,
    default=STATUS_TTL_S,
    show_default=True,
    help="Seconds a batch status is kept.",
)
@click.option(
    "--status-base-url", help="Host to put in batchStatus URLs (default: the one posted to)."
)
@click.option(
    "--v2-merge",
    is_flag=True,
    help="v2 batches merge into profiles, for rehearsals. Default: a v2 row replaces what "
    "earlier v2 rows set for the profile since its last mbox call (the docs' caveat, worst case).",
)
@click.option(
    "--copernica-db",
    "copernica_db",
    multiple=True,
    metavar="NAME[=f1,f2]",
    help="Copernica database, optionally with its known fields (others ignored).",
)
@click.option(
    "--copernica-schema",
    "copernica_schema_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file declaring Copernica databases with typed fields and collections "
    '({"Shop": {"fields": {"Email": "email", "Points": {"type": "integer", "value": "-1"}}}}).',
)
@click.option("--no-copernica-autocreate", is_flag=True, help="Refuse unknown database names.")
@click.option("-v", "--verbose", is_flag=True, help="Log every accepted batch.")
def serve(
    host: str,
    port: int,
    copernica_db: tuple[str, ...],
    copernica_schema_file: Path | None,
    no_copernica_autocreate: bool,
    verbose: bool,
    **options: object,
) -> None:
    """Serve the sandbox until interrupted (SIGINT/SIGTERM); prints the URL it listens on.

    \b
    Exit codes (docs/exit-codes.md):
      0 stopped by SIGINT/SIGTERM
      1 crashed
      2 usage error (a bad option or schema file)
      3 bad configuration: it cannot listen on --host/--port (in use, not this machine's)
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    opts = build_options(
        copernica_databases=_parse_databases(copernica_db),
        copernica_schema=_read_schema(copernica_schema_file),
        copernica_autocreate=not no_copernica_autocreate,
        **options,
    )
    sandbox = Sandbox(opts)
    try:
        server = SandboxServer(sandbox, host, port)
    except OSError as exc:
        sandbox.close()
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    click.echo(server.url, nl=True)
    sys.stdout.flush()
    server.serve_forever()
