"""A finished batch file published: its final name in the outbox (:func:`put`), then its
ledger row (:func:`register`).

The outbox is a folder or an object store (``connector.storage``). The manifest is
published first, then the batch file (a local outbox: renamed and the folder fsynced; an
object store: uploaded in parts, the object visible only once complete), and the local
copies are gone: a batch file under its final name always has its manifest beside it.
Only then is the batch registered as ``queued``, with the objects' URLs: no queued batch
ever lacks its file, on any machine. If registering fails both objects are removed, so the
outbox never holds a final-named file the ledger does not know for long. Content already
queued or on its way at the same attempt (the same sha256) is not registered twice (its
objects are removed). ``put`` runs in the writer's publishing thread, while the next file is
written; ``register`` in the writer's own, in the order the files were finished.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypedDict

from sqlalchemy import select

from connector import ledger as ledger_mod
from connector.ledger import QUEUED, Batch, Ledger
from connector.outbox.pending import FinishedFile, remove
from connector.storage import Location, delete

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


@dataclass(frozen=True)
class Published:
    """A batch file and its manifest under their final names in the outbox, not registered."""

    key: str
    path: str  # URLs (a local outbox: paths)
    manifest: str


def put(done: FinishedFile, outbox: Location, base: str) -> Published:
    """The finished file's manifest, then the file, under their final names in ``outbox``
    (a rename, or an upload visible only complete); the local files are gone afterwards,
    whatever happens."""
    # a token: the same content queued again later (values that changed back) is a new file
    key = f"{base}-{done.sha256[:12]}-{uuid.uuid4().hex[:6]}"
    manifest = ""
    try:
        # manifest first: a batch file under its final name always has its manifest beside it
        manifest = outbox.put_file(done.tmp_manifest, f"{key}.manifest.parquet", move=True)
        path = outbox.put_file(done.tmp_path, f"{key}{done.suffix}", move=True)
    except BaseException:
        remove(done.tmp_path, done.tmp_manifest)
        _forget(manifest)
        raise
    return Published(key, path, manifest)


def register(
    published: Published, done: FinishedFile, ledger: Ledger, common: BatchFields
) -> Batch | None:
    """Register a published file as ``queued``, unless the same content is already queued or
    on its way at the same attempt (a repeated build or re-queue): then, or when registering
    fails, its objects are removed."""
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
            published.key,
            existing.id,
            existing.state,
            common["attempt"],
        )
        _forget(published.path, published.manifest)
        return None
    try:
        return ledger_mod.register_batch(
            ledger,
            batch_key=published.key,
            path=published.path,
            manifest_path=published.manifest,
            sha256=done.sha256,
            row_count=done.rows,
            byte_size=done.size,
            state=QUEUED,
            **common,
        )
    except BaseException:
        _forget(published.path, published.manifest)
        raise


def abandon(done: FinishedFile, staged: Future[Published]) -> None:
    """A finished file that will not be registered (a failure stopped the run): once its
    publishing thread has ended, its local files and any object it put are removed."""
    published: Published | None = None
    try:
        published = staged.result()
    except BaseException:
        log.debug("publishing a batch file that is abandoned failed", exc_info=True)
    if published is not None:
        _forget(published.path, published.manifest)
    remove(done.tmp_path, done.tmp_manifest)


def _forget(*urls: str) -> None:
    """Remove published objects no ledger row will name (a failure is logged, not raised:
    the error that got here is the one to report)."""
    for url in filter(None, urls):
        try:
            delete(url)
        except Exception as exc:
            log.warning("could not remove %s, which no batch names: %s", url, exc)
