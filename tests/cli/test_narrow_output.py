"""`connector status` and `connector trace` on an 80-column terminal: no line longer than 80,
no cell cut with an ellipsis, every value readable whole (a ledger filled by a real delivery to
the sandbox, one batch still open at the service)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector import delivery
from connector.sandbox.testing import running_sandbox
from tests.delivery.helpers import TRICKY, make_ledger, make_settings, profiles, queue

from .conftest import run


@pytest.fixture
def narrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ledger with delivered rows and one batch the service is still processing."""
    with running_sandbox(processing_delay_s=3600) as sb:
        settings = make_settings(tmp_path, sb.url, target={"max_batch_rows": 4})
        ledger = make_ledger(settings)
        try:
            queue(settings, ledger, profiles(6))
            delivery.drain(settings, ledger, destination="target")
        finally:
            ledger.dispose()
    monkeypatch.setenv("CONNECTOR_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("CONNECTOR_TIMEZONE", "Europe/Amsterdam")
    monkeypatch.setenv("COLUMNS", "80")
    return tmp_path


def _readable_at_80(text: str) -> list[str]:
    lines = text.splitlines()
    too_long = [line for line in lines if len(line) > 80]
    assert not too_long, "\n".join(too_long)
    assert "…" not in text
    return lines


def test_status_at_80_columns(narrow: Path) -> None:
    shown = run("status")
    assert shown.exit_code == 5, shown.output  # two batches open at the service
    lines = _readable_at_80(shown.stdout)
    for value in ("target:demo", "submitted", "Open batches", "crm", "2026-06-01"):
        assert any(value in line for line in lines), (value, shown.stdout)
    # every open batch's remote id, whole, on a line of its own block
    remote_ids = [line.split()[-1] for line in lines if line.strip().startswith("remote batch")]
    assert len(remote_ids) == 2 and all(len(r) > 8 for r in remote_ids), shown.stdout
    assert "exit code 5: work is queued or open" in shown.stdout


def test_trace_at_80_columns(narrow: Path) -> None:
    shown = run("trace", "cust-00005")
    assert shown.exit_code == 5, shown.output  # its batch is still being processed
    lines = _readable_at_80(shown.stdout)
    assert "Profile cust-00005 at target:demo" in shown.stdout
    # the profile's values whole (TRICKY[5] "1+1=2"; city "City 5 & Co/+%"), its source row
    for value in (TRICKY[5], "City 5 & Co/+%", "crm_2026-06-01.csv:"):
        assert any(value in line for line in lines), (value, shown.stdout)
    assert "state: on its way: batch 2 is submitted" in shown.stdout
