"""The README names only what exists: settings of the model, make targets, connector commands,
and its mapping example is a mapping the loader accepts."""

from __future__ import annotations

import tomllib
from pathlib import Path

import click
import pytest

from connector.cli import main
from connector.mapping import load_mapping
from connector.settings_reference import setting_rows
from tests.docs.readme_text import (
    README,
    ROOT,
    commands_named,
    fenced_blocks,
    make_targets_named,
    makefile_targets,
    settings_named,
    toml_keys,
)

# tests/conftest.py reads the test databases' URLs from CONNECTOR_TEST_*: they configure the
# test suite, not the connector, and are not settings
TEST_VARIABLES = "CONNECTOR_TEST_"


OPERATOR_DOCS = [README, ROOT / "deploy" / "README.md"]


@pytest.mark.parametrize("doc", OPERATOR_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_connector_variable_named_is_a_setting(doc: Path) -> None:
    known = {row.env for row in setting_rows()}
    named = {n for n in settings_named(doc.read_text()) if not n.startswith(TEST_VARIABLES)}
    assert named, f"{doc.name} names no setting: is the pattern broken?"
    unknown = sorted(named - known)
    assert not unknown, (
        f"{doc.relative_to(ROOT)} names {unknown}, not in the settings model "
        "(connector/settings.py): rename or remove them"
    )


@pytest.mark.parametrize("doc", OPERATOR_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_connector_toml_example_names_only_settings(doc: Path) -> None:
    """connector.toml ignores keys it does not know: an example must not teach one."""
    examples = fenced_blocks(doc.read_text(), "toml")
    assert examples, f"{doc.name} shows no connector.toml"
    known = {row.toml_key for row in setting_rows()}
    for example in examples:
        keys = {".".join(key) for key in toml_keys(tomllib.loads(example))}
        assert not keys - known, f"{doc.relative_to(ROOT)}: not settings: {sorted(keys - known)}"


def test_every_make_target_in_the_readme_exists() -> None:
    targets = makefile_targets(ROOT / "Makefile")
    named = make_targets_named(README.read_text())
    assert {"demo", "test"} <= named, named
    missing = sorted(named - targets)
    assert not missing, f"README.md names make targets the Makefile lacks: {missing}"


def test_every_connector_command_in_the_readme_exists() -> None:
    named = commands_named(README.read_text())
    assert ("mappings", "validate") in named and ("sync", "") in named, named
    problems = []
    ctx = click.Context(main)
    have = main.list_commands(ctx)  # the commands are imported when looked up
    for command, word in sorted(named):
        found = main.get_command(ctx, command)
        if found is None:
            problems.append(f"`connector {command}`: no such command (have: {have})")
        elif isinstance(found, click.Group) and word not in found.commands:
            problems.append(
                f"`connector {command} {word}`: no such subcommand (have: {sorted(found.commands)})"
            )
    assert not problems, "README.md names commands that do not exist:\n" + "\n".join(problems)


def test_the_readme_mapping_example_is_a_valid_mapping(tmp_path: Path) -> None:
    (example,) = fenced_blocks(README.read_text(), "yaml")
    path = tmp_path / "example.yaml"
    path.write_text(example)
    mapping = load_mapping(path)
    shipped = load_mapping(ROOT / "mappings" / f"{mapping.name}.yaml")
    # abridged from the shipped file: every param shown is the shipped one, as shipped
    assert mapping.source == shipped.source and mapping.identity == shipped.identity
    differ = sorted(k for k, v in mapping.params.items() if shipped.params.get(k) != v)
    assert not differ, f"README.md's mapping example differs from the shipped file in {differ}"
