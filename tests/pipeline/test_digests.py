"""The change-detection digest: one definition, identical in Python and SQL."""

from __future__ import annotations

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.digests import digest_sql, filled_column, profile_digest

NAMES = ["email", "a,b", "zoë"]
hostile = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(
        [
            ",",
            "\n",
            "%2C",
            "a,b",
            "1:x",
            "-",
            ";",
            "\x1f",
            "a\x1fb",
            "\x1f\x1f",
            "é",
            "🍰",
            "\x00",
            "a b+c/d",
        ]
    ),
    st.text(max_size=12),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(hostile, hostile, hostile), min_size=1, max_size=20))
def test_sql_digests_and_filled_equal_the_python_definition(rows) -> None:  # type: ignore[no-untyped-def]
    table = pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(NAMES)})
    con = duckdb.connect()
    con.register("t", table)
    sql = [digest for (digest,) in con.sql(f"SELECT {digest_sql(NAMES)} FROM t").fetchall()]
    filled = filled_column(table, NAMES).to_pylist()
    for r, digest, flags in zip(rows, sql, filled, strict=True):
        assert digest == profile_digest(NAMES, list(r))
        assert flags == "".join("1" if v else "0" for v in r)


def test_digest_tells_apart_what_differs_and_nothing_else() -> None:
    base = profile_digest(NAMES, ["x", None, "y"])
    assert profile_digest(NAMES, ["x", "", "y"]) == base  # empty = null
    assert profile_digest(NAMES, ["x,", None, "y"]) != base
    assert profile_digest(NAMES, ["x", "y", None]) != base  # a value moved to another param
    assert profile_digest(["email", "a,b", "zoe"], ["x", None, "y"]) != base  # a renamed param
    assert profile_digest(NAMES, ["x,,y", None, None]) != profile_digest(NAMES, ["x", None, "y"])


def test_values_holding_the_separator_cannot_mimic_other_values() -> None:
    names = ["a", "b"]
    assert profile_digest(names, ["x\x1fy", None]) != profile_digest(names, ["x", "y"])
    assert profile_digest(names, ["", "\x1f"]) != profile_digest(names, ["\x1f", ""])
    assert profile_digest(names, [None, "%1F,"]) != profile_digest(names, ["\x1f", None])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(hostile, hostile, hostile), min_size=1, max_size=20),
    st.integers(0, 5),
    st.integers(0, 20),
)
def test_filled_reads_slices_and_null_slots_that_hold_bytes(rows, start, length) -> None:  # type: ignore[no-untyped-def]
    """``_filled`` from offsets and bitmaps: right for a slice of an array, and for a null
    whose slot still spans bytes (Arrow allows it; a filter or an IPC writer may leave one)."""
    columns = {}
    for i, name in enumerate(NAMES):
        values = [r[i] for r in rows]
        # the data holds every value's text, null or not; the bitmap marks the nulls
        text = [(v if v is not None else "null!") for v in values]
        data = "".join(text).encode()
        offsets = [0]
        for t in text:
            offsets.append(offsets[-1] + len(t.encode()))
        valid = bytearray((len(values) + 7) // 8)
        for j, v in enumerate(values):
            if v is not None:
                valid[j // 8] |= 1 << (j % 8)
        columns[name] = pa.Array.from_buffers(
            pa.string(),
            len(values),
            [
                pa.py_buffer(bytes(valid)),
                pa.py_buffer(pa.array(offsets, pa.int32()).buffers()[1]),
                pa.py_buffer(data),
            ],
        )
    expected = ["".join("1" if v else "0" for v in r) for r in rows[start : start + length]]
    # a record batch's slice keeps its offset into the buffers (a table's may be recombined)
    for sliced in (
        pa.record_batch(columns).slice(start, length),
        pa.table(columns).slice(start, length),
    ):
        assert filled_column(sliced, NAMES).to_pylist() == expected
