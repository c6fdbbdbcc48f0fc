"""Progress of a sync's work as it happens: what each stage has done and what it waits for.

Core code (the pipeline stages, the outbox, delivery) opens a :func:`stage`, updates it once
per chunk, record batch, file or submitted batch (never per row), says what it waits for and
until when (:meth:`Stage.waiting`; code that does not hold the stage, such as the HTTP retries
and the call limiter, uses :func:`waiting`, which finds the stage at work) and closes it.

Whoever watches installs one :class:`Reporter` for the process (:func:`reporting_to`); it gets
an :class:`Event` at every start, update and end, from whichever thread the stage runs in, so
it must be thread-safe. Without a reporter (the default: Dagster's own runs, tests, the
library) every call returns at once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Literal, Protocol

log = logging.getLogger(__name__)

EventKind = Literal["start", "update", "end"]


@dataclass(frozen=True)
class Event:
    """One stage's state when it started, moved on, or ended.

    ``step`` is what it does (extract, transform, profiles, outbox, submit, poll), ``subject``
    what it does it to (``crm_customers 2026-11-21``, ``target:demo``). ``done`` counts
    ``unit`` (rows; batches final for a poll) out of ``total`` when known; ``batches`` the
    batch files written or submitted so far (None: the stage has none). ``note`` is what the
    stage is at (at the end: its summary); ``waits_for`` what it waits for right now and
    ``until`` when that wait ends (aware; None: no wait). ``elapsed_s`` counts from the start.
    """

    kind: EventKind
    stage_id: int
    step: str
    subject: str
    unit: str
    done: int
    total: int | None
    batches: int | None
    note: str
    waits_for: str
    until: dt.datetime | None
    elapsed_s: float
    failed: bool = False


class Reporter(Protocol):
    """Shows progress; called from any thread, so implementations must be thread-safe."""

    def report(self, event: Event) -> None: ...


_reporter: Reporter | None = None
_ids = itertools.count(1)
_lock = threading.Lock()
_open: list[Stage] = []  # stages at work in the process, oldest first
_local = threading.local()  # .stack: this thread's open stages, innermost last


class Stage:
    """A stage at work. Its methods cost a check and a return when no reporter is installed;
    with one, they may be called from several threads (a stage's worker threads wait too)."""

    def __init__(
        self,
        step: str,
        subject: str,
        *,
        unit: str,
        total: int | None,
        batches: int | None,
        reporter: Reporter | None,
    ) -> None:
        self.step, self.subject, self.unit = step, subject, unit
        self.total, self.batches = total, batches
        self.done = 0
        self.note = ""
        self._wait: tuple[str, dt.datetime] | None = None
        self._reporter = reporter
        self._id = next(_ids)
        self._started = time.monotonic()
        self._lock = threading.Lock()

    def update(
        self,
        *,
        done: int | None = None,
        total: int | None = None,
        batches: int | None = None,
        note: str | None = None,
    ) -> None:
        """The stage moved on: ``done`` so far (not an increment), the ``total`` once known,
        the ``batches`` so far, or a ``note`` (what it is at, kept until replaced)."""
        if self._reporter is None:
            return
        with self._lock:
            if done is not None:
                self.done = done
            if total is not None:
                self.total = total
            if batches is not None:
                self.batches = batches
            if note is not None:
                self.note = note
            if self.total is not None and self.done > self.total:
                self.total = self.done  # work added on the way (a retry queued, re-sent)
            event = self._event("update")
        self._send(event)

    def conclude(self, summary: str) -> None:
        """What the stage's end shows (say it before the block ends); reports nothing now."""
        self.note = summary

    @contextmanager
    def waiting(self, what: str, seconds: float) -> Iterator[None]:
        """Within the block the stage waits ``seconds`` for ``what`` (``next poll``, ``retry 2
        of target POST``): shown with the time the wait ends. Of waits that overlap (worker
        threads), the latest is shown until it ends."""
        if self._reporter is None:
            yield
            return
        wait = (what, local_now() + dt.timedelta(seconds=max(seconds, 0.0)))
        with self._lock:
            self._wait = wait
            event = self._event("update")
        self._send(event)
        try:
            yield
        finally:
            with self._lock:
                if self._wait is wait:
                    self._wait = None

    def _end(self, *, failed: bool) -> None:
        with self._lock:
            self._wait = None
            event = self._event("end", failed=failed)
        self._send(event)

    def _event(self, kind: EventKind, *, failed: bool = False) -> Event:
        waits_for, until = self._wait or ("", None)
        return Event(
            kind=kind,
            stage_id=self._id,
            step=self.step,
            subject=self.subject,
            unit=self.unit,
            done=self.done,
            total=self.total,
            batches=self.batches,
            note=self.note,
            waits_for=waits_for,
            until=until,
            elapsed_s=time.monotonic() - self._started,
            failed=failed,
        )

    def _send(self, event: Event) -> None:
        """Hand ``event`` to the reporter; a reporter that fails never fails the work."""
        if self._reporter is None:
            return
        try:
            self._reporter.report(event)
        except Exception:
            log.warning("progress reporter failed on %s %s", event.step, event.kind, exc_info=True)


def local_now() -> dt.datetime:
    """The current time, aware, in the machine's zone (what a watcher's clock shows)."""
    return dt.datetime.now().astimezone()


@contextmanager
def stage(
    step: str,
    subject: str,
    *,
    unit: str = "rows",
    total: int | None = None,
    batches: int | None = None,
) -> Iterator[Stage]:
    """Report a stage from the start of the block to its end (``failed`` when it raises);
    :meth:`Stage.conclude` gives the end its summary."""
    current = Stage(step, subject, unit=unit, total=total, batches=batches, reporter=_reporter)
    if current._reporter is None:
        yield current
        return
    stack: list[Stage] = _local.__dict__.setdefault("stack", [])
    with _lock:
        _open.append(current)
    stack.append(current)
    current._send(current._event("start"))
    try:
        yield current
    except BaseException:
        current._end(failed=True)
        raise
    else:
        current._end(failed=False)
    finally:
        stack.remove(current)
        with _lock:
            _open.remove(current)


def current_stage() -> Stage | None:
    """The innermost stage at work in this thread, else the latest one started in the process
    (a worker thread of a stage: the Copernica PUTs), else None."""
    stack: list[Stage] = getattr(_local, "stack", [])
    if stack:
        return stack[-1]
    with _lock:
        return _open[-1] if _open else None


def waiting(what: str, seconds: float) -> AbstractContextManager[None]:
    """The stage at work (:func:`current_stage`) waits ``seconds`` for ``what`` within the
    block; nothing when no stage is being reported."""
    if _reporter is None:
        return nullcontext()
    current = current_stage()
    return nullcontext() if current is None else current.waiting(what, seconds)


@contextmanager
def reporting_to(reporter: Reporter) -> Iterator[Reporter]:
    """Send the process's progress to ``reporter`` within the block (one at a time)."""
    global _reporter
    with _lock:
        if _reporter is not None:
            raise RuntimeError("a progress reporter is already installed in this process")
        _reporter = reporter
    try:
        yield reporter
    finally:
        with _lock:
            _reporter = None
