"""Settings that do not validate end a command in one line naming the variable, exit 3."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from connector.cli import main


@pytest.mark.parametrize("command", [["status"], ["sync", "--dry-run"], ["trace", "C1"]])
def test_bad_settings_are_one_line_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("CONNECTOR_OFF_PEAK", "bogus")
    monkeypatch.setenv("CONNECTOR_TARGET__MAX_BATCH_ROWS", "-5")
    monkeypatch.setenv("CONNECTOR_TARGET__ACCESS_TOKEN", 5 * "s3cret-")
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bad configuration: "), result.output
    assert "CONNECTOR_OFF_PEAK: " in lines[0]
    assert "CONNECTOR_TARGET__MAX_BATCH_ROWS: Input should be greater than 0" in lines[0]
    assert "s3cret" not in result.output and "Traceback" not in result.output
