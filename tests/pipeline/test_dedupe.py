"""Dedupe of one day on synthetic mapped rows (DuckDB, out of core), and the day handed to the
profile store, which decides what changed (no change detection in the dedupe any more)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.ledger import Ledger
from connector.outbox import build as outbox
from connector.profiles import dedupe, staging
from connector.profiles.store import MergeCounts
from tests.batches.fakes import decode_batch, make_settings
from tests.profiles.helpers import merge, store, values

NAMES = ["email", "tier"]


def _mapped(rows: list[tuple[str, int, str | None, str | None]]) -> pa.Table:
    ids, seqs, emails, tiers = (list(c) for c in zip(*rows, strict=True))
    return pa.table(
        {
            "_identity": pa.array(ids, pa.string()),
            "_source_ref": pa.array([f"f.csv:{s}" for s in seqs], pa.string()),
            "_seq": pa.array(seqs, pa.int64()),
            "email": pa.array(emails, pa.string()),
            "tier": pa.array(tiers, pa.string()),
        }
    )


DAY = "2026-01-02"


def _stage(
    tmp: Path, chunks: list[pa.Table], kind: str = "arrow"
) -> tuple[list[Path], Path, dedupe.UpdateCounts]:
    """Stage ``chunks`` as the extract does (IPC parts) or as Parquet (an earlier version's
    staging, still read), then build the updates."""
    paths = []
    (tmp / "mapped").mkdir(parents=True)
    for i, t in enumerate(chunks, start=1):
        p = staging.part_path(tmp / "mapped", i)
        if kind == "parquet":
            p = p.with_suffix(".parquet")
            pq.write_table(t, p)
        else:
            staging.write(t, p)
        paths.append(p)
    assert staging.parts(tmp / "mapped") == paths
    out = tmp / "updates"
    con = dedupe.connect(tmp / "work")
    try:
        counts = dedupe.build_updates(con, mapped=paths, names=NAMES, out=out)
    finally:
        con.close()
    return paths, out, counts


def _run(tmp: Path, chunks: list[pa.Table], kind: str = "arrow") -> tuple[Any, pa.Table]:
    """The updates of ``chunks``, read back."""
    paths, out, counts = _stage(tmp, chunks, kind)
    got = pa.Table.from_batches(
        list(dedupe.read_updates(paths, out, NAMES)), dedupe.updates_schema(NAMES)
    )
    assert got.num_rows == dedupe.count_updates(out) == counts.rows_out
    return counts, got


def _into_store(
    ledger: Ledger, state_dir: Path, paths: list[Path], out: Path, partition: str
) -> MergeCounts:
    """The day's updates merged into the store, read as the profile stage reads them."""
    schema = pa.schema([(c, pa.string()) for c in ["_identity", "_source_ref", *NAMES]])

    def rows() -> pa.RecordBatchReader:
        updates = dedupe.read_updates(paths, out, NAMES, schema=schema)
        return pa.RecordBatchReader.from_batches(schema, updates)

    return merge(ledger, state_dir, partition, [], names=NAMES, rows_fn=rows)


def test_later_wins_and_empty_does_not_erase(tmp_path: Path) -> None:
    counts, out = _run(
        tmp_path,
        [
            _mapped([("a", 1, "a1@x", "gold"), ("b", 2, "b@x", None)]),
            _mapped([("a", 3, None, "silver"), ("a", 4, "", None), ("a", 5, "a2@x", None)]),
        ],
    )
    rows = {r["_identity"]: r for r in out.to_pylist()}
    assert rows["a"]["email"] == "a2@x" and rows["a"]["tier"] == "silver"
    assert rows["a"]["_seq"] == 5 and rows["a"]["_source_ref"] == "f.csv:5"
    assert rows["b"]["tier"] is None
    assert "_digest" not in out.column_names  # the account's outbox digests whole profiles
    assert counts.rows_in == 5 and counts.duplicates_merged == 3 and counts.rows_out == 2
    assert out.column("_seq").to_pylist() == [2, 5]  # source order of the winning rows


@pytest.mark.parametrize("merged", [False, True], ids=["singles", "all merged"])
def test_every_identity_of_the_day_is_kept_and_the_store_finds_unchanged_and_clears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, merged: bool
) -> None:
    """The dedupe drops nothing the profile already holds; merged into the store, the day
    counts what changed, what did not, and the values it holds empty (not cleared)."""
    if merged:  # each identity taken for repeated: the merge path gives the same report
        monkeypatch.setattr(dedupe, "REPEATED_MIN_ROWS", 1)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_all()
    state = tmp_path / "state"
    before = [("same", "s@x", "gold"), ("cleared", "c@x", "gold"), ("changed", "old@x", None)]
    merge(ledger, state, "2026-01-01", before, names=NAMES)
    paths, out, counts = _stage(
        tmp_path,
        [
            _mapped(
                [
                    ("same", 1, "s@x", "gold"),
                    ("cleared", 2, "c@x", None),
                    ("changed", 3, "new@x", None),
                    ("new", 4, None, "x"),
                ]
            )
        ],
    )
    assert counts.rows_out == counts.identities == dedupe.count_updates(out) == 4
    merged_day = _into_store(ledger, state, paths, out, DAY)
    assert (merged_day.identities_in, merged_day.changed, merged_day.unchanged) == (4, 2, 2)
    assert merged_day.cleared == 1
    assert merged_day.clears_sample == [
        {"identity": "cleared", "source_ref": "f.csv:2", "params": ["tier"]}
    ]
    assert values(store(ledger)) == {
        "same": {"email": "s@x", "tier": "gold"},
        "cleared": {"email": "c@x", "tier": "gold"},  # empty never erases
        "changed": {"email": "new@x", "tier": None},
        "new": {"email": None, "tier": "x"},
    }
    ledger.dispose()


def test_no_input_gives_empty_updates(tmp_path: Path) -> None:
    counts, out = _run(tmp_path, [])
    assert out.num_rows == 0 and counts.rows_in == 0


value = st.one_of(st.none(), st.just(""), st.sampled_from(["x", "y", "é,&"]))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), value, value), min_size=1, max_size=30),
    st.randoms(use_true_random=False),
)
def test_property_matches_a_reference_model(tmp_path_factory, rows, rnd) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("dd")
    seqs = list(range(len(rows)))
    full = [(i, s, e, t) for s, (i, e, t) in zip(seqs, rows, strict=True)]
    shuffled = full[:]
    rnd.shuffle(shuffled)  # chunk order must not matter, only _seq
    cut = len(shuffled) // 2
    chunks = [_mapped(shuffled[:cut])] if cut else []
    chunks.append(_mapped(shuffled[cut:]))
    _, out = _run(tmp / "arrow", chunks)
    # Parquet parts (staged by an earlier version) give the same updates
    _, from_parquet = _run(tmp / "parquet", chunks, kind="parquet")
    assert from_parquet.equals(out)
    # and so does DuckDB's out-of-core scan, used past REPEATED_LOOKUP_MAX repeated identities
    limit, dedupe.REPEATED_LOOKUP_MAX = dedupe.REPEATED_LOOKUP_MAX, 0
    try:
        _, scanned = _run(tmp / "scanned", chunks)
    finally:
        dedupe.REPEATED_LOOKUP_MAX = limit
    assert scanned.equals(out)
    # an identity taken for repeated (two identities sharing a hash) is merged on its own:
    # the same rows, only in _seq order after the singles
    least, dedupe.REPEATED_MIN_ROWS = dedupe.REPEATED_MIN_ROWS, 1
    try:
        _, all_merged = _run(tmp / "all-merged", chunks)
    finally:
        dedupe.REPEATED_MIN_ROWS = least

    # empty is null or "" (the profile store reads both as empty): compare them as one
    def rows_of(table: pa.Table) -> list[dict[str, object]]:
        rows = [{k: (None if v == "" else v) for k, v in r.items()} for r in table.to_pylist()]
        return sorted(rows, key=lambda r: r["_seq"])  # type: ignore[arg-type,return-value]

    assert rows_of(all_merged) == rows_of(out)
    expected: dict[str, dict[str, str | None]] = {}
    for ident, _, email, tier in sorted(full, key=lambda r: r[1]):
        cur = expected.setdefault(ident, {"email": None, "tier": None})
        for name, v in (("email", email), ("tier", tier)):
            if v not in (None, ""):
                cur[name] = v
    got = {r["_identity"]: {"email": r["email"], "tier": r["tier"]} for r in rows_of(out)}
    assert got == expected


def test_a_backfilled_older_day_keeps_newer_values_and_adds_its_other_params(
    tmp_path: Path,
) -> None:
    """An older day run after a newer one (a backfill): the newer day's values stay, the
    older day's params the newer one did not hold are added, and only those profiles go out
    again, whole."""
    settings = make_settings(tmp_path)
    ledger = Ledger(settings.ledger_url)
    ledger.create_all()
    newer = [("a", "new@x", None), ("c", "c-new@x", None)]
    merge(ledger, settings.state_dir, "2026-01-05", newer, names=NAMES)
    outbox.build(settings, ledger, "target")  # the newer day went out
    paths, out, _ = _stage(
        tmp_path,
        [
            _mapped([("a", 1, "old@x", None), ("b", 2, "b@x", "gold")]),
            _mapped([("a", 3, None, "gold"), ("c", 4, "c-old@x", None)]),
        ],
    )
    counts = _into_store(ledger, settings.state_dir, paths, out, DAY)
    # a: its tier is new; b: new; c: its only value lost to the newer day
    assert (counts.changed, counts.superseded, counts.unchanged) == (2, 1, 0)
    assert values(store(ledger)) == {
        "a": {"email": "new@x", "tier": "gold"},
        "b": {"email": "b@x", "tier": "gold"},
        "c": {"email": "c-new@x", "tier": None},
    }
    result = outbox.build(settings, ledger, "target")
    assert result.candidates == 2
    (batch,) = result.batches
    header, rows = decode_batch(Path(batch.path).read_bytes())
    assert header == ["thirdPartyId", *NAMES]
    assert sorted(rows) == [["a", "new@x", "gold"], ["b", "b@x", "gold"]]  # c not re-sent
    ledger.dispose()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(-5, 50),
    st.integers(0, 40),
    st.lists(st.integers(-10, 100), max_size=40),
    st.booleans(),
)
def test_in_sorted_is_isin_for_runs_and_any_values(start, length, members, gap) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    values = np.arange(start, start + length, dtype=np.int64)
    if gap and length > 2:  # not consecutive: the binary search path
        values = np.delete(values, length // 2)
    sorted_set = np.array(sorted(set(members)), dtype=np.int64)
    got = dedupe._in_sorted(values, sorted_set)
    assert got.tolist() == np.isin(values, sorted_set).tolist()
