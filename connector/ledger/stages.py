"""What a pipeline stage leaves in the ledger for one mapping partition: rejects and counts.

Both writes replace what an earlier run of the same partition left (delete-then-write, or an
upsert), so a rerun or a backfill is idempotent. Each takes a ``Ledger`` (and runs its own
unit of work) or a ``Session`` (and runs inside the caller's transaction).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from connector.ledger.models import Reject, StageRun, utcnow
from connector.ledger.store import Ledger, unit_of_work, upsert_insert


def replace_rejects(
    target: Ledger | Session, mapping: str, partition: str, rows: Iterable[Mapping[str, Any]]
) -> int:
    """Replace the rejects of a mapping partition (delete-then-write); returns the count."""
    now = utcnow()
    count = 0
    with unit_of_work(target, immediate=True) as session:
        session.execute(
            delete(Reject).where(Reject.mapping == mapping, Reject.partition == partition)
        )
        chunk: list[dict[str, Any]] = []
        for row in rows:
            chunk.append(
                {
                    "mapping": mapping,
                    "partition": partition,
                    "source_ref": row.get("source_ref") or "",
                    "identity": row.get("identity"),
                    "param": row.get("param"),
                    "reason": row.get("reason") or "rejected",
                    "raw": row.get("raw"),
                    "created_at": now,
                }
            )
            if len(chunk) >= 5_000:
                session.execute(insert(Reject), chunk)
                count += len(chunk)
                chunk = []
        if chunk:
            session.execute(insert(Reject), chunk)
            count += len(chunk)
    return count


def record_stage_run(
    target: Ledger | Session, mapping: str, partition: str, stage: str, stats: Mapping[str, Any]
) -> None:
    """Upsert the counts of one stage of one mapping partition (latest wins)."""
    with unit_of_work(target, immediate=True) as session:
        upsert = upsert_insert(session)
        stmt = upsert(StageRun).values(
            mapping=mapping,
            partition=partition,
            stage=stage,
            stats_json=json.dumps(stats, default=str, sort_keys=True),
            finished_at=utcnow(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[StageRun.mapping, StageRun.partition, StageRun.stage],
            set_={"stats_json": stmt.excluded.stats_json, "finished_at": stmt.excluded.finished_at},
        )
        session.execute(stmt)
