"""The vectorised encoder is byte for byte ``quote(v, safe="")`` on hostile input."""

from __future__ import annotations

from urllib.parse import quote

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.encoding import encode_array, encode_lines, header_line, quote_value

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
    with duckdb.connect() as con:
        lines = encode_lines(table, ["a", "b"], con=con).to_pylist()
    assert lines == ["\nx%2Cy,%C3%A9", "\n,%26", "\n,%2B"]


def test_header_encodes_names() -> None:
    assert header_line("pcId", ["a b", "c,d"]) == "pcId,a%20b,c%2Cd"
    assert quote_value("ü") == "%C3%BC"
