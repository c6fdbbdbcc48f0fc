"""Asset checks read the evidence on disk: files within the caps, identities the API accepts."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector.defs.checks import caps_check, identities_check, landing_check, reject_rate_check
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
    assert "tampered: 32 bytes in the outbox, ledger says 24" in problems


def test_identities_check_flags_what_target_refuses(tmp_path: Path) -> None:
    good = _batch(tmp_path, "good", b"x", 2, ["C1", "C2"])
    assert identities_check([good], "target", "thirdPartyId").passed
    bad = _batch(tmp_path, "bad", b"x", 4, ["a+b", "a/b", "x" * 257, ""])
    result = identities_check([good, bad], "target", "thirdPartyId")
    assert not result.passed
    assert result.metadata["invalid"].value == 4
    assert result.metadata["checked"].value == 6


def test_identities_check_applies_the_rules_of_the_accounts_identity_type(
    tmp_path: Path,
) -> None:
    # one rule set, the transform's: + and / are refused in a thirdPartyId only, a pcId is
    # letters, digits, "." "_" "-", a Copernica match value at most 255 characters
    odd = _batch(tmp_path, "odd", b"x", 3, ["a+b", "a/b", "x" * 255])
    assert identities_check([odd], "copernica", "customerid").passed
    assert not identities_check([odd], "target", "pcId").passed
    pc_ids = _batch(tmp_path, "pcids", b"x", 2, ["1234567890-abc.12_0", "A1"])
    assert identities_check([pc_ids], "target", "pcId").passed
    long = _batch(tmp_path, "long", b"x", 1, ["x" * 256])
    assert not identities_check([long], "copernica", "customerid").passed
    empty = _batch(tmp_path, "empty", b"x", 1, [""])
    for destination, identity_type in (("target", "pcId"), ("copernica", "customerid")):
        result = identities_check([pc_ids, empty], destination, identity_type)
        assert not result.passed and result.metadata["invalid"].value == 1


def test_reject_rate_is_rejected_rows_over_rows_read() -> None:
    key = dg.AssetKey(["m", "profile_updates"])
    settings = load_settings(reject_rate_warn=0.4, reject_rate_error=0.6)
    half = reject_rate_check(key, accepted=50, rejected=50, settings=settings)
    assert half.metadata["reject_rate"].value == 0.5
    assert half.metadata["rows_read"].value == 100
    assert half.metadata["rejected"].value == 50
    # 0.5: above the warning threshold, under the error one
    assert not half.passed and half.severity == dg.AssetCheckSeverity.WARN
    errors_at = load_settings(reject_rate_warn=0.1, reject_rate_error=0.45)
    over = reject_rate_check(key, accepted=50, rejected=50, settings=errors_at)
    assert not over.passed and over.severity == dg.AssetCheckSeverity.ERROR
    at_warn = load_settings(reject_rate_warn=0.5, reject_rate_error=0.6)
    assert reject_rate_check(key, accepted=50, rejected=50, settings=at_warn).passed
    # 1 rejected of 100 read: under the default thresholds (1%: warn above, 10%: error above)
    assert reject_rate_check(key, accepted=99, rejected=1, settings=load_settings()).passed
    nothing = reject_rate_check(key, accepted=0, rejected=0, settings=settings)
    assert nothing.passed and nothing.metadata["reject_rate"].value == 0.0


def _half_rejected_export(folder: Path) -> None:
    """100 lines of data: 50 good; 20 without identity; 20 with two bad values each (two
    reject lines per row); 10 ragged (rejected by the CSV reader, never rows)."""
    lines = ["id,n,k"]
    lines += [f"good{i},1,2" for i in range(50)]
    lines += [",1,2" for _ in range(20)]
    lines += [f"bad{i},x,y" for i in range(20)]
    lines += [f"ragged{i},1" for i in range(10)]
    folder.mkdir()
    (folder / "shop_2026-11-21.csv").write_text("\n".join(lines) + "\n")


def test_reject_rate_of_a_real_materialization_counts_each_row_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.defs.assets import build_mapping_assets, daily_partitions
    from connector.mapping import load_mapping
    from tests.defs.conftest import make_connector

    _half_rejected_export(tmp_path / "exports")
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "shop.yaml").write_text(
        "name: shop\n"
        f"source: {{kind: csv, path: '{tmp_path}/exports/*.csv'}}\n"
        "destination: target\n"
        "identity: {column: id, type: thirdPartyId}\n"
        "params:\n  n: {column: n, type: int}\n  k: {column: k, type: int}\n"
    )
    monkeypatch.setenv("CONNECTOR_REJECT_RATE_WARN", "0.4")
    monkeypatch.setenv("CONNECTOR_REJECT_RATE_ERROR", "0.6")
    connector = make_connector(tmp_path)
    mapping = load_mapping(tmp_path / "mappings" / "shop.yaml")
    source_rows, profile_updates, _ = build_mapping_assets(
        mapping, daily_partitions(connector.settings())
    )
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [source_rows, profile_updates],
            partition_key="2026-11-21",
            resources={"connector": connector},
            instance=instance,
        )
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "reject_rate"
    metadata = {k: v.value for k, v in check.metadata.items()}
    assert metadata["reject_rate"] == 0.5
    assert (metadata["rows_read"], metadata["rejected"]) == (100, 50)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN


@pytest.mark.parametrize(
    ("rate", "passed", "shown"), [(1.0, True, 100.0), (0.995, False, 99.5), (None, True, None)]
)
def test_landing_check_shows_the_rate_in_percent(
    rate: float | None, passed: bool, shown: float | None
) -> None:
    result = landing_check(rate, verified=200 if rate is not None else 0)
    assert result.passed is passed
    if shown is None:  # nothing read back: no rate to show, rather than a made-up -1
        assert "landing_rate_pct" not in result.metadata
    else:
        assert result.metadata["landing_rate_pct"] == dg.MetadataValue.float(shown)
    assert result.metadata["min_landing_rate_pct"] == dg.MetadataValue.float(99.9)
