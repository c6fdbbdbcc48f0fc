"""connector.buffers: string arrays read through their buffers, and columns as one array."""

from __future__ import annotations

import pyarrow as pa

from connector.buffers import one_array, value_offsets


def test_one_chunk_is_taken_as_it_is_not_copied() -> None:
    chunk = pa.array(["a", None, "ccc"]).slice(1)
    got = one_array(pa.chunked_array([chunk]))
    assert got.buffers()[2].address == chunk.buffers()[2].address  # the same bytes
    assert got.offset == chunk.offset and got.to_pylist() == [None, "ccc"]


def test_several_chunks_are_combined_and_an_array_passes_through() -> None:
    col = pa.chunked_array([pa.array(["a"]), pa.array(["b", "c"])])
    assert one_array(col).to_pylist() == ["a", "b", "c"]
    assert one_array(pa.chunked_array([], pa.string())).to_pylist() == []
    array = pa.array([1, 2])
    assert one_array(array) is array


def test_value_offsets_follow_a_slice() -> None:
    col = pa.array(["ab", "", "cde", None, "f"]).slice(2, 2)
    offsets = value_offsets(col)
    data = col.buffers()[2].to_pybytes()
    assert data[offsets[0] : offsets[1]] == b"cde" and offsets[2] == offsets[1]
