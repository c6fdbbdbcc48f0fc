"""The vectorised encoder is byte for byte ``quote(v, safe="")`` on hostile input."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.encoding import (
    encode_array,
    encode_lines,
    encoded_length,
    encoded_lengths,
    header_line,
    quote_value,
)

HOSTILE = ["", " ", "%", "&", "+", "=", ",", "\n", "\r", "\r\n", "a b", "%25", "~-._", "/?#[]@"]


def _every_bmp_code_point_in_chunks(size: int = 64) -> list[str]:
    points = [c for c in range(1, 0x10000) if not 0xD800 <= c <= 0xDFFF]
    return ["".join(map(chr, points[i : i + size])) for i in range(0, len(points), size)]


def test_every_bmp_code_point_matches_quote() -> None:
    values = _every_bmp_code_point_in_chunks()
    out = encode_array(pa.array(values, pa.string())).to_pylist()
    assert out == [quote(v, safe="") for v in values]


def test_single_code_points_including_astral_match_quote() -> None:
    points = [c for c in range(0, 0x110000, 7) if not 0xD800 <= c <= 0xDFFF]
    points += [0, 0x7F, 0x80, 0xFFFF, 0x10000, 0x1F600, 0x10FFFF]
    values = [chr(c) for c in points]
    out = encode_array(pa.array(values, pa.string())).to_pylist()
    assert out == [quote(v, safe="") for v in values]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values(value: str) -> None:
    assert encode_array(pa.array([value, None], pa.string())).to_pylist() == [
        quote(value, safe=""),
        None,
    ]


def test_unreserved_only_passes_through() -> None:
    arr = pa.array(["abc", "A-Z_0.9~"], pa.string())
    assert encode_array(arr) is arr


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text()), min_size=1, max_size=30))
def test_property_equals_quote(values: list[str | None]) -> None:
    out = encode_array(pa.array(values, pa.string())).to_pylist()
    assert out == [None if v is None else quote(v, safe="") for v in values]


def test_lines_join_encoded_fields_and_empty_as_empty() -> None:
    table = pa.table({"a": ["x,y", None, ""], "b": ["é", "&", "+"]})
    lines = encode_lines(table, ["a", "b"]).to_pylist()
    assert lines == ["\nx%2Cy,%C3%A9", "\n,%26", "\n,%2B"]


def _reference_lines(columns: list[list[str | None]], prefix: str = "\n") -> list[str]:
    return [prefix + ",".join(quote(v or "", safe="") for v in row) for row in zip(*columns)]


def test_lines_of_every_code_point_match_quote() -> None:
    """The line encoder is ``quote`` byte for byte: every BMP code point, astral
    ones, and the hostile values, in lines of three fields with nulls among them."""
    values: list[str | None] = _every_bmp_code_point_in_chunks(61)
    values += [chr(c) for c in (0, 0x7F, 0x80, 0x7FF, 0x800, 0x10000, 0x1F600, 0x10FFFF)]
    values += HOSTILE
    third = [None if i % 5 == 0 else v for i, v in enumerate(reversed(values))]
    table = pa.table({"id": [f"i{i}" for i in range(len(values))], "a": values, "b": third})
    out = encode_lines(table, ["id", "a", "b"]).to_pylist()
    assert out == _reference_lines([table["id"].to_pylist(), values, third])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.none(), st.text()), st.one_of(st.none(), st.text())),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 7),
    st.integers(0, 3),
)
def test_lines_property_any_pieces_and_slices(
    rows: list[tuple[str | None, str | None]], piece: int, start: int
) -> None:
    """Sliced batches (a nonzero offset into shared buffers), pieces of any size encoded on
    two threads: one chunk a piece, the lines equal ``quote``'s."""
    a, b = (list(c) for c in zip(*rows))
    table = pa.table({"a": a, "b": b}).slice(min(start, len(rows) - 1))
    batches = table.to_batches(max_chunksize=piece)
    with ThreadPoolExecutor(2) as pool:
        lines = encode_lines(
            pa.Table.from_batches(batches, table.schema), ["a", "b"], executor=pool
        )
    assert [len(c) for c in lines.chunks] == [rb.num_rows for rb in batches]
    assert lines.to_pylist() == _reference_lines(
        [table["a"].to_pylist(), table["b"].to_pylist()], "\n"
    )


def test_lines_of_other_string_types_and_prefix() -> None:
    table = pa.table(
        {
            "a": pa.array(["é", None, "x y"], pa.large_string()),
            "b": pa.array(["1", "", None], pa.string_view()),
        }
    )
    assert encode_lines(table, ["a", "b"], prefix="").to_pylist() == ["%C3%A9,1", ",", "x%20y,"]


def test_header_encodes_names() -> None:
    assert header_line("pcId", ["a b", "c,d"]) == "pcId,a%20b,c%2Cd"
    assert quote_value("ü") == "%C3%BC"


HOSTILE_TEXT = st.text(
    alphabet=st.sampled_from(["&", "%", "+", "=", "\n", "\x1f", ",", "é", "😀", "a", " "])
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(st.none(), HOSTILE_TEXT), HOSTILE_TEXT), min_size=1, max_size=30)
)
def test_lines_and_lengths_on_hostile_strings(rows: list[tuple[str | None, str]]) -> None:
    """Lines equal ``quote``'s byte for byte, and ``encoded_lengths`` is each encoded value's
    size: the profile-size cap counts what the batch file holds."""
    a, b = (list(c) for c in zip(*rows))
    table = pa.table({"a": pa.array(a, pa.string()), "b": pa.array(b, pa.string())})
    lines = encode_lines(table, ["a", "b"])
    assert lines.to_pylist() == _reference_lines([a, b])
    assert encoded_lengths(table["a"]).tolist() == [len(quote(v or "", safe="")) for v in a]
    assert encoded_length("a b&") == len("a%20b%26")
