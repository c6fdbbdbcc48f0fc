"""Asset checks read the evidence on disk: files within the caps, identities the API accepts."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from connector.defs.assets import caps_check, identities_check
from connector.ledger import Batch
from connector.settings import load_settings


def _batch(tmp: Path, key: str, body: bytes, rows: int, ids: list[str]) -> Batch:
    path = tmp / f"{key}.batch"
    path.write_bytes(body)
    manifest = tmp / f"{key}.manifest.parquet"
    pq.write_table(pa.table({"_identity": pa.array(ids, pa.string())}), manifest)
    return Batch(
        batch_key=key,
        path=str(path),
        manifest_path=str(manifest),
        row_count=rows,
        byte_size=len(body),
        state="queued",
    )


def test_caps_check_fails_on_rows_bytes_and_a_file_changed_on_disk(tmp_path: Path) -> None:
    settings = load_settings(target={"max_batch_rows": 2, "max_batch_bytes": 2000})
    ok = _batch(tmp_path, "ok", b"batch=thirdPartyId,a\nx,1", 1, ["x"])
    assert caps_check([ok], settings, "target").passed
    too_many = _batch(tmp_path, "rows", b"batch=thirdPartyId,a\nx,1\ny,2\nz,3", 3, ["x", "y", "z"])
    too_big = _batch(tmp_path, "bytes", b"batch=" + b"a" * 3000, 1, ["x"])
    tampered = _batch(tmp_path, "tampered", b"batch=thirdPartyId,a\nx,1", 1, ["x"])
    Path(tampered.path).write_bytes(b"batch=thirdPartyId,a\nx,1\nextra,2")
    result = caps_check([ok, too_many, too_big, tampered], settings, "target")
    assert not result.passed
    problems = result.metadata["problems"].value
    assert "rows: 3 rows > 2" in problems
    assert "bytes: 3006 bytes > 2000" in problems
    assert "tampered: 32 bytes on disk, ledger says 24" in problems


def test_identities_check_flags_what_target_refuses(tmp_path: Path) -> None:
    good = _batch(tmp_path, "good", b"x", 2, ["C1", "C2"])
    assert identities_check([good], "target", "thirdPartyId").passed
    bad = _batch(tmp_path, "bad", b"x", 4, ["a+b", "a/b", "x" * 257, ""])
    result = identities_check([good, bad], "target", "thirdPartyId")
    assert not result.passed
    assert result.metadata["invalid"].value == 4
    assert result.metadata["checked"].value == 6


def test_identities_check_applies_the_thirdpartyid_rules_to_thirdpartyids_only(
    tmp_path: Path,
) -> None:
    # the account's identity type decides: a pcId or a Copernica field may hold + and /
    odd = _batch(tmp_path, "odd", b"x", 3, ["a+b", "a/b", "x" * 257])
    assert identities_check([odd], "target", "pcId").passed
    assert identities_check([odd], "copernica", "customerid").passed
    empty = _batch(tmp_path, "empty", b"x", 1, [""])
    for destination, identity_type in (("target", "pcId"), ("copernica", "customerid")):
        result = identities_check([odd, empty], destination, identity_type)
        assert not result.passed and result.metadata["invalid"].value == 1
