"""`make demo` / `make ui`: the sample exports synced end to end against the local sandbox.

Starts the sandbox on a free port, runs one full sync of the sample days (extract -> batches ->
submit -> poll -> status report), prints where the report is, and stops the sandbox. `--ui`
instead keeps the sandbox up and starts `dagster dev` on it.

The state is the one every command reads (``docs/state.md``): ``CONNECTOR_STATE_DIR``
(default ``.connector``) and its ``dagster_home`` (or ``$DAGSTER_HOME``), so `connector status`,
`connector trace` and `make ui` in the same folder see the demo's ledger, outbox and runs; the
demo prints the ``export`` line that points another shell or folder at it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from connector.exit_codes import ExitCode
from connector.sample_data import ensure_sample_db
from connector.sandbox.testing import running_sandbox
from connector.settings import SettingsError, load_settings

SAMPLE_DAYS = "2026-11-18..2026-11-21"


def demo_environment(sandbox_url: str, state_dir: Path) -> dict[str, str]:
    """Settings for a demo run: sandbox endpoints, the state folder, any time of day."""
    return {
        "CONNECTOR_STATE_DIR": str(state_dir),
        "CONNECTOR_TARGET__BASE_URL": sandbox_url,
        "CONNECTOR_TARGET__CLIENT_CODE": "demo",
        "CONNECTOR_TARGET__API_VERSION": "v2",
        "CONNECTOR_COPERNICA__BASE_URL": f"{sandbox_url}/v3",
        "CONNECTOR_COPERNICA__DATABASE": "demo",
        "CONNECTOR_OFF_PEAK": "00:00-24:00",
        "CONNECTOR_PARTITION_START": "2026-11-01",
    }


def export_line(state_dir: Path, dagster_home: Path) -> str:
    """The shell line that points `connector status/trace/sync` and `dagster dev` at this state."""
    return (
        f"export CONNECTOR_STATE_DIR={shlex.quote(str(state_dir))} "
        f"DAGSTER_HOME={shlex.quote(str(dagster_home))}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connector.demo", description=__doc__)
    parser.add_argument("--ui", action="store_true", help="start `dagster dev` against the sandbox")
    parser.add_argument("--port", type=int, default=3000, help="port of the Dagster UI (--ui)")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120, highlight=False)
    try:
        # CONNECTOR_STATE_DIR, .env or connector.toml, else .connector: the state every command reads
        state_dir = load_settings().state_dir.absolute()
    except SettingsError as exc:
        console.print(f"bad configuration: {escape(str(exc))}")
        return ExitCode.BAD_CONFIGURATION
    # Dagster is imported here, not on import: `python -m connector.demo --help` stays quick
    from connector.defs.instance import prepare_dagster_home

    ensure_sample_db()
    home = prepare_dagster_home(state_dir)
    export = export_line(state_dir, home)
    # the sandbox keeps its profiles beside the ledger, so a second demo (or `make ui`) sees a
    # consistent world: what the ledger says was delivered is there to read back
    sandbox_data = state_dir / "sandbox"
    sandbox_data.mkdir(parents=True, exist_ok=True)
    with running_sandbox(data_dir=str(sandbox_data), processing_delay_s=0.2) as sandbox:
        os.environ.update(demo_environment(sandbox.url, state_dir))
        console.print(f"sandbox (Adobe Target + Copernica emulator) at {sandbox.url}")
        console.print(escape(f"state: {state_dir}  runs: {home}"))
        if args.ui:
            console.print(
                f"Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C stops it and the sandbox); "
                "`connector status` on this state from another shell or folder, first:"
            )
            console.print(f"  {escape(export)}", soft_wrap=True)  # one line, to copy
            try:
                return subprocess.call(  # noqa: S603 - our own interpreter and fixed arguments
                    [
                        sys.executable,
                        "-m",
                        "dagster",
                        "dev",
                        "-w",
                        "workspace.yaml",
                        "-p",
                        str(args.port),
                    ]
                )
            except KeyboardInterrupt:
                return 0
        # imported only for the in-process sync: `--ui` runs Dagster in a process of its own
        from connector.cli.progress_display import showing_progress
        from connector.cli.sync import render_summary
        from connector.defs.resources import ConnectorResource
        from connector.defs.runner import run_sync

        started = time.monotonic()
        with showing_progress(sys.stdout) as display:
            summary = run_sync(
                ConnectorResource.from_env(force_window=True, poll_timeout_s=120.0),
                partitions=[SAMPLE_DAYS],
                on_event=display.message,
            )
        render_summary(console, summary, time.monotonic() - started)
    console.print(escape(f"state (ledger, outbox, reports): {state_dir}/  runs: {home}/"))
    console.print(
        "`connector status`, `connector trace C00015` (one profile at each account, every "
        "param of every mapping that feeds it) and `make ui` (these runs in the Dagster UI) "
        "in this folder read this state; from another shell or folder, first:"
    )
    console.print(f"  {escape(export)}", soft_wrap=True)  # one line, to copy
    console.print("a second `make demo` finds nothing changed; `make clean` starts over")
    return 0 if summary.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
