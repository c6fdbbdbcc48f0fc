"""`make demo` / `make ui`: the sample exports synced end to end against the local sandbox.

Starts the sandbox on a free port, runs one full sync of the sample days (extract -> batches ->
submit -> poll -> status report) with state under `.connector/demo/`, prints where the report
is, and stops the sandbox. `--ui` instead keeps the sandbox up and starts `dagster dev` on it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from connector.sample_data import ensure_sample_db
from connector.sandbox.testing import running_sandbox

SAMPLE_DAYS = "2026-11-18..2026-11-21"
STATE_DIR = Path(".connector/demo")


def demo_environment(sandbox_url: str) -> dict[str, str]:
    """Settings for a demo run: sandbox endpoints, a private state folder, any time of day."""
    return {
        "CONNECTOR_STATE_DIR": str(STATE_DIR),
        "CONNECTOR_TARGET__BASE_URL": sandbox_url,
        "CONNECTOR_TARGET__CLIENT_CODE": "demo",
        "CONNECTOR_TARGET__API_VERSION": "v2",
        "CONNECTOR_COPERNICA__BASE_URL": f"{sandbox_url}/v3",
        "CONNECTOR_COPERNICA__DATABASE": "demo",
        "CONNECTOR_OFF_PEAK": "00:00-24:00",
        "CONNECTOR_PARTITION_START": "2026-11-01",
        "DAGSTER_HOME": str((STATE_DIR / "dagster_home").resolve()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connector.demo", description=__doc__)
    parser.add_argument("--ui", action="store_true", help="start `dagster dev` against the sandbox")
    parser.add_argument("--port", type=int, default=3000, help="port of the Dagster UI (--ui)")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)

    ensure_sample_db()
    # the sandbox keeps its profiles beside the ledger, so a second demo (or `make ui`) sees a
    # consistent world: what the ledger says was delivered is there to read back
    sandbox_data = STATE_DIR / "sandbox"
    sandbox_data.mkdir(parents=True, exist_ok=True)
    with running_sandbox(data_dir=str(sandbox_data), processing_delay_s=0.2) as sandbox:
        env = demo_environment(sandbox.url)
        os.environ.update(env)
        Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        console.print(f"sandbox (Adobe Target + Copernica emulator) at {sandbox.url}")
        if args.ui:
            console.print(
                f"Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C stops it and the sandbox)"
            )
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
    console.print(
        f"state, outbox and reports: {STATE_DIR}/  (runs recorded in {env['DAGSTER_HOME']})"
    )
    console.print(
        "open the UI on these runs: make ui   (a second `make demo` finds nothing changed;"
    )
    console.print("`make clean` starts over)")
    console.print(
        "one profile at each account, every param of every mapping that feeds it: "
        f"CONNECTOR_STATE_DIR={STATE_DIR} .venv/bin/connector trace C00015"
    )
    return 0 if summary.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
