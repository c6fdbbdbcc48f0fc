"""The exit codes of ``connector sync``, ``status``, ``trace`` and ``sandbox serve``: one scheme.

A scheduler, a CI job or a sensor tells a good night from a bad one by the code alone::

    0  OK                 every row confirmed, or nothing to do
    1  RUN_FAILED         a run failed: a step raised (see the run in the Dagster UI)
    2  USAGE              a usage error: a bad option, partition or argument (click's own)
    3  BAD_CONFIGURATION  settings that do not validate, or that a destination refused
    4  ROWS_FAILED        rows failed or were dead-lettered (not found at Target v1 included)
    5  NOT_FINAL          the destination was unreachable, or work was left queued or open
                          (not final) when the wait ended

When several apply, the most serious wins (``worst``): 3 > 1 > 5 > 4 > 0. Bad configuration
first: nothing will work until a person fixes it. A failed run next: its figures are
incomplete. Then work not final: the rows' fate is not known yet, and failed rows may be
among them. Failed rows last: a known, final subset that the report names row by row.
``docs/exit-codes.md`` is the operator's page of this scheme.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What a command's exit status means (see the module doc for the order of severity)."""

    OK = 0
    RUN_FAILED = 1
    USAGE = 2
    BAD_CONFIGURATION = 3
    ROWS_FAILED = 4
    NOT_FINAL = 5

    @property
    def label(self) -> str:
        """The code's name as the JSON documents spell it: ``ok``, ``rows_failed``, ..."""
        return self.name.lower()


# most serious first; a usage error stops a command before anything else can happen
SEVERITY = (
    ExitCode.USAGE,
    ExitCode.BAD_CONFIGURATION,
    ExitCode.RUN_FAILED,
    ExitCode.NOT_FINAL,
    ExitCode.ROWS_FAILED,
    ExitCode.OK,
)


def worst(*codes: ExitCode) -> ExitCode:
    """The most serious of ``codes``; ``OK`` when none is given."""
    return min(codes, key=SEVERITY.index, default=ExitCode.OK)


# The codes in one paragraph for the commands' --help (click rewraps it; \b keeps the lines).
HELP = (
    "\b\nExit codes (docs/exit-codes.md):\n"
    "  0 ok: every row confirmed, or nothing to do\n"
    "  1 a run failed (a step raised)\n"
    "  2 usage error\n"
    "  3 bad configuration (settings, or refused by a destination)\n"
    "  4 rows failed or dead-lettered\n"
    "  5 destination unreachable, or work left queued/open (not final)\n"
    "  the most serious wins: 3 > 1 > 5 > 4"
)
