"""Profile updates -> outbox files within the caps, each registered in the ledger as ``queued``.

Input rows (``pyarrow``): ``_identity``, ``_source_ref``, ``_digest`` (computed when
absent), then one string column per param, unencoded, null = empty
(``connector.outbox.normalise``). For every batch the outbox gets the batch file (Target
``.batch``, ``connector.outbox.target_sink``; Copernica ``.jsonl``,
``connector.outbox.copernica_sink``) and its manifest ``<batch_key>.manifest.parquet``
(``connector.outbox.manifest_schema``).

A file is written under a temporary name on local disk, published to the outbox
(``settings.outbox``: a folder, where publishing is an fsync and a rename, or an object
store, where it is an upload and the local copy is then removed), and only then registered
(``connector.outbox.pending``, ``connector.outbox.publish``): a crash leaves at worst an
unregistered file, never a registered partial one. Rows are streamed record batch by record
batch, so memory does not grow with rows or files. A finished file is fsynced and published
(renamed or uploaded) in a thread while the next one is written, and files are registered in
the order they were finished.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa

from connector import ledger as ledger_mod
from connector import progress
from connector.encoding import header_line
from connector.ledger import Batch, Ledger
from connector.outbox.copernica_sink import COPERNICA_ROWS_PER_FILE, CopernicaSink
from connector.outbox.normalise import normalised, record_batches
from connector.outbox.pending import FinishedFile, remove_leftovers, sync_files
from connector.outbox.publish import BatchFields, Published, abandon, put, register
from connector.outbox.target_sink import ENCODE_THREADS, TargetSink
from connector.settings import Settings
from connector.storage import Location

log = logging.getLogger(__name__)

BATCH_PREFIX = "batch="


class _IdentityType(Protocol):
    @property
    def type(self) -> str: ...


class BatchOrigin(Protocol):
    """What the writer needs of a mapping: a ``SourceMapping`` or an account's stand-in."""

    @property
    def name(self) -> str: ...

    @property
    def destination(self) -> str: ...

    @property
    def identity(self) -> _IdentityType: ...

    @property
    def param_names(self) -> list[str]: ...


class _Sink(Protocol):
    def files(self, batches: Iterable[pa.RecordBatch]) -> Generator[FinishedFile, None, None]: ...


def param_names_of(mapping: BatchOrigin) -> list[str]:
    """The mapping's param names in order."""
    return list(mapping.param_names)


def identity_type_of(mapping: BatchOrigin) -> str:
    """The identity header of the mapping's batch files (pcId, thirdPartyId, a field)."""
    return str(mapping.identity.type)


def safe_name(text: str) -> str:
    """A file-name-safe rendering of a mapping or partition name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def batch_key_base(mapping_name: str, partition: str, attempt: int, index: int) -> str:
    """The start of a batch key: ``<mapping>-<partition>-a<attempt>-<nnnnn>``."""
    return f"{safe_name(mapping_name)}-{safe_name(partition)}-a{attempt}-{index:05d}"


def working_folder(outbox: Location, settings: Settings) -> Path:
    """Where the files of ``outbox`` are written before they are published: a local outbox
    itself (publishing is a rename), else a folder in the state folder's working area."""
    if outbox.is_local:
        folder = outbox.local_path
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    folder = settings.work_dir / "outbox" / outbox.url.rsplit("/", 1)[-1]
    folder.mkdir(parents=True, exist_ok=True)
    # this machine's own folder: what a writer killed mid-write left is of no use to anyone
    if removed := remove_leftovers(folder):
        log.info("%s: removed %d file(s) a stopped writer left", folder, removed)
    return folder


def _counted(batches: Iterable[pa.RecordBatch], report: progress.Stage) -> Iterator[pa.RecordBatch]:
    """``batches`` as they are, the rows taken so far told to ``report`` after each."""
    rows = 0
    for rb in batches:
        yield rb
        rows += rb.num_rows
        report.update(done=rows)


def write_batches(
    table: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
    *,
    mapping: BatchOrigin,
    partition: str,
    settings: Settings,
    ledger: Ledger,
    attempt: int = 1,
    parent_id: int | None = None,
    report: progress.Stage | None = None,
) -> list[Batch]:
    """Write the rows as outbox files within the caps and register each as ``queued``.

    Batch keys are ``<mapping>-<partition>-a<attempt>-<nnnnn>-<sha256[:12]>-<token>``: no
    two files share a name. Content already queued or on its way at the same attempt (same
    sha256) is not registered twice. ``report``: the stage told the rows taken (per record
    batch) and the batches registered (per file).
    """
    names = param_names_of(mapping)
    destination = str(mapping.destination)
    outbox = settings.outbox.join(safe_name(mapping.name))
    work = working_folder(outbox, settings)
    common = BatchFields(
        mapping=mapping.name,
        partition=partition,
        destination=destination,
        destination_key=ledger_mod.destination_key(destination, settings),
        identity_type=identity_type_of(mapping),
        attempt=attempt,
        parent_id=parent_id,
    )
    con = duckdb.connect()
    con.execute("set threads = 2")
    con.execute("set enable_progress_bar = false")
    con.execute("set preserve_insertion_order = true")  # normalised rows in order
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="manifest-writer")
    encoders = ThreadPoolExecutor(max_workers=ENCODE_THREADS, thread_name_prefix="batch-encode")
    publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-publish")
    finished: deque[tuple[FinishedFile, Future[Published]]] = deque()
    files: Generator[FinishedFile, None, None] | None = None
    written: list[Batch] = []

    def stage(done: FinishedFile, base: str) -> Published:
        # in the publishing thread, while the next file is written: a local outbox's file
        # made durable, then renamed; an object store's uploaded (the local copy is transient)
        if outbox.is_local:
            sync_files(done)
        return put(done, outbox, base)

    def publish_next() -> None:
        done, staged = finished.popleft()
        try:
            published = staged.result()
        except BaseException:
            abandon(done, staged)
            raise
        batch = register(published, done, ledger, common)
        if batch is not None:
            written.append(batch)
            if report is not None:
                report.update(batches=len(written))

    try:
        rows = record_batches(table)
        batches_in = normalised(rows if report is None else _counted(rows, report), names, con)
        sink: _Sink
        if destination == "target":
            sink = TargetSink(
                work,
                header=BATCH_PREFIX + header_line(identity_type_of(mapping), names),
                max_rows=settings.target.max_batch_rows,
                max_bytes=settings.target.max_batch_bytes,
                names=names,
                encoders=encoders,
                writer=writer,
            )
        elif destination == "copernica":
            rows_per_file = getattr(settings.copernica, "rows_per_file", COPERNICA_ROWS_PER_FILE)
            sink = CopernicaSink(work, max_rows=rows_per_file, names=names, writer=writer)
        else:
            raise ValueError(f"unknown destination {destination!r} (use target or copernica)")
        files = sink.files(batches_in)
        for index in itertools.count(1):
            try:
                done = next(files)
            except StopIteration:
                break
            except BaseException:
                # the rows after the finished files failed: those stay published, as when
                # each file was published before the next one was begun
                while finished:
                    publish_next()
                raise
            base = batch_key_base(mapping.name, partition, attempt, index)
            finished.append((done, publisher.submit(stage, done, base)))
            while len(finished) > 1:
                publish_next()
        while finished:
            publish_next()
    finally:
        if files is not None:
            # aborts a file being written and joins the encoding thread
            files.close()
        while finished:  # a failure stopped the run before these were registered
            abandon(*finished.popleft())
        publisher.shutdown(wait=True)
        writer.shutdown(wait=True)
        encoders.shutdown(wait=True)
        con.close()
    log.info(
        "%s %s attempt %d: %d batch file(s), %d rows",
        mapping.name,
        partition,
        attempt,
        len(written),
        sum(b.row_count for b in written),
    )
    return written
