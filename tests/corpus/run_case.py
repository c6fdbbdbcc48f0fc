"""Run one corpus file end to end (extract + transform) and describe the outcome as plain data."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from connector.columns import IDENTITY, SOURCE_REF
from connector.mapping import parse_mapping
from connector.partitions import day_window
from connector.sources.csv import read_csv_file
from connector.transform import map_chunk

CASES = Path(__file__).parent / "cases"
MAPPING = parse_mapping(
    """
name: corpus
source: {kind: csv, path: "tests/corpus/cases/*.csv"}
destination: target
identity: {column: id, type: thirdPartyId}
params:
  name: name
  amount: {column: amount, type: decimal, format: "0.00"}
""",
    "corpus.yaml",
)
WINDOW = day_window("2026-11-19", ZoneInfo("UTC"))


def _line(ref: str, path: Path) -> int | None:
    tail = ref.removeprefix(str(path))
    return int(tail[1:]) if tail.startswith(":") else None


def run(path: Path, block_bytes: int | None = None) -> dict:
    """Mapped rows (identity, line, name, amount) and rejects (line, identity, param, reason)."""
    mapped: list[dict] = []
    rejects: list[dict] = []
    kwargs = {"block_bytes": block_bytes} if block_bytes else {}
    for table, source_rejects in read_csv_file(str(path), required=MAPPING.columns, **kwargs):
        for r in source_rejects.to_pylist():
            rejects.append(
                {
                    "line": _line(r["source_ref"], path),
                    "identity": r["identity"],
                    "param": r["param"],
                    "reason": r["reason"],
                }
            )
        if table.num_rows:
            out, value_rejects = map_chunk(MAPPING, table)
            for r in out.to_pylist():
                mapped.append(
                    {
                        "identity": r[IDENTITY],
                        "line": _line(r[SOURCE_REF], path),
                        "name": r["name"],
                        "amount": r["amount"],
                    }
                )
            for r in value_rejects.to_pylist():
                rejects.append(
                    {
                        "line": _line(r["source_ref"], path),
                        "identity": r["identity"],
                        "param": r["param"],
                        "reason": r["reason"],
                    }
                )
    rejects.sort(key=lambda r: (r["line"] or 0, r["param"] or ""))
    return {"mapped": mapped, "rejects": rejects}
