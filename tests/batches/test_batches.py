"""write_batches: format, round trip, caps, naming, registration and crash safety."""

from __future__ import annotations

import errno
import hashlib
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.digests import profile_digest
from connector.ledger import COMPLETE, QUEUED, Batch, Ledger
from connector.outbox import manifest_schema, manifests, normalise, target_sink
from connector.outbox import writer as batches_mod
from connector.outbox.target_sink import ProfileTooLarge
from connector.outbox.writer import write_batches
from tests.batches.fakes import FakeMapping, decode_batch, make_settings

NAMES = ["email", "tier", "city"]


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    led.create_all()
    yield led
    led.dispose()


def _table(rows: list[tuple[str, str | None, str | None, str | None]]) -> pa.Table:
    cols = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    return pa.table(
        {
            "_identity": pa.array(cols[0], pa.string()),
            "_source_ref": pa.array([f"f.csv:{i + 2}" for i in range(len(rows))], pa.string()),
            **{n: pa.array(cols[i + 1], pa.string()) for i, n in enumerate(NAMES)},
        }
    )


def _sandbox_parser():  # type: ignore[no-untyped-def]
    """The sandbox's own parser, when the colleague's module offers one (optional)."""
    try:
        import connector.sandbox as sandbox_pkg  # noqa: F401
        from connector.sandbox import batchfile  # type: ignore[attr-defined]
    except Exception:
        return None
    return getattr(batchfile, "parse_batch", None)


def test_format_is_the_blueprints(tmp_path: Path, ledger: Ledger) -> None:
    s = make_settings(tmp_path)
    table = _table([("id 1", "a@b.c", "", None), ("x,y", "%&+=", "gold", "\n\r")])
    (batch,) = write_batches(
        table, mapping=FakeMapping(), partition="2026-01-02", settings=s, ledger=ledger
    )
    body = Path(batch.path).read_bytes()
    assert body == (
        b"batch=thirdPartyId,email,tier,city\nid%201,a%40b.c,,\nx%2Cy,%25%26%2B%3D,gold,%0A%0D"
    )
    assert batch.sha256 == hashlib.sha256(body).hexdigest()
    assert batch.byte_size == len(body) and batch.row_count == 2 and batch.state == QUEUED
    assert batch.destination_key == "target:demo"
    assert batch.batch_key.startswith("crm-2026-01-02-a1-00001-")
    # the manifest lists the lines without their values, which the batch file holds
    manifest = pq.read_table(batch.manifest_path)
    assert manifest.column_names == ["_identity", "_source_ref", "_digest", "_filled"]
    assert manifest.column("_identity").to_pylist() == ["id 1", "x,y"]
    assert manifest.column("_filled").to_pylist() == ["100", "111"]
    assert manifests.param_names(manifest) == NAMES
    assert manifest.column("_digest").to_pylist()[0] == profile_digest(NAMES, ["a@b.c", None, None])
    rows = manifests.with_values(batch.path, manifests.read(batch.manifest_path))
    assert rows.select(NAMES).to_pylist() == [
        {"email": "a@b.c", "tier": None, "city": None},  # empty -> null
        {"email": "%&+=", "tier": "gold", "city": "\n\r"},
    ]
    # lz4 pages, except the digest: random hex that lz4 cannot shrink
    meta = pq.ParquetFile(batch.manifest_path).metadata.row_group(0)
    codecs = {meta.column(i).path_in_schema: meta.column(i).compression for i in range(4)}
    assert codecs == {name: "UNCOMPRESSED" if name == "_digest" else "LZ4" for name in codecs}
    assert len(codecs) == 4


text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(text.filter(bool), st.one_of(st.none(), text), text, st.one_of(st.none(), text)),
        min_size=1,
        max_size=25,
        unique_by=lambda r: r[0],
    )
)
def test_any_unicode_survives_the_round_trip(tmp_path_factory, rows) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("rt")
    led = Ledger(f"sqlite:///{tmp / 'l.db'}")
    led.create_all()
    s = make_settings(tmp, max_batch_rows=7)
    written = write_batches(
        _table(rows), mapping=FakeMapping(), partition="2026-01-02", settings=s, ledger=led
    )
    parser = _sandbox_parser()
    got = []
    for b in written:
        body = Path(b.path).read_bytes()
        header, decoded = decode_batch(body)
        assert header == ["thirdPartyId", *NAMES]
        got += decoded
        if parser is not None:  # the sandbox's independent parser agrees, row for row
            parsed = parser(body)
            assert [parsed.id_column, *parsed.names] == header
            assert list(parsed.rows()) == decoded
        # the values read back through the manifest (every other row): the ones written
        kept = manifests.read(b.manifest_path)
        picked = kept.filter(pa.array([i % 2 == 0 for i in range(kept.num_rows)]))
        back = manifests.with_values(b.path, picked).select(["_identity", *NAMES]).to_pylist()
        assert [[r["_identity"], *(r[n] or "" for n in NAMES)] for r in back] == decoded[::2]
        assert all(r[n] != "" for r in back for n in NAMES)  # empty reads back as null
    assert got == [[i, e or "", t or "", c or ""] for i, e, t, c in rows]
    led.dispose()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(text.filter(bool), text, text, text),
        min_size=1,
        max_size=40,
        unique_by=lambda r: r[0],
    ),
    max_rows=st.integers(1, 6),
    max_bytes=st.integers(1025, 1400),
)
def test_caps_hold_for_any_input(tmp_path_factory, rows, max_rows, max_bytes) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("caps")
    led = Ledger(f"sqlite:///{tmp / 'l.db'}")
    led.create_all()
    # long values so files really split on bytes (names are short)
    rows = [(i, e * 20, t, c * 5) for i, e, t, c in rows]
    s = make_settings(tmp, max_batch_rows=max_rows, max_batch_bytes=max_bytes)
    try:
        written = write_batches(
            _table(rows), mapping=FakeMapping(), partition="2026-01-02", settings=s, ledger=led
        )
    except ProfileTooLarge:
        # only allowed when some single row cannot fit on its own under the cap
        header = len(b"batch=thirdPartyId,email,tier,city")
        from urllib.parse import quote

        sizes = [1 + len(",".join(quote(v, safe="") for v in r)) for r in rows]
        assert max(sizes) + header >= max_bytes
        written = []
        with led.session() as session:
            written = list(session.query(Batch))
        assert not list((tmp / "state").rglob(".tmp*"))
        complete = False
    else:
        complete = True
    total = 0
    for b in written:
        body = Path(b.path).read_bytes()
        assert len(body) < max_bytes
        assert len(body) == b.byte_size
        _, decoded = decode_batch(body)
        assert 1 <= len(decoded) == b.row_count <= max_rows
        total += len(decoded)
    assert total == len(rows) or not complete
    led.dispose()


def test_names_are_unique_per_attempt_and_content(tmp_path: Path, ledger: Ledger) -> None:
    s = make_settings(tmp_path)
    m = FakeMapping()
    a = write_batches(
        _table([("1", "a", None, None)]),
        mapping=m,
        partition="2026-01-02",
        settings=s,
        ledger=ledger,
    )
    b = write_batches(
        _table([("1", "b", None, None)]),
        mapping=m,
        partition="2026-01-02",
        settings=s,
        ledger=ledger,
    )
    c = write_batches(
        _table([("1", "a", None, None)]),
        mapping=m,
        partition="2026-01-02",
        settings=s,
        ledger=ledger,
        attempt=2,
        parent_id=a[0].id,
    )
    keys = {x.batch_key for x in a + b + c}
    assert len(keys) == 3
    assert c[0].attempt == 2 and c[0].parent_id == a[0].id
    # the same content at the same attempt is not queued twice while the first is on its way
    again = write_batches(
        _table([("1", "a", None, None)]),
        mapping=m,
        partition="2026-01-02",
        settings=s,
        ledger=ledger,
    )
    assert again == []
    assert Path(a[0].path).exists()
    outbox = Path(a[0].path).parent
    assert len(list(outbox.glob("*.batch"))) == 3  # the refused copy left no file
    # once delivered, the same content may go again (values that changed back): a new file
    with ledger.session() as session:
        session.get(Batch, a[0].id).state = COMPLETE  # type: ignore[union-attr]
    later = write_batches(
        _table([("1", "a", None, None)]),
        mapping=m,
        partition="2026-01-02",
        settings=s,
        ledger=ledger,
    )
    assert len(later) == 1 and later[0].sha256 == a[0].sha256
    assert later[0].batch_key != a[0].batch_key and Path(a[0].path).exists()
    assert len(list(outbox.glob("*.batch"))) == 4


def test_crash_mid_write_leaves_no_partial_file_and_no_record(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make_settings(tmp_path, max_batch_rows=2)
    real = target_sink.encode_lines
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(target_sink, "encode_lines", flaky)
    rows = [(str(i), "v", None, None) for i in range(3)]
    batches = [b for b in _table(rows).to_batches(max_chunksize=3)] + [
        b for b in _table([("9", "w", None, None)]).to_batches()
    ]
    with pytest.raises(RuntimeError):
        write_batches(
            iter(batches), mapping=FakeMapping(), partition="2026-01-02", settings=s, ledger=ledger
        )
    outbox = s.outbox.local_path / "crm"
    assert not [p for p in outbox.iterdir() if p.name.startswith(".tmp")]
    with ledger.session() as session:
        registered = list(session.query(Batch))
    # the one file completed before the failure is whole, registered and matches its hash
    assert [b.row_count for b in registered] == [2]
    for b in registered:
        assert hashlib.sha256(Path(b.path).read_bytes()).hexdigest() == b.sha256
    assert sorted(p.name for p in outbox.glob("*.batch")) == [Path(registered[0].path).name]


def test_crash_in_registration_removes_the_file(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make_settings(tmp_path)

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("ledger down")

    monkeypatch.setattr(batches_mod.ledger_mod, "register_batch", boom)
    with pytest.raises(RuntimeError):
        write_batches(
            _table([("1", "a", None, None)]),
            mapping=FakeMapping(),
            partition="2026-01-02",
            settings=s,
            ledger=ledger,
        )
    assert list((s.outbox.local_path / "crm").iterdir()) == []


def test_a_failed_sync_publishes_nothing_of_that_file_or_the_next(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync fails for the second of three files (the disk cannot be made to fail here, so
    the fault is injected): the error comes out, the first file stays published, and neither
    the failed file nor the one finished after it is renamed, registered or left behind."""
    s = make_settings(tmp_path, max_batch_rows=2)
    real = batches_mod.sync_files
    synced: list[int] = []

    def failing(done):  # type: ignore[no-untyped-def]
        synced.append(done.rows)
        if len(synced) == 2:
            raise OSError(errno.EIO, "Input/output error")
        real(done)

    monkeypatch.setattr(batches_mod, "sync_files", failing)
    rows = [(str(i), "v", None, None) for i in range(5)]
    with pytest.raises(OSError, match="Input/output error"):
        write_batches(
            _table(rows), mapping=FakeMapping(), partition="2026-01-02", settings=s, ledger=ledger
        )
    with ledger.session() as session:
        registered = list(session.query(Batch))
    assert [b.row_count for b in registered] == [2]
    outbox = s.outbox.local_path / "crm"
    assert sorted(p.name for p in outbox.iterdir()) == sorted(
        [Path(registered[0].path).name, Path(registered[0].manifest_path).name]
    )
    assert hashlib.sha256(Path(registered[0].path).read_bytes()).hexdigest() == registered[0].sha256


def test_a_finished_file_is_synced_while_the_next_is_written(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first file's fsync waits until the second file has been begun: were the sync
    done before writing on, this would wait in vain and fail."""
    s = make_settings(tmp_path, max_batch_rows=2)
    real_sync, real_open = batches_mod.sync_files, target_sink.PendingFile
    opened: list[object] = []
    second_begun = threading.Event()

    class Watched(real_open):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            opened.append(self)
            if len(opened) == 2:
                second_begun.set()

    def sync(done):  # type: ignore[no-untyped-def]
        if not opened or done.tmp_path == opened[0].tmp_path:  # type: ignore[attr-defined]
            assert second_begun.wait(10), "the next file was not begun while this one synced"
        real_sync(done)

    monkeypatch.setattr(target_sink, "PendingFile", Watched)
    monkeypatch.setattr(batches_mod, "sync_files", sync)
    rows = [(str(i), "v", None, None) for i in range(4)]
    written = write_batches(
        _table(rows), mapping=FakeMapping(), partition="2026-01-02", settings=s, ledger=ledger
    )
    assert [b.row_count for b in written] == [2, 2]
    assert [b.batch_key.split("-")[5] for b in written] == ["00001", "00002"]


def test_profile_too_large_is_refused(tmp_path: Path, ledger: Ledger) -> None:
    s = make_settings(tmp_path, max_batch_bytes=1100)
    rows = [("1", "é" * 400, None, None)] + [(str(i), "x", None, None) for i in range(2, 400)]
    with pytest.raises(ProfileTooLarge):
        write_batches(
            # many small record batches: the encoding thread is still ahead when it fails
            pa.Table.from_batches(_table(rows).to_batches(max_chunksize=10)),
            mapping=FakeMapping(),
            partition="2026-01-02",
            settings=s,
            ledger=ledger,
        )
    assert not list((s.outbox.local_path / "crm").glob("*.batch"))
    # the failure stopped and joined the threads that worked for it
    assert not [t for t in threading.enumerate() if t.name in ("batch-encode", "batch-read")]
    assert not [t for t in threading.enumerate() if t.name.startswith("manifest-writer")]


def test_copernica_jsonl_chunks(tmp_path: Path, ledger: Ledger, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    monkeypatch.setattr(batches_mod, "COPERNICA_ROWS_PER_FILE", 2)
    s = make_settings(tmp_path)
    m = FakeMapping(name="news", destination="copernica")
    rows = [("a@x", "A", None, "Zürich"), ("b@x", "", "gold", None), ("c@x", "C", "x", "y")]
    written = write_batches(
        _table(rows), mapping=m, partition="2026-01-02", settings=s, ledger=ledger
    )
    assert [b.row_count for b in written] == [2, 1]
    assert all(b.destination_key == "copernica:demo" for b in written)
    lines = [json.loads(x) for b in written for x in Path(b.path).read_text("utf-8").splitlines()]
    assert lines[0] == {"identity": "a@x", "fields": {"email": "A", "city": "Zürich"}}
    assert lines[1] == {"identity": "b@x", "fields": {"tier": "gold"}}


def test_streamed_input_many_files(tmp_path: Path, ledger: Ledger) -> None:
    s = make_settings(tmp_path, max_batch_rows=1000)
    n = 20_500
    table = pa.table(
        {
            "_identity": pa.array([f"id{i}" for i in range(n)]),
            "email": pa.array([f"u{i}@x.org" for i in range(n)]),
            "tier": pa.array(["gold"] * n),
            "city": pa.array([None] * n, pa.string()),
        }
    )
    written = write_batches(
        table.to_reader(max_chunksize=3000),
        mapping=FakeMapping(),
        partition="2026-01-02",
        settings=s,
        ledger=ledger,
    )
    assert len(written) == 21
    assert sum(b.row_count for b in written) == n
    first = decode_batch(Path(written[1].path).read_bytes())[1][0]
    assert first == ["id1000", "u1000@x.org", "gold", ""]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.just(""), st.text(max_size=3)), min_size=1, max_size=30),
    st.integers(0, 30),
    st.integers(0, 30),
)
def test_empty_string_check_reads_offsets_right(values, start, length) -> None:  # type: ignore[no-untyped-def]
    rb = pa.record_batch([pa.array(values, pa.string())], names=["p"]).slice(start, length)
    expected = "" in rb.column(0).to_pylist()
    assert normalise.has_empty_strings(rb, ["p"]) is expected


def test_manifest_rows_keep_a_carried_filled_and_compute_a_missing_one() -> None:
    """Rows that bring ``_filled`` (the batch stage's, from extract) keep it as it is; rows
    without it, or with a gap in it (merged rows), get it computed from their values."""
    values = {"email": ["a@b.c", None], "tier": [None, "gold"], "city": ["x", ""]}
    base = {"_identity": ["i1", "i2"], "_source_ref": ["f:1", "f:2"], "_digest": ["d1", "d2"]}
    computed = manifest_schema.manifest_rows(pa.record_batch({**base, **values}), NAMES)
    assert computed.column("_filled").to_pylist() == ["101", "010"]
    # what extract staged is written as it is (here deliberately not what the values say)
    carried = pa.record_batch({**base, **values, "_filled": ["111", "000"]})
    assert manifest_schema.manifest_rows(carried, NAMES).column("_filled").to_pylist() == [
        "111",
        "000",
    ]
    gap = pa.record_batch({**base, **values, "_filled": pa.array(["111", None], pa.string())})
    assert manifest_schema.manifest_rows(gap, NAMES).column("_filled").to_pylist() == ["101", "010"]


def test_lines_of_many_encoded_chunks_fill_files_as_two_chunks_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines are written chunk by chunk as they are encoded: caps and content hold across
    chunk boundaries, the same files as when each batch is encoded in two halves."""
    rows = [(f"id{i}", "é" * (i % 7) + "@x", f"t{i % 3}", "c" * (i % 11) * 30) for i in range(60)]
    bodies: dict[str, list[tuple[bytes, list[str]]]] = {}
    chunks_seen: list[int] = []
    real = target_sink.encode_lines

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = real(*args, **kwargs)
        chunks_seen.append(out.num_chunks)
        return out

    monkeypatch.setattr(target_sink, "encode_lines", spy)
    for label, piece in (("two chunks", 1000), ("chunks of 4", 4)):
        monkeypatch.setattr(target_sink, "ENCODE_PIECE_ROWS", piece)
        led = Ledger(f"sqlite:///{tmp_path / (label + '.db')}")
        led.create_all()
        s = make_settings(tmp_path / label, max_batch_rows=7, max_batch_bytes=1100)
        chunks_seen.clear()
        written = write_batches(
            _table(rows).to_batches(max_chunksize=25),
            mapping=FakeMapping(),
            partition="2026-01-02",
            settings=s,
            ledger=led,
        )
        # 25 rows: two equal pieces at least (one per encoding thread), else pieces of <= 4
        assert max(chunks_seen) == (2 if piece == 1000 else 7)
        bodies[label] = [
            (Path(b.path).read_bytes(), pq.read_table(b.manifest_path)["_identity"].to_pylist())
            for b in written
        ]
        led.dispose()
    assert bodies["chunks of 4"] == bodies["two chunks"]
    sizes = [len(ids) for _, ids in bodies["two chunks"]]
    assert max(sizes) == 7 and min(sizes[:-1]) < 7  # both caps bit: rows, then bytes
    assert all(len(body) < 1100 for body, _ in bodies["two chunks"])
    assert [i for _, ids in bodies["two chunks"] for i in ids] == [r[0] for r in rows]
