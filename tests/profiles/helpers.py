"""Days merged into profile stores directly (no source, no stages), and the stores read back."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from connector.ledger import Ledger
from connector.profiles import store as profile_store
from connector.profiles.merge import PARTITION, day_column
from connector.profiles.store import MergeCounts, StoreRef
from connector.storage import Location

KEY = "target:demo"  # make_settings' account: client code demo

Row = tuple[str | None, ...]  # (identity, value per param)


def day_rows(names: Sequence[str], rows: Sequence[Row], partition: str) -> Callable[[], Any]:
    """``merge_day``'s ``day_rows``: one row per identity, ``_source_ref`` ``<day>:<n>``."""
    cols: list[Sequence[Any]] = (
        list(zip(*rows, strict=True)) if rows else [[] for _ in range(len(names) + 1)]
    )
    schema = pa.schema([(c, pa.string()) for c in ["_identity", "_source_ref", *names]])
    table = pa.table(
        [
            pa.array(cols[0], pa.string()),
            pa.array([f"{partition}:{i}" for i in range(len(rows))], pa.string()),
            *(pa.array(c, pa.string()) for c in cols[1:]),
        ],
        schema=schema,
    )
    return lambda: pa.RecordBatchReader.from_batches(schema, table.to_batches())


def merge(
    ledger: Ledger,
    state_dir: Path,
    partition: str,
    rows: Sequence[Row],
    *,
    names: Sequence[str],
    mapping: str = "crm",
    key: str = KEY,
    identity_type: str = "thirdPartyId",
    rows_fn: Callable[[], Any] | None = None,
    location: Location | None = None,
) -> MergeCounts:
    """Merge ``rows`` as ``partition`` into ``mapping``'s store at ``key``; the snapshots in
    ``location`` (default: ``<state_dir>/profiles``), ``<state_dir>/profiles`` their cache."""
    cache = state_dir / "profiles"
    return profile_store.merge_day(
        ledger,
        location=location or Location.parse(cache),
        cache_dir=cache,
        # a work folder per merge, as the profile stage's per partition
        work_dir=state_dir / "work" / uuid.uuid4().hex,
        destination_key=key,
        mapping=mapping,
        identity_type=identity_type,
        names=list(names),
        partition=partition,
        day_rows=rows_fn or day_rows(names, rows, partition),
    )


def store(
    ledger: Ledger, mapping: str = "crm", key: str = KEY, cache_dir: Path | None = None
) -> StoreRef:
    ref = profile_store.find_store(ledger, key, mapping, cache_dir=cache_dir)
    assert ref is not None, f"no store for {mapping} at {key}"
    return ref


def snapshot(ref: StoreRef) -> dict[str, dict[str, Any]]:
    """identity -> its stored row: ``_source_ref``, ``_partition``, per param value and day."""
    cols = ["_source_ref", PARTITION]
    cols += [c for n in ref.param_names for c in (n, day_column(n))]
    return {r["_identity"]: {c: r[c] for c in cols} for r in profile_store.snapshot_rows(ref)}


def values(ref: StoreRef) -> dict[str, dict[str, str | None]]:
    """identity -> param -> value."""
    return {i: {n: r[n] for n in ref.param_names} for i, r in snapshot(ref).items()}
