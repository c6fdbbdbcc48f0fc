"""State across restarts with a data directory, and `connector sandbox serve` as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from connector.sandbox.testing import running_sandbox
from tests.sandbox.conftest import mbox, post_batch, status, submit_and_wait, values, xml


def test_profiles_batches_and_copernica_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with (
        running_sandbox(data_dir=data, processing_delay_s=0.0) as sb,
        httpx.Client(timeout=10) as http,
    ):
        detail = submit_and_wait(http, sb, "batch=thirdPartyId,a,b\nk1,x,y\nk2,z,", "per")
        assert detail["successfulUpdates"] == "2"
        assert mbox(http, sb, "per", third="k1").json()["committed"] == 2
        status_url = post_batch(http, sb, "batch=thirdPartyId,b\nk1,w", "per")["batchStatus"]
        sb.wait_idle()
        created = http.post(
            f"{sb.url}/v3/database/keep/profiles", json={"fields": {"email": "a@x"}}
        )
        first_id = int(created.headers["X-Created"])
    with (
        running_sandbox(data_dir=data, processing_delay_s=0.0) as sb,
        httpx.Client(timeout=10) as http,
    ):
        assert values(http, sb, "per", "k1", third=True) == {"a": "x", "b": "w"}
        assert values(http, sb, "per", "k2", third=True) == {"a": "z"}
        assert (
            status(http, status_url.replace(status_url.split("/m2/")[0], sb.url))["status"]
            == "complete"
        )
        state = http.get(f"{sb.url}/_sandbox/state").json()["target"]["clients"]["per"]
        assert state["quota"]["used_today"] == 3 and len(state["batches"]) == 2
        again = http.post(f"{sb.url}/v3/database/keep/profiles", json={"fields": {"email": "b@x"}})
        assert int(again.headers["X-Created"]) == first_id + 1
        data_page = http.get(f"{sb.url}/v3/database/keep/profiles").json()["data"]
        assert [p["fields"]["email"] for p in data_page] == ["a@x", "b@x"]
        assert (
            xml(http.post(sb.target_url("per"), content=b"batch=pcId,a\n1,x").text)["success"]
            == "true"
        )
    with running_sandbox(processing_delay_s=0.0) as sb, httpx.Client(timeout=10) as http:
        assert values(http, sb, "per", "k1", third=True) is None  # memory only by default


def test_serve_command_prints_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    code = "from connector.sandbox.cli import sandbox_group; sandbox_group()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "serve",
            "--port",
            "0",
            "--seed",
            "1",
            "--fail-rate",
            "0",
            "--data",
            str(tmp_path / "d"),
            "--copernica-db",
            "shop=email,name",
            "--token",
            "t",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        for _ in range(100):
            try:
                summary = httpx.get(url + "/", timeout=2).json()
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert summary["copernica"][0]["name"] == "shop"
        assert summary["copernica"][0]["fields"] == ["email", "name"]
        assert (
            httpx.post(
                f"{url}/m2/c/v2/profile/batchUpdate", content=b"batch=pcId,a\n1,x"
            ).status_code
            == 403
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert (tmp_path / "d" / "sandbox.sqlite3").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
