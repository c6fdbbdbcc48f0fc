"""Every problem of every mapping file in one pass, each with its line (issue 26).

`connector mappings validate` (text and --json) and the loader on real files in tmp_path;
the `connector` group's one line per configuration problem, with a traceback under --debug
only (through click's CliRunner, and once as the installed command).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import main
from connector.mapping import check_file, check_mappings
from connector.mapping.hints import unknown_key_hint
from connector.mapping.yaml_lines import read_yaml

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
  amount: {column: amount, type: decimal, format: "0.00"}
"""

# eight problems: a bad value, a too-long one, a mis-indented key (date_from belongs under
# source), a cross-field rule (the identity type of target), a rule inside a param spec,
# a missing key next to a misspelt one, and a duplicate key
SEVERAL = """\
name: pos-1
source:
  kind: csv
  path: exports/*.csv
  delimiter: ";;"
destination: target
date_from: filename
identity:
  column: customer_id
  type: mcid
params:
  email: email
  amount: {column: amount, type: decimal, format: "#,##0"}
  when: {colum: d, type: date}
  email: mail
"""


def several_expected(path: Path | str) -> list[str]:
    return [
        f"{path}:1: name: 'pos-1' is not a safe name: use letters, digits and _ (at most 120)",
        f"{path}:5: source.delimiter: String should have at most 1 character",
        f"{path}:7: date_from: unknown key; did you mean to indent it under source?",
        f"{path}:10: identity.type: 'mcid' must be pcId or thirdPartyId for target",
        f'{path}:13: params.amount.format: decimal format \'#,##0\' must look like "0" or "0.00"',
        f"{path}:14: params.when.column: required",
        f"{path}:14: params.when.colum: unknown key; did you mean `column`?",
        f"{path}:15: params.email: duplicate key 'email' (first at line 12; the last one counts)",
    ]


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def problems(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if " error(s) in " not in line]


def test_every_problem_of_a_file_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "pos.yaml", SEVERAL)
    file = check_file(path)
    assert file.mapping is None and file.name == "pos-1"
    assert [str(e) for e in file.errors] == several_expected(path)
    assert [e.line for e in file.errors] == [1, 5, 7, 10, 13, 14, 14, 15]


def test_validate_reports_every_error_of_two_bad_files_in_one_run(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    a = write(maps, "a.yaml", SEVERAL)
    b = write(
        maps,
        "b.yaml",
        GOOD.replace("name: pos", "name: b")
        .replace("  path: exports/*.csv\n", "  path: x.csv\n  cursor: updated_at\n")
        .replace("type: decimal", "type: dcimal"),
    )
    write(maps, "c.yaml", GOOD.replace("name: pos", "name: c"))
    result = run("mappings", "validate", "--dir", str(maps), "--offline")
    assert result.exit_code == 1, result.output
    assert problems(result) == [
        *several_expected(a),
        f"{b}:5: source.cursor: unknown key; `cursor` is a key of sql sources, not csv",
        f"{b}:10: params.amount.type: 'dcimal' is not one of string, int, decimal, bool, date "
        "or datetime; did you mean 'decimal'?",
    ]
    assert result.stderr.splitlines()[-1] == f"10 error(s) in {maps}"
    assert result.stdout.splitlines() == ["ok  c: csv -> target, 2 params"]
    assert "Traceback" not in result.output


def test_cross_field_rules_are_reported_next_to_field_errors(tmp_path: Path) -> None:
    text = (
        GOOD.replace("  kind: csv\n  path: exports/*.csv\n", "  kind: sql\n  url: sqlite:///x.db\n")
        .replace("destination: target", "destination: copernica")
        .replace(
            "  email: email\n",
            "  ThirdPartyID: email\n  bad: {column: b, type: int, format: '0'}\n",
        )
    )
    errors = check_file(write(tmp_path, "m.yaml", text)).errors
    assert [(e.line, e.field, e.message) for e in errors] == [
        (2, "source.query", "give exactly one of `table` or `query`"),
        (2, "source.cursor", "required"),
        (
            8,
            "params.ThirdPartyID",
            "param 'ThirdPartyID' clashes with the identity header 'thirdPartyId'",
        ),
        (9, "params.bad.format", "`format` does not apply to type int"),
    ]


def test_the_line_of_a_missing_key_is_its_parent_and_syntax_errors_stop_with_their_line(
    tmp_path: Path,
) -> None:
    missing = write(tmp_path, "m.yaml", GOOD.replace("  path: exports/*.csv\n", ""))
    (error,) = check_file(missing).errors
    assert str(error) == f"{missing}:2: source.path: required"
    no_name = write(tmp_path, "n.yaml", GOOD.replace("name: pos\n", ""))
    (error,) = check_file(no_name).errors
    assert str(error) == f"{no_name}: name: required" and error.line is None
    broken = write(tmp_path, "b.yaml", GOOD.replace("  email: email", "  email: [email"))
    (error,) = check_file(broken).errors
    assert error.line == 9 and error.message.startswith("YAML syntax: ")


def test_json_document(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    write(maps, "a_pos.yaml", GOOD)
    write(maps, "b_crm.yaml", GOOD.replace("name: pos", "name: crm"))  # owns email too
    write(maps, "c_bad.yaml", GOOD.replace("name: pos", "name: c").replace("  path:", "  pth:"))
    write(maps, "d_broken.yml", "name: [d\n")
    result = run("mappings", "validate", "--dir", str(maps), "--offline", "--json")
    assert result.exit_code == 1
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document == {
        "schema": "connector.mappings-validate/1",
        "directory": str(maps),
        "offline": True,
        "ok": False,
        "exit_code": 1,
        "error_count": 5,
        "files": [
            {"path": str(maps / "a_pos.yaml"), "mapping": "pos", "ok": True, "errors": []},
            {"path": str(maps / "b_crm.yaml"), "mapping": "crm", "ok": False, "errors": []},
            {
                "path": str(maps / "c_bad.yaml"),
                "mapping": "c",
                "ok": False,
                "errors": [
                    {"line": 2, "field": "source.path", "message": "required", "hint": None},
                    {
                        "line": 4,
                        "field": "source.pth",
                        "message": "unknown key",
                        "hint": "did you mean `path`?",
                    },
                ],
            },
            {
                "path": str(maps / "d_broken.yml"),
                "mapping": None,
                "ok": False,
                "errors": [
                    {
                        "line": 2,
                        "field": None,
                        "message": "YAML syntax: expected ',' or ']', but got '<stream end>'",
                        "hint": None,
                    }
                ],
            },
        ],
        "cross_file_errors": [
            {
                "path": str(maps / "b_crm.yaml"),
                "line": line,
                "field": f"params.{param}",
                "message": f"also fed to the same target account by {maps / 'a_pos.yaml'} (pos): "
                "one param has one owner at an account (rename one of them)",
                "hint": None,
            }
            for line, param in ((8, "email"), (9, "amount"))
        ],
    }


def test_json_of_a_clean_folder_and_of_a_folder_without_mappings(tmp_path: Path) -> None:
    write(tmp_path / "maps", "a.yaml", GOOD)
    clean = json.loads(
        run("mappings", "validate", "--dir", str(tmp_path / "maps"), "--json").stdout
    )
    assert clean["ok"] is True and clean["exit_code"] == 0 and clean["error_count"] == 0
    assert clean["offline"] is False and clean["cross_file_errors"] == []
    (tmp_path / "empty").mkdir()
    result = run("mappings", "validate", "--dir", str(tmp_path / "empty"), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["cross_file_errors"] == [
        {
            "path": str(tmp_path / "empty"),
            "line": None,
            "field": None,
            "message": "no mapping files (*.yaml, *.yml)",
            "hint": None,
        }
    ]


def test_the_shipped_mappings_validate_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.sample_data import ensure_sample_db

    ensure_sample_db(ROOT / "sample_exports" / "crm.db")
    monkeypatch.chdir(ROOT)  # their relative paths resolve against the project root
    result = run("mappings", "validate", "--dir", "mappings", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["error_count"] == 0
    assert {f["mapping"] for f in document["files"]} >= {
        "crm_customers",
        "pos_purchases",
        "crm_copernica",
    }
    assert all(f["ok"] and f["errors"] == [] for f in document["files"])
    assert check_mappings(ROOT / "mappings").errors == []


def test_a_bad_mapping_ends_preview_and_sync_in_one_line_per_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "maps", "pos.yaml", SEVERAL)
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(tmp_path / "maps"))
    monkeypatch.setenv("CONNECTOR_STATE_DIR", str(tmp_path / "state"))
    expected = [f"bad configuration: {line}" for line in several_expected(path)]
    for command in (["preview", "pos"], ["preview", "pos-1"], ["sync", "--dry-run"]):
        result = run(*command)
        assert result.exit_code == 3, result.output
        assert result.stderr.splitlines() == expected, command
        assert "Traceback" not in result.output


def test_debug_shows_the_traceback_of_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "maps", "pos.yaml", SEVERAL)
    monkeypatch.setenv("CONNECTOR_MAPPINGS_DIR", str(tmp_path / "maps"))
    result = run("--debug", "preview", "pos")
    assert result.exit_code == 3
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "connector.mapping.errors.MappingsInvalid: invalid source mappings:" in result.stderr
    assert result.stderr.splitlines()[-1] == f"bad configuration: {several_expected(path)[-1]}"
    # a settings error too
    monkeypatch.setenv("CONNECTOR_OFF_PEAK", "bogus")
    plain = run("mappings", "validate")
    assert plain.exit_code == 3 and "Traceback" not in plain.output
    (line,) = plain.stderr.splitlines()
    assert line.startswith("bad configuration: CONNECTOR_OFF_PEAK: ")
    debug = run("--debug", "mappings", "validate")
    assert debug.exit_code == 3
    assert "Traceback (most recent call last):" in debug.stderr
    assert "connector.settings.SettingsError: CONNECTOR_OFF_PEAK: " in debug.stderr
    assert debug.stderr.splitlines()[-1] == line


def test_the_installed_command_prints_no_traceback_unless_debug(tmp_path: Path) -> None:
    write(tmp_path / "maps", "pos.yaml", SEVERAL)
    connector = str(Path(sys.executable).parent / "connector")
    env = {"PATH": "/usr/bin:/bin", "CONNECTOR_MAPPINGS_DIR": str(tmp_path / "maps")}
    for flags, traceback in (([], False), (["--debug"], True)):
        done = subprocess.run(
            [connector, *flags, "preview", "pos"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
        )
        assert done.returncode == 3, done.stderr
        assert ("Traceback" in done.stderr) is traceback, done.stderr
        assert done.stderr.splitlines()[-1].startswith("bad configuration: maps/pos.yaml:15: ")


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        (("date_from",), "did you mean to indent it under source?"),
        (("source", "destination"), "did you mean to put it one level up, at the top level?"),
        (("column",), "did you mean to indent it under identity?"),
        (("source", "table"), "`table` is a key of sql sources, not csv"),
        (("params", "email", "formt"), "did you mean `format`?"),
        (("date_form",), "did you mean `date_from` under source?"),
        (
            ("identity", "date_from"),
            "`date_from` is a key under source: did you mean to put it there?",
        ),
        (
            ("identity", "timezone"),
            "`timezone` is a key under params.<name>: did you mean to put it there?",
        ),
        (("descripton",), "did you mean `description`?"),
        (("zzz",), None),
    ],
)
def test_unknown_key_hints(path: tuple[str, ...], hint: str | None) -> None:
    data = read_yaml(GOOD).data
    assert unknown_key_hint(data, path) == hint


def test_yaml_lines_of_keys_items_and_duplicates() -> None:
    document = read_yaml("a: 1\nb:\n  c: [x,\n    y]\n  d: {e: 1}\na: 2\n")
    assert document.data == {"a": 2, "b": {"c": ["x", "y"], "d": {"e": 1}}}
    assert document.line_of(("a",)) == 6  # the value the data holds
    assert document.line_of(("b", "c", 1)) == 4
    assert document.line_of(("b", "d", "e")) == 5
    assert document.line_of(("b", "missing", "deeper")) == 2
    assert document.line_of(("nowhere",)) is None
    ((path, line, first),) = [(d.path, d.line, d.first_line) for d in document.duplicates]
    assert (path, line, first) == (("a",), 6, 1)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # one error for the shape the file gave, not one per shape pydantic tried
        ("{column: e, transform: bogus}", "9: params.email.transform: 'bogus' is not one of"),
        ("{column: e, transform: [strip, lowr]}", "9: params.email.transform[1]: 'lowr' is no"),
        ("5", "9: params.email: should be text, not int; put it in quotes to keep it as text"),
        ("[a, b]", "9: params.email: should be text, not a list"),
        (
            "\n    column: e\n    format: 0.00",
            "11: params.email.format: should be text, not float; put it in quotes",
        ),
    ],
)
def test_a_field_of_several_shapes_reports_the_shape_given(
    tmp_path: Path, spec: str, expected: str
) -> None:
    text = GOOD.replace("  email: email", f"  email: {spec}").replace(
        "params:\n", "params:\n  # the params\n"
    )
    (error,) = check_file(write(tmp_path, "m.yaml", text)).errors
    assert str(error).startswith(f"{tmp_path / 'm.yaml'}:{expected}"), str(error)
