"""Stage functions of one mapping partition, called by the Dagster assets and the CLI.

``extract_stage`` reads the source and maps each chunk as it comes (one streaming pass:
the raw rows are never written twice), staging mapped rows (Arrow IPC, ``staging``) and
rejects (Parquet);
``transform_stage`` dedupes the day, one row per identity (DuckDB, out of core);
``profile_stage`` merges the day into the mapping's profile store at its account, which
decides what changed (the account's outbox sends those profiles whole).
Stage outputs live under ``settings.stage_dir/<mapping>/<partition>/<run>/``: each run (a
Dagster run, or one :func:`prepare`) stages in its own folder, so two runs of one partition
at once never read each other's half-written files, and a stage reads what its own run's
previous stage wrote. A run's extract replaces its folder whole and removes the folders of
other runs of the partition older than ``STAGE_GRACE_S`` (a run still going is younger).
Each stage upserts its counts into ``ledger.StageRun``.
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

import pyarrow as pa
import pyarrow.parquet as pq

from connector import ledger as ledger_mod
from connector import progress
from connector.columns import IDENTITY, REJECT_COLUMNS, SEQ, SOURCE_REF
from connector.ledger import Ledger
from connector.mapping import SourceMapping
from connector.outbox.writer import identity_type_of, param_names_of, safe_name
from connector.partitions import day_window
from connector.profiles import dedupe, staging
from connector.profiles import store as profile_store
from connector.settings import Settings
from connector.sources import iter_source_chunks, record_cursor
from connector.sources.registry import FileRegistry
from connector.threads import prefetched
from connector.transform import map_chunk

log = logging.getLogger(__name__)

PREVIEW_ROWS = 10
# mapped parts handed to the writer thread and not yet written
STAGED_IN_FLIGHT = 2
REJECTS_SAMPLE = 10
# rows per record batch the batch stage reads: its reading thread runs ahead of the encoding
# one, so several batches are in flight; smaller pieces hold less memory at the same speed
BATCH_READ_ROWS = 25_000

EXTRACT, TRANSFORM, PROFILES = "extract", "transform", "profiles"
UPDATES = "updates"  # the transform's output: dedupe.read_updates reads it
DEFAULT_RUN = "default"  # the run of stages called one by one, without a run id
# another run's stage folder of the same partition is removed once it is this old
STAGE_GRACE_S = 6 * 3600.0
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


def stage_path(
    settings: Settings, mapping_name: str, partition: str, run: str = DEFAULT_RUN
) -> Path:
    """The stage folder of one run of one mapping partition."""
    return (
        Path(settings.stage_dir) / safe_name(mapping_name) / safe_name(partition) / safe_name(run)
    )


def new_run_id() -> str:
    """A run id for stages run outside Dagster (:func:`prepare`)."""
    return f"run-{uuid.uuid4().hex[:12]}"


def _prune_other_runs(base: Path) -> None:
    """Remove the stage folders of other runs of ``base``'s partition that are older than
    ``STAGE_GRACE_S`` (by their last change): a run still going keeps its folder."""
    cutoff = time.time() - STAGE_GRACE_S
    for other in base.parent.iterdir() if base.parent.is_dir() else ():
        try:
            stale = other != base and other.is_dir() and other.stat().st_mtime < cutoff
        except OSError:
            continue
        if stale:
            shutil.rmtree(other, ignore_errors=True)


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


def extract_stage(
    mapping: SourceMapping,
    partition: str,
    settings: Settings,
    ledger: Ledger,
    run: str = DEFAULT_RUN,
) -> StageResult:
    """Read the partition's source rows, map each chunk, stage mapped rows and rejects."""
    started = time.monotonic()
    names = param_names_of(mapping)
    base = stage_path(settings, mapping.name, partition, run)
    _reset(base)
    _prune_other_runs(base)
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
    # Reading the next chunk (a thread), mapping this one (here) and writing the previous
    # ones (a thread) overlap: pyarrow and file writes release the GIL, so both cores work.
    # closing(chunks): a failure here stops and joins the reading thread at once
    with (
        progress.stage(EXTRACT, f"{mapping.name} {partition}") as report,
        closing(chunks),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-writer") as writer,
    ):
        staged: deque[Future[None]] = deque()
        for chunk in chunks:
            sources.add(chunk.source)
            rows_in += chunk.table.num_rows
            report.update(done=rows_in)
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
                        staged.popleft().result()
                    staged.append(
                        writer.submit(staging.write, mapped, staging.part_path(mapped_dir, part))
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
            staged.popleft().result()
        report.conclude(f"{rows_out:,} mapped, {rejected:,} rejected")
    if high_water is not None:
        record_cursor(ledger, mapping.name, partition, high_water)
    # the transform's output names rows of this extract by _seq: tie it to this run
    meta = {"param_names": names, "extract_id": uuid.uuid4().hex}
    (base / "stage.json").write_text(json.dumps(meta))
    result.schema = [(IDENTITY, "string"), (SOURCE_REF, "string"), (SEQ, "int64")] + [
        (n, "string") for n in names
    ]
    result.preview = _head(staging.parts(mapped_dir))
    result.counts.update(rows_in=rows_in, rows_out=rows_out, rejected=rejected)
    result.stats.update(sources=sorted(sources), chunks=part, high_water=high_water)
    return _finish(ledger, result, started)


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


def transform_stage(
    mapping: SourceMapping,
    partition: str,
    settings: Settings,
    ledger: Ledger,
    run: str = DEFAULT_RUN,
) -> StageResult:
    """One row per identity of the day (later rows win, empty values do not erase)."""
    started = time.monotonic()
    names = param_names_of(mapping)
    base = stage_path(settings, mapping.name, partition, run)
    extract_id = _staged(base, names)
    work = base / "work"
    _reset(work)
    updates = base / UPDATES
    shutil.rmtree(updates, ignore_errors=True)
    with progress.stage(TRANSFORM, f"{mapping.name} {partition}") as report:
        con = dedupe.connect(work)
        try:
            counts = dedupe.build_updates(con, mapped=_mapped_parts(base), names=names, out=updates)
        finally:
            con.close()
            shutil.rmtree(work, ignore_errors=True)
        report.update(done=counts.rows_in)
        report.conclude(
            f"{counts.identities:,} identities, {counts.duplicates_merged:,} rows merged"
        )
    rejected = ledger_mod.replace_rejects(
        ledger, mapping.name, partition, _reject_rows(base / "rejects")
    )
    result = StageResult(mapping.name, partition, TRANSFORM)
    result.counts.update(
        rows_in=counts.rows_in,
        rows_out=counts.rows_out,
        rejected=rejected,
        duplicates_merged=counts.duplicates_merged,
    )
    (updates / "source.json").write_text(json.dumps({"extract_id": extract_id}))
    result.schema = _schema_of(dedupe.updates_schema(names))
    result.preview = _head_updates(base, names)
    result.rejects_sample = _head(sorted((base / "rejects").glob("*.parquet")), REJECTS_SAMPLE)
    result.stats.update(identities=counts.identities)
    return _finish(ledger, result, started)


# --------------------------------------------------------------------------------------
# 4: the day merged into the mapping's profile store


def profile_stage(
    mapping: SourceMapping,
    partition: str,
    settings: Settings,
    ledger: Ledger,
    run: str = DEFAULT_RUN,
) -> StageResult:
    """Merge the day's profiles into the mapping's store at its destination account.

    ``rows_out`` counts the identities whose current values changed: the account's outbox
    (``connector.outbox.build``) sends them, whole, with every other mapping's values.
    ``unchanged``: the day held what the store already had; ``superseded``: values of the
    day lost to values of a later day; ``cleared``: params the day held empty while the
    store holds a value (the APIs cannot clear a value).
    """
    started = time.monotonic()
    names = param_names_of(mapping)
    base = stage_path(settings, mapping.name, partition, run)
    updates = base / UPDATES
    if not (updates / "source.json").exists():
        raise StageMissing(f"{updates}: no transform output; run the transform stage first")
    extract_id = _staged(base, names)
    if json.loads((updates / "source.json").read_text())["extract_id"] != extract_id:
        raise StageMissing(f"{base}: extract ran again after transform; rerun transform first")
    parts = _mapped_parts(base)
    dest_key = ledger_mod.destination_key(str(mapping.destination), settings)
    schema = pa.schema(
        [(IDENTITY, pa.string()), (SOURCE_REF, pa.string())] + [(n, pa.string()) for n in names]
    )

    def day_rows() -> pa.RecordBatchReader:
        rows = dedupe.read_updates(parts, updates, names, schema=schema, batch_rows=BATCH_READ_ROWS)
        return pa.RecordBatchReader.from_batches(schema, rows)

    with progress.stage(PROFILES, f"{mapping.name} {partition}") as report:
        counts = profile_store.merge_day(
            ledger,
            location=settings.profiles,
            cache_dir=settings.profiles_cache,
            # its own folder: two merges of the same day at once must not clean up each other's
            work_dir=base / f"profile-work-{uuid.uuid4().hex[:8]}",
            destination_key=dest_key,
            mapping=mapping.name,
            identity_type=identity_type_of(mapping),
            names=names,
            partition=partition,
            day_rows=day_rows,
        )
        report.update(done=counts.identities_in)
        # the store's "superseded" is what the CLI and the report call outdated (glossary)
        report.conclude(
            f"{counts.changed:,} changed, {counts.unchanged:,} unchanged, "
            f"{counts.superseded:,} outdated"
        )
    result = StageResult(mapping.name, partition, PROFILES)
    result.counts.update(
        rows_in=counts.identities_in,
        rows_out=counts.changed,
        unchanged=counts.unchanged,
        superseded=counts.superseded,
        cleared=counts.cleared,
    )
    result.schema = [(IDENTITY, "string"), (SOURCE_REF, "string")] + [(n, "string") for n in names]
    result.stats.update(
        destination_key=dest_key,
        store_version=counts.version,
        store_identities=counts.identities,
        clears_sample=counts.clears_sample,
    )
    if counts.cleared:
        log.warning(
            "%s %s: %d profile(s) had values cleared at the source that the API cannot clear",
            mapping.name,
            partition,
            counts.cleared,
        )
    return _finish(ledger, result, started)


def prepare(
    mapping: SourceMapping,
    partition: str,
    settings: Settings,
    ledger: Ledger,
    run: str | None = None,
) -> list[StageResult]:
    """The three stages of one mapping partition, in order, as one run (its own stage
    folder; ``run``: its id, a new one by default): the day's changes end in the profile
    store; the account's outbox (``connector.outbox``) turns them into batches."""
    run = run or new_run_id()
    return [
        extract_stage(mapping, partition, settings, ledger, run),
        transform_stage(mapping, partition, settings, ledger, run),
        profile_stage(mapping, partition, settings, ledger, run),
    ]
