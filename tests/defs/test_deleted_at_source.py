"""Rows deleted at a SQL source after their profiles were delivered: the `deleted_at_source`
check of `M/profile_changes` names them (the APIs cannot delete them here), through the
mapping's identity transforms; a CSV mapping has no such check."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import dagster as dg

from connector.defs.assets import build_mapping_assets, daily_partitions
from connector.mapping import load_mapping
from tests.defs.conftest import make_connector

DAY = "2026-11-21"
CHECK = "deleted_at_source"


def _deletions(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == CHECK]
    return check


def _materialize(connector, mapping) -> dg.ExecuteInProcessResult:  # type: ignore[no-untyped-def]
    assets = build_mapping_assets(mapping, daily_partitions(connector.settings()))
    with dg.instance_for_test() as instance:
        return dg.materialize(
            assets, partition_key=DAY, resources={"connector": connector}, instance=instance
        )


def test_rows_deleted_at_the_source_are_reported(tmp_path: Path) -> None:
    db = tmp_path / "crm.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE customers (id TEXT PRIMARY KEY, tier TEXT, updated_at TEXT)")
    con.executemany(
        "INSERT INTO customers VALUES (?, ?, ?)",
        [(f" C{i:03d} ", "gold", f"{DAY} 10:00:00") for i in range(20)],
    )
    con.commit()
    (tmp_path / "mappings").mkdir()
    path = tmp_path / "mappings" / "crm.yaml"
    path.write_text(
        "name: crm\n"
        f"source: {{kind: sql, url: 'sqlite:///{db}', table: customers, cursor: updated_at}}\n"
        "destination: target\n"
        "identity: {column: id, type: thirdPartyId, transform: [strip, lower]}\n"
        "params: {tier: tier}\n"
    )
    connector = make_connector(tmp_path)
    mapping = load_mapping(path)
    first = _materialize(connector, mapping)
    assert first.success
    check = _deletions(first)
    assert check.passed
    assert check.metadata["store_identities"].value == 20

    con.execute("DELETE FROM customers WHERE id IN (' C003 ', ' C011 ')")
    con.commit()
    con.close()
    again = _materialize(connector, mapping)
    assert again.success
    check = _deletions(again)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    metadata = {k: v.value for k, v in check.metadata.items()}
    assert metadata["deleted_at_source"] == 2
    assert metadata["sample"] == "c003, c011"  # as the store holds them: stripped, lowered


def test_a_csv_mapping_has_no_deletion_check(tmp_path: Path) -> None:
    (tmp_path / "pos").mkdir()
    (tmp_path / "pos" / f"pos_{DAY}.csv").write_text("id,store\nA,S1\n")
    (tmp_path / "mappings").mkdir()
    path = tmp_path / "mappings" / "pos.yaml"
    path.write_text(
        "name: pos\n"
        f"source: {{kind: csv, path: '{tmp_path}/pos/*.csv', date_from: filename}}\n"
        "destination: target\n"
        "identity: {column: id, type: thirdPartyId}\n"
        "params: {lastStore: store}\n"
    )
    result = _materialize(make_connector(tmp_path), load_mapping(path))
    assert result.success
    assert [c.check_name for c in result.get_asset_check_evaluations()] == ["reject_rate"]
