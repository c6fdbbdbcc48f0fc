"""The benchmark against drt (issue 21) in miniature: its table, drt's encoding, the
read-back, and every case at a tiny scale with drt-core installed (never timings)."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from bench import peer, peer_data, peer_drt
from bench.cases import sandbox_process


def test_the_table_is_deterministic_and_hostile(tmp_path: Path) -> None:
    first = list(peer_data.make_rows(3_000, seed=5))
    assert first == list(peer_data.make_rows(3_000, seed=5))
    assert first != list(peer_data.make_rows(3_000, seed=6))
    assert first[:100] == list(peer_data.make_rows(100, seed=5))  # a prefix of larger tables
    values = [v for row in first for v in row[1:-1]]
    text = "".join(v for v in values if v)
    assert {"&", "=", "+", "%", "#", ",", "\n", "\r", '"', "'"} <= set(text)
    assert any(ord(ch) > 127 for ch in text)
    assert any(v is None for v in values)
    assert all(row[1] is not None for row in first)  # the email: never NULL
    assert any(v and v.startswith(" ") for v in values)
    assert any(v and v.endswith(" ") for v in values)
    assert max(len(v or "") for v in values) == peer_data.LONG_CHARS
    assert len({row[0] for row in first}) == 3_000
    path = peer_data.dataset(tmp_path, 3_000, seed=5)
    source = peer_data.source_values(path)
    assert len(source) == 3_000 and source[first[7][0]]["city"] == first[7][4]


def test_drts_sql_encoding_gives_back_every_value() -> None:
    """The hand-written encoding drt needs: no raw character Target reads as structure is
    left, and decoding gives back the value (NULL: an empty value)."""
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (v TEXT)")
    values = [*peer_data.FRAGMENTS, None, "plain"]
    con.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    encoded = [row[0] for row in con.execute(f"SELECT {peer_drt.encoded_sql('v')} FROM t")]
    for value, enc in zip(values, encoded, strict=True):
        assert not set(enc) & set("&+,= #\n\r\t"), enc
        assert unquote(enc) == (value or "")


def test_drts_target_bodies_rendered_here_carry_every_row(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The bodies the floor of the Target case posts for drt: its template over its model,
    one file per ``TARGET_ROWS_PER_FILE`` rows, every value given back by decoding."""
    monkeypatch.setattr(peer_drt, "TARGET_ROWS_PER_FILE", 120)
    db = peer_data.dataset(tmp_path, 300, seed=5)
    bodies = peer_drt.target_bodies(db)
    assert len(bodies) == 3
    got: dict[str, list[str]] = {}
    for body in bodies:
        head, *lines = body.decode().split("\n")
        assert head == "batch=" + peer_drt.TARGET_HEADER
        for line in filter(None, lines):
            fields = [unquote(f) for f in line.split(",")]
            got[fields[0]] = fields[1:]
    source = peer_data.source_values(db)
    assert got == {k: [v or "" for v in row.values()] for k, row in source.items()}


def test_compare_finds_missing_wrong_duplicated_and_extra_rows() -> None:
    source: dict[str, dict[str, str | None]] = {
        "A": dict.fromkeys(peer_data.PARAMS, "a & b"),
        "B": dict.fromkeys(peer_data.PARAMS, None) | {"email": "x"},
        "C": dict.fromkeys(peer_data.PARAMS, None),  # nothing to deliver
    }
    right = {"A": dict.fromkeys(peer_data.PARAMS, "a & b"), "B": {"email": "x", "city": ""}}
    assert peer_data.compare(source, right)["ok"]
    cut = {"A": dict.fromkeys(peer_data.PARAMS, "a ")}
    got = peer_data.compare(source, cut)
    assert (got["ok"], got["missing"], got["wrong_values"]) == (False, 1, 1)
    doubled = {k: [v, v] for k, v in right.items()} | {"Z": [{}]}
    got = peer_data.compare(source, doubled)
    assert (got["ok"], got["duplicated"], got["extra"]) == (False, 2, 1)


@pytest.fixture(scope="module")
def drt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """drt-core in a venv of its own (pip, from the configured index: about 15 s)."""
    return peer_drt.drt_venv(tmp_path_factory.mktemp("drt"))


@pytest.mark.timeout(300)
def test_the_read_back_catches_drt_without_hand_written_encoding(drt: Path, tmp_path: Path) -> None:
    """drt sends raw values into a Target batch and reports every row synced; the sandbox
    cuts the batch at the first raw ``&`` (or rejects it on a ``%``): the check says so."""
    db = peer_data.dataset(tmp_path, 300, seed=peer.SEED)
    project = tmp_path / "project"
    with sandbox_process(**peer.sandbox_options("target", tmp_path / "sandbox")) as url:
        peer_drt.target_project(project, db, url, encode=False)
        done = subprocess.run(
            [str(drt), "run", "-o", "json"],
            cwd=project,
            env=peer_drt.drt_env(project / "home"),
            capture_output=True,
            text=True,
            check=False,
        )
        peer._wait_applied(url)
        check = peer_data.compare(
            peer_data.source_values(db),
            peer_data.target_profiles(tmp_path / "sandbox" / "sandbox.sqlite3"),
        )
    assert done.returncode == 0 and '"rows_synced": 300' in done.stdout
    assert not check["ok"] and check["missing"] + check["wrong_values"] > 0


@pytest.mark.timeout(900)  # every side a real command, each on a fresh sandbox
def test_every_case_at_a_tiny_scale(drt: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(peer_drt, "drt_venv", lambda root: drt)
    doc = peer.run(runs=1, scale=0.001, data_dir=tmp_path)
    rows = {"copernica": 20, "target": 400, "dry_run": 100, "empty": 0, "copernica_latency": 20}
    assert {c: r["rows"] for c, r in doc["cases"].items()} == rows
    for case, result in doc["cases"].items():
        sides = result["sides"]
        expected = {"drt", "connector"} | (
            {"drt_parallel"} if case == "copernica_latency" else set()
        )
        assert set(sides) == expected
        for side, s in sides.items():
            run = s["runs"][0]
            # both sides delivered every row, value for value (or, dry and empty, nothing)
            assert s["all_delivered"], (case, side, run)
            assert run["exit_codes"] == [0] * (peer.DRT_PROCESSES if side == "drt_parallel" else 1)
            assert s["min_s"] <= s["median_s"] <= s["max_s"] and s["median_cpu_s"] > 0
        if case in ("dry_run", "empty"):
            assert result["connector_time_x_drt"] > 0
            assert all(s["runs"][0]["delivered"]["sandbox"]["batches"] == 0 for s in sides.values())
        else:
            assert result["connector_rate_x_drt"] > 0
            assert all(s["runs"][0]["delivered"]["rows"] == rows[case] for s in sides.values())
        assert result["goal_met"] in (True, False)  # judged: both delivered
        assert result["connector_cpu_x_drt"] > 0
        assert doc["goals"][case] == result["goal_met"]
    assert sides["connector"]["runs"][0]["reported"]["outcome"] == "ok"
    assert doc["cases"]["target"]["sides"]["drt"]["runs"][0]["reported"]["rows_synced"] == 400
    # the sandbox alone on each side's bytes: below the side's whole run, which includes it
    floor = doc["cases"]["target"]["sandbox_floor"]
    for side in ("drt", "connector"):
        assert floor[side]["files"] >= 1 and floor[side]["bytes"] > 400 * 20
        assert 0 < floor[side]["median_s"] < doc["cases"]["target"]["sides"][side]["median_s"]
    assert doc["cases"]["target"]["floor_rate_x_drt"] > 0
    text = peer.table(doc)
    assert "drt_parallel" in text and "goal rate 2.0" in text and "goal time 1.5" in text
    assert "the sandbox alone on each side's bytes" in text
