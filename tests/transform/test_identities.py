"""The identity rules have one definition: the per-value reasons agree with map_chunk."""

from __future__ import annotations

import pyarrow as pa
import pytest

from connector.columns import SEQ, SOURCE_REF
from connector.mapping import parse_mapping
from connector.transform import invalid_identity_reasons, map_chunk

VALUES = [
    "ok-1",
    "",
    None,
    "a+b",
    "a/b",
    "tab\there",
    "x" * 257,
    "x" * 129,
    "x" * 256,
    "dot.and_under",
    "spaced id",
    "é" * 200,
]


@pytest.mark.parametrize(
    ("destination", "identity_type"),
    [("target", "thirdPartyId"), ("target", "pcId"), ("copernica", "email")],
)
def test_reasons_agree_with_map_chunk(destination: str, identity_type: str) -> None:
    mapping = parse_mapping(
        f"name: m\nsource: {{kind: csv, path: x.csv}}\ndestination: {destination}\n"
        f"identity: {{column: id, type: {identity_type}}}\nparams:\n  a: a\n",
        "m.yaml",
    )
    n = len(VALUES)
    raw = pa.table(
        {
            "id": pa.array(VALUES, pa.string()),
            "a": pa.array(["v"] * n, pa.string()),
            SOURCE_REF: pa.array([f"f.csv:{i + 2}" for i in range(n)]),
            SEQ: pa.array(range(n), pa.int64()),
        }
    )
    _, rejects = map_chunk(mapping, raw)
    by_ref = dict(
        zip(rejects.column("source_ref").to_pylist(), rejects.column("reason").to_pylist())
    )
    expected = [by_ref.get(f"f.csv:{i + 2}") for i in range(n)]
    assert (
        invalid_identity_reasons(pa.array(VALUES, pa.string()), destination, identity_type)
        == expected
    )
    chunked = pa.chunked_array([VALUES[:3], VALUES[3:]], pa.string())
    assert invalid_identity_reasons(chunked, destination, identity_type) == expected
    assert any(expected) and expected[0] is None
