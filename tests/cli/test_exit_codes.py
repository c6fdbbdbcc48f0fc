"""The exit-code scheme: one enum, the most serious code wins, and every command documents it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.exit_codes import ExitCode, worst


def test_the_codes_operators_script_against() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5]
    assert ExitCode.ROWS_FAILED.label == "rows_failed"


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ((), ExitCode.OK),
        ((ExitCode.OK, ExitCode.ROWS_FAILED), ExitCode.ROWS_FAILED),
        ((ExitCode.ROWS_FAILED, ExitCode.NOT_FINAL), ExitCode.NOT_FINAL),
        ((ExitCode.NOT_FINAL, ExitCode.RUN_FAILED, ExitCode.ROWS_FAILED), ExitCode.RUN_FAILED),
        ((ExitCode.RUN_FAILED, ExitCode.BAD_CONFIGURATION), ExitCode.BAD_CONFIGURATION),
        ((ExitCode.BAD_CONFIGURATION, ExitCode.USAGE), ExitCode.USAGE),
    ],
)
def test_the_most_serious_code_wins(codes: tuple[ExitCode, ...], expected: ExitCode) -> None:
    assert worst(*codes) is expected
    assert worst(*reversed(codes)) is expected


@pytest.mark.parametrize("command", [["sync"], ["status"], ["trace"], ["sandbox", "serve"]])
def test_each_command_lists_the_codes_in_its_help(command: list[str]) -> None:
    shown = CliRunner().invoke(main, [*command, "--help"])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "Exit codes (docs/exit-codes.md)" in text
    for line in ("0 ", "2 usage error", "3 bad configuration"):
        assert line in text, (line, shown.output)
    if command != ["sandbox", "serve"]:
        assert "4 rows failed or dead-lettered" in text
        assert "5 destination unreachable, or work left queued/open" in text
        assert "the most serious wins: 3 > 1 > 5 > 4" in text
