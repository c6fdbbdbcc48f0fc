"""What `connector sync` shows while it runs: live bars on a terminal, plain lines elsewhere.

Everything a sync says before its summary goes through here, to one stream (stdout; stderr
when stdout carries JSON): the stages' progress (``connector.progress`` events) and the
runner's own lines (:meth:`PlainLines.message`). On a terminal, ``rich.progress`` shows a bar
or spinner per stage at work (rows, batches, rate, what it waits for and until when) and a
line per stage that ended. Elsewhere (a pipe, a file, cron), one timestamped line per stage
start and end, written as is (never wrapped), and during a long stage at most one line about
its counts and one about what it waits for every ``PLAIN_EVERY_S`` seconds; a wait that lasts
longer than that is always announced.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from connector import progress
from connector.progress import Event

PLAIN_EVERY_S = 5.0
RATE_AFTER_S = 1.0  # a rate over a shorter time says nothing


class Display(Protocol):
    """A progress reporter that also prints the runner's lines."""

    def report(self, event: Event) -> None: ...

    def message(self, text: str) -> None: ...


def clock_time(when: dt.datetime, today: dt.date) -> str:
    """``HH:MM:SS`` in the machine's zone; with the date when it is not ``today``."""
    local = when.astimezone()
    if local.date() == today:
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")


def amount(event: Event) -> str:
    """``1,200 of 5,000 rows (2,400 rows/s), 3 batches``: what the stage has done."""
    text = f"{event.done:,}"
    if event.total is not None:
        text += f" of {event.total:,}"
    text += f" {event.unit}"
    if event.unit == "rows" and event.done and event.elapsed_s >= RATE_AFTER_S:
        text += f" ({event.done / event.elapsed_s:,.0f} rows/s)"
    if event.batches is not None:
        text += f", {event.batches:,} batch{'' if event.batches == 1 else 'es'}"
    return text


def describe(event: Event, today: dt.date) -> str:
    """The text of one event, after ``<step> <subject>:``: what the stage has done, what it
    is at, and what it waits for until when (``1 open; next poll at 21:57:01``)."""
    if event.kind == "start":
        parts = ["started" if event.total is None else f"started, {amount(event)}"]
    elif event.kind == "end":
        ended = "failed after" if event.failed else "done in"
        parts = [f"{ended} {event.elapsed_s:.1f}s, {amount(event)}"]
    else:
        parts = [amount(event)]
    if event.note:
        parts.append(event.note)
    if event.until is not None:
        parts.append(f"{event.waits_for} at {clock_time(event.until, today)}")
    return "; ".join(parts)


class PlainLines:
    """Timestamped lines written to ``stream`` as they are (no wrapping), at a bounded rate."""

    def __init__(
        self, stream: TextIO, clock: Callable[[], dt.datetime] = progress.local_now
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()
        # per stage: when its last line and its last line about a wait were written
        self._last_line: dict[int, dt.datetime] = {}
        self._last_wait: dict[int, dt.datetime] = {}

    def report(self, event: Event) -> None:
        with self._lock:
            moment = self._clock()
            if event.kind == "update" and not self._due(event, moment):
                return
            if event.kind == "end":
                self._last_line.pop(event.stage_id, None)
                self._last_wait.pop(event.stage_id, None)
            else:
                self._last_line[event.stage_id] = moment
                if event.until is not None:
                    self._last_wait[event.stage_id] = moment
            self._write(moment, f"{event.step} {event.subject}: {describe(event, moment.date())}")

    def _due(self, event: Event, moment: dt.datetime) -> bool:
        every = dt.timedelta(seconds=PLAIN_EVERY_S)
        if event.until is not None:
            last_wait = self._last_wait.get(event.stage_id)
            return last_wait is None or moment - last_wait >= every or event.until - moment >= every
        last = self._last_line.get(event.stage_id)
        return last is None or moment - last >= every

    def message(self, text: str) -> None:
        with self._lock:
            self._write(self._clock(), text)

    def _write(self, moment: dt.datetime, text: str) -> None:
        self._stream.write(f"{moment.strftime('%H:%M:%S')} {text}\n")
        self._stream.flush()


class LiveBars:
    """``rich.progress`` on a terminal: a bar (a spinner when the total is unknown) per stage
    at work; a stage that ends leaves one line above them."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._tasks: dict[int, TaskID] = {}
        self._lock = threading.Lock()

    def report(self, event: Event) -> None:
        today = progress.local_now().date()
        label = escape(f"{event.step} {event.subject}")
        with self._lock:
            if event.kind == "start":
                self._tasks[event.stage_id] = self.progress.add_task(
                    label, total=event.total, detail=escape(describe(event, today))
                )
                return
            task = self._tasks.get(event.stage_id)
            if task is None:
                return
            if event.kind == "update":
                self.progress.update(
                    task,
                    completed=event.done,
                    total=event.total,
                    detail=escape(describe(event, today)),
                )
                return
            del self._tasks[event.stage_id]
            self.progress.remove_task(task)
        mark = "[red]✗[/red]" if event.failed else "[green]✓[/green]"
        self.progress.console.print(f"{mark} {label}: {escape(describe(event, today))}")

    def message(self, text: str) -> None:
        self.progress.console.print(
            f"[dim]{progress.local_now().strftime('%H:%M:%S')}[/dim] {escape(text)}"
        )


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that can redraw (not a pipe, a file or TERM=dumb)."""
    console = Console(file=stream)
    return console.is_terminal and not console.is_dumb_terminal


@contextmanager
def showing_progress(stream: TextIO) -> Iterator[Display]:
    """Show the process's progress on ``stream`` within the block (live on a terminal)."""
    if not is_terminal(stream):
        plain = PlainLines(stream)
        with progress.reporting_to(plain):
            yield plain
        return
    bars = LiveBars(Console(file=stream))
    with bars.progress, _logs_above(), progress.reporting_to(bars):
        yield bars


@contextmanager
def _logs_above() -> Iterator[None]:
    """Within the block, log lines to the terminal go through ``sys.stderr`` as it is now:
    the live display's proxy, which prints them above the bars instead of through them."""
    moved = [
        (handler, handler.setStream(sys.stderr))
        for handler in logging.getLogger().handlers
        if type(handler) is logging.StreamHandler and handler.stream is sys.__stderr__
    ]
    try:
        yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)
