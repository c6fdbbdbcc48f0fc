"""`connector mappings validate` reads each mapping's source far enough to know it can be read.

Real SQLite databases and CSV files in tmp_path; the CLI through click's CliRunner, and once
as the installed `connector` command.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from connector.cli.mappings import mappings_group

CUSTOMERS = (
    "CREATE TABLE customers (customer_id TEXT PRIMARY KEY, email TEXT, city TEXT, updated_at TEXT)"
)


def _database(path: Path, ddl: str = CUSTOMERS) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute(ddl)
        conn.execute("INSERT INTO customers VALUES ('C1', 'a@b.nl', 'Delft', '2026-11-21')")
    conn.close()
    return f"sqlite:///{path}"


def _sql_mapping(
    folder: Path,
    file: str,
    url: str,
    *,
    table: str | None = "customers",
    query: str | None = None,
    cursor: str = "updated_at",
    key: str | None = None,
    identity: str = "customer_id",
    params: str = "  email: email\n  city: city\n",
) -> Path:
    folder.mkdir(exist_ok=True)
    what = f"table: {table}" if query is None else f'query: "{query}"'
    extra = f"\n  key: {key}" if key else ""
    path = folder / file
    path.write_text(
        f"name: {path.stem}\n"
        f"source:\n  kind: sql\n  url: '{url}'\n  {what}\n  cursor: {cursor}{extra}\n"
        "destination: target\n"
        f"identity: {{column: {identity}, type: thirdPartyId}}\n"
        f"params:\n{params}"
    )
    return path


def _csv_mapping(
    folder: Path,
    file: str,
    glob: str,
    params: str = "  store: store\n  amount: {column: amount, type: decimal}\n",
) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / file
    path.write_text(
        f"name: {path.stem}\n"
        f"source: {{kind: csv, path: '{glob}'}}\n"
        "destination: copernica\n"
        "identity: {column: customer_id, type: customerid}\n"
        f"params:\n{params}"
    )
    return path


def _validate(folder: Path, *flags: str) -> Result:
    return CliRunner().invoke(mappings_group, ["validate", "--dir", str(folder), *flags])


def _problems(result: Result) -> list[str]:
    """The stderr lines naming a problem (the summary line left out)."""
    return [line for line in result.stderr.splitlines() if " error(s) in " not in line]


def test_an_identity_column_the_table_lacks_is_a_problem_naming_file_and_column(
    tmp_path: Path,
) -> None:
    url = _database(tmp_path / "crm.db")
    bad = _sql_mapping(tmp_path / "maps", "crm.yaml", url, identity="client_id")
    result = _validate(tmp_path / "maps")
    assert result.exit_code == 1, result.output
    (line,) = _problems(result)
    assert line.startswith(f"{bad}: ")
    assert "identity.column: column 'client_id' not in table 'customers'" in line
    assert "have: customer_id, email, city, updated_at" in line
    assert "ok  crm" not in result.stdout
    # the same folder without the probe: the file itself is fine
    offline = _validate(tmp_path / "maps", "--offline")
    assert offline.exit_code == 0, offline.output
    assert "ok  crm" in offline.stdout


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"cursor": "changed_at"}, "source.cursor: column 'changed_at' not in table 'customers'"),
        ({"key": "crm_id"}, "source.key: column 'crm_id' not in table 'customers'"),
        ({"params": "  email: mail\n"}, "params.email: column 'mail' not in table 'customers'"),
        ({"table": "clients"}, "table 'clients' not found (have: customers)"),
        (
            {"table": None, "query": "SELECT customer_id, city, updated_at FROM customers"},
            "params.email: column 'email' not in the query",
        ),
        ({"table": None, "query": "SELECT * FROM nowhere"}, "query failed: OperationalError"),
    ],
)
def test_each_column_and_object_the_sql_source_needs_is_probed(
    tmp_path: Path, change: dict[str, str | None], expected: str
) -> None:
    url = _database(tmp_path / "crm.db")
    bad = _sql_mapping(tmp_path / "maps", "crm.yaml", url, **change)  # type: ignore[arg-type]
    result = _validate(tmp_path / "maps")
    assert result.exit_code == 1, result.output
    (line,) = _problems(result)
    assert line.startswith(f"{bad}: crm: ") and expected in line, line


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_a_column_missing_on_a_database_server_is_found(
    tmp_path: Path, request: pytest.FixtureRequest, server: str
) -> None:
    url = request.getfixturevalue(f"{server}_url")
    name = f"probe_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(f"CREATE TABLE {name} (customer_id VARCHAR(40) PRIMARY KEY, city TEXT, ts DATE)")
        )
    try:
        good = _sql_mapping(
            tmp_path / "maps", "good.yaml", url, table=name, cursor="ts", params="  city: city\n"
        )
        assert _validate(tmp_path / "maps").exit_code == 0
        good.unlink()
        bad = _sql_mapping(tmp_path / "maps", "bad.yaml", url, table=name, cursor="ts")
        result = _validate(tmp_path / "maps")
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {name}"))
        engine.dispose()
    assert result.exit_code == 1, result.output
    assert _problems(result) == [
        f"{bad}: bad: params.email: column 'email' not in table '{name}' "
        "(have: customer_id, city, ts)"
    ]


def test_a_missing_sqlite_file_and_an_unreachable_server_are_problems_without_secrets(
    tmp_path: Path,
) -> None:
    maps = tmp_path / "maps"
    missing = _sql_mapping(maps, "gone.yaml", f"sqlite:///{tmp_path / 'gone.db'}")
    # nothing listens on port 1; the password must not be printed
    down = _sql_mapping(
        maps,
        "down.yaml",
        "postgresql+psycopg2://etl:s3cret-pw@127.0.0.1:1/crm",
        params="  tier: tier\n",
    )
    result = _validate(maps)
    assert result.exit_code == 1, result.output
    lines = _problems(result)
    assert len(lines) == 2, lines
    by_file = {line.split(": ", 1)[0]: line for line in lines}
    assert f"SQLite database '{tmp_path / 'gone.db'}' does not exist" in by_file[str(missing)]
    assert "postgresql+psycopg2://etl:***@127.0.0.1:1/crm" in by_file[str(down)]
    assert "s3cret-pw" not in result.output


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://etl:s3cret-pw@db:notaport/crm", "source.url: not a SQLAlchemy URL"),
        ("nonsense-s3cret-pw", "source.url: not a SQLAlchemy URL"),
        (
            "nosuchdb://etl:s3cret-pw@db/crm",
            "source.url: no driver for nosuchdb://etl:***@db/crm: Can't load plugin",
        ),
    ],
)
def test_a_url_that_cannot_be_used_is_a_problem_without_secrets(
    tmp_path: Path, url: str, expected: str
) -> None:
    bad = _sql_mapping(tmp_path / "maps", "crm.yaml", url)
    result = _validate(tmp_path / "maps")
    assert result.exit_code == 1, result.output
    (line,) = _problems(result)
    assert line.startswith(f"{bad}: crm: {expected}"), line
    assert "s3cret-pw" not in result.output


def test_csv_exports_need_a_header_with_the_mapped_columns(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "pos_2026-11-20.csv").write_text("customer_id,store,amount\nC1,Delft,1.00\n")
    (exports / "pos_2026-11-21.csv").write_text("customer_id,shop,amount\nC1,Delft,1.00\n")
    (exports / "pos_2026-11-22.csv").write_text("")
    maps = tmp_path / "maps"
    pos = _csv_mapping(maps, "pos.yaml", f"{exports}/*.csv")
    result = _validate(maps)
    assert result.exit_code == 1, result.output
    lines = _problems(result)
    assert lines == [
        f"{pos}: pos: {exports / 'pos_2026-11-21.csv'}: column(s) 'store' not in the header "
        "(have: customer_id, shop, amount)",
        f"{pos}: pos: {exports / 'pos_2026-11-22.csv'}: empty file (no header)",
    ]
    assert _validate(maps, "--offline").exit_code == 0


def test_good_sources_are_ok_next_to_a_bad_one_and_a_glob_matching_no_file_yet_is_fine(
    tmp_path: Path,
) -> None:
    url = _database(tmp_path / "crm.db")
    maps = tmp_path / "maps"
    _sql_mapping(maps, "crm.yaml", url, key="customer_id")
    _sql_mapping(
        maps,
        "crm_query.yaml",
        url,
        table=None,
        query="SELECT customer_id, city AS town, updated_at FROM customers",
        params="  town: town\n",
    )
    bad = _sql_mapping(maps, "crm_bad.yaml", url, params="  tier: tier\n")
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "pos_2026-11-21.csv").write_text(
        "receipt,customer_id,store,amount\nR1,C1,Delft,1.00\n"
    )
    _csv_mapping(maps, "pos.yaml", f"{exports}/*.csv")
    _csv_mapping(maps, "later.yaml", f"{tmp_path}/not_yet/*.csv", params="  visits: visits\n")
    result = _validate(maps)
    assert result.exit_code == 1, result.output
    for name in ("crm", "crm_query", "pos", "later"):
        assert f"ok  {name}:" in result.stdout
    assert "ok  crm_bad" not in result.stdout
    assert _problems(result) == [
        f"{bad}: crm_bad: params.tier: column 'tier' not in table 'customers' "
        "(have: customer_id, email, city, updated_at)"
    ]


def test_problems_of_every_mapping_and_file_errors_are_listed_together(tmp_path: Path) -> None:
    url = _database(tmp_path / "crm.db")
    maps = tmp_path / "maps"
    _sql_mapping(maps, "a.yaml", url, identity="client_id")
    _sql_mapping(maps, "b.yaml", url, cursor="changed_at", params="  town: city\n")
    _sql_mapping(maps, "c.yaml", url, params="  tier: tier\n").write_text("name: [c\n")
    result = _validate(maps)
    assert result.exit_code == 1
    lines = _problems(result)
    assert [line.split(": ", 1)[0] for line in lines] == [
        str(maps / "a.yaml"),
        str(maps / "b.yaml"),
        str(maps / "c.yaml:2"),
    ], lines
    assert "3 error(s) in" in result.stderr


def test_the_installed_command_exits_non_zero_with_one_line_and_no_traceback(
    tmp_path: Path,
) -> None:
    url = _database(tmp_path / "crm.db")
    bad = _sql_mapping(tmp_path / "maps", "crm.yaml", url, identity="client_id")
    connector = Path(sys.executable).parent / "connector"
    done = subprocess.run(
        [str(connector), "mappings", "validate", "--dir", str(tmp_path / "maps")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"{bad}: crm: identity.column: column 'client_id' not in table 'customers' "
        "(have: customer_id, email, city, updated_at)",
        f"1 error(s) in {tmp_path / 'maps'}",
    ]
