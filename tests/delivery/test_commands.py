"""`connector status` and `connector trace` over a ledger filled by a real delivery."""

from __future__ import annotations

from click.testing import CliRunner

from connector.cli import main
from connector.ledger import replace_rejects
from connector.sandbox.testing import running_sandbox

from .helpers import make_ledger, make_settings, profiles, queue, run_until_settled


def test_status_and_trace(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(calls_per_minute=100_000, fail_rate=0.0) as sb:
        settings = make_settings(tmp_path, sb.url, target={"max_batch_rows": 3})
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(7))
        run_until_settled(settings, ledger)
        queue(settings, ledger, profiles(4, prefix="late"), partition="2026-06-02")
        replace_rejects(
            ledger,
            "crm",
            "2026-06-02",
            [
                {
                    "source_ref": "pos.csv:17",
                    "identity": "cust-00004",
                    "param": "amount",
                    "reason": "'12,50' is not a decimal number",
                    "raw": "12,50",
                }
            ],
        )
    monkeypatch.setenv("CONNECTOR_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("CONNECTOR_TIMEZONE", "Europe/Amsterdam")
    monkeypatch.setenv("CONNECTOR_TARGET__TOKEN", "TOPSECRET")
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    out = runner.invoke(main, ["status"])
    assert out.exit_code == 5, out.output  # the late profiles are queued
    assert "target:demo" in out.output and "queued" in out.output and "backlog" in out.output
    assert "TOPSECRET" not in out.output
    one = runner.invoke(main, ["status", "--batch", "1"])
    assert one.exit_code == 0 and "remote_batch_id" in one.output
    traced = runner.invoke(main, ["trace", "cust-00004"])
    assert traced.exit_code == 0, traced.output
    # the row's source: line 7 of the day's export (the third row's value spans two lines)
    assert "crm_2026-06-01.csv:7" in traced.output and "delivered" in traced.output
    # the profile at the account, each param with its value, mapping and source day
    assert "Profile cust-00004 at target:demo" in traced.output
    for value in ("fish & chips", "City 4 & Co/+%"):
        assert value in traced.output
    assert "the destination holds these values" in traced.output
    assert "confirmed delivered to target:demo" in traced.output
    assert "pos.csv:17" in traced.output and "rejected" in traced.output
    assert "amount: '12,50' is not a decimal number" in traced.output
    none = runner.invoke(main, ["trace", "nobody"])
    assert none.exit_code == 2 and "No rows" in none.output


def test_status_brings_a_ledger_of_an_earlier_release_up_to_date(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from connector.cli import main
    from connector.ledger import Ledger

    state = tmp_path / "state"
    state.mkdir()
    Ledger(f"sqlite:///{state / 'ledger.db'}").upgrade("0001")  # the mapping-rows release
    monkeypatch.setenv("CONNECTOR_STATE_DIR", str(state))
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 0, result.output
    assert "identity_type" not in result.output
