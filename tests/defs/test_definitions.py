"""The code location loads, with the assets, checks, jobs, schedules and sensors it promises."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from connector.defs import build_definitions
from connector.defs.definitions import MappingsInvalid
from tests.defs.conftest import make_connector


def test_definitions_load_with_assets_per_mapping(
    connector_defs: dg.Definitions, workdir: Path
) -> None:
    dg.Definitions.validate_loadable(connector_defs)
    graph = connector_defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    names = sorted(p.stem for p in (workdir / "mappings").glob("*.yaml"))
    assert names, "sample mappings are missing"
    for name in names:
        for stage in ("source_rows", "profile_updates", "rejects", "profile_changes"):
            assert f"{name}/{stage}" in keys
        assert f"{name}/batch_files" not in keys
    for destination in ("target", "copernica"):
        assert {f"{destination}/{a}" for a in ("outbox", "submissions", "status_report")} <= keys
    checks = {str(k.name) for k in graph.asset_check_keys}
    assert {"within_caps", "identities_valid", "reject_rate", "landing_rate"} <= checks
    assert connector_defs.resolve_schedule_def("nightly")
    assert connector_defs.resolve_schedule_def("off_peak_drain")
    assert connector_defs.resolve_sensor_def("status_poll")
    assert connector_defs.resolve_sensor_def("pos_files")
    partitions = graph.get(dg.AssetKey([names[0], "source_rows"])).partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition)
    assert partitions.timezone == "Europe/Amsterdam"


def test_one_outbox_per_account_fed_by_its_mappings_profile_changes(
    connector_defs: dg.Definitions,
) -> None:
    """The account's outbox follows every store that feeds it; the files' checks block it."""
    graph = connector_defs.resolve_asset_graph()
    target, copernica = dg.AssetKey(["target", "outbox"]), dg.AssetKey(["copernica", "outbox"])
    assert graph.get(target).parent_keys == {
        dg.AssetKey(["crm_customers", "profile_changes"]),
        dg.AssetKey(["pos_purchases", "profile_changes"]),
    }
    assert graph.get(copernica).parent_keys == {dg.AssetKey(["crm_copernica", "profile_changes"])}
    assert graph.get(dg.AssetKey(["target", "submissions"])).parent_keys == {target}
    # the outbox is one asset per account, not partitioned by day: it takes every store's changes
    assert graph.get(target).partitions_def is None
    outbox_checks = {
        spec.name: spec.blocking
        for spec in connector_defs.resolve_assets_def(target).check_specs
        if spec.asset_key == target
    }
    assert outbox_checks == {"within_caps": True, "identities_valid": True}
    # a mapping's own assets write no batch files: they carry no file checks any more (a SQL
    # mapping's store is checked against its source, never blocking)
    changes = dg.AssetKey(["crm_customers", "profile_changes"])
    specs = list(connector_defs.resolve_assets_def(changes).check_specs)
    assert [(s.name, s.blocking) for s in specs] == [("deleted_at_source", False)]


def test_a_new_yaml_file_adds_assets_without_python(workdir: Path) -> None:
    # a mapping of its own params (one param has one owner at an account) to the same account
    (workdir / "mappings" / "extra_copy.yaml").write_text(
        "name: extra_copy\n"
        "source: {kind: csv, path: sample_exports/pos/*.csv}\n"
        "destination: target\n"
        "identity: {column: customer_id, type: thirdPartyId}\n"
        "params: {favouriteStore: store}\n"
    )
    connector = make_connector(workdir)
    defs = build_definitions(connector.settings(), connector)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for stage in ("source_rows", "profile_updates", "rejects", "profile_changes"):
        assert f"extra_copy/{stage}" in keys
    # it feeds the same account: the account's one outbox follows its store too
    outbox = graph.get(dg.AssetKey(["target", "outbox"]))
    assert dg.AssetKey(["extra_copy", "profile_changes"]) in outbox.parent_keys
    assert "extra_copy/outbox" not in keys


def test_invalid_mapping_fails_the_load_naming_file_and_field(workdir: Path) -> None:
    (workdir / "mappings" / "broken.yaml").write_text("name: broken\nsource: {kind: nope}\n")
    connector = make_connector(workdir)
    with pytest.raises(MappingsInvalid, match=r"broken\.yaml"):
        build_definitions(connector.settings(), connector)
