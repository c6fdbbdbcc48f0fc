"""Screenshots of the delivery status report and of the status_report asset page in the
Dagster UI: ``docs/img/report.png`` and ``docs/img/status_report_asset.png``.

    .venv/bin/python docs/screenshots.py

Needs Chromium, driven headless (Debian: ``apt-get install -y chromium``; another binary:
``CHROMIUM=/path/to/chrome``); the script stops at once, saying so, when it is missing. It
is not part of ``make test``. What it does:

1. builds a small demo state in a temporary folder: the sample exports and mappings, synced
   three times against the sandbox (one day each, the last a backfill of the day before),
   with a sandbox that refuses profiles above 300 bytes and two attempts per row, so that
   the report has a history of runs, failures and rejected rows grouped by reason;
2. saves the Target report page (``<state>/reports/target_status.html``) as ``report.png``;
3. starts ``dagster-webserver`` on that state as a process, saves the page of the
   ``target/status_report`` asset as ``status_report_asset.png``, and stops it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
SYNCS = ("2026-11-19", "2026-11-21", "2026-11-20")
SANDBOX_PROFILE_BYTES = 300  # the sandbox fails larger profiles: the report shows failures
WEB_START_S = 180.0
UI_RENDER_MS = 20_000  # virtual time the UI gets to load its data before the shot


def chromium() -> str:
    """The Chromium binary; without one, stop with a message saying how to get it."""
    found = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not found:
        sys.exit(
            "docs/screenshots.py: Chromium not found. Install it (Debian: apt-get install -y "
            "chromium) or point CHROMIUM at a Chrome/Chromium binary."
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(work: Path, sandbox_url: str, ui_url: str) -> dict[str, str]:
    """Settings of the demo state: the sandbox, a private state folder, any time of day."""
    return {
        "CONNECTOR_STATE_DIR": str(work / "state"),
        "CONNECTOR_MAPPINGS_DIR": str(work / "mappings"),
        "CONNECTOR_TARGET__BASE_URL": sandbox_url,
        "CONNECTOR_TARGET__CLIENT_CODE": "demo",
        "CONNECTOR_TARGET__API_VERSION": "v2",
        "CONNECTOR_TARGET__POLL_INTERVAL_S": "0.2",
        "CONNECTOR_COPERNICA__BASE_URL": f"{sandbox_url}/v3",
        "CONNECTOR_COPERNICA__DATABASE": "demo",
        "CONNECTOR_OFF_PEAK": "always",
        "CONNECTOR_PARTITION_START": "2026-11-01",
        "CONNECTOR_MAX_ATTEMPTS": "2",
        "CONNECTOR_DAGSTER_URL": ui_url,
        "DAGSTER_HOME": str(work / "dagster_home"),
    }


def build_state(work: Path, ui_url: str) -> dict[str, str]:
    """The demo state under ``work``; returns its settings (the environment)."""
    from connector.defs.resources import ConnectorResource
    from connector.defs.runner import run_sync
    from connector.sample_data import ensure_sample_db
    from connector.sandbox.testing import running_sandbox

    ensure_sample_db(ROOT / "sample_exports" / "crm.db")
    shutil.copytree(ROOT / "sample_exports", work / "sample_exports")
    shutil.copytree(ROOT / "mappings", work / "mappings")
    (work / "dagster_home").mkdir()
    # no telemetry, and no "join the community" dialog over the page the shot is of
    (work / "dagster_home" / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
    )
    for name in ("workspace.yaml", "definitions.py"):
        shutil.copy(ROOT / name, work / name)
    os.chdir(work)  # the mappings name their sources relative to here
    with running_sandbox(
        processing_delay_s=0.05, max_profile_bytes=SANDBOX_PROFILE_BYTES
    ) as sandbox:
        env = environment(work, sandbox.url, ui_url)
        os.environ.update(env)
        connector = ConnectorResource.from_env(force_window=True, poll_timeout_s=60.0)
        for days in SYNCS:
            summary = run_sync(connector, partitions=[days])
            print(f"sync {days}: {summary.per_account}", flush=True)
    return env


def shoot(binary: str, url: str, path: Path, size: str, wait_ms: int = 0) -> None:
    """A headless Chromium screenshot of ``url`` at ``size`` (``WIDTH,HEIGHT``)."""
    args = [
        binary,
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={size}",
        f"--screenshot={path}",
    ]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    if wait_ms:
        args.append(f"--virtual-time-budget={wait_ms}")
    subprocess.run(  # noqa: S603 - a browser binary we located, fixed arguments
        [*args, url], check=True, capture_output=True, timeout=180
    )
    print(f"saved {path.relative_to(ROOT)}", flush=True)


def webserver(work: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """``dagster-webserver`` on the demo state, up and answering."""
    process_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    log = (work / "webserver.log").open("wb")
    command = [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml"]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [*command, "-h", "127.0.0.1", "-p", str(port)],
        cwd=work,
        env=process_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + WEB_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"dagster-webserver ended (see {work / 'webserver.log'})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).is_success:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(1)
    process.terminate()
    raise SystemExit(f"dagster-webserver did not answer in {WEB_START_S:.0f}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the demo state folder")
    args = parser.parse_args()
    binary = chromium()
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="connector-screenshots-"))
    port = free_port()
    try:
        env = build_state(work, f"http://127.0.0.1:{port}")
        report = Path(env["CONNECTOR_STATE_DIR"]) / "reports" / "target_status.html"
        shoot(binary, report.as_uri(), OUT / "report.png", "1440,2000")
        server = webserver(work, env, port)
        try:
            shoot(
                binary,
                f"http://127.0.0.1:{port}/assets/target/status_report",
                OUT / "status_report_asset.png",
                "1600,1800",
                wait_ms=UI_RENDER_MS,
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        os.chdir(ROOT)
        if args.keep:
            print(f"demo state kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
