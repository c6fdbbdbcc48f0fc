"""The profile store: one mapping's current values at one destination account.

What the connector delivers is a profile at an account: the union of the params of every
mapping that feeds the account, each with its latest known value. Each mapping keeps here,
per identity, the latest non-empty value of each of its params *in the source's order*
(partition day, then the row's place in the day, which the day's dedupe already resolved),
with the day each value came from. Merging a day is a per-param maximum by day, so the
result does not depend on the order in which days are merged (a backfill in reverse, two
days in one run or one a night): a day's value replaces the stored one unless the stored
one came from a later day; a re-run of a day replaces that day's values; an empty value
carries no information and never erases, across days as within one.

Storage: a snapshot file per version (Parquet, written by DuckDB out of core), named in the
ledger's ``profile_stores`` row. A merge writes version N+1 beside N and moves the row from
N to N+1 with a compare-and-set; a merge that lost the race is merged again on top of the
winner. A crash leaves at worst an unreferenced file. Rows a merge changed carry its
version in ``_version``: the outbox takes the identities whose ``_version`` is past the
store's ``built_version``.

Where the snapshots live is a location (``Settings.profiles``): a local folder, or an object
store (``s3://...``) that the runs of a deployment share whatever their disk. With an object
store a snapshot is written to the local folder first, uploaded (visible only complete), and
only then named in the ledger, so the ledger never names a partial snapshot; the ledger holds
its URL. A reader on another machine streams the object into its local folder, which is then
a cache: a snapshot never changes once written (a new version is a new name), so a copy is
good as long as it is there.

Snapshot columns: ``_identity``, ``_source_ref`` and ``_partition`` (the latest row merged
for it, and its day), ``_version``, ``_last`` (what the latest merge did: changed, unchanged,
superseded; null when the day did not hold the identity), ``_cleared`` (params the latest
day held empty while a value is stored: the APIs cannot clear them), then per param its
value and ``_day:<param>`` (DATEs).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from connector.columns import IDENTITY, SOURCE_REF
from connector.encoding import quote_ident, quote_literal
from connector.ledger import Ledger, ProfileStore, utcnow
from connector.profiles import dedupe
from connector.profiles.merge import (
    CHANGED,
    CLEARED,
    DAY_PREFIX,
    LAST,
    PARTITION,
    SUPERSEDED,
    UNCHANGED,
    VERSION,
    day_column,
    first_snapshot_sql,
    merge_sql,
    snapshot_select,
)
from connector.profiles.snapshot_files import (
    local_copy,
    remove_old,
    remove_old_objects,
    store_dir,
    store_key,
    upload,
)
from connector.storage import Location, delete, is_object_url

log = logging.getLogger(__name__)

MERGE_TRIES = 5
CLEARS_SAMPLE = 10
# A snapshot is read whole at every merge and outbox build, and written whole by every merge:
# LZ4, dictionaries only where values repeat (the days, the merge's outcome), statistics only
# for what is filtered on; written by pyarrow from DuckDB's stream (figures: docs/profiles.md).
SNAPSHOT_ROWS = 100_000


@dataclass(frozen=True)
class StoreRef:
    """A mapping's store at an account as the ledger names it (one version of it).

    ``url`` is where the snapshot lives (a local path, or an object URL); :attr:`path` is a
    local file with its rows, the snapshot itself or a copy in ``cache_dir``."""

    destination_key: str
    mapping: str
    version: int
    url: str
    identity_type: str
    param_names: tuple[str, ...]
    identities: int
    built_version: int
    # the local folder of the profile stores (``Settings.profiles_cache``): where a snapshot in
    # an object store is copied to be read
    cache_dir: Path | None = field(default=None, compare=False, repr=False)

    @property
    def path(self) -> Path:
        """The snapshot as a local file: the file itself, or a copy of the object streamed
        into the cache on first use (``storage.ObjectMissing`` when the object is gone)."""
        if not is_object_url(self.url):
            return Path(self.url)
        if self.cache_dir is None:
            raise ValueError(
                f"{self.url}: a snapshot in an object store is read from a local copy; "
                "no cache folder was given (Settings.profiles_cache)"
            )
        return local_copy(self.url, store_dir(self.cache_dir, self.destination_key, self.mapping))


@dataclass
class MergeCounts:
    """What merging one day into a store did (identities of the day, by outcome)."""

    identities_in: int = 0
    changed: int = 0
    unchanged: int = 0
    superseded: int = 0
    cleared: int = 0
    identities: int = 0  # in the store after the merge
    version: int = 0
    clears_sample: list[dict[str, Any]] = field(default_factory=list)


class StoreConflict(RuntimeError):
    """Another merge kept winning the compare-and-set (``MERGE_TRIES`` times in a row)."""


def _ref(row: ProfileStore, cache_dir: Path | None) -> StoreRef:
    return StoreRef(
        destination_key=row.destination_key,
        mapping=row.mapping,
        version=int(row.version),
        url=row.path,
        identity_type=row.identity_type,
        param_names=tuple(json.loads(row.param_names)),
        identities=int(row.identities),
        built_version=int(row.built_version),
        cache_dir=cache_dir,
    )


def stores(
    ledger: Ledger, destination_key: str, *, cache_dir: Path | None = None
) -> list[StoreRef]:
    """Every mapping's store at ``destination_key``, by mapping name; ``cache_dir``: where
    snapshots in an object store are copied to be read (``Settings.profiles_cache``)."""
    with ledger.session() as session:
        rows = session.scalars(
            select(ProfileStore)
            .where(ProfileStore.destination_key == destination_key)
            .order_by(ProfileStore.mapping)
        ).all()
        return [_ref(r, cache_dir) for r in rows if r.version > 0]


def find_store(
    ledger: Ledger, destination_key: str, mapping: str, *, cache_dir: Path | None = None
) -> StoreRef | None:
    """``mapping``'s store at ``destination_key`` (see :func:`stores`); None: none yet."""
    with ledger.session() as session:
        row = session.get(ProfileStore, (destination_key, mapping))
        return _ref(row, cache_dir) if row is not None and row.version > 0 else None


def mark_built(ledger: Ledger, built: dict[str, tuple[str, int]]) -> None:
    """Record that the outbox took every change up to a version: ``{mapping: (key, version)}``.

    Never moves ``built_version`` back (two builds at once may finish in any order)."""
    with ledger.session(immediate=True) as session:
        for mapping, (key, version) in built.items():
            session.execute(
                update(ProfileStore)
                .where(
                    ProfileStore.destination_key == key,
                    ProfileStore.mapping == mapping,
                    ProfileStore.built_version < version,
                )
                .values(built_version=version)
            )


def _write_snapshot(con: duckdb.DuckDBPyConnection, sql: str, target: Path) -> None:
    """The rows of ``sql`` as the snapshot file ``target``."""
    reader = con.sql(sql).to_arrow_reader(SNAPSHOT_ROWS)
    try:
        repeated = [c for c in reader.schema.names if c.startswith(DAY_PREFIX)]
        with pq.ParquetWriter(
            target,
            reader.schema,
            compression="lz4",
            use_dictionary=[*repeated, PARTITION, LAST],
            write_statistics=[IDENTITY, VERSION],
        ) as writer:
            for batch in reader:
                writer.write_batch(batch)
    finally:
        reader.close()


def merge_day(
    ledger: Ledger,
    *,
    location: Location,
    cache_dir: Path,
    work_dir: Path,
    destination_key: str,
    mapping: str,
    identity_type: str,
    names: Sequence[str],
    partition: str,
    day_rows: Callable[[], pa.RecordBatchReader],
) -> MergeCounts:
    """Merge one partition's deduplicated rows (``day_rows()``: ``_identity``,
    ``_source_ref``, the params) into ``mapping``'s store at ``destination_key``; returns
    what the day changed.

    ``location``: where the snapshots live (``Settings.profiles``); ``cache_dir``: the local
    folder a snapshot is written in before it is uploaded, and copies are read from, when
    ``location`` is an object store (``Settings.profiles_cache``).

    Safe to call twice for the same day, and at once from several processes: the second
    merge of identical rows changes nothing (and writes no new version); a lost
    compare-and-set is merged again on top of the winner (``day_rows`` is called again).
    """
    key = store_key(destination_key, mapping)
    root = location.local_path if location.is_local else Path(cache_dir)
    folder = store_dir(root, destination_key, mapping)
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(MERGE_TRIES):
        current = find_store(ledger, destination_key, mapping, cache_dir=cache_dir)
        version = (current.version if current else 0) + 1
        target = folder / f"v{version:010d}-{uuid.uuid4().hex[:8]}.parquet"
        con = dedupe.connect(work_dir)
        reader = day_rows()
        try:
            con.register("day_rows", reader)
            sql = (
                first_snapshot_sql("day_rows", names, partition, version)
                if current is None
                else merge_sql(
                    snapshot_select(current.path, current.param_names, names),
                    "day_rows",
                    names,
                    partition,
                    version,
                )
            )
            _write_snapshot(con, sql, target)
            counts = _counts(con, target)
            unchanged_store = (
                current is not None
                and not counts.changed
                and current.param_names == tuple(names)
                and current.identity_type == identity_type
                and not _moved(con, current, target, names)
            )
        finally:
            reader.close()
            con.close()
            shutil.rmtree(work_dir, ignore_errors=True)
        if unchanged_store:
            assert current is not None
            target.unlink(missing_ok=True)  # nothing to publish: the store stays as it was
            counts.version = current.version
            return counts
        counts.version = version
        url = str(target) if location.is_local else upload(location, target, key)
        if _publish(ledger, current, url, destination_key, mapping, identity_type, names, counts):
            remove_old(folder, keep_from=version - 1)
            if not location.is_local:
                remove_old_objects(location, key, keep_from=version - 1)
            return counts
        target.unlink(missing_ok=True)
        if url != str(target):
            delete(url)
        log.info(
            "%s/%s: another merge moved the store first; merging again", destination_key, mapping
        )
    raise StoreConflict(f"{destination_key}/{mapping}: {MERGE_TRIES} merges in a row lost the race")


def _moved(
    con: duckdb.DuckDBPyConnection, current: StoreRef, path: Path, names: Sequence[str]
) -> bool:
    """Whether the merged snapshot at ``path`` differs from ``current`` in what no value
    change shows: the day of a value (the same value held again by a later day), the row
    last merged for an identity, an identity new to the store. A later re-run of an older
    day compares with those days, so they are kept even when no value changed."""
    qi = quote_ident
    cols = ", ".join([IDENTITY, SOURCE_REF, PARTITION, *(qi(day_column(n)) for n in names)])
    ((count,),) = con.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM read_parquet({quote_literal(str(path))}) "
        f"EXCEPT SELECT {cols} FROM {snapshot_select(current.path, current.param_names, names)})"
    ).fetchall()
    return bool(count)


def _counts(con: duckdb.DuckDBPyConnection, path: Path) -> MergeCounts:
    snapshot = f"read_parquet({quote_literal(str(path))})"
    row = con.execute(
        f"""SELECT count(*), count({LAST}), count(*) FILTER (WHERE {LAST} = '{CHANGED}'),
                   count(*) FILTER (WHERE {LAST} = '{UNCHANGED}'),
                   count(*) FILTER (WHERE {LAST} = '{SUPERSEDED}'), count({CLEARED})
            FROM {snapshot}"""
    ).fetchone()
    assert row is not None
    total, in_day, changed, unchanged, superseded, cleared = (int(v) for v in row)
    sample = (
        con.execute(
            f"SELECT {IDENTITY}, {SOURCE_REF}, {CLEARED} FROM {snapshot} "
            f"WHERE {CLEARED} IS NOT NULL ORDER BY {IDENTITY} LIMIT {CLEARS_SAMPLE}"
        ).fetchall()
        if cleared
        else []
    )
    return MergeCounts(
        identities_in=in_day,
        changed=changed,
        unchanged=unchanged,
        superseded=superseded,
        cleared=cleared,
        identities=total,
        clears_sample=[
            {"identity": i, "source_ref": r, "params": p.split(",")} for i, r, p in sample
        ],
    )


def _publish(
    ledger: Ledger,
    current: StoreRef | None,
    url: str,
    destination_key: str,
    mapping: str,
    identity_type: str,
    names: Sequence[str],
    counts: MergeCounts,
) -> bool:
    """Move the store from ``current`` to the snapshot at ``url`` (compare-and-set); False
    if another merge moved it first."""
    values = {
        "version": counts.version,
        "path": url,
        "identity_type": identity_type,
        "param_names": json.dumps(list(names)),
        "identities": counts.identities,
        "updated_at": utcnow(),
    }
    try:
        with ledger.session(immediate=True) as session:
            if current is None:
                row = session.get(ProfileStore, (destination_key, mapping))
                if row is not None and row.version > 0:
                    return False
                if row is None:
                    session.add(
                        ProfileStore(
                            destination_key=destination_key,
                            mapping=mapping,
                            built_version=0,
                            **values,
                        )
                    )
                    return True
            moved = session.execute(
                update(ProfileStore)
                .where(
                    ProfileStore.destination_key == destination_key,
                    ProfileStore.mapping == mapping,
                    ProfileStore.version == (current.version if current else 0),
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return bool(moved.rowcount == 1)  # type: ignore[attr-defined]
    except IntegrityError:  # another first merge inserted the row
        return False


def snapshot_rows(ref: StoreRef, filters: Any = None) -> list[dict[str, Any]]:
    """A store's rows (those ``filters`` selects, in pyarrow's form) as Python dicts, days as
    ``YYYY-MM-DD`` text (the partition keys)."""
    table = pq.read_table(ref.path, filters=filters)
    return [
        {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
        for row in table.to_pylist()
    ]


def profile_values(ref: StoreRef, identity: str) -> dict[str, Any] | None:
    """One identity's row of a store: ``source_ref``, ``partition`` and
    ``params`` ``{name: (value, day)}``; None when the store does not hold it."""
    rows = snapshot_rows(ref, filters=[(IDENTITY, "=", identity)])
    if not rows:
        return None
    row = rows[-1]
    return {
        "source_ref": row[SOURCE_REF],
        "partition": row[PARTITION],
        "version": row[VERSION],
        "params": {n: (row.get(n), row.get(day_column(n))) for n in ref.param_names},
    }
