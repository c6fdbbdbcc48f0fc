"""One measurement per process: ``python -m bench.cases <case> '<json args>'`` prints JSON.

Each case runs in a fresh process so that its peak RSS (taken by the parent with
``os.wait4``) is its own, and no case warms the page cache or the allocator for another
beyond what the reference also gets.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.data import DAY, NEXT_DAY, SERVERS

MAPPING_PARAMS: dict[str, Any] = {
    "email": {"column": "email", "transform": ["strip", "lower"]},
    "firstName": "first_name",
    "lastName": "last_name",
    "city": "city",
    "loyaltyTier": {"column": "tier", "transform": "lower"},
    "lifetimeValue": {"column": "ltv", "type": "decimal", "format": "0.00"},
    "lastPurchase": {
        "column": "last_purchase_at",
        "type": "datetime",
        "timezone": "Europe/Amsterdam",
    },
    "notes": "notes",
}


def mapped_columns() -> tuple[str, ...]:
    """The table's columns ``bench_mapping`` reads (identity, params, cursor), in the table's
    order: what the SQL floors select, as the connector selects only those."""
    from bench.data import COLUMNS

    used = {"customer_id", "updated_at"} | {
        p if isinstance(p, str) else p["column"] for p in MAPPING_PARAMS.values()
    }
    return tuple(c for c in COLUMNS if c in used)


def bench_mapping(source: dict[str, Any], destination: str = "target") -> Any:
    from connector.mapping import SourceMapping

    return SourceMapping.model_validate(
        {
            "name": "bench",
            "source": source,
            "destination": destination,
            "identity": {
                "column": "customer_id",
                "type": "thirdPartyId" if destination == "target" else "customerid",
            },
            "params": MAPPING_PARAMS,
        }
    )


def source_of(kind: str, path: str) -> dict[str, Any]:
    """The mapping's source: ``csv`` and ``sqlite`` read the file ``path``; ``postgres`` and
    ``mariadb`` the table ``path`` in the server their environment variable names (the
    mapping expands it: the URL is in no argument and no result)."""
    if kind == "csv":
        return {"kind": "csv", "path": str(Path(path).parent / "*.csv")}
    if kind in SERVERS:
        return {
            "kind": "sql",
            "url": "${" + SERVERS[kind] + "}",
            "table": path,
            "cursor": "updated_at",
        }
    return {
        "kind": "sql",
        "url": f"sqlite:///{path}",
        "table": "customers",
        "cursor": "updated_at",
    }


def _settings(work: Path, **overrides: Any) -> Any:
    from connector.settings import load_settings

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return load_settings(state_dir=work / "state", mappings_dir=work / "mappings", **overrides)


def _ledger(settings: Any) -> Any:
    from connector.ledger import Ledger

    ledger = Ledger(settings.ledger_url)
    ledger.upgrade()
    return ledger


def _system_seconds() -> float:
    """CPU seconds this process (every thread) has spent in the kernel so far."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def figure(x: float) -> float:
    """Four significant figures: 13.29 s stays 13.29, and a tiny run's 0.004 s is not 0.0
    (rounded to hundredths, a 2,000-row reference's CPU time came out 0.0 in CI)."""
    return float(f"{x:.4g}")


# -- cases ------------------------------------------------------------------------------------


def reference(path: str, work: str) -> dict[str, Any]:
    """The floor: pyarrow reads the CSV file and writes it back, no transformation."""
    import pyarrow.csv as pacsv

    out = Path(work) / "reference.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    started, cpu, sys_s = time.perf_counter(), time.process_time(), _system_seconds()
    # newlines_in_values: the notes hold quoted newlines; without it the read fails
    table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True))
    pacsv.write_csv(table, out)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    sys_s = _system_seconds() - sys_s
    rows = table.num_rows
    del table
    out.unlink()
    return {"seconds": seconds, "cpu_s": figure(cpu), "sys_s": figure(sys_s), "rows": rows}


def reference_sqlite(path: str, work: str) -> dict[str, Any]:
    """The SQLite floor: sqlite3 fetches every row, pyarrow writes them as CSV, in chunks."""
    import sqlite3

    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = mapped_columns()
    out = Path(work) / "reference.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    con = sqlite3.connect(path)
    cur = con.execute(f"SELECT {', '.join(columns)} FROM customers ORDER BY updated_at, row_id")
    rows = 0
    schema = pa.schema([(c, pa.string()) for c in columns])
    with pacsv.CSVWriter(out, schema) as writer:
        while batch := cur.fetchmany(100_000):
            cols = list(zip(*batch, strict=True))
            writer.write_table(pa.table([pa.array(c, pa.string()) for c in cols], schema=schema))
            rows += len(batch)
    con.close()
    seconds = time.perf_counter() - started
    out.unlink()
    return {"seconds": seconds, "rows": rows}


def reference_server(server: str, table: str, work: str) -> dict[str, Any]:
    """A server's floor: its rows in cursor order, as it sends them, written as CSV by
    pyarrow. PostgreSQL: ``COPY (SELECT ...) TO STDOUT`` (CSV) read by pyarrow's streaming
    CSV reader as the server sends it; MariaDB (no COPY): pymysql fetches every row,
    unbuffered, pyarrow writes them, in chunks."""
    import psycopg2  # noqa: F401  (imported before the clock starts, as the pipeline's are)
    import pyarrow.csv  # noqa: F401
    import pymysql  # noqa: F401

    import connector.sources.sql_paths  # noqa: F401

    out = Path(work) / "reference.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    started, cpu, sys_s = time.perf_counter(), time.process_time(), _system_seconds()
    rows = (_copy_out if server == "postgres" else _fetch_out)(server, table, out)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    sys_s = _system_seconds() - sys_s
    out.unlink()
    return {"seconds": seconds, "cpu_s": figure(cpu), "sys_s": figure(sys_s), "rows": rows}


def _server_query(table: str) -> str:
    return f"SELECT {', '.join(mapped_columns())} FROM {table} ORDER BY updated_at, row_id"


def _copy_out(server: str, table: str, out: Path) -> int:
    import os
    import threading

    import psycopg2
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from bench.data import server_url
    from connector.sources.sql_paths import libpq_conninfo
    from connector.sql_urls import with_installed_driver

    con = psycopg2.connect(libpq_conninfo(with_installed_driver(server_url(server) or "")))
    read_end, write_end = os.pipe()
    failed: list[BaseException] = []

    def send() -> None:  # the server's COPY into the pipe, while pyarrow reads the other end
        try:
            with os.fdopen(write_end, "wb") as sink, con.cursor() as cur:
                cur.copy_expert(
                    f"COPY ({_server_query(table)}) TO STDOUT WITH (FORMAT csv, HEADER)", sink
                )
        except BaseException as exc:
            failed.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    rows = 0
    with os.fdopen(read_end, "rb") as source:
        reader = pacsv.open_csv(
            source,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(mapped_columns(), pa.string())
            ),
        )
        with pacsv.CSVWriter(out, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        # closed and let go here, while the interpreter runs: a reader released late, on
        # pyarrow's own thread, with the Python file still in it, aborted the process at exit
        # once ("terminate called without an active exception"; a pipe cannot be opened by
        # path, as connector.ledger.delivered does with its file)
        reader.close()
        del reader
    sender.join()
    con.close()
    if failed:
        raise failed[0]
    return rows


def _fetch_out(server: str, table: str, out: Path) -> int:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pymysql
    import pymysql.cursors

    from bench.data import server_url
    from connector.sql_urls import with_installed_driver

    columns = mapped_columns()
    url = with_installed_driver(server_url(server) or "")
    con = pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=url.database,
        charset="utf8mb4",
        cursorclass=pymysql.cursors.SSCursor,
    )
    schema = pa.schema([(c, pa.string()) for c in columns])
    rows = 0
    with con.cursor() as cur, pacsv.CSVWriter(out, schema) as writer:
        cur.execute(_server_query(table))
        while batch := cur.fetchmany(100_000):
            cols = list(zip(*batch, strict=True))
            stamps = columns.index("updated_at")  # a DATETIME: pymysql's datetime as text
            cols[stamps] = tuple(str(v) for v in cols[stamps])
            arrays = [pa.array(c, pa.string()) for c in cols]
            writer.write_table(pa.table(arrays, schema=schema))
            rows += len(batch)
    con.close()
    return rows


def _outbox(settings: Any, ledger: Any, destination: str = "target") -> tuple[Any, float]:
    """The account's outbox built (``connector.outbox.build``): its result and seconds."""
    from connector.outbox import build as outbox_build

    started = time.perf_counter()
    built = outbox_build.build(settings, ledger, destination)
    return built, time.perf_counter() - started


def _stages(results: list[Any], outbox_s: float) -> dict[str, float]:
    """Seconds per stage, the outbox last (``figure``: a tiny run's build is not 0.0)."""
    return {**{r.stage: r.stats["seconds"] for r in results}, "outbox": figure(outbox_s)}


def pipeline(kind: str, path: str, work: str, outbox_url: str | None = None) -> dict[str, Any]:
    """extract -> transform -> profile store -> batch files (the account's outbox) of one
    partition, with the stage times. ``outbox_url``: the outbox in an object store (the
    batch files uploaded as they are finished; the case removes them at the end)."""
    from connector import pipeline as pl

    settings = _settings(Path(work), timezone="UTC", outbox_url=outbox_url)
    ledger = _ledger(settings)
    mapping = bench_mapping(source_of(kind, path))
    started, cpu, sys_s = time.perf_counter(), time.process_time(), _system_seconds()
    results = pl.prepare(mapping, DAY, settings, ledger)
    built, outbox_s = _outbox(settings, ledger, str(mapping.destination))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    sys_s = _system_seconds() - sys_s
    extract, transform, profiles = results
    out = {
        "seconds": seconds,
        "cpu_s": figure(cpu),  # every thread of the process: both cores' work
        "sys_s": figure(sys_s),  # of which in the kernel (on this VM: mostly page faults)
        "rows_in": extract.counts["rows_in"],
        "rejected": extract.counts["rejected"],
        "duplicates_merged": transform.counts["duplicates_merged"],
        "changed": profiles.counts["rows_out"],  # profiles new or changed in the store
        "rows_out": built.rows,  # rows written into batch files
        "batches": len(built.batches),
        "batch_bytes": sum(b.byte_size for b in built.batches),
        "stages": _stages(results, outbox_s),
    }
    ledger.dispose()
    shutil.rmtree(work, ignore_errors=True)
    if outbox_url is not None:
        _empty(outbox_url)
    return out


def _empty(url: str) -> None:
    """Remove every object under ``url`` (the next run starts from an empty outbox)."""
    from connector import storage

    for info in storage.location(url).list():
        storage.delete(info.url)


@contextlib.contextmanager
def sandbox_process(**options: Any) -> Iterator[str]:
    """A sandbox server in a child process (its own GIL); yields its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.sandbox_server", json.dumps(options)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url:
            raise RuntimeError("the sandbox did not start")
        yield url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _open_batches(ledger: Any) -> int:
    from connector.ledger import Batch

    with ledger.session() as s:
        return int(
            s.query(Batch).filter(Batch.state.in_(("queued", "claimed", "submitted"))).count()
        )


def end_to_end(path: str, work: str, limit_s: float = 600) -> dict[str, Any]:
    """CSV -> batch files -> submitted to the sandbox -> status complete, confirmed rows."""
    from connector import delivery
    from connector import pipeline as pl
    from connector.ledger import Batch, Delivered
    from connector.settings import TargetSettings

    quota = 100_000_000
    with sandbox_process(
        daily_quota=quota, calls_per_minute=100_000, processing_delay_s=0.0
    ) as url:
        target = TargetSettings(
            base_url=url, calls_per_minute=100_000, poll_interval_s=0.2, timeout_s=300
        )
        settings = _settings(
            Path(work), timezone="UTC", off_peak="always", daily_quota=quota, target=target
        )
        ledger = _ledger(settings)
        mapping = bench_mapping(source_of("csv", path))
        started = time.perf_counter()
        pl.prepare(mapping, DAY, settings, ledger)
        _outbox(settings, ledger)  # the day's profiles as batch files
        prepared = time.perf_counter()
        while _open_batches(ledger):
            delivery.drain(settings, ledger, destination="target")
            delivery.poll(settings, ledger, destination="target", wait=True, timeout_s=limit_s)
            if time.perf_counter() - started > limit_s:
                raise RuntimeError("delivery did not settle in time")
        seconds = time.perf_counter() - started
        with ledger.session() as s:
            confirmed = s.query(Delivered).count()
            states = sorted({b.state for b in s.query(Batch)})
            batches = s.query(Batch).count()
        ledger.dispose()
    shutil.rmtree(work, ignore_errors=True)
    return {
        "seconds": seconds,
        "prepare_s": prepared - started,
        "deliver_s": seconds - (prepared - started),
        "confirmed": confirmed,
        "batches": batches,
        "batch_states": states,
    }


def nightly(path: str, work: str, every: int = 10) -> dict[str, Any]:
    """The night after a first load: the same export again with one customer in ``every``
    changed (a new tier), the whole first load confirmed delivered. Times ``prepare`` and
    the outbox of the second night: every profile of the day is merged into the store, which
    finds the changed ones; the outbox compares those with their confirmed digests."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from bench.data import read_csv
    from connector import ledger as ledger_mod
    from connector import pipeline as pl
    from connector.ledger import COMPLETE, Batch
    from connector.outbox.manifests import delivered_table

    settings = _settings(Path(work), timezone="UTC")
    ledger = _ledger(settings)
    exports = Path(work) / "exports"
    exports.mkdir()
    (exports / f"crm_{DAY}.csv").symlink_to(path)
    table = read_csv(path)
    changed = pa.array(np.arange(table.num_rows) % every == 0)
    at = table.schema.get_field_index("tier")
    table = table.set_column(at, "tier", pc.if_else(changed, "Diamond", table.column("tier")))
    pacsv.write_csv(table, exports / f"crm_{NEXT_DAY}.csv")
    del table
    mapping = bench_mapping({"kind": "csv", "path": str(exports / "*.csv")})
    pl.prepare(mapping, DAY, settings, ledger)
    first, _ = _outbox(settings, ledger)
    # the first night confirmed: its digests delivered, its batches complete
    dest_key = ledger_mod.destination_key("target", settings)
    with ledger.session() as session:
        batches = session.query(Batch).all()
        for batch in batches:
            ledger_mod.record_delivered(
                session,
                dest_key,
                # its params are named in its metadata
                delivered_table(pq.read_table(batch.manifest_path)),
                partition=batch.partition,
                batch_id=batch.id,
            )
            batch.state = COMPLETE
    started = time.perf_counter()
    results = pl.prepare(mapping, NEXT_DAY, settings, ledger)
    out, outbox_s = _outbox(settings, ledger)
    seconds = time.perf_counter() - started
    extract, _, profiles = results
    ledger.dispose()
    shutil.rmtree(work, ignore_errors=True)
    return {
        "seconds": seconds,
        "first_night_rows_out": first.rows,
        "rows_in": extract.counts["rows_in"],
        "unchanged": profiles.counts["unchanged"],  # the store held the day's values already
        "changed": profiles.counts["rows_out"],
        "rows_out": out.rows,  # the changed profiles' rows written into batch files
        "stages": _stages(results, outbox_s),
    }


def _table_reads(server: str, table: str) -> dict[str, int]:
    """PostgreSQL's own count of the rows it read from ``table`` so far: by sequential scans
    and fetched through an index (``pg_stat_user_tables``; a backend reports its counts
    when its transaction ends, so the caller waits a moment after a read)."""
    from sqlalchemy import create_engine, text

    from bench.data import server_url
    from connector.sql_urls import with_installed_driver

    engine = create_engine(with_installed_driver(server_url(server) or ""))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            seq, idx = conn.execute(
                text(
                    "SELECT coalesce(seq_tup_read, 0), coalesce(idx_tup_fetch, 0) "
                    "FROM pg_stat_user_tables WHERE relname = :t"
                ),
                {"t": table},
            ).one()
    finally:
        engine.dispose()
    return {"seq_tup_read": int(seq), "idx_tup_fetch": int(idx)}


def _night_run(mapping: Any, day: str, settings: Any, ledger: Any, table: str) -> dict[str, Any]:
    """One night of the SQL mapping: prepare + outbox, timed, with the rows the connector
    received and those PostgreSQL read from the table for it."""
    from connector import pipeline as pl

    before = _table_reads("postgres", table)
    started, cpu = time.perf_counter(), time.process_time()
    results = pl.prepare(mapping, day, settings, ledger)
    built, outbox_s = _outbox(settings, ledger)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    time.sleep(1.5)  # the reading backends' statistics reach the collector
    after = _table_reads("postgres", table)
    extract, _, profiles = results
    return {
        "seconds": figure(seconds),
        "cpu_s": figure(cpu),
        "rows_read": extract.counts["rows_in"],  # rows the connector received
        "server_rows_read": {k: after[k] - before[k] for k in after},
        "changed": profiles.counts["rows_out"],
        "rows_out": built.rows,
        "stages": _stages(results, outbox_s),
    }


def sql_nightly(table: str, work: str, every: int = 100) -> dict[str, Any]:
    """The nightly cost of a PostgreSQL table (issue 22): the bench table copied (so the
    cached one stays as loaded), a full first run of its day (every row) into batch files,
    that night confirmed delivered, then one row in ``every`` updated in the database (a new
    tier, its cursor moved into the next day) and the next night's run. Each night: wall
    and CPU seconds, the rows the connector received, and the table rows PostgreSQL read
    for it (sequential scans vs index fetches)."""
    import pyarrow.parquet as pq
    from sqlalchemy import create_engine, text

    from bench.data import server_url
    from connector import ledger as ledger_mod
    from connector.ledger import COMPLETE, Batch
    from connector.outbox.manifests import delivered_table
    from connector.sql_urls import with_installed_driver

    night = f"{table}_night"
    engine = create_engine(with_installed_driver(server_url("postgres") or ""))
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {night}"))
            conn.execute(text(f"CREATE TABLE {night} AS SELECT * FROM {table}"))
            conn.execute(text(f"ALTER TABLE {night} ADD PRIMARY KEY (row_id)"))
            conn.execute(text(f"CREATE INDEX {night}_cursor ON {night} (updated_at, row_id)"))
        with engine.connect() as conn:
            conn.execute(text(f"ANALYZE {night}"))
            table_rows = conn.execute(text(f"SELECT count(*) FROM {night}")).scalar_one()
        settings = _settings(Path(work), timezone="UTC")
        ledger = _ledger(settings)
        mapping = bench_mapping(source_of("postgres", night))
        first = _night_run(mapping, DAY, settings, ledger, night)
        key = ledger_mod.destination_key("target", settings)
        with ledger.session() as session:  # the first night confirmed: digests delivered
            for batch in session.query(Batch).all():
                ledger_mod.record_delivered(
                    session,
                    key,
                    delivered_table(pq.read_table(batch.manifest_path)),
                    partition=batch.partition,
                    batch_id=batch.id,
                )
                batch.state = COMPLETE
        with engine.begin() as conn:
            updated = conn.execute(
                text(
                    f"UPDATE {night} SET tier = 'Diamond', updated_at = "
                    f"TIMESTAMP '{NEXT_DAY}' + (row_id % 86400) * INTERVAL '1 second' "
                    f"WHERE row_id % {every} = 0"
                )
            ).rowcount
        with engine.connect() as conn:
            conn.execute(text(f"ANALYZE {night}"))
        second = _night_run(mapping, NEXT_DAY, settings, ledger, night)
        ledger.dispose()
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {night}"))
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "table_rows": table_rows,
        "updated": updated,
        "first_night": first,
        "next_night": second,
        "time_ratio": figure(second["seconds"] / first["seconds"]),
        "read_share": figure(second["rows_read"] / table_rows),
    }


POS_PARAMS: dict[str, Any] = {
    "lastStore": "store",
    "lastPurchaseAmount": {"column": "amount", "type": "decimal", "format": "0.00"},
    "lastReceipt": "receipt_id",
}


def _pos_export(crm_path: str, folder: Path) -> Path:
    """A POS export of the same day: a receipt for every second CRM customer (so half the
    CRM's profiles are fed by both mappings) and as many customers the CRM does not have."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from bench.data import read_csv

    crm = read_csv(crm_path).select(["customer_id", "city", "ltv"])
    every_second = crm.filter(pa.array(np.arange(crm.num_rows) % 2 == 0))
    n = every_second.num_rows
    ids = pa.concat_arrays(
        [
            every_second.column("customer_id").combine_chunks().cast(pa.string()),
            pc.binary_join_element_wise("POS-", pa.array(np.arange(n).astype(str)), ""),
        ]
    )
    stores = pa.concat_arrays([every_second.column("city").combine_chunks()] * 2)
    amounts = pa.concat_arrays([every_second.column("ltv").combine_chunks()] * 2)
    pos = pa.table(
        {
            "customer_id": ids,
            "store": stores.cast(pa.string()),
            "amount": amounts.cast(pa.string()),
            "receipt_id": pc.binary_join_element_wise(
                "R", pa.array(np.arange(2 * n).astype(str)), ""
            ),
        }
    )
    folder.mkdir(parents=True)
    path = folder / f"pos_{DAY}.csv"
    pacsv.write_csv(pos, path)
    return path


def two_mappings(path: str, work: str) -> dict[str, Any]:
    """What delivering profiles, not mapping rows, costs: the CRM export alone to batch files
    (one store), against the CRM export and a POS export of the same day feeding the same
    Target client (two stores joined into one full row per profile), in one process."""
    from connector import pipeline as pl
    from connector.mapping import SourceMapping

    out: dict[str, Any] = {}
    crm = bench_mapping(source_of("csv", path))
    pos_file = _pos_export(path, Path(work) / "pos")
    pos = SourceMapping.model_validate(
        {
            "name": "pos",
            "source": {"kind": "csv", "path": str(pos_file.parent / "*.csv")},
            "destination": "target",
            "identity": {"column": "customer_id", "type": "thirdPartyId"},
            "params": POS_PARAMS,
        }
    )
    for label, mappings in (("one_mapping", [crm]), ("two_mappings", [crm, pos])):
        settings = _settings(Path(work) / label, timezone="UTC")
        ledger = _ledger(settings)
        started = time.perf_counter()
        stages: dict[str, float] = {}
        for mapping in mappings:
            for result in pl.prepare(mapping, DAY, settings, ledger):
                key = f"{mapping.name}.{result.stage}"
                stages[key] = result.stats["seconds"]
        built, outbox_s = _outbox(settings, ledger)
        stages["outbox"] = figure(outbox_s)
        out[label] = {
            "seconds": round(time.perf_counter() - started, 2),
            "rows_out": built.rows,
            "params": len(built.param_names),
            "batches": len(built.batches),
            "batch_bytes": sum(b.byte_size for b in built.batches),
            "stages": stages,
        }
        ledger.dispose()
    shutil.rmtree(work, ignore_errors=True)
    return out


def sandbox(rows: int) -> dict[str, Any]:
    """The sandbox alone: one full-size v2 batch accepted and processed."""
    from connector.sandbox.benchmark import run

    return run(rows)


def copernica(
    profiles: int, work: str, concurrency: int | None = None, latency_ms: int = 0
) -> dict[str, Any]:
    """Profiles PUT into the sandbox's Copernica API (in its own process, ``latency_ms`` added
    to each answer), paced as the settings say (``concurrency``: the starting level, default
    the setting's); ``cpu_s`` is this process's, the client's alone."""
    from connector.destinations.copernica import CopernicaClient
    from connector.settings import CopernicaSettings

    with sandbox_process(copernica_databases={"shop": None}, latency_ms=latency_ms) as url:
        chosen = {} if concurrency is None else {"concurrency": concurrency}
        settings = CopernicaSettings(base_url=f"{url}/v3", database="shop", timeout_s=60, **chosen)
        items = [
            (
                f"C{i:010d}",
                {"email": f"p{i}@example.com", "firstname": "Zoë", "city": "São Paulo, SP"},
            )
            for i in range(profiles)
        ]
        with CopernicaClient(settings, match_field="customerid") as client:
            started, cpu_started = time.perf_counter(), time.process_time()
            results = client.put_many(items)
            seconds = time.perf_counter() - started
            cpu_s = time.process_time() - cpu_started
            pace = client.last_pace
    ok = sum(1 for r in results if r.ok)
    return {
        "seconds": seconds,
        "profiles": profiles,
        "ok": ok,
        "latency_ms": latency_ms,
        "concurrency": settings.concurrency,
        "peak_concurrency": pace.peak if pace else None,
        "profiles_per_s": ok / seconds if seconds else 0.0,
        "cpu_s": round(cpu_s, 2),
        "cpu_us_per_profile": round(cpu_s / profiles * 1e6) if profiles else None,
    }


def call_limit(ledger: str, work: str, calls: int = 2_000) -> dict[str, Any]:
    """What the account's calls-per-minute limit (``delivery.call_limit``) adds to each call:
    ``calls`` slots granted and answered in a row, the limit never reached (nothing waits).
    ``ledger``: ``sqlite`` (a file under ``work``) or ``postgres`` (a database of its own on
    the server CONNECTOR_TEST_POSTGRES_URL names, dropped afterwards)."""
    from connector.delivery.call_limit import LedgerCallLimiter
    from connector.ledger import Ledger

    with _bench_ledger(ledger, Path(work)) as url:
        led = Ledger(url)
        led.upgrade()
        limiter = LedgerCallLimiter(led, "target:bench", calls + 1)
        started = time.perf_counter()
        for _ in range(calls):
            with limiter.call():
                pass
        seconds = time.perf_counter() - started
        led.dispose()
    return {
        "ledger": ledger,
        "calls": calls,
        "seconds": figure(seconds),
        "calls_per_s": round(calls / seconds),
        "ms_per_call": figure(1000 * seconds / calls),
    }


def _confirmed_manifest(rows: int, night: int) -> Any:
    """Manifest rows of a ``rows``-profile Target batch, as ``settle`` reads them: identities
    in the source's order (not the ledger's), a digest each (``night`` changes them all),
    ``_filled`` flags over ``MAPPING_PARAMS`` (named in the schema's metadata)."""
    import hashlib

    import numpy as np
    import pyarrow as pa

    from connector.outbox.manifest_schema import PARAMS_KEY

    names = list(MAPPING_PARAMS)
    order = np.random.default_rng(7).permutation(rows)
    identities = [f"customer-{i:09d}@example.com" for i in order]
    digests = [hashlib.sha256(f"{night}:{i}".encode()).hexdigest() for i in order]
    patterns = ["1" * len(names), "11110000", "10101010", "11111110"]
    filled = [patterns[i % len(patterns)] for i in order]
    table = pa.table(
        {
            "_identity": pa.array(identities, pa.string()),
            "_source_ref": pa.array([f"crm:{i}" for i in order], pa.string()),
            "_digest": pa.array(digests, pa.string()),
            "_filled": pa.array(filled, pa.string()),
        }
    )
    return table.replace_schema_metadata({PARAMS_KEY: json.dumps(names)})


def ledger_writes(ledger: str, work: str, rows: int = 400_000) -> dict[str, Any]:
    """Recording a completed Target batch's ``rows`` confirmed profiles in the ledger, as
    ``delivery.settle`` does (manifest rows -> ``delivered_table`` -> ``record_delivered``):
    into a fresh ledger (the first night), then the same profiles again from a newer batch
    over the existing rows (the next night: every row updated). ``ledger``: ``sqlite`` (a
    file under ``work``) or ``postgres`` (a database of its own on the server
    CONNECTOR_TEST_POSTGRES_URL names, dropped afterwards)."""
    from sqlalchemy import func, select

    from connector.ledger import Batch, Delivered, Ledger, record_delivered
    from connector.outbox.manifests import delivered_table

    nights = [_confirmed_manifest(rows, night) for night in (1, 2)]
    key = "target:bench"
    seconds: list[float] = []
    with _bench_ledger(ledger, Path(work)) as url:
        led = Ledger(url)
        led.upgrade()
        with led.session() as session:
            batches = [
                Batch(
                    batch_key=f"bench-{night}",
                    mapping="bench",
                    partition=day,
                    destination="target",
                    destination_key=key,
                    path=f"/bench/{night}.batch",
                    manifest_path=f"/bench/{night}.manifest.parquet",
                    sha256=f"{night:064d}",
                    row_count=rows,
                    byte_size=0,
                )
                for night, day in ((1, DAY), (2, NEXT_DAY))
            ]
            session.add_all(batches)
            session.flush()
            batch_ids = [b.id for b in batches]
        for manifest, batch_id, day in zip(nights, batch_ids, (DAY, NEXT_DAY), strict=True):
            started = time.perf_counter()
            record_delivered(led, key, delivered_table(manifest), partition=day, batch_id=batch_id)
            seconds.append(time.perf_counter() - started)
        with led.session() as session:
            stored = session.execute(
                select(func.count()).where(Delivered.batch_id == batch_ids[1])
            ).scalar_one()
        led.dispose()
    return {
        "ledger": ledger,
        "rows": rows,
        "fresh_s": figure(seconds[0]),
        "update_s": figure(seconds[1]),
        "seconds": figure(max(seconds)),
        "rows_recorded": stored,  # every profile holds the newer night's digest
    }


@contextlib.contextmanager
def _bench_ledger(kind: str, work: Path) -> Iterator[str]:
    """A ledger URL of ``kind`` that only this case uses."""
    if kind == "sqlite":
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        yield f"sqlite:///{work / 'ledger.db'}"
        shutil.rmtree(work, ignore_errors=True)
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = os.environ[SERVERS[kind]]
    name = f"bench_ledger_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


SENSOR_REPEATS = 3
RUNNING_TICKS = ("steady", "new_file", "touched")


def pos_sensor(work: str, mappings: int, days: int) -> dict[str, Any]:
    """The ``pos_files`` sensor's ticks over ``mappings`` folders of ``days`` daily exports,
    every one already ingested: each tick as Dagster evaluates it (``evaluate_tick``: the
    settings, the ledger opened, the listing, the cursor), its seconds (the least of
    ``SENSOR_REPEATS``) and CPU-seconds, the runs it asked for and the cursor's size. The
    files it hashes are counted just before, by the core function on the same inputs
    (``new_source_files(...).hashed``), whose registry writes (the ETags of files
    found unchanged) are then undone, so the timed tick does the same work."""
    import datetime as dt
    import os

    import dagster as dg
    from sqlalchemy import select, update

    from bench import pos_folders
    from connector.defs import build_definitions
    from connector.defs.resources import (
        ConnectorResource,
        CopernicaResource,
        LedgerResource,
        TargetResource,
    )
    from connector.ledger import IngestedFile
    from connector.mapping import load_mappings
    from connector.sources.arrival_cursor import ArrivalCursor
    from connector.sources.arrivals import new_source_files

    root = Path(work)
    shutil.rmtree(root, ignore_errors=True)
    # the exports up to the day before yesterday; yesterday's is the new file that arrives
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    last_day = yesterday - dt.timedelta(days=1)
    first_day = last_day - dt.timedelta(days=days - 1)
    os.environ["CONNECTOR_PARTITION_START"] = first_day.isoformat()
    started = time.perf_counter()
    mappings_dir = pos_folders.make_folders(root, mappings, days, last_day)
    connector = ConnectorResource(
        store=LedgerResource(state_dir=str(root / "state")),
        target=TargetResource(),
        copernica=CopernicaResource(),
        mappings_dir=str(mappings_dir),
        timezone="UTC",
    )
    settings, ledger = connector.settings(), connector.ledger()
    maps, errors = load_mappings(mappings_dir)
    assert not errors, errors
    files = pos_folders.record_ingested(ledger, maps, settings)
    # the code location as Dagster loads it: every mapping's assets, the sensor among them
    defs = build_definitions(settings, connector)
    sensor = defs.resolve_sensor_def("pos_files")
    # built once per code location (the daemon's code server keeps it): not a tick's work
    defs.get_repository_def().asset_graph  # noqa: B018
    setup_s = time.perf_counter() - started

    def etags() -> dict[int, str | None]:
        with ledger.session() as session:
            return dict(session.execute(select(IngestedFile.id, IngestedFile.etag)).all())

    def set_etags(values: dict[int, str | None]) -> None:
        with ledger.session() as session:
            for row_id, etag in values.items():
                session.execute(
                    update(IngestedFile).where(IngestedFile.id == row_id).values(etag=etag)
                )

    def undo(before: dict[int, str | None]) -> None:
        """The ETags back as they were (a tick records those of files found unchanged)."""
        after = etags()
        set_etags({i: etag for i, etag in before.items() if after.get(i) != etag})

    def hashed(cursor: str | None) -> int:
        before = etags()
        now = dt.datetime.now(dt.UTC)
        found = new_source_files(maps, settings, ArrivalCursor.parse(cursor), now, ledger)
        undo(before)
        return len(found.hashed)

    def tick(cursor: str | None) -> dict[str, Any]:
        """The tick on ``cursor``, ``SENSOR_REPEATS`` times on the same state (what one run
        records is undone before the next; the last one's is kept): the least seconds."""
        files_hashed = hashed(cursor)
        walls, cpus = [], []
        for repeat in range(SENSOR_REPEATS):
            before = etags()
            began, cpu = time.perf_counter(), time.process_time()
            context = dg.build_sensor_context(cursor=cursor, definitions=defs)
            result = sensor.evaluate_tick(context)
            walls.append(figure(time.perf_counter() - began))
            cpus.append(figure(time.process_time() - cpu))
            if repeat < SENSOR_REPEATS - 1:
                undo(before)
        return {
            "seconds": min(walls),
            "runs_s": walls,
            "cpu_s": min(cpus),
            "hashed": files_hashed,
            "runs": len(result.run_requests or []),
            "cursor_bytes": len((result.cursor or "").encode()),
            "cursor": result.cursor,
        }

    # the first tick after the upgrade: the earlier cursor (every file's checksum), the
    # registry without local files' ETags
    with ledger.session() as session:
        rows = session.execute(
            select(IngestedFile.mapping, IngestedFile.path, IngestedFile.sha256)
        ).all()
        session.execute(update(IngestedFile).values(etag=None))
    old_cursor = json.dumps({f"{m}:{path}": sha for m, path, sha in rows}, sort_keys=True)
    ticks = {"upgrade": tick(old_cursor)}
    ticks["first"] = tick(None)  # an empty cursor on an ingested state: ETags known
    ticks["steady"] = tick(ticks["first"]["cursor"])
    pos_folders.add_export(maps[0], yesterday)
    ticks["new_file"] = tick(ticks["steady"]["cursor"])
    touched = Path(maps[-1].source.path).parent / f"pos_{last_day.isoformat()}.csv"
    assert touched.is_file()
    os.utime(touched, ns=(time.time_ns(), time.time_ns()))  # same bytes, a new mtime
    ticks["touched"] = tick(ticks["new_file"]["cursor"])
    ledger.dispose()
    for result in ticks.values():
        del result["cursor"]
    shutil.rmtree(root, ignore_errors=True)
    return {
        "mappings": mappings,
        "days": days,
        "files": files,
        "setup_s": round(setup_s, 1),
        "ticks": ticks,
        # the goal's figure: the slowest tick of a running sensor (not the one-offs: the
        # first tick on an empty cursor, the first after the upgrade)
        "seconds": max(ticks[name]["seconds"] for name in RUNNING_TICKS),
    }


def make_dataset(folder: str, rows: int, kind: str) -> dict[str, Any]:
    """The cached generated data file (made here so the parent process stays small); for a
    server, its table, loaded from the CSV export of the same rows."""
    from bench.data import dataset, load_server

    started = time.perf_counter()
    if kind in SERVERS:
        path = load_server(kind, dataset(Path(folder), rows, "csv"), rows)
    else:
        path = str(dataset(Path(folder), rows, kind))
    return {"path": path, "seconds": time.perf_counter() - started}


CASES = {
    "dataset": make_dataset,
    "reference": reference,
    "reference_sqlite": reference_sqlite,
    "reference_server": reference_server,
    "pipeline": pipeline,
    "end_to_end": end_to_end,
    "nightly": nightly,
    "sql_nightly": sql_nightly,
    "two_mappings": two_mappings,
    "sandbox": sandbox,
    "copernica": copernica,
    "call_limit": call_limit,
    "ledger_writes": ledger_writes,
    "pos_sensor": pos_sensor,
}


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM: of its own address space, not the parent's)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    name, args = sys.argv[1], json.loads(sys.argv[2])
    result = CASES[name](**args)
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
