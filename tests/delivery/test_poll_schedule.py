"""The waits between status polls: short at first, doubling up to ``poll_interval_s``."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest
from sqlalchemy import select

from connector import delivery
from connector.delivery.poll import poll_delays
from connector.ledger import Batch
from connector.sandbox.testing import running_sandbox
from tests.delivery.helpers import make_ledger, make_settings, profiles, queue


@pytest.mark.parametrize(
    ("longest", "expected"),
    [
        (30.0, [1, 2, 4, 8, 16, 30, 30, 30]),
        (8.0, [1, 2, 4, 8, 8, 8, 8, 8]),
        (5.0, [1, 2, 4, 5, 5, 5, 5, 5]),
        (1.0, [1] * 8),
        (0.05, [0.05] * 8),  # a longest wait under a second is used from the first
        (0.0, [0] * 8),
    ],
)
def test_poll_delays_double_from_a_second_up_to_the_longest(
    longest: float, expected: list[float]
) -> None:
    assert list(islice(poll_delays(longest), 8)) == expected


def test_a_small_batch_is_confirmed_after_a_few_short_polls_with_the_default_interval(
    tmp_path: Path,
) -> None:
    """The sandbox completes a batch 5 s after accepting it (on its own clock, which each wait
    moves on): polled at once, then after 1, 2 and 4 s, it is final at the fourth poll, where
    a fixed 30 s interval waited 30 s after the first."""
    with running_sandbox(processing_delay_s=5.0) as sb:
        settings = make_settings(tmp_path, sb.url, target={"poll_interval_s": 30.0})
        ledger = make_ledger(settings)
        (batch,) = queue(settings, ledger, profiles(20))
        drained = delivery.drain(settings, ledger, destination="target")
        assert drained.submitted == [batch.id]
        waits: list[float] = []

        def wait(seconds: float) -> None:
            waits.append(seconds)
            sb.wait_idle()  # applied in the background; its status follows the clock
            sb.advance_clock(seconds)

        polled = delivery.poll(
            settings, ledger, destination="target", wait=True, timeout_s=600, sleep=wait
        )
    assert waits == [1.0, 2.0, 4.0]
    assert polled.completed == [batch.id] and polled.rows_confirmed == 20
    with ledger.session() as session:
        assert session.scalar(select(Batch.poll_count).where(Batch.id == batch.id)) == 4
