"""``make bench`` in miniature: every section present, numbers sane (never timings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import data, runner
from bench.cases import figure


def test_generated_rows_are_deterministic_and_hostile() -> None:
    first, again = data.make_rows(2_000, seed=7), data.make_rows(2_000, seed=7)
    assert first.equals(again)
    assert not first.equals(data.make_rows(2_000, seed=8))
    ids = first.column("customer_id").to_pylist()
    assert 0 < len(ids) - len(set(ids)) < 100  # ~1% repeat an earlier customer
    notes = "".join(first.column("notes").to_pylist())
    assert {",", '"', "\n"} <= set(notes)
    assert any(ord(ch) > 127 for ch in "".join(first.column("first_name").to_pylist()))


def test_csv_export_reads_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    data.write_csv(path, 3_000, seed=3)
    assert data.read_csv(path).equals(data.make_rows(3_000, seed=3))


@pytest.mark.timeout(900)  # every case in its own process: minutes on a busy machine
def test_harness_small_run_has_every_section(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(runner, "REPEATS", 2)  # alternation kept, make test kept short
    try:
        doc, path = runner.run(
            rows=(2_000, 5_000),
            e2e_rows=3_000,
            ledger_rows=2_000,
            sandbox_rows=3_000,
            copernica_profiles=200,
            copernica_latency_profiles=100,
            sql_nightly_rows=5_000,  # the 5,000-row table of the extract cases
            sensor_mappings=3,
            sensor_days=5,
            peer_scale=0,  # the cases against drt: tests/bench/test_peer.py
            data_dir=tmp_path / "data",
            results_dir=tmp_path / "results",
        )
    finally:  # the servers' tables are the bench's cache, as the data files in tmp_path
        for server in data.SERVERS:
            for rows in (2_000, 5_000):
                data.drop_server_table(server, rows)
    assert json.loads(path.read_text()) == doc
    assert doc["peer"] == {"skipped": "--peer-scale 0"} and doc["goals"]["peer"] is None
    for size in ("2000", "5000"):
        ex = doc["extract_to_batches"][size]
        for kind in ("csv", "sqlite"):
            r = ex[kind]
            assert r["rows_in"] == int(size)
            assert 0 < r["rows_out"] < int(size)  # duplicates merged
            assert r["rows_out"] + r["duplicates_merged"] + r["rejected"] == int(size)
            # a first load: every profile new in the store, and each one written out, once
            assert r["changed"] == r["rows_out"]
            assert r["batches"] >= 1 and r["batch_bytes"] > 0
            assert r["seconds"] > 0 and r["rows_per_s"] > 0 and r["peak_rss_mib"] > 0
            assert r["ratio_to_reference"] > 0
            assert set(r["stages"]) == {"extract", "transform", "profiles", "outbox"}
            assert all(s > 0 for s in r["stages"].values())
            # the run's time covers every stage, the outbox's batch files included
            assert sum(r["stages"].values()) <= r["seconds"] * 1.01 + 0.01
        # every alternating run's wall and CPU seconds, and the steadier ratios from them
        for side in ("reference", "csv"):
            assert len(ex[side]["runs_s"]) == len(ex[side]["runs_cpu_s"]) == runner.REPEATS
            assert all(c > 0 for c in ex[side]["runs_cpu_s"])
            # the kernel's share of each run: not more than all of its CPU time (read a few
            # microseconds later, and both rounded: hence the slack)
            assert len(ex[side]["runs_sys_s"]) == runner.REPEATS
            assert all(
                0 <= s <= c + 0.01
                for s, c in zip(ex[side]["runs_sys_s"], ex[side]["runs_cpu_s"], strict=True)
            )
        assert ex["csv"]["cpu_ratio_to_reference"] > 0
        assert ex["csv"]["median_ratio_to_reference"] > 0
        assert ex["reference"]["rows"] == int(size)
        assert ex["reference_sqlite"]["rows"] == int(size)
        # the same rows whatever the source
        assert ex["csv"]["rows_out"] == ex["sqlite"]["rows_out"]
        # the same batch files, written to the local S3 server instead of the local disk
        s3 = ex["csv_s3"]
        assert (s3["rows_out"], s3["batches"], s3["batch_bytes"]) == (
            ex["csv"]["rows_out"],
            ex["csv"]["batches"],
            ex["csv"]["batch_bytes"],
        )
        assert s3["ratio_to_csv"] > 0 and s3["stages"]["outbox"] > 0
        assert ex["sqlite"]["ratio_to_csv"] > 0
        for server in data.SERVERS:  # measured where the test run has the server, else why not
            if data.server_url(server) is None:
                assert ex[server] == {"skipped": f"{data.SERVERS[server]} is not set"}
                continue
            case, floor = ex[server]["pipeline"], ex[server]["reference"]
            assert floor["rows"] == case["rows_in"] == int(size)
            assert case["rows_out"] == ex["csv"]["rows_out"]
            assert case["changed"] == case["rows_out"] and case["rejected"] == ex["csv"]["rejected"]
            assert case["ratio_to_csv"] > 0 and case["ratio_to_own_reference"] > 0
            assert case["peak_rss_mib"] > 0 and floor["peak_rss_mib"] > 0
            assert floor["cpu_s"] > 0 and case["cpu_s"] > 0
            repeats = runner.server_repeats(server)
            assert len(case["runs_s"]) == len(floor["runs_s"]) == repeats
    e2e = doc["end_to_end"]
    assert e2e["batch_states"] == ["complete"]
    assert 0 < e2e["confirmed"] <= 3_000
    night = doc["nightly"]
    # every profile of the first night merged again: about one in ten changed, the rest not
    # sent; each changed one differs from its confirmed row, so each goes out
    assert night["rows_in"] == 3_000
    assert night["unchanged"] + night["changed"] == night["first_night_rows_out"]
    assert night["rows_out"] == night["changed"]
    assert 0.08 * 3_000 < night["rows_out"] < 0.12 * 3_000
    assert set(night["stages"]) == {"extract", "transform", "profiles", "outbox"}
    pair = doc["two_mappings"]
    one, two = pair["one_mapping"], pair["two_mappings"]
    # the POS export adds a receipt for every second CRM row and as many new customers:
    # one full row per profile, each carrying both mappings' params
    new_customers = (pair["rows"] + 1) // 2
    assert two["rows_out"] == one["rows_out"] + new_customers
    assert two["params"] == one["params"] + 3 and two["batch_bytes"] > one["batch_bytes"]
    assert {"bench.profiles", "pos.profiles", "outbox"} <= set(two["stages"])
    assert "two mappings to batch files" in runner.table(doc)
    assert doc["sandbox"]["rows"] == 3_000 and doc["sandbox"]["rows_per_s"] > 0
    cop = doc["copernica"]
    assert cop["ok"] == cop["profiles"] == 200 and cop["profiles_per_s"] > 0
    far = doc["copernica_latency"]
    assert far["ok"] == far["profiles"] == 100 and far["latency_ms"] == runner.COPERNICA_LATENCY_MS
    assert far["cpu_us_per_profile"] > 0 and "copernica PUTs, 20 ms" in runner.table(doc)
    pos = doc["pos_sensor"]
    assert (pos["mappings"], pos["days"], pos["files"]) == (3, 5, 15)
    ticks = pos["ticks"]
    # the upgrade's tick hashes every file once; then only the new or touched file is hashed
    assert [(t["hashed"], t["runs"]) for t in ticks.values()] == [
        (15, 0),  # upgrade: an earlier release's cursor, no local ETags; all ingested
        (0, 0),  # first: an empty cursor on the ingested state
        (0, 0),  # steady
        (1, 1),  # new_file
        (1, 0),  # touched: same bytes
    ]
    assert ticks["steady"]["cursor_bytes"] <= 3 * (120 + len("shop000"))
    assert pos["seconds"] == max(ticks[n]["seconds"] for n in ("steady", "new_file", "touched"))
    assert all(len(t["runs_s"]) == 3 and t["cpu_s"] > 0 for t in ticks.values())
    assert "tick new_file" in runner.table(doc)
    # every profile recorded, the next night's digest over the first's, on each ledger
    for kind, r in doc["ledger_writes"].items():
        if kind == "postgres" and data.server_url("postgres") is None:
            assert r["skipped"] == f"{data.SERVERS['postgres']} is not set"
            continue
        assert (r["rows"], r["rows_recorded"]) == (2_000, 2_000)
        assert doc["goals"]["ledger_400k_s"][kind] == r["seconds"]
    assert "ledger writes, sqlite" in runner.table(doc)
    assert set(doc["goals"]) >= {
        "csv_ratio_ok",
        "peak_rss_ok",
        "rss_growth_ok",
        "end_to_end_ok",
        "pos_sensor_ok",
    }
    assert (
        doc["goals"]["sqlite_ratio_to_csv"]
        == doc["extract_to_batches"]["5000"]["sqlite"]["ratio_to_csv"]
    )
    if data.server_url("postgres") is not None:
        assert set(doc["goals"]["peak_rss_mib"]) >= {"csv", "sqlite", "postgres"}
        assert doc["goals"]["postgres_ratio_to_reference"] > 0
        assert "postgres -> batch files" in runner.table(doc)
    sql_night = doc["sql_nightly"]
    if data.server_url("postgres") is None:
        assert sql_night == {"skipped": "CONNECTOR_TEST_POSTGRES_URL is not set"}
    else:  # a full first night, then only the rows updated since (one in a hundred)
        first, nxt = sql_night["first_night"], sql_night["next_night"]
        assert sql_night["table_rows"] == first["rows_read"] == 5_000
        assert sql_night["updated"] == 50 and nxt["rows_read"] == 50
        assert first["rows_out"] == doc["extract_to_batches"]["5000"]["csv"]["rows_out"]
        assert 0 < nxt["rows_out"] <= 50 and nxt["changed"] == nxt["rows_out"]
        assert sum(first["server_rows_read"].values()) >= 5_000  # the server read them all
        assert sql_night["read_share"] == 0.01
        assert "postgres next night" in runner.table(doc)
    assert doc["commit"] is None or len(doc["commit"]) >= 7  # the measured code, when in git
    assert "csv -> batch files" in runner.table(doc)
    assert "csv -> batch files in S3" in runner.table(doc)
    assert "median" in runner.table(doc)
    assert "next night" in runner.table(doc)


def test_steadier_ratios_from_the_alternating_runs() -> None:
    ref = {"runs_s": [9.0, 4.0, 6.0], "runs_cpu_s": [12.0, 6.0, 7.0]}
    case = {"runs_s": [17.0, 16.0, 18.0], "runs_cpu_s": [30.0, 29.0, 31.0]}
    # medians 17 / 6; least CPU 29 / 6 (the best-of wall ratio would be 16 / 4 = 4.0)
    assert runner._spread(case, ref) == {
        "median_ratio_to_reference": 2.83,
        "cpu_ratio_to_reference": 4.83,
    }


def test_results_name_the_measured_commit() -> None:
    import subprocess

    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    if head.returncode != 0:
        assert runner.code_version() is None
    else:
        assert (runner.code_version() or "").startswith(head.stdout.strip())


def test_a_tiny_runs_figures_do_not_round_to_zero() -> None:
    """A 2,000-row reference takes a few milliseconds: rounded to hundredths its CPU time
    was 0.0 (a CI run failed on it) and a ratio over it could not be taken."""
    runs = [
        {"seconds": 0.0041, "cpu_s": figure(0.0036), "sys_s": 0.001},
        {"seconds": 0.0033, "cpu_s": 0.0042, "sys_s": 0.0},
    ]
    best = runner._best(runs)
    assert best["runs_s"] == [0.0041, 0.0033] and best["runs_cpu_s"] == [0.0036, 0.0042]
    assert runner._spread(best, best) == {
        "median_ratio_to_reference": 1.0,
        "cpu_ratio_to_reference": 1.0,
    }
    assert figure(13.2871) == 13.29 and figure(0.0) == 0.0


def test_a_server_case_without_its_url_is_skipped_and_says_why(
    tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("CONNECTOR_TEST_MARIADB_URL", raising=False)
    got = runner.measure_server("mariadb", tmp_path, tmp_path, 100, {}, 1)
    assert got == {"skipped": "CONNECTOR_TEST_MARIADB_URL is not set"}
    assert "bench: mariadb case skipped: CONNECTOR_TEST_MARIADB_URL is not set" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_a_servers_table_holds_the_exports_rows(
    server: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The bench loads the generated export into the server: the same text, row for row."""
    from sqlalchemy import create_engine, text

    url = request.getfixturevalue(f"{server}_url")  # skips, as every server test, when unset
    path = tmp_path / "x.csv"
    data.write_csv(path, 2_500, seed=11)
    table = data.load_server(server, path, 2_500, seed=11)
    assert data.load_server(server, path, 2_500, seed=11) == table  # made once
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT {', '.join(data.COLUMNS)} FROM {table} ORDER BY row_id")
            ).all()
            conn.execute(text(f"DROP TABLE {table}"))
            conn.commit()
    finally:
        engine.dispose()
    expected = data.make_rows(2_500, seed=11)
    for i, name in enumerate(data.COLUMNS):
        got = [str(row[i]) if name == "updated_at" else row[i] for row in rows]
        assert got == expected.column(name).to_pylist(), name
