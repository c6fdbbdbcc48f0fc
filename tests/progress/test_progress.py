"""`connector.progress`: stages report to the installed reporter; without one nothing happens;
a reporter that fails never fails the work; waits reach the stage at work, from any thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from connector import progress
from connector.delivery.call_limit import LedgerCallLimiter
from connector.destinations.http import (
    RetryPolicy,
    TransientError,
    run_with_retries,
)
from connector.ledger import Ledger
from connector.progress import Event
from tests.progress.recording import Recording


def test_a_stage_reports_start_updates_and_its_end_with_the_summary() -> None:
    recording = Recording()
    with progress.reporting_to(recording), progress.stage("extract", "crm 2026-06-01") as stage:
        stage.update(done=100)
        stage.update(done=250, total=300, batches=2)
        stage.conclude("250 mapped")
    kinds = [(e.kind, e.done, e.total, e.batches) for e in recording.events]
    assert kinds == [
        ("start", 0, None, None),
        ("update", 100, None, None),
        ("update", 250, 300, 2),
        ("end", 250, 300, 2),
    ]
    end = recording.events[-1]
    assert (end.step, end.subject, end.note, end.failed) == (
        "extract",
        "crm 2026-06-01",
        "250 mapped",
        False,
    )


def test_a_stage_that_raises_ends_failed() -> None:
    recording = Recording()
    with (
        progress.reporting_to(recording),
        pytest.raises(ValueError),
        progress.stage("transform", "crm 2026-06-01"),
    ):
        raise ValueError("boom")
    assert [(e.kind, e.failed) for e in recording.events] == [("start", False), ("end", True)]


def test_without_a_reporter_nothing_is_reported_and_nothing_fails() -> None:
    recording = Recording()
    with progress.stage("extract", "crm") as stage:
        stage.update(done=1)
        with stage.waiting("next poll", 1.0), progress.waiting("retry", 1.0):
            pass
    with progress.reporting_to(recording):
        pass
    assert recording.events == []


class Broken:
    def report(self, event: Event) -> None:
        raise RuntimeError("display gone")


def test_a_reporter_that_fails_does_not_fail_the_stage(caplog: pytest.LogCaptureFixture) -> None:
    with progress.reporting_to(Broken()), progress.stage("outbox", "target:demo") as stage:
        stage.update(done=5)
        done = True
    assert done
    assert "progress reporter failed" in caplog.text


def test_one_reporter_at_a_time() -> None:
    with (
        progress.reporting_to(Recording()),
        pytest.raises(RuntimeError),
        progress.reporting_to(Recording()),
    ):
        pass


def test_a_wait_shows_what_and_until_when_and_ends_with_its_block() -> None:
    recording = Recording()
    with progress.reporting_to(recording), progress.stage("poll", "target:demo") as stage:
        before = progress.local_now()
        with stage.waiting("next poll", 4.0):
            pass
        stage.update(done=1)
    wait, after = recording.events[1], recording.events[2]
    assert wait.waits_for == "next poll" and wait.until is not None
    assert 3.0 <= (wait.until - before).total_seconds() <= 5.0
    assert (after.waits_for, after.until) == ("", None)


def test_retries_and_the_call_limiter_tell_the_stage_at_work_what_they_wait_for(
    tmp_path: Path,
) -> None:
    recording = Recording()
    calls = iter([TransientError("HTTP 503", status_code=503), "ok"])

    def flaky() -> str:
        answer = next(calls)
        if isinstance(answer, Exception):
            raise answer
        return answer

    now = [0.0]

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.upgrade()
    limiter = LedgerCallLimiter(ledger, "target:demo", 1, clock=clock, sleep=sleep)
    with progress.reporting_to(recording), progress.stage("submit", "target:demo"):
        policy = RetryPolicy(base_delay_s=2.0)
        assert run_with_retries(flaky, policy, what="target POST", sleep=sleep, clock=clock) == "ok"
        with limiter.call():
            pass
        with limiter.call():  # the second call of the minute waits for the window
            pass
    waits = [e.waits_for for e in recording.events if e.until is not None]
    assert waits == ["target POST failed (HTTP 503); retry 1", "next call (limit 1 per 60s)"]


def test_a_worker_thread_of_a_stage_reports_its_wait_to_that_stage() -> None:
    recording = Recording()
    with progress.reporting_to(recording), progress.stage("submit", "copernica:demo"):

        def worker() -> None:
            with progress.waiting("copernica PUT failed; retry 1", 0.5):
                pass

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    (wait,) = [e for e in recording.events if e.until is not None]
    assert (wait.step, wait.subject) == ("submit", "copernica:demo")
    assert recording.events[-1].waits_for == ""  # the end shows no wait that is over
