"""The documented scale: 1.2M queued rows against the 1M daily quota, in real batch files."""

from __future__ import annotations

import datetime as dt
import time

import pyarrow as pa
import pytest

from connector import delivery

from .helpers import make_ledger, make_settings, queue

pytestmark = pytest.mark.slow


def test_one_point_two_million_rows_one_million_today(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from connector.sandbox.testing import running_sandbox

    n = 1_200_000
    table = pa.table(
        {
            "_identity": pa.array([f"c{i:07d}" for i in range(n)]),
            "_source_ref": pa.array([f"pos.csv:{i + 2}" for i in range(n)]),
            "tier": pa.array(["gold"] * n),
        }
    )
    with running_sandbox(calls_per_minute=100_000) as sb:
        settings = make_settings(tmp_path, sb.url)  # defaults: 500k rows per file, 1M a day
        ledger = make_ledger(settings)
        started = time.monotonic()
        batches = queue(settings, ledger, table)
        written = time.monotonic() - started
        assert sorted(b.row_count for b in batches) == [200_000, 500_000, 500_000]
        now = dt.datetime(2026, 6, 1, 20, 0, tzinfo=dt.UTC)
        started = time.monotonic()
        r = delivery.drain(settings, ledger, destination="target", now=now)
        sent = time.monotonic() - started
        assert r.rows_submitted == 1_000_000 and r.stopped_because == "quota"
        assert (r.queued_rows, r.quota_left_today) == (200_000, 0)
        assert r.projected_drain_date == dt.date(2026, 6, 2)
        print(f"\nprepare + outbox build, 1.2M rows: {written:.1f}s; submit 1M rows: {sent:.1f}s")
