"""Mapping model: validation errors name the file and field; names are safe; env expansion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli.mappings import mappings_group
from connector.mapping import (
    MappingError,
    load_mapping,
    load_mappings,
    mapping_json_schema,
    parse_mapping,
)
from connector.sample_data import ensure_sample_db

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
name: pos
source:
  kind: csv
  path: exports/*.csv
destination: target
identity: {column: customer_id, type: thirdPartyId}
params:
  email: email
  city: {column: city, transform: [strip, lower]}
  amount: {column: amount, type: decimal, format: "0.00"}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_mapping_loads_with_param_order(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, "pos.yaml", GOOD))
    assert mapping.name == "pos"
    assert mapping.param_names == ["email", "city", "amount"]
    assert mapping.source.kind == "csv"
    assert mapping.source.encoding == "utf-8" and mapping.source.delimiter == ","
    assert mapping.param_spec("email").column == "email"
    assert mapping.param_spec("city").transforms == ("strip", "lower")
    assert mapping.columns == ["customer_id", "email", "city", "amount"]


@pytest.mark.parametrize(
    ("change", "line", "expected"),
    [
        (("type: decimal", "type: datee"), 10, "params.amount.type: 'datee' is not one of string"),
        (("kind: csv", "kind: xls"), 3, "source: kind 'xls' is not one of sql, csv"),
        (("destination: target", "destination: adobe"), 5, "destination: 'adobe' is not one of"),
        (("  path: exports/*.csv", "  path: x\n  colour: red"), 5, "source.colour: unknown key"),
        (("email: email", "profile.email: email"), 8, "without the `profile.` prefix"),
        (("email: email", "_email: email"), 8, "params._email: '_email': param names cannot"),
        (("email: email", "e mail: email"), 8, "'e mail' is not a valid param name"),
        (("email: email", "thirdPartyId: email"), 8, "clashes with the identity header"),
        (("email: email", "Amount: email"), 10, "params.amount: 'amount' and 'Amount' differ"),
        (("type: thirdPartyId", "type: mcid"), 6, "identity.type: 'mcid' must be pcId or thirdP"),
        (('format: "0.00"', 'format: "#,##0"'), 10, "params.amount.format: decimal format"),
        (("name: pos", "name: ../etc"), 1, "name: '../etc' is not a safe name"),
        (("name: pos", "name: pos-1"), 1, "is not a safe name"),
    ],
)
def test_errors_name_file_line_and_field(
    tmp_path: Path, change: tuple[str, str], line: int, expected: str
) -> None:
    path = write(tmp_path, "pos.yaml", GOOD.replace(*change))
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert expected in message
    assert info.value.line == line


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "name: x\nparams:\n  a: [1, 2\n  b: c\n")
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert str(info.value).startswith(f"{path}:")
    assert "YAML syntax" in str(info.value)
    assert ":4" in str(info.value).split(" ")[0] or ":5" in str(info.value).split(" ")[0]


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="duplicate key 'email'"):
        load_mapping(write(tmp_path, "dup.yaml", GOOD + "  email: other\n"))


def test_sql_source_needs_table_or_query() -> None:
    text = GOOD.replace(
        "  kind: csv\n  path: exports/*.csv",
        "  kind: sql\n  url: sqlite:///x.db\n  cursor: updated_at",
    )
    with pytest.raises(MappingError, match="exactly one of `table` or `query`"):
        parse_mapping(text, "m.yaml")
    both = text.replace("cursor: updated_at", "cursor: u\n  table: t\n  query: select 1")
    with pytest.raises(MappingError, match="exactly one"):
        parse_mapping(both, "m.yaml")


def test_env_expansion_in_url_and_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_PASSWORD", "s3cret")
    monkeypatch.setenv("EXPORTS", "/data/pos")
    sql = GOOD.replace(
        "  kind: csv\n  path: exports/*.csv",
        "  kind: sql\n  url: postgresql://crm:${CRM_PASSWORD}@db/crm\n  table: t\n  cursor: u",
    )
    assert parse_mapping(sql).source.url == "postgresql://crm:s3cret@db/crm"
    csv = GOOD.replace("exports/*.csv", "${EXPORTS}/*.csv  # $$ is literal")
    assert parse_mapping(csv).source.path == "/data/pos/*.csv"


def test_missing_env_var_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_THERE", raising=False)
    with pytest.raises(
        MappingError, match=r"source.path: environment variable NOT_THERE is not set"
    ):
        parse_mapping(GOOD.replace("exports/*.csv", "${NOT_THERE}/x.csv"), "m.yaml")


def test_copernica_identity_is_a_field_name() -> None:
    text = GOOD.replace("destination: target", "destination: copernica").replace(
        "type: thirdPartyId", "type: customerid"
    )
    assert parse_mapping(text).identity.type == "customerid"
    clash = text.replace("email: email", "customerid: email")
    with pytest.raises(MappingError, match="clashes with the identity header"):
        parse_mapping(clash)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{column: d, type: int, format: '0'}", "does not apply"),
        ("{column: d, type: datetime, timezone: Mars/Base}", "unknown timezone"),
        ("{column: d, type: int, transform: sha256}", "sha256"),
        ("{column: d, type: int, default: abc}", "default: 'abc' is not an integer"),
    ],
)
def test_param_spec_rules(spec: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse_mapping(GOOD.replace("email: email", f"email: {spec}"), "m.yaml")


def test_date_pattern_forms() -> None:
    from connector.mapping import compile_date_pattern, day_from_name

    assert (
        str(
            day_from_name(
                compile_date_pattern(r"(?P<date>\d{4}-?\d{2}-?\d{2})"), "pos_20261119.csv"
            )
        )
        == "2026-11-19"
    )
    assert (
        str(day_from_name(compile_date_pattern("pos_%Y%m%d"), "pos_20261119.csv.gz"))
        == "2026-11-19"
    )
    assert day_from_name(compile_date_pattern("pos_%Y%m%d"), "pos_20261399.csv") is None
    with pytest.raises(ValueError, match="named group"):
        compile_date_pattern(r"\d+")


def test_load_mappings_collects_all_errors_and_duplicate_names(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD)  # same name
    write(
        tmp_path,
        "c.yaml",
        GOOD.replace("type: decimal", "type: money").replace("name: pos", "name: c"),
    )
    write(tmp_path, "d.yml", "name: [")
    mappings, errors = load_mappings(tmp_path)
    assert [m.name for m in mappings] == ["pos"]
    text = [str(e) for e in errors]
    assert any("b.yaml:1: name: 'pos' is already used by" in t for t in text)
    assert any("c.yaml:10: params.amount.type:" in t for t in text)
    assert any("d.yml:1: YAML syntax" in t for t in text)
    assert len(errors) == 3


def test_json_schema_describes_the_format() -> None:
    schema = mapping_json_schema()
    json.dumps(schema)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"name", "source", "destination", "identity", "params"}
    assert {"SqlSource", "CsvSource", "ParamSpec"} <= set(schema["$defs"])
    assert schema["$defs"]["SqlSource"]["properties"]["schema"]


def test_repository_mappings_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    mappings, errors = load_mappings(ROOT / "mappings")
    assert errors == []
    assert {m.name for m in mappings} >= {"crm_customers", "pos_purchases", "crm_copernica"}


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    # the repository's SQL mappings name the sample database, which the probe opens
    ensure_sample_db(ROOT / "sample_exports" / "crm.db")
    runner = CliRunner()
    ok = runner.invoke(mappings_group, ["validate", "--dir", str(ROOT / "mappings")])
    assert ok.exit_code == 0, ok.output
    assert "crm_customers" in ok.output
    write(tmp_path, "a.yaml", GOOD.replace("type: decimal", "type: datee"))
    write(
        tmp_path,
        "b.yaml",
        GOOD.replace("name: pos", "name: b").replace("email: email", "_e: email"),
    )
    bad = runner.invoke(mappings_group, ["validate", "--dir", str(tmp_path)])
    assert bad.exit_code == 1
    assert "a.yaml:10: params.amount.type: 'datee' is not one of" in bad.output
    assert "b.yaml:8: params._e: '_e': param names cannot start with `_`" in bad.output
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runner.invoke(mappings_group, ["validate", "--dir", str(empty)]).exit_code == 1


def test_cli_validate_uses_settings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "a.yaml", GOOD)
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(tmp_path))
    result = CliRunner().invoke(mappings_group, ["validate"])
    assert result.exit_code == 0 and "ok  pos" in result.output


def test_cli_schema_prints_json() -> None:
    result = CliRunner().invoke(mappings_group, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output)["title"]


def _pair(tmp_path: Path, second_params: str, *, second_type: str = "thirdPartyId") -> Path:
    folder = tmp_path / "maps"
    folder.mkdir()
    write(folder, "a_pos.yaml", GOOD)
    write(
        folder,
        "b_crm.yaml",
        GOOD.replace("name: pos", "name: crm")
        .replace("type: thirdPartyId", f"type: {second_type}")
        .split("params:")[0]
        + "params:\n"
        + second_params,
    )
    return folder


def test_two_mappings_may_not_own_one_param_at_one_account(tmp_path: Path) -> None:
    folder = _pair(tmp_path, "  email: email\n  tier: tier\n")
    mappings, errors = load_mappings(folder)
    assert [m.name for m in mappings] == ["pos", "crm"]
    assert len(errors) == 1
    text = str(errors[0])
    # both files are named, and the field
    assert "b_crm.yaml" in text and "a_pos.yaml" in text and "params.email" in text
    result = CliRunner().invoke(mappings_group, ["validate", "--dir", str(folder)])
    assert result.exit_code == 1
    assert "params.email" in result.output and "a_pos.yaml" in result.output


def test_disjoint_params_at_one_account_are_fine(tmp_path: Path) -> None:
    folder = _pair(tmp_path, "  tier: tier\n")
    mappings, errors = load_mappings(folder)
    assert errors == [] and len(mappings) == 2


def test_the_same_param_at_two_accounts_is_fine(tmp_path: Path) -> None:
    folder = tmp_path / "maps"
    folder.mkdir()
    write(folder, "a_pos.yaml", GOOD)
    other = GOOD.replace("name: pos", "name: news").replace(
        "destination: target", "destination: copernica"
    )
    write(folder, "b_news.yaml", other.replace("type: thirdPartyId", "type: customerid"))
    assert load_mappings(folder)[1] == []


def test_mappings_of_one_account_share_one_identity_type(tmp_path: Path) -> None:
    folder = _pair(tmp_path, "  tier: tier\n", second_type="pcId")
    _, errors = load_mappings(folder)
    assert len(errors) == 1
    assert "identity.type" in str(errors[0]) and "a_pos.yaml" in str(errors[0])
