"""A source mapping as a Dagster Component, loaded in process: same model, same assets, a run.

`write_project` lays out a minimal `dg` project (pyproject with `[tool.dg]`, a defs folder with
one `defs.yaml` per component); `test_component_dg.py` drives the same layout through `dg`.
"""

from __future__ import annotations

import traceback
import uuid
from pathlib import Path

import dagster as dg
import httpx
import pydantic
import pytest
import yaml

from connector.defs import build_definitions
from connector.defs.components import DeliveryComponent, SourceMappingComponent
from connector.defs.definitions import MappingsInvalid
from connector.mapping import MappingError, SourceMapping, load_mapping, parse_mapping
from tests.defs.conftest import ROOT, make_connector

MAPPING_TYPE = "connector.defs.components.SourceMappingComponent"
DELIVERY_TYPE = "connector.defs.components.DeliveryComponent"
STAGES = ("source_rows", "profile_updates", "rejects", "profile_changes")

PYPROJECT = """\
[project]
name = "{package}"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["profile-sync-connector"]

[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "{package}"
"""

DEFINITIONS = """\
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
"""


def mapping_defs_yaml(mapping_text: str) -> str:
    """A `defs.yaml` whose attributes are the text of a mapping file, as written there."""
    body = "".join(f"  {line}\n" if line.strip() else "\n" for line in mapping_text.splitlines())
    return f"type: {MAPPING_TYPE}\n\nattributes:\n{body}"


def write_project(
    root: Path, mappings: dict[str, str], delivery: str | None = "{}"
) -> tuple[str, Path]:
    """A `dg` project in `root`: a package of a fresh name (modules are cached per process), a
    `defs/NAME/defs.yaml` per mapping text and, unless None, a delivery component with the
    attributes `delivery`. Returns the package name and its folder."""
    package = f"shop_{uuid.uuid4().hex[:8]}"
    (root / "pyproject.toml").write_text(PYPROJECT.format(package=package))
    src = root / "src" / package
    (src / "defs").mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "defs" / "__init__.py").write_text("")
    (src / "definitions.py").write_text(DEFINITIONS)
    for folder, text in mappings.items():
        (src / "defs" / folder).mkdir()
        (src / "defs" / folder / "defs.yaml").write_text(mapping_defs_yaml(text))
    if delivery is not None:
        (src / "defs" / "delivery").mkdir()
        (src / "defs" / "delivery" / "defs.yaml").write_text(
            f"type: {DELIVERY_TYPE}\n\nattributes: {delivery}\n"
        )
    return package, src


def sample_mappings() -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted((ROOT / "mappings").glob("*.yaml"))}


@pytest.fixture
def project_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The settings `make_connector` hands in, from the environment as a deployment sets them."""
    monkeypatch.setenv("CONNECTOR_STATE_DIR", str(workdir / "state"))
    monkeypatch.setenv("CONNECTOR_TIMEZONE", "Europe/Amsterdam")
    monkeypatch.setenv("CONNECTOR_OFF_PEAK", "22:00-06:00")
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(workdir / "mappings"))
    return workdir


def load_project(root: Path, src: Path, monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    monkeypatch.syspath_prepend(str(root / "src"))
    return dg.load_from_defs_folder(path_within_project=src)


def _spec_view(defs: dg.Definitions, name: str) -> dict[str, object]:
    """What a mapping's assets promise: keys, deps, groups, kinds, partitions and checks."""
    graph = defs.resolve_asset_graph()
    view: dict[str, object] = {}
    for stage in STAGES:
        node = graph.get(dg.AssetKey([name, stage]))
        view[stage] = (
            node.parent_keys,
            node.group_name,
            node.kinds,
            node.description,
            node.partitions_def,
            sorted(k.name for k in node.check_keys),
        )
    return view


def test_the_components_attributes_are_the_mapping_model() -> None:
    assert SourceMappingComponent.get_model_cls() is SourceMapping
    text = (ROOT / "mappings" / "crm_customers.yaml").read_text()
    component = SourceMappingComponent.from_attributes_dict(attributes=yaml.safe_load(text))
    assert component.mapping == parse_mapping(text)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "crm-customers"}, "is not a safe name"),
        ({"destination": "adobe"}, "Input should be 'target' or 'copernica'"),
        ({"identity": {"column": "customer_id", "type": "email"}}, "must be pcId or thirdPartyId"),
        ({"params": {"profile.email": "email"}}, "without the `profile.` prefix"),
        ({"paramz": {}}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_mapping_is_refused_by_the_same_validation(
    change: dict[str, object], message: str
) -> None:
    attributes = {**yaml.safe_load((ROOT / "mappings" / "crm_customers.yaml").read_text())}
    attributes.update(change)
    with pytest.raises(pydantic.ValidationError) as refused:
        SourceMappingComponent.from_attributes_dict(attributes=attributes)
    assert message in str(refused.value)
    # the folder refuses the same file for the same reason
    with pytest.raises(MappingError):
        parse_mapping(yaml.safe_dump(attributes))


@pytest.mark.parametrize("name", sorted(sample_mappings()))
def test_a_component_builds_what_the_folder_builds_for_its_mapping(
    workdir: Path, name: str
) -> None:
    connector = make_connector(workdir)
    folder = build_definitions(connector.settings(), connector)
    mapping = load_mapping(workdir / "mappings" / f"{name}.yaml")
    component = SourceMappingComponent(mapping)
    # its partitions come from the environment's settings: the folder's, set the same way
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CONNECTOR_TIMEZONE", "Europe/Amsterdam")
        built = component.build_defs(dg.ComponentTree.for_test().load_context)
    ours = dg.Definitions.merge(built, dg.Definitions(resources={"connector": connector}))
    assert _spec_view(ours, name) == _spec_view(folder, name)
    keys = {k for k in ours.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {dg.AssetKey([name, stage]) for stage in STAGES}


def test_a_project_of_components_loads_what_the_mappings_folder_loads(
    project_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    _, src = write_project(root, sample_mappings())
    defs = load_project(root, src, monkeypatch)
    dg.Definitions.validate_loadable(defs)
    connector = make_connector(project_env)
    folder = build_definitions(connector.settings(), connector)
    ours_graph, folder_graph = defs.resolve_asset_graph(), folder.resolve_asset_graph()
    assert ours_graph.get_all_asset_keys() == folder_graph.get_all_asset_keys()
    assert ours_graph.asset_check_keys == folder_graph.asset_check_keys
    for key in folder_graph.get_all_asset_keys():
        assert ours_graph.get(key).parent_keys == folder_graph.get(key).parent_keys, key
    for name in sample_mappings():
        assert _spec_view(defs, name) == _spec_view(folder, name)
    assert {j.name for j in defs.jobs or []} == {j.name for j in folder.jobs or []}
    assert {s.name for s in defs.schedules or []} == {s.name for s in folder.schedules or []}
    assert {s.name for s in defs.sensors or []} == {s.name for s in folder.sensors or []}
    assert set(defs.resources or {}) == {"connector"}


def test_the_delivery_component_can_take_the_mappings_folder_too(
    project_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    mappings = sample_mappings()
    declared = {"crm_customers": mappings["crm_customers"]}
    (project_env / "mappings" / "crm_customers.yaml").unlink()
    _, src = write_project(root, declared, delivery="{include_mappings_dir: true}")
    defs = load_project(root, src, monkeypatch)
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey(["target", "outbox"])).parent_keys == {
        dg.AssetKey(["crm_customers", "profile_changes"]),
        dg.AssetKey(["pos_purchases", "profile_changes"]),
    }
    assert dg.AssetKey(["crm_copernica", "source_rows"]) in graph.get_all_asset_keys()


def _load_error(root: Path, src: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # Dagster wraps the cause (a pydantic or mapping error) in its own exceptions
    with pytest.raises(Exception) as failed:
        load_project(root, src, monkeypatch)
    return "".join(traceback.format_exception(failed.value))


def test_a_bad_field_names_the_defs_file_and_line(
    project_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    text = sample_mappings()["crm_customers"].replace("name: crm_customers", "name: crm-customers")
    _, src = write_project(root, {"crm": text})
    error = _load_error(root, src, monkeypatch)
    line = mapping_defs_yaml(text).splitlines().index("  name: crm-customers") + 1
    assert f"{src / 'defs' / 'crm' / 'defs.yaml'}:{line}" in error
    assert "'crm-customers' is not a safe name" in error


def test_mappings_of_one_account_are_checked_together(
    project_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    crm = sample_mappings()["crm_customers"]
    _, src = write_project(root, {"a": crm, "b": crm})
    error = _load_error(root, src, monkeypatch)
    assert "'crm_customers' is already used by" in error
    assert f"{Path('src', src.name, 'defs', 'b', 'defs.yaml')}: name:" in error
    assert MappingsInvalid.__name__ in error

    # one param has one owner at an account, across components as across files
    root = tmp_path / "project2"
    root.mkdir()
    copy = crm.replace("name: crm_customers", "name: crm_copy")
    _, src = write_project(root, {"a": crm, "b": copy})
    error = _load_error(root, src, monkeypatch)
    assert f"{Path('src', src.name, 'defs', 'b', 'defs.yaml')}: params.email: also fed" in error


def test_without_attributes_a_mapping_component_says_what_it_needs(
    project_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    _, src = write_project(root, {})
    (src / "defs" / "empty").mkdir()
    (src / "defs" / "empty" / "defs.yaml").write_text(f"type: {MAPPING_TYPE}\n")
    error = _load_error(root, src, monkeypatch)
    assert "attributes: a source mapping is required" in error


def _accepted_batches(sandbox_url: str) -> int:
    state = httpx.get(f"{sandbox_url}/_sandbox/state", timeout=10).json()
    return sum(
        len(client.get("batches", []))
        for client in state.get("target", {}).get("clients", {}).values()
    )


def test_a_project_of_components_syncs_a_partition(
    project_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox
) -> None:
    """The component's assets and the delivery component's resource, from YAML, in one run each:
    the day lands at the sandbox."""
    monkeypatch.setenv("CONNECTOR_TARGET__BASE_URL", sandbox.url)
    monkeypatch.setenv("CONNECTOR_TARGET__POLL_INTERVAL_S", "0.2")
    root = tmp_path / "project"
    root.mkdir()
    crm = sample_mappings()["crm_customers"]
    _, src = write_project(root, {"crm": crm}, delivery="{force_window: true, poll_timeout_s: 60}")
    defs = load_project(root, src, monkeypatch)
    assert isinstance(defs.resources, dict)
    connector = defs.resources["connector"]
    assert connector.settings().state_dir == project_env / "state"
    job = defs.resolve_job_def("nightly_sync")
    mapping_keys = [dg.AssetKey(["crm_customers", s]) for s in STAGES]
    delivery_keys = [dg.AssetKey(["target", s]) for s in ("outbox", "submissions", "status_report")]
    with dg.instance_for_test() as instance:
        day = job.execute_in_process(
            partition_key="2026-11-21", instance=instance, asset_selection=mapping_keys
        )
        assert day.success
        checks = {c.check_name: c.passed for c in day.get_asset_check_evaluations()}
        assert checks == {"reject_rate": True, "deleted_at_source": True}
        sent = job.execute_in_process(
            partition_key="2026-11-21", instance=instance, asset_selection=delivery_keys
        )
        assert sent.success
        outbox = instance.get_latest_materialization_event(delivery_keys[0])
    assert outbox is not None
    metadata = outbox.asset_materialization.metadata  # type: ignore[union-attr]
    assert metadata["mappings"].value == "crm_customers"
    assert isinstance(rows := metadata["dagster/row_count"].value, int) and rows > 0
    checks = {c.check_name: c.passed for c in sent.get_asset_check_evaluations()}
    assert checks == {"within_caps": True, "identities_valid": True, "landing_rate": True}
    assert _accepted_batches(sandbox.url) > 0


def test_the_delivery_component_is_a_plain_model() -> None:
    assert DeliveryComponent().include_mappings_dir is False
    with pytest.raises(pydantic.ValidationError):
        DeliveryComponent.from_attributes_dict(attributes={"force_windows": True})
