"""`connector status` and `connector trace` where no ledger is: one line, exit 3, nothing created."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main


@pytest.mark.parametrize("command", [["status"], ["status", "--batch", "1"], ["trace", "C00015"]])
def test_reading_commands_never_create_a_ledger(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"no ledger at {tmp_path / '.connector' / 'ledger.db'} ")
    assert "CONNECTOR_STATE_DIR" in lines[0] and "CONNECTOR_STATE_DB_URL" in lines[0]
    assert list(tmp_path.iterdir()) == [], "a reading command created files"


def test_the_state_dir_setting_is_where_it_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR_STATE_DIR", str(tmp_path / "elsewhere"))
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 3
    assert f"no ledger at {tmp_path / 'elsewhere' / 'ledger.db'} " in result.output
    assert not (tmp_path / "elsewhere").exists()
