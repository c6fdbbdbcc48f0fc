"""The settings reference is generated from the model, and the README holds the current one."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, SecretStr

from connector.settings import load_settings
from connector.settings_reference import (
    BEGIN,
    END,
    REGENERATE,
    embed,
    embedded_table,
    main,
    markdown_table,
    setting_rows,
)
from tests.docs.readme_text import README, fenced_blocks, toml_keys


def test_the_readme_holds_the_generated_settings_table() -> None:
    assert embedded_table(README.read_text()) == markdown_table(), (
        f"README.md's settings table differs from connector/settings.py: run `{REGENERATE}`"
    )


class _Inner(BaseModel):
    token: SecretStr | None = Field(None, description="A secret.")
    size: int = Field(5, gt=0, le=10, description="A size | with a pipe.")


class _Outer(BaseModel):
    mode: Literal["a", "b"] = Field("a", description="The mode.")
    ratio: float = Field(0.5, ge=0, description="A   ratio,\n  over lines.")
    inner: _Inner = _Inner()


def test_rows_flatten_nested_sections_and_hide_secret_defaults() -> None:
    rows = {row.env: row for row in setting_rows(_Outer)}
    assert list(rows) == [
        "CONNECTOR_MODE",
        "CONNECTOR_RATIO",
        "CONNECTOR_INNER__TOKEN",
        "CONNECTOR_INNER__SIZE",
    ]
    token, size = rows["CONNECTOR_INNER__TOKEN"], rows["CONNECTOR_INNER__SIZE"]
    assert (token.toml_key, token.type, token.default, token.secret) == (
        "inner.token",
        "**secret**",
        "—",
        True,
    )
    assert (size.type, size.default) == ("integer (> 0, <= 10)", "`5`")
    assert (rows["CONNECTOR_MODE"].type, rows["CONNECTOR_MODE"].default) == ("`a` or `b`", "`a`")
    assert rows["CONNECTOR_RATIO"].description == "A ratio, over lines."
    table = markdown_table(list(rows.values()))
    assert (
        "| `CONNECTOR_INNER__SIZE` | `inner.size` | integer (> 0, <= 10) | `5` | A size \\| with a pipe. |"
        in table
    )


def test_a_setting_without_a_description_is_refused() -> None:
    class Bare(BaseModel):
        retries: int = 3

    class Holder(BaseModel):
        section: Bare = Bare()

    with pytest.raises(ValueError, match=r"CONNECTOR_SECTION__RETRIES: .* has no description"):
        setting_rows(Holder)


def test_every_setting_of_the_model_is_in_the_reference() -> None:
    rows = setting_rows()
    assert len({row.env for row in rows}) == len(rows)
    assert {
        "CONNECTOR_TARGET__POLL_INTERVAL_S",
        "CONNECTOR_COPERNICA__DATABASE",
        "CONNECTOR_MAX_ATTEMPTS",
        "CONNECTOR_REJECT_RATE_WARN",
        "CONNECTOR_REJECT_RATE_ERROR",
    } <= {row.env for row in rows}
    secrets = {row.env for row in rows if row.secret}
    assert secrets == {"CONNECTOR_TARGET__TOKEN", "CONNECTOR_COPERNICA__ACCESS_TOKEN"}


def test_write_replaces_only_the_table_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{BEGIN}\nan old table\n{END}\n\nafter\n")
    assert main(["--write", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert embedded_table(text) == markdown_table()
    assert main(["--write", str(readme)]) == 0 and readme.read_text() == text


def test_a_file_without_markers_is_an_error() -> None:
    with pytest.raises(ValueError, match="markers"):
        embed("# no markers here\n", "| table |")


def _value(document: dict[str, Any], key: tuple[str, ...]) -> Any:
    for part in key:
        document = document[part]
    return document


def test_the_readme_connector_toml_loads_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's connector.toml, loaded by the settings: every value arrives at the key
    the reference names, and the environment wins over the file."""
    (example,) = fenced_blocks(README.read_text(), "toml")
    (tmp_path / "connector.toml").write_text(example)
    document = tomllib.loads(example)
    leaves = {key: _value(document, key) for key in toml_keys(document)}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONNECTOR_TARGET__CLIENT_CODE", "from-env")
    monkeypatch.setenv("CONNECTOR_TARGET__TOKEN", "t0ken")
    settings = load_settings()
    for key, value in leaves.items():
        loaded: Any = settings
        for part in key:
            loaded = getattr(loaded, part)
        expected = "from-env" if key == ("target", "client_code") else value
        assert loaded == expected, key
    # a section is merged across sources, not replaced by the one that sets a key of it
    assert settings.target.token is not None
    assert settings.target.token.get_secret_value() == "t0ken"
    assert settings.target.base_url == leaves[("target", "base_url")]
