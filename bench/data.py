"""Deterministic CRM/POS-like rows (~200 bytes each), as a CSV export and a SQLite table.

Seeded and vectorised (numpy + pyarrow compute), so 5M rows take seconds to make. About
1% of the rows repeat an earlier customer id (an update of the same profile); names are
unicode, notes hold commas, quotes and newlines, amounts are decimals (some with three
places, some empty), timestamps ISO 8601 (some with an offset, some date-only).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DAY = "2026-01-02"
NEXT_DAY = "2026-01-03"  # the night after DAY (bench.cases.nightly)
COLUMNS = (
    "customer_id",
    "email",
    "first_name",
    "last_name",
    "city",
    "tier",
    "ltv",
    "last_purchase_at",
    "notes",
    "address",
    "updated_at",
)
FIRST = [
    "Zoë", "José", "Łukasz", "Søren", "Anaïs", "Jürgen", "Chloé", "Mohammed", "Siobhán",
    "Đorđe", "さくら", "Björn", "Ana", "Noël", "Ægir", "Li", "Çağla", "Renée", "Tomás", "Eva",
]  # fmt: skip
LAST = [
    "Müller", "O'Brien", "de Vries", "Nowak", "García", "Jansen", "Øster", "Dubois", "佐藤",
    "Smith-Jones", "van den Berg", "Kowalczyk", "Núñez", "Ivanova", "Rossi", "Björk",
]  # fmt: skip
CITY = [
    "Amsterdam", "São Paulo", "Zürich", "Kraków", "Den Haag", "New York, NY", "Köln",
    "Malmö", "東京", "Rotterdam", "Paris", "Łódź", "Reykjavík", "Utrecht",
]  # fmt: skip
TIER = ["Gold", "SILVER", "bronze", "", "Platinum", "gold"]
PHRASES = [
    "called about order 1234, wants a refund",
    'said "call me back" after 5pm',
    "prefers email; no phone calls",
    "line one\nline two of the note",
    "VIP since 2019 - 10% discount",
    "moved to new address, update pending",
    "asked for the catalogue (print)",
    "complaint: late delivery & damaged box",
    "",
    "n/a",
    "likes ☕ and 🍰",
    "follow-up: 2026-01-15",
]
STREETS = ["Keizersgracht", "Rua Augusta", "Bahnhofstraße", "ul. Floriańska", "Main St."]
DOMAINS = ["example.com", "Example.ORG", "mail.example.net", "post.example.de"]


def _pick(rng: np.random.Generator, words: list[str], n: int) -> pa.Array:
    return pc.take(pa.array(words, pa.string()), pa.array(rng.integers(0, len(words), n)))


def _digits(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pa.array(values).cast(pa.string()), width=width, padding="0")


def make_rows(rows: int, seed: int = 42, start: int = 0) -> pa.Table:
    """``rows`` rows (all strings) of the chunk starting at row ``start`` of the data set."""
    rng = np.random.default_rng([seed, start])
    n = rows
    index = np.arange(start, start + n, dtype=np.int64)
    dup = rng.random(n) < 0.01
    # a duplicate repeats an id seen earlier in the file (an update of the same customer)
    index[dup] = (rng.random(int(dup.sum())) * np.maximum(index[dup], 1)).astype(np.int64)
    ids = pc.binary_join_element_wise("C", _digits(index, 10), "")
    first = _pick(rng, FIRST, n)
    last = _pick(rng, LAST, n)
    local = pc.binary_join_element_wise(
        pc.utf8_lower(pc.ascii_lower(_pick(rng, ["anna", "Bob", "carla", "DAAN", "eve"], n))),
        _digits(index % 100_000, 5),
        ".",
    )
    email = pc.binary_join_element_wise(
        pc.if_else(pa.array(rng.random(n) < 0.05), " ", ""),
        local,
        "@",
        _pick(rng, DOMAINS, n),
        "",
    )
    cents = rng.integers(0, 10_000_000, n)
    ltv = pc.binary_join_element_wise(
        pa.array(cents // 100).cast(pa.string()), _digits(cents % 100, 2), "."
    )
    ltv = pc.if_else(pa.array(rng.random(n) < 0.1), pc.binary_join_element_wise(ltv, "5", ""), ltv)
    ltv = pc.if_else(pa.array(rng.random(n) < 0.03), "", ltv)
    base = np.datetime64("2025-01-01T00:00:00", "s")
    moments = base + rng.integers(0, 365 * 86400, n).astype("timedelta64[s]")
    stamp = pc.strftime(pa.array(moments), format="%Y-%m-%dT%H:%M:%S")
    kind = rng.random(n)
    stamp = pc.if_else(
        pa.array(kind < 0.1), pc.binary_join_element_wise(stamp, "+02:00", ""), stamp
    )
    stamp = pc.if_else(pa.array(kind > 0.97), pc.utf8_slice_codeunits(stamp, 0, 10), stamp)
    notes = pc.binary_join_element_wise(_pick(rng, PHRASES, n), _pick(rng, PHRASES, n), " / ")
    address = pc.binary_join_element_wise(
        _pick(rng, STREETS, n),
        pa.array(rng.integers(1, 400, n)).cast(pa.string()),
        pc.binary_join_element_wise(_digits(rng.integers(1000, 9999, n), 4), "AB", " "),
        " ",
    )
    updated = pc.strftime(
        pa.array(np.datetime64(f"{DAY}T00:00:00", "s") + (index % 86400).astype("timedelta64[s]")),
        format="%Y-%m-%d %H:%M:%S",
    )
    return pa.table(
        [
            ids,
            email,
            first,
            last,
            _pick(rng, CITY, n),
            _pick(rng, TIER, n),
            ltv,
            stamp,
            notes,
            address,
            updated,
        ],
        names=list(COLUMNS),
    )


def _csv_field(col: pa.Array) -> pa.Array:
    """RFC 4180: quoted (quotes doubled) only when the value needs it."""
    needs = pc.match_substring_regex(col, '[",\r\n]')
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(col, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, col)


def csv_bytes(table: pa.Table) -> bytes:
    """The rows as CSV records, each ending in ``\\n``."""
    fields = [_csv_field(table.column(i).combine_chunks()) for i in range(table.num_columns)]
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*fields, ","), "\n", "")
    lines = lines.cast(pa.large_string())
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
    lo, hi = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    return memoryview(lines.buffers()[2])[lo:hi].tobytes()


CHUNK = 250_000


def read_csv(path: Path | str) -> pa.Table:
    """A generated export read back as it was written: every value text, none null."""
    import pyarrow.csv as pacsv

    return pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(COLUMNS, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def write_csv(path: Path, rows: int, seed: int = 42) -> None:
    """The data set as a CSV export with a header (written in chunks, then renamed)."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write((",".join(COLUMNS) + "\n").encode())
        for start in range(0, rows, CHUNK):
            fh.write(csv_bytes(make_rows(min(CHUNK, rows - start), seed, start)))
    tmp.replace(path)


def write_sqlite(path: Path, rows: int, seed: int = 42) -> None:
    """The same rows as a SQLite table ``customers`` (text columns, primary key ``row_id``)."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    cols = ", ".join(f"{c} TEXT" for c in COLUMNS)
    con.execute(f"CREATE TABLE customers (row_id INTEGER PRIMARY KEY, {cols})")
    marks = ", ".join("?" * (len(COLUMNS) + 1))
    for start in range(0, rows, CHUNK):
        table = make_rows(min(CHUNK, rows - start), seed, start)
        data = [table.column(c).to_pylist() for c in COLUMNS]
        keys = range(start, start + table.num_rows)
        con.executemany(f"INSERT INTO customers VALUES ({marks})", zip(keys, *data, strict=True))
        con.commit()
    con.execute("CREATE INDEX customers_updated_at ON customers (updated_at, row_id)")
    con.commit()
    con.close()
    tmp.replace(path)


def dataset(folder: Path, rows: int, kind: str, seed: int = 42) -> Path:
    """The cached data file of ``rows`` rows (``csv`` or ``sqlite``), made when missing."""
    sub = folder / f"{kind}-{rows}-{seed}"
    sub.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        path = sub / f"crm_{DAY}.csv"
        if not path.exists():
            write_csv(path, rows, seed)
    else:
        path = sub / "crm.db"
        if not path.exists():
            write_sqlite(path, rows, seed)
    return path


# -- the same rows in the local database servers -------------------------------------------

SERVERS = {"postgres": "CONNECTOR_TEST_POSTGRES_URL", "mariadb": "CONNECTOR_TEST_MARIADB_URL"}
# the servers' columns: the export's as text, the cursor a timestamp, a key in file order
_TEXT = ", ".join(f"{c} TEXT" for c in COLUMNS if c != "updated_at")
_DDL = {
    "postgres": (
        "CREATE TABLE {table} (row_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        + _TEXT
        + ", updated_at TIMESTAMP NOT NULL)"
    ),
    "mariadb": (
        "CREATE TABLE {table} (row_id BIGINT AUTO_INCREMENT PRIMARY KEY, "
        + _TEXT
        + ", updated_at DATETIME NOT NULL) DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_bin"
    ),
}


def server_url(server: str) -> str | None:
    """The server's SQLAlchemy URL from its environment variable (``SERVERS``), if set."""
    return os.environ.get(SERVERS[server]) or None


def server_table(rows: int, seed: int = 42) -> str:
    return f"bench_crm_{rows}_{seed}"


def load_server(server: str, csv_path: Path, rows: int, seed: int = 42) -> str:
    """The data set's table in ``server`` (``customers`` of the CSV export, loaded from it in
    file order with a ``row_id`` key and an index on the cursor), made when missing; its
    name. Loaded under another name and renamed, so a half-made table is never used."""
    from sqlalchemy import create_engine, inspect, text

    from connector.sql_urls import with_installed_driver

    url = server_url(server)
    assert url is not None, f"{SERVERS[server]} is not set"
    table = server_table(rows, seed)
    # MariaDB: LOAD DATA LOCAL reads the export on this side (the server must allow it too)
    local = {"local_infile": True} if server == "mariadb" else {}
    engine = create_engine(with_installed_driver(url), connect_args=local)
    try:
        with engine.connect() as conn:
            if inspect(conn).has_table(table):
                count = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                if count == rows:
                    return table
                conn.execute(text(f"DROP TABLE {table}"))
                conn.commit()
        loading = f"{table}_loading"
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute(f"DROP TABLE IF EXISTS {loading}")
            cur.execute(_DDL[server].format(table=loading))
            columns = ", ".join(COLUMNS)
            if server == "postgres":
                with open(csv_path, "rb") as fh:
                    cur.copy_expert(  # type: ignore[attr-defined]
                        f"COPY {loading} ({columns}) FROM STDIN WITH (FORMAT csv, HEADER, "
                        f"FORCE_NOT_NULL ({columns}))",
                        fh,
                    )
                cur.execute(f"CREATE INDEX {table}_cursor ON {loading} (updated_at, row_id)")
                cur.execute(f"ANALYZE {loading}")
                cur.execute(f"ALTER TABLE {loading} RENAME TO {table}")
            else:
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {loading} CHARACTER SET utf8mb4 "
                    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
                    f"LINES TERMINATED BY '\\n' IGNORE 1 LINES ({columns})",
                    (str(csv_path),),
                )
                cur.execute(f"CREATE INDEX {table}_cursor ON {loading} (updated_at, row_id)")
                cur.execute(f"RENAME TABLE {loading} TO {table}")
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()
    return table


def drop_server_table(server: str, rows: int, seed: int = 42) -> None:
    """Drop the data set's cached table from ``server`` (when its URL is set)."""
    from sqlalchemy import create_engine, text

    from connector.sql_urls import with_installed_driver

    url = server_url(server)
    if url is None:
        return
    engine = create_engine(with_installed_driver(url))
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {server_table(rows, seed)}"))
    finally:
        engine.dispose()
