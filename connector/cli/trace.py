"""`connector trace`: where one profile's rows went, and the profile as each account holds
it, as tables or one JSON document, with an exit code by the profile's state
(``connector.exit_codes``). Never prints secrets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.text import Text

from connector.cli.output import make_console, print_json, print_table
from connector.cli.reading import JSON_OPTION, iso, open_ledger
from connector.exit_codes import HELP, ExitCode

if TYPE_CHECKING:
    from connector.reporting import AccountProfile, AccountState, TraceRow

# The ledger and the reports (SQLAlchemy, pyarrow, DuckDB) are imported when a command
# runs, not when `connector --help` lists it.


@click.command("trace", epilog=HELP)
@click.argument("identity")
@JSON_OPTION
def trace_command(identity: str, as_json: bool) -> None:
    """IDENTITY's profile at each account (every param, its value, mapping and source day)
    and where its rows went.

    The exit code is the profile's state: 0 the destination holds its current values at
    every account; 5 on its way or not queued yet somewhere; 4 its latest row failed
    somewhere (dead, or not found at Target v1), or every source row of it was rejected;
    2 when the ledger knows no such identity.
    """
    from connector.reporting.trace import account_profiles, account_states, trace, trace_exit_code

    settings, ledger = open_ledger()
    try:
        rows, delivered = trace(ledger, identity)
        profiles = account_profiles(ledger, identity, cache_dir=settings.profiles_cache)
    finally:
        ledger.dispose()
    states = account_states(rows, profiles)
    if not rows and not delivered and not profiles:
        message = f"No rows for identity {identity!r} in any batch, reject or profile store."
        if as_json:
            print_json(_trace_document(identity, ExitCode.USAGE, [], [], [], []))
        click.echo(message, err=True)
        raise SystemExit(int(ExitCode.USAGE))
    code = trace_exit_code(rows, states)
    if as_json:
        print_json(_trace_document(identity, code, rows, delivered, profiles, states))
        raise SystemExit(int(code))
    console = make_console()
    by_key = {s.destination_key: s for s in states}
    for profile in profiles:
        _print_profile(console, identity, profile, by_key.get(profile.destination_key))
    print_table(
        console,
        f"Rows of {identity}",
        [
            "batch",
            "mapping",
            "partition",
            "destination",
            "attempt",
            "source",
            "remote batch id",
            "batch state",
            "outcome",
            "reason",
        ],
        [
            [
                r.batch_id or "-",
                r.mapping,
                r.partition,
                r.destination_key,
                r.attempt or "-",
                r.source_ref,
                r.remote_batch_id,
                r.state,
                r.outcome,
                r.reason,
            ]
            for r in rows
        ],
    )
    for d in delivered:
        console.print(
            Text(
                f"confirmed delivered to {d.destination_key} by batch {d.batch_id} at "
                f"{d.delivered_at.isoformat(timespec='seconds')} (params: {d.nonempty or '-'})"
            )
        )
    for state in states:
        if state.destination_key not in {p.destination_key for p in profiles}:
            console.print(Text(f"{state.destination_key}: {state.why}"))
    if not states:
        console.print(Text("every source row of it was rejected: nothing reached a profile"))
    console.print(Text(f"exit code {int(code)}: {code.label.replace('_', ' ')}"))
    raise SystemExit(int(code))


def _print_profile(
    console: Console, identity: str, profile: AccountProfile, state: AccountState | None
) -> None:
    print_table(
        console,
        f"Profile {identity} at {profile.destination_key}",
        ["param", "value", "mapping", "source day"],
        [
            [name, "" if value is None else value, mapping, day or "-"]
            for name, (value, mapping, day) in profile.params.items()
        ],
    )
    for mapping, source in sorted(profile.sources.items()):
        console.print(Text(f"  {mapping}: latest values from {source}"))
    if profile.current:
        assert profile.confirmed is not None
        held = (
            f"the destination holds these values (confirmed by batch {profile.confirmed.batch_id})"
        )
    elif profile.confirmed is None:
        held = "not confirmed at the destination yet"
    else:
        held = (
            f"the last confirmed row (batch {profile.confirmed.batch_id}) differs: these values "
            "are queued, on their way, or failed (see the rows below)"
        )
    console.print(Text(f"  {held}"))
    if state is not None and not profile.current:
        console.print(Text(f"  state: {state.why}"))


def _trace_document(
    identity: str,
    code: ExitCode,
    rows: list[TraceRow],
    delivered: list[Any],
    profiles: list[AccountProfile],
    states: list[AccountState],
) -> dict[str, Any]:
    """The ``connector.trace/1`` JSON document (``docs/cli-json.md``)."""
    by_key = {p.destination_key: p for p in profiles}
    return {
        "schema": "connector.trace/1",
        "identity": identity,
        "found": bool(rows or delivered or profiles),
        "exit_code": int(code),
        "outcome": code.label,
        "accounts": [_account_json(s, by_key.get(s.destination_key)) for s in states],
        "rows": [
            {
                "batch_id": r.batch_id or None,
                "batch_key": r.batch_key or None,
                "mapping": r.mapping,
                "partition": r.partition,
                "account": r.destination_key or None,
                "attempt": r.attempt or None,
                "source_ref": r.source_ref,
                "remote_batch_id": r.remote_batch_id or None,
                "batch_state": r.state or None,
                "outcome": r.outcome,
                "reason": r.reason,
            }
            for r in rows
        ],
        "delivered": [
            {
                "account": d.destination_key,
                "batch_id": d.batch_id,
                "delivered_at": iso(d.delivered_at),
                "params": [p for p in d.nonempty.split(",") if p],
            }
            for d in delivered
        ],
    }


def _account_json(state: AccountState, profile: AccountProfile | None) -> dict[str, Any]:
    return {
        "account": state.destination_key,
        "exit_code": int(state.code),
        "state": state.code.label,
        "why": state.why,
        "current": profile.current if profile else None,
        "confirmed_batch": profile.confirmed.batch_id if profile and profile.confirmed else None,
        "params": (
            {
                name: {"value": value, "mapping": mapping, "day": day}
                for name, (value, mapping, day) in profile.params.items()
            }
            if profile
            else {}
        ),
        "sources": dict(sorted(profile.sources.items())) if profile else {},
    }
