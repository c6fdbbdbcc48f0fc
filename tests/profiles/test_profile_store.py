"""The profile store (connector/profiles/store.py): per identity and param the latest non-empty
value by day, whatever order the days are merged in; re-runs; the compare-and-set."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.ledger import Ledger
from connector.profiles import merge as profile_merge
from connector.profiles import snapshot_files
from connector.profiles import store as profile_store
from connector.profiles.merge import day_column
from tests.profiles.helpers import KEY, day_rows, merge, snapshot, store, values

NAMES = ["email", "tier"]
D1, D2, D3, D4 = "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"


def _files(state_dir: Path, mapping: str = "crm") -> list[str]:
    folder = profile_store.store_dir(state_dir / "profiles", KEY, mapping)
    return sorted(p.name[:11] for p in folder.glob("*.parquet"))


def test_each_param_keeps_its_latest_non_empty_value_by_day(ledger: Ledger, tmp_path: Path) -> None:
    first = merge(ledger, tmp_path, D1, [("a", "a@x", "gold"), ("b", "b@x", None)], names=NAMES)
    assert (first.identities_in, first.changed, first.identities, first.version) == (2, 2, 2, 1)
    # a: a new tier, the email held empty ("" and null alike); c: new
    second = merge(
        ledger,
        tmp_path,
        D2,
        [("a", "", "silver"), ("b", None, None), ("c", None, "x")],
        names=NAMES,
    )
    assert (second.changed, second.unchanged, second.superseded) == (2, 1, 0)
    assert second.identities_in == 3 and second.identities == 3 and second.version == 2
    # the day held a's and b's email empty while one is stored: the APIs cannot clear it
    assert second.cleared == 2
    assert second.clears_sample == [
        {"identity": "a", "source_ref": f"{D2}:0", "params": ["email"]},
        {"identity": "b", "source_ref": f"{D2}:1", "params": ["email"]},
    ]
    rows = snapshot(store(ledger))
    assert rows["a"] == {
        "_source_ref": f"{D2}:0",
        "_partition": D2,
        "email": "a@x",
        day_column("email"): D1,
        "tier": "silver",
        day_column("tier"): D2,
    }
    assert rows["b"]["email"] == "b@x" and rows["b"]["_partition"] == D2
    assert rows["c"] == {
        "_source_ref": f"{D2}:2",
        "_partition": D2,
        "email": None,
        day_column("email"): None,
        "tier": "x",
        day_column("tier"): D2,
    }


def test_changed_rows_carry_the_merge_version_and_the_others_keep_theirs(
    ledger: Ledger, tmp_path: Path
) -> None:
    merge(ledger, tmp_path, D1, [("a", "a@x", None), ("b", "b@x", None)], names=NAMES)
    merge(ledger, tmp_path, D2, [("a", "a@x", None), ("b", "b2@x", None)], names=NAMES)
    ref = store(ledger)
    got = {r["_identity"]: r["_version"] for r in pq.read_table(ref.path).to_pylist()}
    assert ref.version == 2 and got == {"a": 1, "b": 2}
    last = {r["_identity"]: r["_last"] for r in pq.read_table(ref.path).to_pylist()}
    assert last == {"a": "unchanged", "b": "changed"}


# ------------------------------------------------------------------------------------------
# order independence and re-runs

IDS = ["a", "b", "c"]
DAYS = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
value = st.sampled_from([None, "", "x", "y", "é,&"])
day_content = st.dictionaries(st.sampled_from(IDS), st.tuples(value, value), max_size=3)


def _rows(content: dict[str, tuple[Any, Any]]) -> list[tuple[Any, ...]]:
    return [(ident, *vals) for ident, vals in content.items()]


def _model(merges: list[tuple[str, dict[str, tuple[Any, Any]]]]) -> dict[str, dict[str, Any]]:
    """The contract, merge by merge: a day's non-empty value replaces the stored one unless
    that came from a later day; the identity's row is its latest day's (a re-run: the last)."""
    got: dict[str, dict[str, Any]] = {}
    for day, content in merges:
        for i, (ident, vals) in enumerate(content.items()):
            row = got.setdefault(
                ident,
                {"_source_ref": None, "_partition": None}
                | {c: None for n in NAMES for c in (n, day_column(n))},
            )
            if row["_partition"] is None or row["_partition"] <= day:
                row["_source_ref"], row["_partition"] = f"{day}:{i}", day
            for name, v in zip(NAMES, vals, strict=True):
                if v not in (None, "") and (
                    row[day_column(name)] is None or row[day_column(name)] <= day
                ):
                    row[name], row[day_column(name)] = v, day
    return got


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(st.sampled_from(DAYS), day_content, min_size=1, max_size=4),
    st.randoms(use_true_random=False),
)
def test_the_same_days_merged_in_any_order_give_the_same_store(
    tmp_path_factory: pytest.TempPathFactory, days: dict[str, Any], rnd: Any
) -> None:
    tmp = tmp_path_factory.mktemp("order")
    ledger = Ledger(f"sqlite:///{tmp / 'ledger.db'}")
    ledger.create_all()
    try:
        orders = [sorted(days), sorted(days, reverse=True), rnd.sample(sorted(days), len(days))]
        got = []
        for n, order in enumerate(orders):
            for day in order:
                merge(ledger, tmp, day, _rows(days[day]), names=NAMES, mapping=f"m{n}")
            got.append(snapshot(store(ledger, f"m{n}")))
        assert got[0] == got[1] == got[2] == _model(sorted(days.items()))
    finally:
        ledger.dispose()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.sampled_from(DAYS[:3]), day_content), min_size=1, max_size=6))
def test_merges_with_re_runs_follow_the_contract(
    tmp_path_factory: pytest.TempPathFactory, merges: list[tuple[str, dict[str, Any]]]
) -> None:
    """Days repeat here: each repeat is a re-run of the day with what the source holds now."""
    tmp = tmp_path_factory.mktemp("reruns")
    ledger = Ledger(f"sqlite:///{tmp / 'ledger.db'}")
    ledger.create_all()
    try:
        for day, content in merges:
            merge(ledger, tmp, day, _rows(content), names=NAMES)
        assert snapshot(store(ledger)) == _model(merges)
    finally:
        ledger.dispose()


def test_a_re_run_replaces_the_days_values_unless_a_later_day_holds_them(
    ledger: Ledger, tmp_path: Path
) -> None:
    merge(ledger, tmp_path, D1, [("a", "a1", "gold"), ("b", "b1", None)], names=NAMES)
    merge(ledger, tmp_path, D2, [("a", "a2", None), ("b", "b2", None)], names=NAMES)
    # D2 again, a's email corrected at the source: replaced
    again = merge(ledger, tmp_path, D2, [("a", "a2-fixed", None), ("b", "b2", None)], names=NAMES)
    assert (again.changed, again.unchanged) == (1, 1)
    # D1 again with other values: the emails of D2 stay, a's tier (D1 its latest) is replaced
    older = merge(
        ledger, tmp_path, D1, [("a", "a1-new", "silver"), ("b", "b1-new", None)], names=NAMES
    )
    assert (older.changed, older.superseded, older.unchanged) == (1, 1, 0)
    assert older.cleared == 0  # an older day's empty values say nothing about today
    assert values(store(ledger)) == {
        "a": {"email": "a2-fixed", "tier": "silver"},
        "b": {"email": "b2", "tier": None},
    }
    assert snapshot(store(ledger))["a"]["_partition"] == D2


def test_an_identical_re_run_writes_no_new_version(ledger: Ledger, tmp_path: Path) -> None:
    rows = [("a", "a@x", "gold"), ("b", None, "x")]
    merge(ledger, tmp_path, D1, rows, names=NAMES)
    before = store(ledger)
    again = merge(ledger, tmp_path, D1, rows, names=NAMES)
    assert (again.changed, again.unchanged, again.version) == (0, 2, before.version)
    assert store(ledger) == before
    assert _files(tmp_path) == ["v0000000001"]  # the merged copy was not kept


def test_a_later_day_with_the_same_values_still_wins_over_a_re_run_of_an_older_one(
    ledger: Ledger, tmp_path: Path
) -> None:
    """D2 changes no value, yet it is D2's now: a re-run of D1 with another value must not
    take over (the store then holds what it would had D2 been merged before D1)."""
    merge(ledger, tmp_path, D1, [("a", "x", None)], names=NAMES)
    same = merge(ledger, tmp_path, D2, [("a", "x", None)], names=NAMES)
    assert (same.changed, same.unchanged) == (0, 1)
    ref = store(ledger)
    assert snapshot(ref)["a"][day_column("email")] == D2
    # kept without marking a changed: the outbox has nothing to send for it
    assert pq.read_table(ref.path).column("_version").to_pylist() == [1]
    rerun = merge(ledger, tmp_path, D1, [("a", "y", None)], names=NAMES)
    assert (rerun.changed, rerun.superseded) == (0, 1)
    assert values(store(ledger)) == {"a": {"email": "x", "tier": None}}


def test_empty_never_erases_across_days_and_an_empty_identity_is_kept_empty(
    ledger: Ledger, tmp_path: Path
) -> None:
    merge(ledger, tmp_path, D1, [("a", "a@x", "gold")], names=NAMES)
    counts = merge(ledger, tmp_path, D2, [("a", "", None), ("e", None, "")], names=NAMES)
    assert counts.changed == 0 and counts.cleared == 1 and counts.identities == 2
    assert counts.clears_sample == [
        {"identity": "a", "source_ref": f"{D2}:0", "params": ["email", "tier"]}
    ]
    ref = store(ledger)
    assert values(ref) == {
        "a": {"email": "a@x", "tier": "gold"},
        "e": {"email": None, "tier": None},
    }
    # nothing to send for either: no row carries this merge's version
    assert set(pq.read_table(ref.path).column("_version").to_pylist()) == {1, None}


def test_a_param_added_to_the_mapping_starts_empty(ledger: Ledger, tmp_path: Path) -> None:
    merge(ledger, tmp_path, D1, [("a", "a@x")], names=["email"])
    counts = merge(ledger, tmp_path, D2, [("b", "b@x", "gold")], names=["email", "tier"])
    assert counts.changed == 1
    ref = store(ledger)
    assert ref.param_names == ("email", "tier")
    assert values(ref) == {
        "a": {"email": "a@x", "tier": None},
        "b": {"email": "b@x", "tier": "gold"},
    }


# ------------------------------------------------------------------------------------------
# the compare-and-set


@pytest.mark.parametrize("existing", [False, True], ids=["first merge", "store exists"])
def test_two_merges_at_once_both_land(ledger_url: str, tmp_path: Path, existing: bool) -> None:
    """Both merges read the store before either publishes (a barrier): one loses the
    compare-and-set and merges again on top of the winner; neither day is lost."""
    ledger = Ledger(ledger_url)
    ledger.upgrade()
    try:
        if existing:
            merge(ledger, tmp_path, "2025-12-31", [("z", "z@x", None)], names=NAMES)
        barrier = threading.Barrier(2, timeout=60)
        calls: Counter[str] = Counter()
        errors: list[BaseException] = []

        def run(day: str, rows: list[tuple[Any, ...]]) -> None:
            plain = day_rows(NAMES, rows, day)

            def gated() -> Any:
                calls[day] += 1
                if calls[day] == 1:  # the store has been read: wait for the other merge
                    barrier.wait()
                return plain()

            try:
                merge(ledger, tmp_path, day, rows, names=NAMES, rows_fn=gated)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=(D1, [("a", "a@x", None), ("b", "b@x", None)])),
            threading.Thread(target=run, args=(D2, [("a", None, "gold"), ("c", "c@x", None)])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        assert sorted(calls.values()) == [1, 2]  # exactly one merged again
        ref = store(ledger)
        base = 1 if existing else 0
        assert ref.version == base + 2 and ref.identities == base + 3
        got = values(ref)
        assert got["a"] == {"email": "a@x", "tier": "gold"}
        assert got["b"]["email"] == "b@x" and got["c"]["email"] == "c@x"
        # the loser's file is gone: one file per version; older ones stay for their readers
        assert _files(tmp_path) == [f"v{v:010d}" for v in range(1, base + 3)]
    finally:
        ledger.dispose()


def test_a_merge_that_keeps_losing_gives_up_and_leaves_no_file(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    merge(ledger, tmp_path, D1, [("a", "a@x", None)], names=NAMES)
    before = store(ledger)
    calls = Counter[str]()
    plain = day_rows(NAMES, [("a", "new@x", None)], D2)

    def counted() -> Any:
        calls["n"] += 1
        return plain()

    monkeypatch.setattr(profile_store, "_publish", lambda *a, **k: False)
    with pytest.raises(profile_store.StoreConflict):
        merge(ledger, tmp_path, D2, [], names=NAMES, rows_fn=counted)
    assert calls["n"] == profile_store.MERGE_TRIES
    assert store(ledger) == before and _files(tmp_path) == ["v0000000001"]


def test_replaced_snapshots_stay_for_their_readers_then_go(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for day in (D1, D2):
        merge(ledger, tmp_path, day, [("a", f"{day}@x", None)], names=NAMES)
    first = store(ledger)
    merge(ledger, tmp_path, D3, [("a", "3@x", None)], names=NAMES)
    # a build that opened an older version can still read it
    assert _files(tmp_path) == ["v0000000001", "v0000000002", "v0000000003"]
    assert first.path.exists()
    monkeypatch.setattr(snapshot_files, "READER_GRACE_S", -1.0)
    merge(ledger, tmp_path, D4, [("a", "4@x", None)], names=NAMES)
    # past the grace period only the current snapshot and the one before are left
    assert _files(tmp_path) == ["v0000000003", "v0000000004"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "", None]),
            st.one_of(st.none(), st.sampled_from(["", "x", "y,z", "é"])),
            st.one_of(st.none(), st.sampled_from(["", "gold"])),
        ),
        max_size=12,
        unique_by=lambda r: r[0],
    )
)
def test_a_first_snapshot_is_the_merge_into_an_empty_store(rows) -> None:  # type: ignore[no-untyped-def]
    import duckdb
    import pyarrow as pa

    day = pa.table(
        {
            "_identity": pa.array([r[0] for r in rows], pa.string()),
            "_source_ref": pa.array([f"f:{i}" for i in range(len(rows))], pa.string()),
            "email": pa.array([r[1] for r in rows], pa.string()),
            "tier": pa.array([r[2] for r in rows], pa.string()),
        }
    )
    con = duckdb.connect()
    con.register("day_rows", day)
    names = ["email", "tier"]
    merged = profile_merge.merge_sql(
        profile_merge.snapshot_select(None, [], names), "day_rows", names, D1, 1
    )
    first = profile_merge.first_snapshot_sql("day_rows", names, D1, 1)
    order = " ORDER BY _identity"
    assert (
        con.sql(first + order).fetchall() == con.sql(f"SELECT * FROM ({merged})" + order).fetchall()
    )


def test_a_snapshot_with_text_days_merges_as_one_with_dates(ledger: Ledger, tmp_path: Path) -> None:
    """Snapshots written before days were DATEs hold them as ``YYYY-MM-DD`` text: the next
    merge reads them as dates (a later day wins, an earlier one does not)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    merge(ledger, tmp_path, D2, [("a", "a@x", "gold"), ("b", "b@x", None)], names=NAMES)
    ref = store(ledger)
    table = pq.read_table(ref.path)
    for name in ["_partition", *(day_column(n) for n in NAMES)]:
        text = pc.strftime(table.column(name), format="%Y-%m-%d").cast(pa.string())
        table = table.set_column(table.schema.get_field_index(name), name, text)
    pq.write_table(table, ref.path)
    assert pq.read_schema(ref.path).field(day_column("email")).type == pa.string()
    merge(ledger, tmp_path, D3, [("a", "a3@x", None)], names=NAMES)
    counts = merge(ledger, tmp_path, D1, [("b", "b1@x", "silver")], names=NAMES)
    assert counts.changed == 1  # b: its tier is new (its email older than the stored one)
    rows = snapshot(store(ledger))
    assert rows["a"]["email"] == "a3@x" and rows["a"][day_column("email")] == D3
    assert rows["a"]["tier"] == "gold" and rows["a"][day_column("tier")] == D2
    assert rows["b"]["email"] == "b@x" and rows["b"][day_column("email")] == D2
    assert rows["b"]["tier"] == "silver" and rows["b"][day_column("tier")] == D1
    assert pq.read_schema(store(ledger).path).field(day_column("email")).type == pa.date32()
