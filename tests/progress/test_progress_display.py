"""How `connector sync` shows progress: plain timestamped lines at a bounded rate when not on a
terminal, rich bars on one. The clock is handed in: no test waits."""

from __future__ import annotations

import datetime as dt
import io

from rich.console import Console

from connector.cli.progress_display import PLAIN_EVERY_S, LiveBars, PlainLines, describe
from connector.progress import Event

T0 = dt.datetime(2026, 6, 2, 21, 56, 40).astimezone()


def event(kind: str = "update", **fields: object) -> Event:
    values: dict[str, object] = dict(
        kind=kind,
        stage_id=1,
        step="extract",
        subject="crm 2026-06-01",
        unit="rows",
        done=0,
        total=None,
        batches=None,
        note="",
        waits_for="",
        until=None,
        elapsed_s=0.0,
    )
    values.update(fields)
    return Event(**values)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def test_describe_says_rows_rate_batches_and_what_it_waits_for_until_when() -> None:
    today = T0.date()
    assert describe(event("start"), today) == "started"
    assert describe(event(done=1_200, elapsed_s=0.5), today) == "1,200 rows"  # no rate yet
    assert (
        describe(event(done=120_000, total=500_000, batches=3, elapsed_s=2.0), today)
        == "120,000 of 500,000 rows (60,000 rows/s), 3 batches"
    )
    until = T0 + dt.timedelta(seconds=4)
    waiting = event(step="poll", unit="batches final", total=2, waits_for="next poll", until=until)
    assert describe(waiting, today) == "0 of 2 batches final; next poll at 21:56:44"
    tomorrow = event(
        note="stopped: window", waits_for="the window", until=T0 + dt.timedelta(days=1)
    )
    assert describe(tomorrow, today).endswith("stopped: window; the window at 2026-06-03 21:56:40")
    done = event("end", done=50, batches=1, elapsed_s=2.5, note="50 mapped")
    assert describe(done, today) == "done in 2.5s, 50 rows (20 rows/s), 1 batch; 50 mapped"
    assert describe(event("end", failed=True, elapsed_s=0.1), today) == "failed after 0.1s, 0 rows"


def test_plain_lines_write_each_start_and_end_and_bound_the_rest() -> None:
    out, clock = io.StringIO(), Clock()
    lines = PlainLines(out, clock=clock)
    lines.report(event("start"))
    for rows in range(1, 6):  # a chunk a second: counts at most every PLAIN_EVERY_S
        clock.advance(1)
        lines.report(event(done=rows * 100_000, elapsed_s=float(rows)))
    clock.advance(0.5)
    short = event(waits_for="retry 1", until=clock.now + dt.timedelta(seconds=1))
    lines.report(short)  # the first wait is told at once
    clock.advance(1)
    lines.report(event(waits_for="retry 2", until=clock.now + dt.timedelta(seconds=2)))
    clock.advance(2)
    long_wait = dt.timedelta(seconds=PLAIN_EVERY_S + 1)
    lines.report(event(waits_for="retry 3", until=clock.now + long_wait))  # long: told
    lines.report(event("end", done=500_000, elapsed_s=10.0, note="500,000 mapped"))
    assert out.getvalue().splitlines() == [
        "21:56:40 extract crm 2026-06-01: started",
        "21:56:45 extract crm 2026-06-01: 500,000 rows (100,000 rows/s)",
        "21:56:45 extract crm 2026-06-01: 0 rows; retry 1 at 21:56:46",
        "21:56:48 extract crm 2026-06-01: 0 rows; retry 3 at 21:56:54",
        "21:56:48 extract crm 2026-06-01: done in 10.0s, 500,000 rows (50,000 rows/s); "
        "500,000 mapped",
    ]


def test_plain_lines_are_never_wrapped() -> None:
    out = io.StringIO()
    lines = PlainLines(out, clock=Clock())
    summary = "polled 3, completed 1, " + "x" * 300
    lines.report(event("end", step="poll", subject="target:demo", note=summary))
    lines.message("delivery: " + "y" * 300)
    written = out.getvalue().splitlines()
    assert len(written) == 2 and written[0].endswith("x" * 300) and written[1].endswith("y" * 300)


def test_live_bars_show_the_stage_at_work_and_leave_a_line_when_it_ends() -> None:
    out = io.StringIO()
    bars = LiveBars(Console(file=out, force_terminal=True, width=200, color_system=None))
    with bars.progress:
        bars.report(event("start", total=1_000))
        bars.report(event(done=400, total=1_000, elapsed_s=2.0))
        bars.progress.refresh()
        live = out.getvalue()
        bars.report(event("end", done=1_000, total=1_000, elapsed_s=3.0, note="1,000 mapped"))
        bars.message("delivery: target")
    assert "extract crm 2026-06-01" in live and "400 of 1,000 rows (200 rows/s)" in live
    text = out.getvalue()
    assert "✓ extract crm 2026-06-01: done in 3.0s, 1,000 of 1,000 rows" in text
    assert "delivery: target" in text
    assert bars.progress.tasks == []  # a stage that ended leaves no bar
