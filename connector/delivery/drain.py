"""Draining an account's outbox: queued batches submitted, oldest first, within the limits.

``drain`` claims queued batches one at a time inside the off-peak window, the daily quota
and the in-flight limit (``claims``), and hands each to the account's ``Destination``. An
accepted batch becomes ``submitted`` (``poll`` follows it); a batch whose rows are settled
at once (Copernica) is settled here. What the destination raises decides the batch's fate:

* ``RetriesExhausted`` (provably not processed) or ``AuthError`` (a setup problem): back to
  the queue with the same attempt, and the drain stops;
* ``AmbiguousSubmitError``, ``ProtocolError``, ``RejectedError``: the batch failed; its rows
  go out again as the profiles' current rows (``requeue``), a new attempt;
* a batch file (or manifest) not in the outbox: the batch goes back to the queue and the
  drain raises ``BatchFileMissing`` naming the batch and the URL; the run fails loudly,
  because the file may well exist on another machine's disk (an outbox that is not shared)
  and dead-lettering its rows would lose them quietly.

A profile is on its way in at most one batch at a time: a batch that shares a profile with a
batch the service is still processing waits until that one is final, so a destination that
applied batches out of order could never end with the older row.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import duckdb
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connector import ledger as ledger_mod
from connector import planner, progress, storage
from connector.delivery.call_limit import ledger_call_limits
from connector.delivery.claims import (
    aware,
    claim_next,
    mark_sending,
    next_fit,
    owner_id,
    quota_used_24h,
    return_to_queue,
    utcnow,
)
from connector.delivery.recovery import (
    recover_stale_claims,
    resume_interrupted_retries,
)
from connector.delivery.requeue import retry_whole_batch
from connector.delivery.results import DrainResult
from connector.delivery.settle import settle
from connector.destinations.accounts import open_destination
from connector.destinations.base import Accepted, Destination
from connector.destinations.copernica import CopernicaClient
from connector.destinations.http import (
    AmbiguousSubmitError,
    AuthError,
    ProtocolError,
    RejectedError,
    RetriesExhausted,
)
from connector.destinations.target import TargetClient
from connector.encoding import quote_literal
from connector.ledger import FAILED, QUEUED, SUBMITTED, Batch, Ledger
from connector.outbox.files import BatchFileMissing, OutboxFile
from connector.settings import Settings

log = logging.getLogger(__name__)


def drain(
    settings: Settings,
    ledger: Ledger,
    *,
    destination: str,
    now: dt.datetime | None = None,
    force: bool = False,
    client: TargetClient | CopernicaClient | None = None,
    max_batches: int | None = None,
) -> DrainResult:
    """Submit queued batches of ``destination`` within window, quota and in-flight limit.

    ``client``: the destination's API client to use (tests: fast retries; it keeps its own
    call limiter, else the account's in the ledger spaces the calls). Reported as the
    ``submit`` stage (``connector.progress``): rows and batches submitted, what stopped it."""
    key = ledger_mod.destination_key(destination, settings)
    with progress.stage("submit", key, batches=0) as report:
        result = _drain(settings, ledger, key, destination, now, force, client, max_batches, report)
        report.conclude("; ".join(filter(None, (report.note, result.summary()))))
    return result


def _drain(
    settings: Settings,
    ledger: Ledger,
    key: str,
    destination: str,
    now: dt.datetime | None,
    force: bool,
    client: TargetClient | CopernicaClient | None,
    max_batches: int | None,
    report: progress.Stage,
) -> DrainResult:
    fixed = aware(now)

    def clock() -> dt.datetime:
        return fixed if fixed is not None else utcnow()

    result = DrainResult(destination=destination, destination_key=key)
    result.recovered = recover_stale_claims(ledger, settings, key, clock())
    result.recovered += resume_interrupted_retries(ledger, settings, key, clock())
    window = planner.parse_off_peak(settings.off_peak)
    result.in_window = planner.in_window(window, clock(), settings.tz)
    if not result.in_window and not force:
        result.next_window = planner.next_window_start(window, clock(), settings.tz)
        result.stopped_because = "window"
        _fill_backlog(ledger, settings, key, clock(), result)
        log.info("%s: outside the off-peak window; next window %s", key, result.next_window)
        report.update(note=_window_wait(result.next_window, settings))
        return result
    with ledger.session() as session:
        report.update(total=_queue_totals(session, key)[1])
    dest = open_destination(
        settings, destination, key, client, call_limits=ledger_call_limits(ledger)
    )
    owner = owner_id()
    try:
        while max_batches is None or len(result.submitted) < max_batches:
            moment = clock()
            if not force and not planner.in_window(window, moment, settings.tz):
                result.stopped_because = "window"
                result.next_window = planner.next_window_start(window, moment, settings.tz)
                report.update(note=_window_wait(result.next_window, settings))
                break
            day = planner.quota_day(moment, settings.tz)
            batch, reason = claim_next(
                ledger,
                key,
                owner,
                moment,
                day=day,
                quota=dest.limits.daily_quota,
                max_in_flight=dest.limits.max_in_flight,
            )
            if batch is None:
                result.stopped_because = reason
                if reason == "quota" and dest.limits.daily_quota is not None:
                    stop = _quota_stop(ledger, settings, key, moment, dest.limits.daily_quota)
                    log.info("%s: %s", key, stop)
                    report.update(note=stop)
                break
            try:
                overlap = _processing_with(ledger, settings, batch)
                if overlap is not None:
                    return_to_queue(
                        ledger,
                        batch,
                        settings.tz,
                        f"waits for batch {overlap}: it carries the same profiles",
                    )
                    result.stopped_because = "overlap"
                    break
                mark_sending(ledger, batch, moment, day)
                going_on = _submit(ledger, settings, dest, batch, result)
            except storage.StorageError as exc:
                _unreadable(ledger, settings, batch, exc)
            report.update(done=result.rows_submitted, batches=len(result.submitted))
            if not going_on:
                break
    finally:
        dest.close()
    _fill_backlog(ledger, settings, key, clock(), result)
    log.info("%s drain: %s", key, result.summary())
    return result


def _window_wait(start: dt.datetime | None, settings: Settings) -> str:
    """What a drain outside the off-peak window waits for, and until when."""
    if start is None:
        return "outside the off-peak window"
    return f"waits for the off-peak window until {start.astimezone(settings.tz).isoformat()}"


def _quota_stop(
    ledger: Ledger, settings: Settings, key: str, moment: dt.datetime, quota: int
) -> str:
    """Why the quota stopped a drain, and until when it waits."""
    fits = next_fit(ledger, key, moment, quota)
    when = (
        f"the next batch fits at {fits.astimezone(settings.tz).isoformat()}, when the oldest "
        "charged rows leave the window"
        if fits is not None
        else "the next batch is larger than the quota itself and never fits"
    )
    return f"quota of {quota} rows per rolling 24 hours reached; {when}"


def _unreadable(
    ledger: Ledger, settings: Settings, batch: Batch, exc: storage.StorageError
) -> None:
    """A claimed batch whose file or manifest cannot be read: back to the queue (its attempt
    and quota unspent), then the run fails naming it (``BatchFileMissing`` when not there)."""
    return_to_queue(ledger, batch, settings.tz, f"could not be read: {exc}")
    log.error("batch %s: %s", batch.id, exc)
    if isinstance(exc, storage.ObjectMissing):
        raise BatchFileMissing(int(batch.id), str(batch.batch_key), exc.url) from None
    raise exc


def _processing_with(ledger: Ledger, settings: Settings, batch: Batch) -> int | None:
    """The id of a batch the service is still processing that carries one of ``batch``'s
    profiles, if any (its manifests' identities joined in DuckDB, read through copies in the
    cache folder; a processing batch whose manifest is gone is left out, as it cannot be
    compared). ``storage.ObjectMissing`` when ``batch``'s own manifest is not there."""
    with ledger.session() as session:
        submitted = [
            (int(i), str(p))
            for i, p in session.execute(
                select(Batch.id, Batch.manifest_path).where(
                    Batch.destination_key == batch.destination_key,
                    Batch.state == SUBMITTED,
                    Batch.id != batch.id,
                )
            )
        ]
    with storage.scratch(settings.cache_dir) as folder:
        own = storage.fetch(batch.manifest_path, folder / "own")
        others: list[tuple[int, Path]] = []
        for batch_id, url in submitted:
            try:
                others.append((batch_id, storage.fetch(url, folder / str(batch_id))))
            except storage.ObjectMissing:
                continue
        if not others:
            return None
        files = "[" + ", ".join(quote_literal(str(p)) for _, p in others) + "]"
        con = duckdb.connect()
        try:
            found = con.execute(
                f"SELECT o.filename FROM read_parquet({files}, filename = true) o "
                f"SEMI JOIN read_parquet({quote_literal(str(own))}) b "
                "ON b._identity = o._identity LIMIT 1"
            ).fetchall()
        finally:
            con.close()
    if not found:
        return None
    by_path = {str(p): i for i, p in others}
    return by_path.get(found[0][0], others[0][0])


def _submit(
    ledger: Ledger, settings: Settings, dest: Destination, batch: Batch, result: DrainResult
) -> bool:
    """Submit one claimed batch; False when draining should stop (unavailable, credentials)."""
    try:
        answer = dest.submit(OutboxFile.of(batch, settings.cache_dir))
    except RetriesExhausted as exc:
        # every failure proved the request was not processed: same attempt, later
        return_to_queue(ledger, batch, settings.tz, f"not accepted: {exc}")
        result.returned_to_queue.append(batch.id)
        result.stopped_because = "unavailable"
        result.stop_message = str(exc)
        log.warning("batch %s: %s", batch.id, exc)
        return False
    except AuthError as exc:
        # a setup problem: burning the batch's attempts would dead-letter good rows
        return_to_queue(ledger, batch, settings.tz, str(exc))
        result.returned_to_queue.append(batch.id)
        result.stopped_because = "auth"
        result.stop_message = str(exc)
        log.error("%s refused the credentials: %s", dest.key, exc)
        return False
    except (AmbiguousSubmitError, ProtocolError) as exc:
        # it may have been accepted: a new attempt (if it landed, the same values twice)
        result.ambiguous.append(batch.id)
        retry_whole_batch(ledger, settings, batch, f"outcome unknown: {exc}", state=FAILED)
        return True
    except RejectedError as exc:
        result.rejected.append(batch.id)
        retry_whole_batch(ledger, settings, batch, str(exc), state=FAILED)
        return True
    result.submitted.append(batch.id)
    result.rows_submitted += batch.row_count
    if isinstance(answer, Accepted):
        with ledger.session(immediate=True) as session:
            session.execute(
                update(Batch)
                .where(Batch.id == batch.id)
                .values(
                    state=SUBMITTED,
                    remote_batch_id=answer.remote_id,
                    status_url=answer.status_url,
                    message=answer.message[:2000],
                    updated_at=utcnow(),
                )
            )
        log.info("batch %s submitted as %s (%d rows)", batch.id, answer.remote_id, batch.row_count)
        return True
    for note in answer.notes:
        if note not in result.notes:
            log.warning("%s: %s", dest.key, note)
            result.notes.append(note)
    tally = settle(ledger, settings, dest, batch, answer)
    result.rows_confirmed += tally.confirmed
    result.rows_failed += tally.failed
    result.rows_not_found += tally.not_found
    result.rows_requeued += tally.requeued
    result.rows_dead += tally.dead
    result.verified += tally.verified
    result.verified_ok += tally.verified_ok
    return True


def _fill_backlog(
    ledger: Ledger, settings: Settings, key: str, moment: dt.datetime, result: DrainResult
) -> None:
    day = planner.quota_day(moment, settings.tz)
    with ledger.session() as session:
        used = quota_used_24h(session, key, moment)  # the quota is per rolling 24 hours
        n, rows, largest = _queue_totals(session, key)
    result.quota_used_today = used
    result.quota_left_today = max(settings.daily_quota - used, 0)
    result.queued_batches, result.queued_rows = n, rows
    result.projected_drain_date = planner.project_drain_date(
        rows,
        daily_quota=settings.daily_quota,
        used_today=used,
        today=day,
        largest_batch=largest,
    )


def _queue_totals(session: Session, key: str) -> tuple[int, int, int]:
    """The account's queued batches: how many, their rows, the rows of the largest."""
    n, rows, largest = session.execute(
        select(
            func.count(Batch.id),
            func.coalesce(func.sum(Batch.row_count), 0),
            func.coalesce(func.max(Batch.row_count), 0),
        ).where(Batch.destination_key == key, Batch.state == QUEUED)
    ).one()
    return int(n), int(rows), int(largest)
