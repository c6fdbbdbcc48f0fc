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
        for stage in ("source_rows", "profile_updates", "rejects", "batch_files"):
            assert f"{name}/{stage}" in keys
    assert {"target/submissions", "target/status_report"} <= keys
    checks = {str(k.name) for k in graph.asset_check_keys}
    assert {"within_caps", "identities_valid", "reject_rate", "landing_rate"} <= checks
    assert connector_defs.resolve_schedule_def("nightly")
    assert connector_defs.resolve_schedule_def("off_peak_drain")
    assert connector_defs.resolve_sensor_def("status_poll")
    assert connector_defs.resolve_sensor_def("pos_files")
    partitions = graph.get(dg.AssetKey([names[0], "source_rows"])).partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition)
    assert partitions.timezone == "Europe/Amsterdam"


def test_a_new_yaml_file_adds_assets_without_python(workdir: Path) -> None:
    source = next((workdir / "mappings").glob("*.yaml")).read_text()
    first_name = next((workdir / "mappings").glob("*.yaml")).stem
    (workdir / "mappings" / "extra_copy.yaml").write_text(
        source.replace(f"name: {first_name}", "name: extra_copy")
    )
    connector = make_connector(workdir)
    defs = build_definitions(connector.settings(), connector)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "extra_copy/batch_files" in keys


def test_invalid_mapping_fails_the_load_naming_file_and_field(workdir: Path) -> None:
    (workdir / "mappings" / "broken.yaml").write_text("name: broken\nsource: {kind: nope}\n")
    connector = make_connector(workdir)
    with pytest.raises(MappingsInvalid, match=r"broken\.yaml"):
        build_definitions(connector.settings(), connector)
