"""Following submitted batches until every row is final.

``poll`` asks the destination where each submitted batch of the account stands: still
processing (marked stuck once it has been pending longer than ``pending_timeout_h``),
stuck (its rows re-queued), or final (``settle.settle``). A status that is gone at the
service (Target keeps the last 10 for 24 h) is resolved by reading every row back, up to
``identify_limit`` rows; a larger batch is re-queued whole.

Waiting for open batches, it polls at once, then after 1 s, 2 s, 4 s, ... up to
``target.poll_interval_s`` (:func:`poll_delays`): a batch the service applies in a second is
confirmed in about a second, one that takes an hour costs a call every ``poll_interval_s``.
Every status call also takes its place in the account's calls per minute, shared with the
drains through the ledger (``call_limit``); the client's retries honour ``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, update

from connector import ledger as ledger_mod
from connector import progress
from connector.delivery.call_limit import ledger_call_limits
from connector.delivery.claims import aware, utcnow
from connector.delivery.requeue import retry_whole_batch
from connector.delivery.results import PollResult
from connector.delivery.settle import DEFAULT_IDENTIFY_LIMIT, Tally, settle, settle_by_read_back
from connector.destinations.accounts import open_destination
from connector.destinations.base import Destination, Processing, Stuck
from connector.destinations.copernica import CopernicaClient
from connector.destinations.http import DeliveryError, NotFoundError
from connector.destinations.target import TargetClient
from connector.ledger import EXPIRED, STUCK, SUBMITTED, Batch, Ledger
from connector.settings import Settings

log = logging.getLogger(__name__)


FIRST_POLL_DELAY_S = 1.0


def poll_delays(longest: float, first: float = FIRST_POLL_DELAY_S) -> Iterator[float]:
    """The waits between polls of open batches: ``first``, doubling, then ``longest`` on
    (``1, 2, 4, 8, 16, 30, 30, ...`` for ``longest=30``); never more than ``longest``."""
    delay = first
    while delay < longest:
        yield delay
        delay *= 2
    while True:
        yield longest


def poll(
    settings: Settings,
    ledger: Ledger,
    *,
    destination: str,
    now: dt.datetime | None = None,
    wait: bool = False,
    timeout_s: float | None = None,
    client: TargetClient | CopernicaClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
    identify_limit: int = DEFAULT_IDENTIFY_LIMIT,
) -> PollResult:
    """Follow open batches of ``destination``: once, or until final/``timeout_s`` when ``wait``
    (waiting :func:`poll_delays` between polls, the last one cut to end at ``timeout_s``).

    ``client``: the destination's API client to use (tests: fast retries); ``sleep``: how it
    waits between polls. Reported as the ``poll`` stage (``connector.progress``): batches
    final of those open, the next poll's time."""
    key = ledger_mod.destination_key(destination, settings)
    result = PollResult(destination=destination, destination_key=key)
    opened = len(_open_batches(ledger, key))
    if not opened:
        return result  # nothing to follow (a Copernica batch settles when it is submitted)
    dest = open_destination(
        settings, destination, key, client, call_limits=ledger_call_limits(ledger)
    )
    started = time.monotonic()
    delays = poll_delays(settings.target.poll_interval_s)
    try:
        with progress.stage("poll", key, unit="batches final", total=opened) as report:
            while True:
                moment = aware(now) or utcnow()
                for batch in _open_batches(ledger, key):
                    result.polled += 1
                    _poll_one(ledger, settings, dest, batch, moment, result, identify_limit)
                result.still_open = _count_open(ledger, key)
                report.update(done=_final(result), total=_final(result) + result.still_open)
                if not wait or result.still_open == 0:
                    break
                delay = next(delays)
                if timeout_s is not None:
                    left = timeout_s - (time.monotonic() - started)
                    if left <= 0:
                        break
                    delay = min(delay, left)
                with report.waiting("next poll", delay):
                    sleep(delay)
            report.conclude(result.summary())
    finally:
        dest.close()
    log.info("%s poll: %s", key, result.summary())
    return result


def _final(result: PollResult) -> int:
    """Batches this poll saw end: settled, stuck or expired (an expired one read back is
    also settled: counted once)."""
    return len({*result.completed, *result.stuck, *result.expired})


def awaiting_status(key: str | None = None) -> ColumnElement[bool]:
    """The batches a poll can advance (of the account ``key``, else of every account): those
    submitted to the service and waiting for their final status. Not a ``claimed`` batch (its
    submit is under way, or its process died: the drain recovers it) nor a ``queued`` one
    (not sent yet): polling them would ask nothing."""
    submitted = Batch.state == SUBMITTED
    return submitted if key is None else and_(Batch.destination_key == key, submitted)


def pollable_batch_count(ledger: Ledger) -> int:
    """How many batches a poll can advance now (``awaiting_status``), over every account."""
    with ledger.session() as session:
        return int(session.scalar(select(func.count(Batch.id)).where(awaiting_status())) or 0)


def _count_open(ledger: Ledger, key: str) -> int:
    with ledger.session() as session:
        return int(session.scalar(select(func.count(Batch.id)).where(awaiting_status(key))) or 0)


def _open_batches(ledger: Ledger, key: str) -> list[Batch]:
    with ledger.session() as session:
        return list(
            session.scalars(
                select(Batch).where(awaiting_status(key)).order_by(Batch.submitted_at, Batch.id)
            )
        )


def _poll_one(
    ledger: Ledger,
    settings: Settings,
    dest: Destination,
    batch: Batch,
    moment: dt.datetime,
    result: PollResult,
    identify_limit: int,
) -> None:
    try:
        status = dest.status(batch.status_url or "")
    except NotFoundError as exc:
        result.expired.append(batch.id)
        _mark(ledger, batch, state=EXPIRED, message=f"status gone at the service: {exc}")
        _resolve_expired(ledger, settings, dest, batch, result, identify_limit, str(exc))
        return
    except DeliveryError as exc:
        result.errors.append(f"batch {batch.id}: {exc}")
        _touch(ledger, batch, moment)
        if _overdue(batch, moment, settings):
            _stuck(ledger, settings, batch, result, "no readable status within the pending timeout")
        return
    _touch(ledger, batch, moment)
    if isinstance(status, Stuck):
        _stuck(ledger, settings, batch, result, status.reason)
    elif isinstance(status, Processing):
        if _overdue(batch, moment, settings):
            hours = settings.target.pending_timeout_h
            _stuck(ledger, settings, batch, result, f"still pending after {hours:g} h")
    else:
        _add(result, settle(ledger, settings, dest, batch, status, identify_limit=identify_limit))
        result.completed.append(batch.id)


def _add(result: PollResult, tally: Tally) -> None:
    result.rows_confirmed += tally.confirmed
    result.rows_failed += tally.failed
    result.rows_not_found += tally.not_found
    result.rows_requeued += tally.requeued
    result.rows_dead += tally.dead
    result.verified += tally.verified
    result.verified_ok += tally.verified_ok


def _overdue(batch: Batch, moment: dt.datetime, settings: Settings) -> bool:
    sent = aware(batch.submitted_at)
    return sent is not None and moment - sent > dt.timedelta(
        hours=settings.target.pending_timeout_h
    )


def _mark(ledger: Ledger, batch: Batch, **values: Any) -> None:
    with ledger.session(immediate=True) as session:
        session.execute(update(Batch).where(Batch.id == batch.id).values(**values))


def _touch(ledger: Ledger, batch: Batch, moment: dt.datetime) -> None:
    _mark(ledger, batch, last_polled_at=moment, poll_count=Batch.poll_count + 1)


def _stuck(
    ledger: Ledger, settings: Settings, batch: Batch, result: PollResult, reason: str
) -> None:
    result.stuck.append(batch.id)
    requeued, dead = retry_whole_batch(ledger, settings, batch, reason, state=STUCK)
    result.rows_requeued += requeued
    result.rows_dead += dead


def _resolve_expired(
    ledger: Ledger,
    settings: Settings,
    dest: Destination,
    batch: Batch,
    result: PollResult,
    identify_limit: int,
    why: str,
) -> None:
    """A batch whose status is gone: read every row back, or re-queue it whole when too big."""
    if batch.row_count > identify_limit:
        requeued, dead = retry_whole_batch(
            ledger, settings, batch, f"status expired ({why}); too big to verify", state=EXPIRED
        )
        result.rows_requeued += requeued
        result.rows_dead += dead
        return
    _add(result, settle_by_read_back(ledger, settings, dest, batch, f"status expired ({why})"))
    result.completed.append(batch.id)
