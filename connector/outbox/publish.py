"""A finished batch file published: its final name in the outbox, then its ledger row.

The manifest is renamed first, then the batch file, then the folder is fsynced: a batch
file under its final name always has its manifest beside it. Only then is the batch
registered as ``queued``; if that fails both files are removed, so the outbox never holds a
final-named file the ledger does not know for long. Content already queued or on its way
at the same attempt (the same sha256) is not registered twice.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import TypedDict

from sqlalchemy import select

from connector import ledger as ledger_mod
from connector.ledger import QUEUED, Batch, Ledger
from connector.outbox.pending import FinishedFile, fsync_path, remove

log = logging.getLogger(__name__)


class BatchFields(TypedDict):
    """The ledger fields every batch of one ``write_batches`` call shares."""

    mapping: str
    partition: str
    destination: str
    destination_key: str
    identity_type: str
    attempt: int
    parent_id: int | None


def publish(
    done: FinishedFile, outbox: Path, base: str, ledger: Ledger, common: BatchFields
) -> Batch | None:
    """Give a finished file its final name and register it, unless the same content is
    already queued or on its way at the same attempt (a repeated build or re-queue)."""
    with ledger.session() as session:
        existing = session.scalar(
            select(Batch).where(
                Batch.sha256 == done.sha256,
                Batch.attempt == common["attempt"],
                Batch.destination_key == common["destination_key"],
                Batch.state.in_(ledger_mod.IN_FLIGHT_STATES),
            )
        )
    if existing is not None:
        log.warning(
            "batch %s has the same content as batch %s (%s) at attempt %d: not queued twice",
            base,
            existing.id,
            existing.state,
            common["attempt"],
        )
        remove(done.tmp_path, done.tmp_manifest)
        return None
    # a token: the same content queued again later (values that changed back) is a new file
    key = f"{base}-{done.sha256[:12]}-{uuid.uuid4().hex[:6]}"
    path = outbox / f"{key}{done.suffix}"
    manifest = outbox / f"{key}.manifest.parquet"
    # manifest first: a batch file under its final name always has its manifest beside it
    os.replace(done.tmp_manifest, manifest)
    os.replace(done.tmp_path, path)
    fsync_path(outbox)
    try:
        return ledger_mod.register_batch(
            ledger,
            batch_key=key,
            path=str(path),
            manifest_path=str(manifest),
            sha256=done.sha256,
            row_count=done.rows,
            byte_size=done.size,
            state=QUEUED,
            **common,
        )
    except BaseException:
        remove(path, manifest)
        raise
