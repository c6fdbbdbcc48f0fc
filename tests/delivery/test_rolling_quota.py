"""The daily quota holds for every 24-hour period, not per calendar day (SQLite and PostgreSQL).

Adobe's v1 document: "a limit of one million profile updates in a 24-hour period". A night
window spanning midnight must not send a quota before midnight and another after it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from connector import delivery, planner
from connector.delivery import claims
from connector.ledger import (
    COMPLETE,
    QUEUED,
    Batch,
    Ledger,
    QuotaUse,
    register_batch,
)
from connector.sandbox.testing import running_sandbox

# the real-ledger fixtures (a SQLite file; a PostgreSQL database of its own per test)
from tests.ledger.conftest import fresh_postgres_url, ledger_url, sqlite_ledger_url  # noqa: F401

from .helpers import make_ledger, make_settings, profiles, queue

TZ = ZoneInfo("Europe/Amsterdam")
KEY = "target:demo"
QUOTA = 100


def local(day: int, hour: int, minute: int) -> dt.datetime:
    """June ``day`` 2026, wall-clock time in Amsterdam, as a UTC instant (what drains pass)."""
    return dt.datetime(2026, 6, day, hour, minute, tzinfo=TZ).astimezone(dt.UTC)


def seed(ledger: Ledger, *row_counts: int) -> list[int]:
    ids = []
    for i, rows in enumerate(row_counts):
        b = register_batch(
            ledger,
            batch_key=f"crm-{i:03d}",
            mapping="crm",
            partition="2026-06-01",
            destination="target",
            destination_key=KEY,
            path=f"/outbox/{i}.batch",
            manifest_path=f"/outbox/{i}.manifest.parquet",
            sha256=f"{i:064d}",
            row_count=rows,
            byte_size=100,
            created_at=dt.datetime(2026, 6, 1, 12, 0, i, tzinfo=dt.UTC),
        )
        ids.append(b.id)
    return ids


def claim(ledger: Ledger, now: dt.datetime) -> tuple[Batch | None, str]:
    return claims.claim_next(
        ledger,
        KEY,
        "me",
        now,
        day=planner.quota_day(now, TZ),
        quota=QUOTA,
        max_in_flight=None,
    )


@pytest.fixture
def ledger(ledger_url: str):  # type: ignore[no-untyped-def]  # noqa: F811
    led = Ledger(ledger_url)
    led.create_all()
    yield led
    led.dispose()


def test_a_night_across_midnight_sends_one_quota_not_two(ledger: Ledger) -> None:
    first, second = seed(ledger, 80, 40)
    batch, _ = claim(ledger, local(1, 23, 0))
    assert batch is not None and batch.id == first
    # sent and confirmed: a finished batch still counts for the 24 hours after its claim
    with ledger.session() as s:
        s.execute(update(Batch).where(Batch.id == first).values(state=COMPLETE))
    # a new calendar day, but 80 rows went out 1.5 hours ago: 80 + 40 > 100
    assert claim(ledger, local(2, 0, 30)) == (None, "quota")
    assert claim(ledger, local(2, 22, 59)) == (None, "quota")
    # 24 hours after the claim the 80 rows leave the window
    assert claims.next_fit(ledger, KEY, local(2, 0, 30), QUOTA) == local(2, 23, 0)
    batch, _ = claim(ledger, local(2, 23, 1))
    assert batch is not None and batch.id == second


def test_rows_returned_unsent_are_not_charged(ledger: Ledger) -> None:
    first, _ = seed(ledger, 80, 20)
    batch, _ = claim(ledger, local(1, 23, 0))
    assert batch is not None
    claims.return_to_queue(ledger, batch, TZ, "not accepted: service unavailable")
    with ledger.session() as s:
        back = s.get(Batch, first)
        assert back is not None and back.state == QUEUED and back.claimed_at is None
    assert claims.quota_used_24h(ledger, KEY, local(1, 23, 5)) == 0
    batch, _ = claim(ledger, local(1, 23, 5))
    assert batch is not None and batch.id == first
    batch, _ = claim(ledger, local(1, 23, 6))
    assert batch is not None  # 80 + 20 = 100: the quota itself fits
    assert claims.quota_used_24h(ledger, KEY, local(1, 23, 6)) == QUOTA
    assert claim(ledger, local(1, 23, 7)) == (None, "empty")


def test_a_sent_batch_whose_claim_is_cleared_stays_charged_when_it_was_sent(
    ledger: Ledger,
) -> None:
    """A claim cleared by other means than ``return_to_queue`` (``claimed_at`` set to None
    without asking whether the batch was sent): its ``submitted_at`` (the send started) keeps
    it charged."""
    seed(ledger, 80, 40)
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    batch, _ = claims.claim_next(
        ledger, KEY, "dead", moment, day=moment.date(), quota=QUOTA, max_in_flight=None
    )
    assert batch is not None
    claims.mark_sending(ledger, batch, moment, moment.date())
    with ledger.session() as session:
        cleared = session.execute(
            update(Batch)
            .where(Batch.id == batch.id)
            .values(state=QUEUED, claimed_by=None, claimed_at=None)
        )
    assert cleared.rowcount == 1  # type: ignore[attr-defined]
    later = moment + dt.timedelta(hours=1)
    assert claims.quota_used_24h(ledger, KEY, later) == 80
    assert claims.next_fit(ledger, KEY, later, QUOTA) == moment + dt.timedelta(hours=24)


def test_next_fit_is_none_for_a_batch_larger_than_the_quota(ledger: Ledger) -> None:
    seed(ledger, QUOTA + 1)
    assert claim(ledger, local(1, 23, 0)) == (None, "quota")
    assert claims.next_fit(ledger, KEY, local(1, 23, 0), QUOTA) is None


def test_two_accounts_have_quotas_of_their_own(ledger: Ledger) -> None:
    seed(ledger, 80)
    register_batch(
        ledger,
        batch_key="other-0",
        mapping="crm",
        partition="2026-06-01",
        destination="target",
        destination_key="target:other",
        path="/outbox/o.batch",
        manifest_path="/outbox/o.manifest.parquet",
        sha256="f" * 64,
        row_count=80,
        byte_size=100,
    )
    assert claim(ledger, local(1, 23, 0))[0] is not None
    other, _ = claims.claim_next(
        ledger,
        "target:other",
        "me",
        local(1, 23, 1),
        day=dt.date(2026, 6, 1),
        quota=QUOTA,
        max_in_flight=None,
    )
    assert other is not None


def test_a_drain_stopped_by_the_quota_says_when_the_next_batch_fits(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    with running_sandbox(calls_per_minute=100_000) as sb:
        settings = make_settings(tmp_path, sb.url, daily_quota=QUOTA, target={"max_batch_rows": 40})
        ledger = make_ledger(settings)
        queue(settings, ledger, profiles(120, tricky=False))  # 3 batches of 40
        r = delivery.drain(settings, ledger, destination="target", now=local(1, 23, 0))
        assert (r.rows_submitted, r.stopped_because) == (80, "quota")
        caplog.set_level(logging.INFO, logger="connector.delivery.drain")
        r = delivery.drain(settings, ledger, destination="target", now=local(2, 0, 30))
        assert (r.rows_submitted, r.stopped_because) == (0, "quota")
        # the figures are the rolling 24 hours', not the new calendar day's
        assert (r.quota_used_today, r.quota_left_today) == (80, 20)
        fits = local(2, 23, 0).astimezone(TZ).isoformat()  # logged in local time
        assert any("quota" in m and fits in m for m in caplog.messages), caplog.messages
        r = delivery.drain(settings, ledger, destination="target", now=local(2, 23, 0))
        assert (r.rows_submitted, r.queued_rows) == (40, 0)
        ledger.dispose()


def test_status_shows_the_rolling_24_hours(tmp_path, ledger: Ledger) -> None:  # type: ignore[no-untyped-def]
    from connector.reporting import status_view
    from connector.settings import load_settings

    settings = load_settings(
        state_dir=tmp_path / "state", daily_quota=QUOTA, timezone="Europe/Amsterdam"
    )
    seed(ledger, 80, 40)
    claim(ledger, local(1, 23, 0))
    view = status_view(settings, ledger, now=local(2, 0, 30))
    (dest,) = view.destinations
    assert (dest.quota_used, dest.quota_left) == (80, 20)
    view = status_view(settings, ledger, now=local(2, 23, 0))
    assert (view.destinations[0].quota_used, view.destinations[0].quota_left) == (0, QUOTA)


def test_claims_either_side_of_midnight_are_serialised(ledger: Ledger) -> None:
    """A claim at 00:00:01 waits for one still deciding at 23:59:59 the day before (on
    PostgreSQL both lock the earlier day's ``QuotaUse`` row), else both could read the same
    24 hours' use and together pass the quota."""
    seed(ledger, 10, 10, 10)
    assert claim(ledger, local(1, 23, 59))[0] is not None  # the accounts' day rows exist
    got: list[tuple[Batch | None, str]] = []
    with ledger.session(immediate=True) as session:  # a claim of 23:59:59 holds its lock
        session.scalars(
            select(QuotaUse)
            .where(QuotaUse.destination_key == KEY, QuotaUse.day == dt.date(2026, 6, 1))
            .with_for_update()
        ).one()
        after = threading.Thread(target=lambda: got.append(claim(ledger, local(2, 0, 0))))
        after.start()
        after.join(timeout=1.5)
        assert after.is_alive(), "the claim after midnight did not wait for the one before it"
    after.join(timeout=30)
    assert not after.is_alive() and got and got[0][0] is not None
