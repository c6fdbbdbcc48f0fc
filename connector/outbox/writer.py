"""Profile updates -> outbox files within the caps, each registered in the ledger as ``queued``.

Input rows (``pyarrow``): ``_identity``, ``_source_ref``, ``_digest`` (computed when
absent), then one string column per param, unencoded, null = empty. For every batch the
outbox gets the batch file (Target ``.batch`` or Copernica ``.jsonl``) and its manifest
``<batch_key>.manifest.parquet`` (see docs/architecture.md): one row per line of the batch
file, in its order, with ``_identity``, ``_source_ref``, ``_digest`` and ``_filled``. The
values are not copied there: the batch file holds them, and ``manifests.with_values``
decodes the lines it is asked for (a re-queue, a read-back). The param names are in the
manifest's schema metadata.

A file is written under a temporary name, fsynced and renamed, and only then registered:
a crash leaves at worst an unregistered file, never a registered partial one. Rows are
streamed record batch by record batch, so memory does not grow with rows or files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import uuid
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select

from connector import ledger as ledger_mod
from connector.buffers import value_offsets
from connector.columns import DIGEST, FILLED, IDENTITY, SOURCE_REF
from connector.digests import digest_sql, filled_column
from connector.directio import DirectFile
from connector.encoding import encode_lines, header_line, quote_ident
from connector.ledger import QUEUED, Batch, Ledger
from connector.threads import prefetched

log = logging.getLogger(__name__)

COPERNICA_ROWS_PER_FILE = 1_000
BATCH_PREFIX = "batch="
# Manifests are read back a batch at a time: lz4 pages, no dictionary, no statistics.
# Snappy with dictionary and string min/max wrote 5M rows in ~6 s on one core, lz4 in ~2.7 s,
# plain pages in ~2.1 s but with more bytes to write: the whole batch stage measured no faster
# with them (within the machine's +-1 s noise), and lz4 keeps the outbox smaller.
MANIFEST_PARQUET: dict[str, Any] = {
    "compression": "lz4",
    "use_dictionary": False,
    "write_statistics": False,
}
# ... except _digest: hex of an MD5 is random text that LZ4 kept at 96% of its size, for a
# quarter of the manifest's writing time (1M rows: 0.54 CPU-s without, 0.73 with)
UNCOMPRESSED_COLUMNS = (DIGEST,)


# the manifest's schema metadata key naming the params, in order (a JSON list)
PARAMS_KEY = b"connector.params"


def manifest_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A manifest's Parquet writer (lz4 pages, ``_digest`` uncompressed)."""
    codec = MANIFEST_PARQUET["compression"]
    compression = {name: "none" if name in UNCOMPRESSED_COLUMNS else codec for name in schema.names}
    return pq.ParquetWriter(path, schema, **{**MANIFEST_PARQUET, "compression": compression})


def stored_manifest_schema(param_names: Sequence[str]) -> pa.Schema:
    """The columns a manifest file holds: one row per batch line, without the values.

    Copying the values there too cost the batch stage 0.7-1.4 s of its 6.2-6.8 s at 5M rows
    (LZ4 and Parquet encoding of the values, and the bytes written) for rows that are almost
    always confirmed and never looked at again; ``_filled`` is what recording them needs.
    """
    return pa.schema(
        [(name, pa.string()) for name in (IDENTITY, SOURCE_REF, DIGEST, FILLED)],
        metadata={PARAMS_KEY: json.dumps(list(param_names)).encode()},
    )


def manifest_rows(rows: pa.RecordBatch, param_names: Sequence[str]) -> pa.RecordBatch:
    """What the manifest keeps of rows to batch (``manifest_schema``): no values, ``_filled``.

    Rows that carry ``_filled`` (the batch stage's: extract computed it) keep it; otherwise,
    or where any of it is missing, it is computed from the values (at 5M rows that took
    0.5 CPU-s of the batch stage's manifest writing).
    """
    names = rows.schema.names
    filled = rows.column(FILLED) if FILLED in names else None
    if filled is None or filled.null_count or filled.type != pa.string():
        filled = filled_column(rows, param_names)
    return pa.RecordBatch.from_arrays(
        [rows.column(IDENTITY), rows.column(SOURCE_REF), rows.column(DIGEST), filled],
        schema=stored_manifest_schema(param_names),
    )


# rows encoded per task: a record batch cut in pieces lets both cores work on it
ENCODE_PIECE_ROWS = 25_000
ENCODE_THREADS = 2


class ProfileTooLarge(ValueError):
    """A single profile line cannot fit in any batch file under the byte cap."""


def param_names_of(mapping: Any) -> list[str]:
    """The mapping's param names in order (``mapping.param_names`` or the ``params`` keys)."""
    names = getattr(mapping, "param_names", None)
    if names is None:
        names = list(mapping.params)
    return list(names)


def identity_type_of(mapping: Any) -> str:
    identity = mapping.identity
    return str(getattr(identity, "type", None) or identity["type"])


def manifest_schema(param_names: Sequence[str]) -> pa.Schema:
    """The rows :func:`write_batches` takes, normalised: identity, ref, digest, values."""
    return pa.schema(
        [(IDENTITY, pa.string()), (SOURCE_REF, pa.string()), (DIGEST, pa.string())]
        + [(name, pa.string()) for name in param_names]
    )


def filled_input_schema(param_names: Sequence[str]) -> pa.Schema:
    """:func:`manifest_schema` and ``_filled`` after the values: rows in this form are taken
    as they are, their ``_filled`` written to the manifest instead of computed again."""
    return manifest_schema(param_names).append(pa.field(FILLED, pa.string()))


def safe_name(text: str) -> str:
    """A file-name-safe rendering of a mapping or partition name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def batch_key_base(mapping_name: str, partition: str, attempt: int, index: int) -> str:
    return f"{safe_name(mapping_name)}-{safe_name(partition)}-a{attempt}-{index:05d}"


def write_batches(
    table: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
    *,
    mapping: Any,
    partition: str,
    settings: Any,
    ledger: Ledger,
    attempt: int = 1,
    parent_id: int | None = None,
) -> list[Batch]:
    """Write the rows as outbox files within the caps and register each as ``queued``.

    Batch keys are ``<mapping>-<partition>-a<attempt>-<nnnnn>-<sha256[:12]>-<token>``: no
    two files share a name. Content already queued or on its way at the same attempt (same
    sha256) is not registered twice.
    """
    names = param_names_of(mapping)
    destination = str(mapping.destination)
    dest_key = ledger_mod.destination_key(destination, settings)
    outbox = (Path(settings.outbox) / safe_name(mapping.name)).resolve()
    outbox.mkdir(parents=True, exist_ok=True)
    common = {
        "mapping": mapping.name,
        "partition": partition,
        "destination": destination,
        "destination_key": dest_key,
        "identity_type": identity_type_of(mapping),
        "attempt": attempt,
        "parent_id": parent_id,
    }
    con = duckdb.connect()
    con.execute("set threads = 2")
    con.execute("set enable_progress_bar = false")
    con.execute("set preserve_insertion_order = true")  # normalised rows in order
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="manifest-writer")
    encoders = ThreadPoolExecutor(max_workers=ENCODE_THREADS, thread_name_prefix="batch-encode")
    # a finished file is fsynced here while the next one is written (at 5M rows the 21 files'
    # fsyncs held up the writing for 0.7-0.9 s), then published in order
    syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-sync")
    finished: deque[tuple[int, _Done, Future[None]]] = deque()
    files: Generator[_Done, None, None] | None = None
    try:
        batches_in = _normalised(_record_batches(table), names, con)
        if destination == "target":
            sink: _Sink = _TargetSink(
                outbox,
                header=BATCH_PREFIX + header_line(identity_type_of(mapping), names),
                max_rows=settings.target.max_batch_rows,
                max_bytes=settings.target.max_batch_bytes,
                names=names,
                encoders=encoders,
                writer=writer,
            )
        elif destination == "copernica":
            rows_per_file = getattr(settings.copernica, "rows_per_file", COPERNICA_ROWS_PER_FILE)
            sink = _CopernicaSink(outbox, max_rows=rows_per_file, names=names, writer=writer)
        else:
            raise ValueError(f"unknown destination {destination!r} (use target or copernica)")
        written = []

        def publish_next() -> None:
            index, done, synced = finished.popleft()
            try:
                synced.result()
            except BaseException:
                _discard(done, synced)
                raise
            base = batch_key_base(mapping.name, partition, attempt, index)
            batch = _publish(done, outbox, base, ledger, common)
            if batch is not None:
                written.append(batch)

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
            finished.append((index, done, syncer.submit(_sync, done)))
            while len(finished) > 1:
                publish_next()
        while finished:
            publish_next()
    finally:
        if files is not None:
            # aborts a file being written and joins the encoding thread
            files.close()
        while finished:  # a failure stopped the run before these were published
            _discard(*finished.popleft()[1:])
        syncer.shutdown(wait=True)
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


# --------------------------------------------------------------------------------------
# Input


def _record_batches(
    table: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    if isinstance(table, pa.Table):
        yield from table.to_batches(max_chunksize=100_000)
    else:
        yield from table


def _normalised(
    batches: Iterable[pa.RecordBatch], names: Sequence[str], con: duckdb.DuckDBPyConnection
) -> Iterator[pa.RecordBatch]:
    """Batches in manifest column order and types (empty = null); ``_digest`` added if absent."""
    schema = manifest_schema(names)
    with_filled = filled_input_schema(names)
    qi = quote_ident
    for rb in batches:
        if rb.num_rows == 0:
            continue
        if (rb.schema.equals(schema) or rb.schema.equals(with_filled)) and not _has_empty_strings(
            rb, names
        ):
            yield rb  # already normalised (the batch stage's own output)
            continue
        cols = set(rb.schema.names)
        if IDENTITY not in cols:
            raise ValueError(f"rows to batch have no {IDENTITY} column (have: {sorted(cols)})")
        inner = [f"{qi(IDENTITY)}::VARCHAR as {qi(IDENTITY)}"]
        inner.append(
            f"{qi(SOURCE_REF)}::VARCHAR as {qi(SOURCE_REF)}"
            if SOURCE_REF in cols
            else f"NULL::VARCHAR as {qi(SOURCE_REF)}"
        )
        if DIGEST in cols:
            inner.append(f"{qi(DIGEST)}::VARCHAR as {qi(DIGEST)}")
        inner += [
            f"nullif({qi(n)}::VARCHAR, '') as {qi(n)}" if n in cols else f"NULL::VARCHAR as {qi(n)}"
            for n in names
        ]
        digest = f"t.{qi(DIGEST)}" if DIGEST in cols else digest_sql(names, "t")
        outer = [f"t.{qi(IDENTITY)}", f"t.{qi(SOURCE_REF)}", digest, *(f"t.{qi(n)}" for n in names)]
        sql = f"select {', '.join(outer)} from (select {', '.join(inner)} from _in) t"
        con.register("_in", rb)
        try:
            out = con.sql(sql).to_arrow_table()
        finally:
            con.unregister("_in")
        out = out.rename_columns(schema.names).cast(schema)
        yield from out.to_batches()


def _has_empty_strings(rb: pa.RecordBatch, names: Sequence[str]) -> bool:
    """Whether a param holds ``""`` (read from the offsets: no value is compared)."""
    for name in names:
        col = rb.column(name)
        if col.type != pa.string():
            if pc.any(pc.equal(col, "")).as_py():
                return True
            continue
        offsets = value_offsets(col)
        empty = offsets[1:] == offsets[:-1]
        if col.null_count:
            empty &= col.is_valid().to_numpy(zero_copy_only=False)
        if empty.any():
            return True
    return False


# --------------------------------------------------------------------------------------
# Files


@dataclass
class _Done:
    """A finished temporary batch file and manifest, not yet under its final name."""

    tmp_path: Path
    tmp_manifest: Path
    suffix: str
    sha256: str
    rows: int
    size: int


class _Open:
    """A batch file and its manifest being written under temporary names."""

    def __init__(
        self, outbox: Path, suffix: str, names: Sequence[str], writer: ThreadPoolExecutor
    ) -> None:
        token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.suffix = suffix
        self.tmp_path = outbox / f".tmp-{token}{suffix}"
        self.tmp_manifest = outbox / f".tmp-{token}.manifest.parquet"
        self.hash = hashlib.sha256()
        self._names = list(names)
        self.rows = 0
        self.size = 0
        # manifest pages are encoded in a thread (pyarrow releases the GIL), in order
        self._writer = writer
        self._pending: list[Future[None]] = []
        # past the page cache where it can be: written once, synced, read again much later
        self._file = DirectFile(self.tmp_path)
        try:
            self._manifest = manifest_writer(self.tmp_manifest, stored_manifest_schema(names))
        except BaseException:
            # e.g. ENOSPC writing the manifest's header: the caller never gets this object,
            # so nothing would abort it and both temporary files would stay in the outbox
            self._file.abort()
            for path in (self.tmp_path, self.tmp_manifest):
                path.unlink(missing_ok=True)
            raise

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self.hash.update(data)
        self.size += len(data)

    def write_manifest(self, rows: pa.RecordBatch) -> None:
        self._pending.append(self._writer.submit(self._write_manifest_rows, rows))
        self.rows += rows.num_rows

    def _write_manifest_rows(self, rows: pa.RecordBatch) -> None:
        self._manifest.write_batch(manifest_rows(rows, self._names))

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def finish(self) -> _Done:
        """Both files complete and closed; :func:`_sync` makes them durable (in a thread)."""
        self._drain()
        self._manifest.close()
        self._file.close()
        return _Done(
            self.tmp_path,
            self.tmp_manifest,
            self.suffix,
            self.hash.hexdigest(),
            self.rows,
            self.size,
        )

    def abort(self) -> None:
        for closer in (self._drain, self._manifest.close, self._file.abort):
            try:
                closer()
            except Exception:
                log.debug("closing a temporary batch file failed", exc_info=True)
        for path in (self.tmp_path, self.tmp_manifest):
            path.unlink(missing_ok=True)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync(done: _Done) -> None:
    """A finished batch file and its manifest on disk (before either is renamed)."""
    _fsync_path(done.tmp_path)
    _fsync_path(done.tmp_manifest)


def _discard(done: _Done, synced: Future[None]) -> None:
    """Remove a finished file that will not be published (once its sync has ended)."""
    try:
        synced.result()
    except BaseException:
        log.debug("syncing a batch file that is discarded failed", exc_info=True)
    for path in (done.tmp_path, done.tmp_manifest):
        path.unlink(missing_ok=True)


class _Sink:
    def files(self, batches: Iterable[pa.RecordBatch]) -> Generator[_Done, None, None]:
        raise NotImplementedError


def _buffer_slice(lines: pa.Array, offsets: np.ndarray, start: int, stop: int) -> memoryview:
    """The bytes of ``lines[start:stop]`` straight from the array's data buffer (no copy)."""
    data = lines.buffers()[2]
    if data is None:
        return memoryview(b"")
    return memoryview(data)[offsets[start] : offsets[stop]]


class _TargetSink(_Sink):
    """``batch=`` + header, then ``\\n`` + one encoded line per profile; caps on rows and bytes."""

    def __init__(
        self,
        outbox: Path,
        *,
        header: str,
        max_rows: int,
        max_bytes: int,
        names: Sequence[str],
        encoders: ThreadPoolExecutor,
        writer: ThreadPoolExecutor,
    ) -> None:
        self.writer = writer
        self.encoders = encoders
        self.outbox = outbox
        self.header = header.encode()
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.names = list(names)
        if len(self.header) >= max_bytes:
            raise ProfileTooLarge(
                f"the header alone ({len(self.header)} bytes) reaches the byte cap {max_bytes}"
            )

    def files(self, batches: Iterable[pa.RecordBatch]) -> Generator[_Done, None, None]:
        current: _Open | None = None
        # the next batch's lines are encoded (in a thread) while this one is written, and
        # the batch after it is read (in another thread) while that one is encoded
        ahead = prefetched(iter(batches), name="batch-read")
        encoded = prefetched(((self._encode(rb), rb) for rb in ahead), name="batch-encode")
        try:
            for lines, rb in _line_chunks(encoded):
                offsets = value_offsets(lines)
                lengths = np.diff(offsets)
                i, n = 0, len(lines)
                while i < n:
                    if current is None:
                        current = _Open(self.outbox, ".batch", self.names, self.writer)
                        current.write(self.header)
                    room_rows = self.max_rows - current.rows
                    room_bytes = self.max_bytes - current.size  # file must stay < max_bytes
                    cum = np.cumsum(lengths[i : i + room_rows])
                    fit = int(np.searchsorted(cum, room_bytes, side="left"))
                    if fit == 0:
                        if current.rows == 0:
                            identity = rb.column(0)[i].as_py()
                            raise ProfileTooLarge(
                                f"profile {identity!r} needs {int(lengths[i])} bytes: "
                                f"no batch file under {self.max_bytes} bytes can hold it"
                            )
                        yield current.finish()
                        current = None
                        continue
                    current.write(_buffer_slice(lines, offsets, i, i + fit))
                    current.write_manifest(rb.slice(i, fit))
                    i += fit
                    if current.rows >= self.max_rows:
                        yield current.finish()
                        current = None
            if current is not None and current.rows:
                yield current.finish()
                current = None
        finally:
            # joins the encoding thread (it uses the encoders the caller shuts down next),
            # then the reading thread (it uses the DuckDB connection the caller closes next)
            encoded.close()
            ahead.close()
            if current is not None:
                current.abort()

    def _encode(self, rb: pa.RecordBatch) -> pa.ChunkedArray:
        # pieces of equal size, at least one per encoding thread, so that none waits for
        # another at the end of a batch (a staged part of 42,700 rows was cut into 25,000
        # and 17,700)
        count = max(ENCODE_THREADS, -(-rb.num_rows // ENCODE_PIECE_ROWS))
        size = max(1, -(-rb.num_rows // count))
        pieces = [rb.slice(i, size) for i in range(0, rb.num_rows, size)]
        return encode_lines(
            pa.Table.from_batches(pieces, rb.schema),
            [IDENTITY, *self.names],
            executor=self.encoders,
        )


def _line_chunks(
    encoded: Iterable[tuple[pa.ChunkedArray, pa.RecordBatch]],
) -> Iterator[tuple[pa.Array, pa.RecordBatch]]:
    """Each encoded chunk of lines (written from its own buffer, no copy) with the slice of
    the record batch whose rows it encodes."""
    for chunks, batch in encoded:
        start = 0
        for lines in chunks.chunks:
            yield lines, batch.slice(start, len(lines))
            start += len(lines)


class _CopernicaSink(_Sink):
    """One JSON object a line: ``{"identity": ..., "fields": {...}}``, empty values omitted."""

    def __init__(
        self, outbox: Path, *, max_rows: int, names: Sequence[str], writer: ThreadPoolExecutor
    ) -> None:
        self.writer = writer
        self.outbox = outbox
        self.max_rows = max_rows
        self.names = list(names)

    def files(self, batches: Iterable[pa.RecordBatch]) -> Generator[_Done, None, None]:
        current: _Open | None = None
        try:
            for rb in batches:
                i, n = 0, rb.num_rows
                while i < n:
                    if current is None:
                        current = _Open(self.outbox, ".jsonl", self.names, self.writer)
                    take = min(self.max_rows - current.rows, n - i)
                    part = rb.slice(i, take)
                    current.write(self._lines(part))
                    current.write_manifest(part)
                    i += take
                    if current.rows >= self.max_rows:
                        yield current.finish()
                        current = None
            if current is not None and current.rows:
                yield current.finish()
                current = None
        finally:
            if current is not None:
                current.abort()

    def _lines(self, part: pa.RecordBatch) -> bytes:
        data = part.to_pydict()
        out = []
        for r, identity in enumerate(data[IDENTITY]):
            fields = {n: data[n][r] for n in self.names if data[n][r] not in (None, "")}
            out.append(json.dumps({"identity": identity, "fields": fields}, ensure_ascii=False))
        return ("\n".join(out) + "\n").encode()


# --------------------------------------------------------------------------------------
# Publish: final name, then the ledger


def _publish(
    done: _Done, outbox: Path, base: str, ledger: Ledger, common: dict[str, Any]
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
        _remove(done.tmp_path, done.tmp_manifest)
        return None
    # a token: the same content queued again later (values that changed back) is a new file
    key = f"{base}-{done.sha256[:12]}-{uuid.uuid4().hex[:6]}"
    path = outbox / f"{key}{done.suffix}"
    manifest = outbox / f"{key}.manifest.parquet"
    # manifest first: a batch file under its final name always has its manifest beside it
    os.replace(done.tmp_manifest, manifest)
    os.replace(done.tmp_path, path)
    _fsync_path(outbox)
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
        _remove(path, manifest)
        raise


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
