"""Dedupe and change detection rules on synthetic mapped rows (DuckDB, out of core)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector import dedupe, staging
from connector.digests import profile_digest

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


def _delivered(path: Path, rows: list[tuple[str, ...]]) -> Path:
    # (identity, digest, nonempty[, partition]); the partition defaults to the day before DAY
    rows = [r if len(r) == 4 else (*r, "2026-01-01") for r in rows]
    cols = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    pq.write_table(
        pa.table(
            {
                n: pa.array(c, pa.string())
                for n, c in zip(("identity", "digest", "nonempty", "partition"), cols, strict=True)
            }
        ),
        path,
    )
    return path


DAY = "2026-01-02"


def _run(  # type: ignore[no-untyped-def]
    tmp: Path, chunks: list[pa.Table], delivered: list[tuple[str, ...]] = (), kind: str = "arrow"
):
    """Stage ``chunks`` as the extract does (IPC parts) or as Parquet (an earlier version's
    staging, still read), then build and read the updates."""
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
        counts = dedupe.build_updates(
            con,
            mapped=paths,
            delivered=_delivered(tmp / "d.parquet", list(delivered)),
            names=NAMES,
            out=out,
            partition=DAY,
        )
    finally:
        con.close()
    got = pa.Table.from_batches(
        list(dedupe.read_updates(paths, out, NAMES)), dedupe.updates_schema(NAMES)
    )
    assert got.num_rows == dedupe.count_updates(out) == counts.rows_out
    return counts, got


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
    assert rows["a"]["_digest"] == profile_digest(NAMES, ["a2@x", "silver"])
    assert counts.rows_in == 5 and counts.duplicates_merged == 3 and counts.rows_out == 2
    assert out.column("_seq").to_pylist() == [2, 5]  # source order of the winning rows


@pytest.mark.parametrize("merged", [False, True], ids=["singles", "all merged"])
def test_unchanged_dropped_and_clears_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, merged: bool
) -> None:
    if merged:  # each identity taken for repeated: the merge path gives the same report
        monkeypatch.setattr(dedupe, "REPEATED_MIN_ROWS", 1)
    delivered = [
        ("same", profile_digest(NAMES, ["s@x", "gold"]), "email,tier"),
        ("cleared", profile_digest(NAMES, ["c@x", "gold"]), "email,tier"),
        ("changed", profile_digest(NAMES, ["old@x", None]), "email"),
    ]
    counts, out = _run(
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
        delivered,
    )
    assert sorted(out.column("_identity").to_pylist()) == ["changed", "cleared", "new"]
    assert counts.unchanged == 1
    assert counts.cleared == 1
    assert counts.clears_sample == [
        {"identity": "cleared", "source_ref": "f.csv:2", "params": ["tier"]}
    ]


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
    assert sorted(all_merged.to_pylist(), key=lambda r: r["_seq"]) == sorted(
        out.to_pylist(), key=lambda r: r["_seq"]
    )
    expected: dict[str, dict[str, str | None]] = {}
    for ident, _, email, tier in sorted(full, key=lambda r: r[1]):
        cur = expected.setdefault(ident, {"email": None, "tier": None})
        for name, v in (("email", email), ("tier", tier)):
            if v not in (None, ""):
                cur[name] = v
    got = {r["_identity"]: {"email": r["email"], "tier": r["tier"]} for r in out.to_pylist()}
    assert got == expected


def test_backfill_of_an_older_day_does_not_resend_over_newer_values(tmp_path: Path) -> None:
    newer = profile_digest(NAMES, ["new@x", "gold"])
    counts, out = _run(
        tmp_path,
        [_mapped([("a", 1, "old@x", "gold"), ("b", 2, "b@x", "gold")])],
        delivered=[("a", newer, "email,tier", "2026-01-05"), ("b", "0" * 64, "email", DAY)],
    )
    assert out.column("_identity").to_pylist() == ["b"]  # b: same day, changed: sent
    assert counts.superseded == 1 and counts.unchanged == 0 and counts.rows_out == 1


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
