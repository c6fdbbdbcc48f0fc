"""The bad-input corpus: each file in cases/ runs through extraction and transformation and
must give exactly the rejects (line, identity, param, reason) and good rows in its
``<case>.expect.json``, whatever the block size the reader cuts the file into."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.corpus.run_case import CASES, run

FILES = sorted(p for p in CASES.iterdir() if p.name.endswith((".csv", ".csv.gz")))


def expected(path: Path) -> dict:
    return json.loads((CASES / (path.name.split(".")[0] + ".expect.json")).read_text("utf-8"))


def test_every_case_has_an_expectation() -> None:
    assert len(FILES) >= 15
    for path in FILES:
        assert (CASES / (path.name.split(".")[0] + ".expect.json")).is_file(), path


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("block_bytes", [None, 8], ids=["default-blocks", "8-byte-blocks"])
def test_case(path: Path, block_bytes: int | None) -> None:
    assert run(path, block_bytes=block_bytes) == expected(path)


def test_good_rows_survive_next_to_bad_ones() -> None:
    ragged = run(CASES / "ragged_rows.csv")
    assert [r["identity"] for r in ragged["mapped"]] == ["1", "4"]
    ids = run(CASES / "identities.csv")
    assert [r["identity"][:3] for r in ids["mapped"]] == ["a,b", "xxx"]
    reasons = {r["reason"] for r in ids["rejects"]}
    assert "thirdPartyId contains '+' (not allowed)" in reasons
    assert "thirdPartyId contains '/' (not allowed)" in reasons
    assert "thirdPartyId is longer than 256 characters" in reasons


def test_formulas_and_whitespace_stay_text() -> None:
    names = [r["name"] for r in run(CASES / "formula_values.csv")["mapped"]]
    assert names == ["=SUM(A1:A3)", "+31 6 1234", "-1+1", "@cmd", '=HYPERLINK("http://x")']
    assert [r["name"] for r in run(CASES / "whitespace_kept.csv")["mapped"]] == ["  Ann  ", "\t"]
