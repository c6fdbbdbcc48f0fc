"""Stage functions of one mapping partition, called by the Dagster assets and the CLI.

``extract_stage`` reads the source and maps each chunk as it comes (one streaming pass:
the raw rows are never written twice), staging mapped rows (Arrow IPC, ``staging``) and
rejects (Parquet);
``transform_stage`` dedupes, digests and drops unchanged profiles (DuckDB, out of core);
``batch_stage`` replaces the partition's still-queued batches and writes new ones.
Stage outputs live under ``settings.stage_dir/<mapping>/<partition>/`` and are replaced
whole on a rerun. Each stage upserts its counts into ``ledger.StageRun``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from connector import dedupe, manifests, staging
from connector import ledger as ledger_mod
from connector.batches import (
    filled_input_schema,
    param_names_of,
    remove_batch_files,
    safe_name,
    write_batches,
)
from connector.columns import DIGEST, FILLED, IDENTITY, REJECT_COLUMNS, SEQ, SOURCE_REF
from connector.digests import DigestColumns
from connector.ledger import Ledger
from connector.memory import retain_freed_memory
from connector.partitions import day_window
from connector.threads import prefetched

log = logging.getLogger(__name__)

PREVIEW_ROWS = 10
# mapped parts handed on and not yet written: one digesting, one being written
STAGED_IN_FLIGHT = 2
REJECTS_SAMPLE = 10
# rows per record batch the batch stage reads: its reading thread runs ahead of the encoding
# one, so several batches are in flight. 5M rows: peak RSS of the batch stage 886 MiB with
# 100,000 (SQLite parts), 688 with 50,000; CSV 744 with 50,000, 659 with 25,000; the same speed
BATCH_READ_ROWS = 25_000

EXTRACT, TRANSFORM, BATCHES = "extract", "transform", "batches"
UPDATES = "updates"  # the transform's output: dedupe.read_updates reads it
COUNT_KEYS = (
    "rows_in",
    "rows_out",
    "rejected",
    "duplicates_merged",
    "unchanged",
    "cleared",
    "superseded",
    "batches",
    "bytes",
)


@dataclass
class StageResult:
    """What one stage did to one mapping partition (counts, a preview, the output schema)."""

    mapping: str
    partition: str
    stage: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    preview: list[dict[str, Any]] = field(default_factory=list)
    schema: list[tuple[str, str]] = field(default_factory=list)
    rejects_sample: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


class StageMissing(RuntimeError):
    """A stage's input is not there (the previous stage was not run for this partition)."""


def stage_path(settings: Any, mapping_name: str, partition: str) -> Path:
    return Path(settings.stage_dir) / safe_name(mapping_name) / safe_name(partition)


def _reset(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def _schema_of(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(f.name, str(f.type)) for f in schema]


def _head(
    paths: list[Path], n: int = PREVIEW_ROWS, drop: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        if len(rows) >= n:
            break
        rows += staging.head(path, n - len(rows), drop)
    return rows


def _finish(ledger: Ledger, result: StageResult, started: float) -> StageResult:
    # Arrow's allocator keeps freed pages for reuse; hand them back so that the next stage
    # (DuckDB, with its own memory limit) does not stack on top of this one's peak.
    pa.default_memory_pool().release_unused()
    result.stats["seconds"] = round(time.monotonic() - started, 3)
    ledger_mod.record_stage_run(
        ledger,
        result.mapping,
        result.partition,
        result.stage,
        {"counts": result.counts, **{k: v for k, v in result.stats.items() if k != "schema"}},
    )
    log.info("%s %s %s: %s", result.mapping, result.partition, result.stage, result.counts)
    return result


# --------------------------------------------------------------------------------------
# 1 + 2: extract and map, streamed


def extract_stage(mapping: Any, partition: str, settings: Any, ledger: Ledger) -> StageResult:
    """Read the partition's source rows, map each chunk, stage mapped rows and rejects."""
    from connector.sources import iter_source_chunks
    from connector.sources.registry import FileRegistry
    from connector.transform import map_chunk

    retain_freed_memory()
    started = time.monotonic()
    names = param_names_of(mapping)
    base = stage_path(settings, mapping.name, partition)
    _reset(base)
    mapped_dir, rejects_dir = base / "mapped", base / "rejects"
    mapped_dir.mkdir()
    rejects_dir.mkdir()
    window = day_window(partition, settings.tz)
    registry = FileRegistry(ledger, mapping.name)
    result = StageResult(mapping.name, partition, EXTRACT)
    rows_in = rows_out = rejected = 0
    sources: set[str] = set()
    high_water: str | None = None
    max_profile = getattr(settings.target, "max_profile_bytes", None)
    part = 0
    chunks = prefetched(
        iter_source_chunks(
            mapping, partition, window, chunk_rows=settings.chunk_rows, registry=registry
        ),
        name="extract-read",
    )
    # Reading the next chunk (a thread), mapping this one (here), digesting the previous one
    # (a thread) and writing the one before (a thread) overlap: pyarrow, DuckDB and file
    # writes release the GIL, so both cores work.
    digester = DigestColumns(names)
    # closing(chunks): a failure here stops and joins the reading thread at once
    with (
        closing(chunks),
        digester,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-digest") as digesting,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-writer") as writer,
    ):
        staged: deque[Future[Future[None]]] = deque()
        for chunk in chunks:
            sources.add(chunk.source)
            rows_in += chunk.table.num_rows
            if chunk.high_water is not None and (
                high_water is None or chunk.high_water > high_water
            ):
                high_water = chunk.high_water
            reject_tables = [chunk.rejects] if chunk.rejects.num_rows else []
            if chunk.table.num_rows:
                kwargs = {"max_profile_bytes": max_profile} if max_profile else {}
                mapped, rejects = map_chunk(mapping, chunk.table, **kwargs)
                if rejects.num_rows:
                    reject_tables.append(rejects)
                if mapped.num_rows:
                    part += 1
                    if len(staged) >= STAGED_IN_FLIGHT:  # memory stays bounded
                        staged.popleft().result().result()
                    staged.append(
                        digesting.submit(
                            _stage_part,
                            digester,
                            mapped,
                            staging.part_path(mapped_dir, part),
                            writer,
                        )
                    )
                    rows_out += mapped.num_rows
            for rejects in reject_tables:
                part += 1
                rejects = rejects.select(list(REJECT_COLUMNS)).cast(
                    pa.schema([(c, pa.string()) for c in REJECT_COLUMNS])
                )
                pq.write_table(rejects, rejects_dir / f"part-{part:05d}.parquet")
                rejected += rejects.num_rows
                if len(result.rejects_sample) < REJECTS_SAMPLE:
                    result.rejects_sample += rejects.slice(
                        0, REJECTS_SAMPLE - len(result.rejects_sample)
                    ).to_pylist()
        while staged:
            staged.popleft().result().result()
    if high_water is not None:
        from connector.sources import record_cursor

        record_cursor(ledger, mapping.name, partition, high_water)
    # the transform's output names rows of this extract by _seq: tie it to this run
    meta = {"param_names": names, "extract_id": uuid.uuid4().hex}
    (base / "stage.json").write_text(json.dumps(meta))
    result.schema = [(IDENTITY, "string"), (SOURCE_REF, "string"), (SEQ, "int64")] + [
        (n, "string") for n in names
    ]
    # the staged digest and _filled are bookkeeping, not what a user previews
    result.preview = _head(staging.parts(mapped_dir), drop=(DIGEST, FILLED))
    result.counts.update(rows_in=rows_in, rows_out=rows_out, rejected=rejected)
    result.stats.update(sources=sorted(sources), chunks=part, high_water=high_water)
    return _finish(ledger, result, started)


def _stage_part(
    digester: DigestColumns, mapped: pa.Table, path: Path, writer: ThreadPoolExecutor
) -> Future[None]:
    """Digest a mapped chunk (DuckDB, in the digest thread) and hand it to the writer thread
    (the file write), so that the next chunk's digest overlaps this one's write."""
    return writer.submit(staging.write, digester.add(mapped), path)


# --------------------------------------------------------------------------------------
# 3: dedupe + change detection


def _staged(base: Path, names: list[str]) -> str:
    """The extract run's id, after checking its output is there and fits the mapping."""
    meta = base / "stage.json"
    if not meta.exists():
        raise StageMissing(f"{base}: no extract output; run the extract stage first")
    staged = json.loads(meta.read_text())
    if staged["param_names"] != names:
        raise StageMissing(
            f"{base}: staged with params {staged['param_names']}, the mapping now has "
            f"{names}; rerun extract"
        )
    return str(staged.get("extract_id", ""))


def _mapped_parts(base: Path) -> list[Path]:
    return staging.parts(base / "mapped")


def _head_updates(base: Path, names: list[str], n: int = PREVIEW_ROWS) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    updates = dedupe.read_updates(_mapped_parts(base), base / UPDATES, names)
    try:
        for rb in updates:
            rows += rb.slice(0, n - len(rows)).to_pylist()
            if len(rows) >= n:
                break
    finally:
        updates.close()
    return rows


def _reject_rows(rejects_dir: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(rejects_dir.glob("*.parquet")):
        for rb in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            yield from rb.to_pylist()


def transform_stage(mapping: Any, partition: str, settings: Any, ledger: Ledger) -> StageResult:
    """One row per identity (later wins, empty does not erase), unchanged profiles dropped."""
    retain_freed_memory()
    started = time.monotonic()
    names = param_names_of(mapping)
    base = stage_path(settings, mapping.name, partition)
    extract_id = _staged(base, names)
    dest_key = ledger_mod.destination_key(str(mapping.destination), settings)
    work = base / "work"
    _reset(work)
    updates = base / UPDATES
    shutil.rmtree(updates, ignore_errors=True)
    delivered = work / "delivered.parquet"
    n_delivered = ledger_mod.export_delivered(ledger, dest_key, delivered, mapping=mapping.name)
    con = dedupe.connect(work)
    try:
        counts = dedupe.build_updates(
            con,
            mapped=_mapped_parts(base),
            delivered=delivered,
            names=names,
            out=updates,
            partition=partition,
        )
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    rejected = ledger_mod.replace_rejects(
        ledger, mapping.name, partition, _reject_rows(base / "rejects")
    )
    result = StageResult(mapping.name, partition, TRANSFORM)
    result.counts.update(
        rows_in=counts.rows_in,
        rows_out=counts.rows_out,
        rejected=rejected,
        duplicates_merged=counts.duplicates_merged,
        unchanged=counts.unchanged,
        cleared=counts.cleared,
        superseded=counts.superseded,
    )
    (updates / "source.json").write_text(json.dumps({"extract_id": extract_id}))
    result.schema = _schema_of(dedupe.updates_schema(names))
    result.preview = _head_updates(base, names)
    result.rejects_sample = _head(sorted((base / "rejects").glob("*.parquet")), REJECTS_SAMPLE)
    result.stats.update(
        identities=counts.identities,
        delivered_known=n_delivered,
        clears_sample=counts.clears_sample,
        destination_key=dest_key,
    )
    if result.counts["cleared"]:
        log.warning(
            "%s %s: %d profile(s) had values cleared at the source that the API cannot clear",
            mapping.name,
            partition,
            result.counts["cleared"],
        )
    return _finish(ledger, result, started)


# --------------------------------------------------------------------------------------
# 4: batch files


def batch_stage(mapping: Any, partition: str, settings: Any, ledger: Ledger) -> StageResult:
    """Replace the partition's still-queued batches with new files of the staged updates.

    Profiles whose identical digest is already queued, claimed or submitted (by another
    partition, or by this one's batches taken by delivery) are not queued again.
    """
    retain_freed_memory()
    started = time.monotonic()
    names = param_names_of(mapping)
    base = stage_path(settings, mapping.name, partition)
    updates = base / UPDATES
    if not (updates / "source.json").exists():
        raise StageMissing(f"{updates}: no transform output; run the transform stage first")
    extract_id = _staged(base, names)
    if json.loads((updates / "source.json").read_text())["extract_id"] != extract_id:
        raise StageMissing(f"{base}: extract ran again after transform; rerun transform first")
    parts = _mapped_parts(base)
    dest_key = ledger_mod.destination_key(str(mapping.destination), settings)

    replaced = ledger_mod.take_queued_batches(ledger, mapping.name, partition)
    for batch in replaced:
        remove_batch_files(batch)
    in_flight = [
        Path(p) for _, _, p in ledger_mod.in_flight_manifests(ledger, dest_key) if Path(p).exists()
    ]
    skip = _in_flight_seqs(base, parts, in_flight) if in_flight else None
    rows_in = dedupe.count_updates(updates)
    # _filled as extract staged it: the manifests take it from there (merged rows: computed)
    schema = filled_input_schema(names)
    rows = dedupe.read_updates(
        parts, updates, names, schema=schema, skip=skip, batch_rows=BATCH_READ_ROWS
    )
    try:
        written = write_batches(
            rows, mapping=mapping, partition=partition, settings=settings, ledger=ledger
        )
    finally:
        rows.close()
    rows_out = sum(b.row_count for b in written)
    result = StageResult(mapping.name, partition, BATCHES)
    result.counts.update(
        rows_in=rows_in,
        rows_out=rows_out,
        unchanged=rows_in - rows_out,
        batches=len(written),
        bytes=sum(b.byte_size for b in written),
    )
    result.preview = _batch_preview(written[0]) if written else []
    result.schema = [(IDENTITY, "string"), (SOURCE_REF, "string"), (DIGEST, "string")] + [
        (n, "string") for n in names
    ]
    result.stats.update(
        destination_key=dest_key,
        replaced_batches=len(replaced),
        in_flight_manifests=len(in_flight),
        in_flight_skipped=rows_in - rows_out,
        batch_keys=[b.batch_key for b in written],
    )
    return _finish(ledger, result, started)


def _batch_preview(batch: Any, n: int = PREVIEW_ROWS) -> list[dict[str, Any]]:
    """The first rows of a batch with their values (decoded from the file, as sent)."""
    rows = manifests.read(batch.manifest_path).slice(0, n)
    return manifests.drop_bookkeeping(manifests.with_values(batch.path, rows)).to_pylist()


def _in_flight_seqs(base: Path, parts: list[Path], in_flight: list[Path]) -> np.ndarray:
    """``_seq`` (sorted) of the updates whose identity and digest a batch in flight carries."""
    work = base / "batch-work"
    _reset(work)
    con = dedupe.connect(work)
    try:
        glob = dedupe.parquet_glob
        keys = f"{IDENTITY}, {DIGEST}, {SEQ}"
        con.execute(
            f"CREATE TEMP TABLE in_flight AS SELECT DISTINCT {IDENTITY}, {DIGEST} "
            f"FROM read_parquet({glob(in_flight)}, union_by_name = true)"
        )
        updates = base / UPDATES
        singles = (
            f"SELECT {keys} FROM {staging.duck_source(con, parts, '_staged', [IDENTITY, DIGEST, SEQ])} "
            f"WHERE {SEQ} IN (SELECT {SEQ} FROM read_parquet({glob(updates / dedupe.SELECTED)}))"
            if parts
            else f"SELECT NULL::VARCHAR AS {IDENTITY}, NULL::VARCHAR AS {DIGEST}, 0 AS {SEQ} LIMIT 0"
        )
        merged = f"SELECT {keys} FROM read_parquet({glob(updates / dedupe.MERGED)})"
        found = con.execute(
            f"SELECT u.{SEQ} FROM (SELECT * FROM ({singles}) UNION ALL SELECT * FROM ({merged})) u"
            " SEMI JOIN in_flight f "
            f"ON f.{IDENTITY} = u.{IDENTITY} AND f.{DIGEST} = u.{DIGEST} ORDER BY u.{SEQ}"
        ).fetchnumpy()[SEQ]
        return np.asarray(found, dtype=np.int64)
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)


def prepare(mapping: Any, partition: str, settings: Any, ledger: Ledger) -> list[StageResult]:
    """All three stages of one mapping partition, in order."""
    return [
        extract_stage(mapping, partition, settings, ledger),
        transform_stage(mapping, partition, settings, ledger),
        batch_stage(mapping, partition, settings, ledger),
    ]
