"""One draining process for ``test_call_limit_processes``: ``python -m
tests.delivery.call_limit_driver ROOT ROLE``.

Configured as an operator's process is, by its ``CONNECTOR_*`` environment only. It writes
``ROOT/ready.ROLE``, waits for ``ROOT/go`` (so both processes start together), then drains and
polls Target until no batch is queued, claimed or submitted, and writes what it did to
``ROOT/result.ROLE.json``. Exit 0 when done, 3 when batches were still open at its deadline.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

DEADLINE_S = 240


def main(root: Path, role: str) -> int:
    from sqlalchemy import func, select

    from connector import delivery
    from connector.ledger import IN_FLIGHT_STATES, Batch, Ledger
    from connector.settings import load_settings

    settings = load_settings()
    ledger = Ledger(settings.ledger_url)
    (root / f"ready.{role}").write_text("ready")
    while not (root / "go").exists():
        time.sleep(0.005)
    started = time.monotonic()
    submitted: list[int] = []
    polled = 0
    code = 3
    while time.monotonic() - started < DEADLINE_S:
        submitted += delivery.drain(settings, ledger, destination="target").submitted
        polled += delivery.poll(settings, ledger, destination="target").polled
        with ledger.session() as session:
            left = session.scalar(
                select(func.count(Batch.id)).where(Batch.state.in_(IN_FLIGHT_STATES))
            )
        if not left:
            code = 0
            break
        time.sleep(0.05)
    ledger.dispose()
    result = {"submitted": submitted, "polled": polled, "seconds": time.monotonic() - started}
    (root / f"result.{role}.json").write_text(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
