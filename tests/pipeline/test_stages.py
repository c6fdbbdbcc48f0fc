"""The three stages end to end over a real CSV source (the colleague's sources/transform)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector import manifests, pipeline
from connector.ledger import (
    CLAIMED,
    QUEUED,
    Ledger,
    Reject,
    StageRun,
    claim_batches,
    counts_by_state,
    record_delivered,
)
from connector.mapping import SourceMapping
from connector.settings import Settings
from tests.batches.fakes import decode_batch

DAY = "2026-01-02"


@pytest.fixture
def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    pos = tmp_path / "pos"
    pos.mkdir()
    mapping = SourceMapping.model_validate(
        {
            "name": "pos",
            "source": {"kind": "csv", "path": str(pos / "*.csv")},
            "destination": "target",
            "identity": {"column": "customer_id", "type": "thirdPartyId"},
            "params": {"store": "store", "note": "note"},
        }
    )
    settings = Settings(state_dir=tmp_path / "state", chunk_rows=2)
    ledger = Ledger(settings.ledger_url)
    ledger.upgrade()
    yield mapping, settings, ledger, pos
    ledger.dispose()


def _csv(pos: Path, day: str, lines: list[str]) -> None:
    (pos / f"pos_{day}.csv").write_text("customer_id,store,note\n" + "\n".join(lines) + "\n")


def _sent(ledger: Ledger, state: str | None = None) -> list[list[str]]:
    from connector.ledger import Batch

    with ledger.session() as session:
        q = session.query(Batch).order_by(Batch.id)
        batches = [b for b in q if state is None or b.state == state]
    return [row for b in batches for row in decode_batch(Path(b.path).read_bytes())[1]]


def test_prepare_end_to_end(env) -> None:  # type: ignore[no-untyped-def]
    mapping, settings, ledger, pos = env
    _csv(
        pos,
        DAY,
        [
            "c1,Amsterdam,first",
            "c2,Utrecht,",
            'c1,,"later, wins"',
            ",Nowhere,x",
            'c3,"Den Haag",a&b',
        ],
    )
    extract, transform, batches = pipeline.prepare(mapping, DAY, settings, ledger)
    assert extract.counts["rows_in"] == 5
    assert extract.counts["rejected"] >= 1  # the row without an identity
    assert transform.counts["duplicates_merged"] == 1
    assert transform.counts["rows_out"] == 3
    assert batches.counts["batches"] == 1 and batches.counts["rows_out"] == 3
    assert sorted(_sent(ledger)) == [
        ["c1", "Amsterdam", "later, wins"],
        ["c2", "Utrecht", ""],
        ["c3", "Den Haag", "a&b"],
    ]
    assert len(transform.preview) == 3 and transform.schema[0] == ("_identity", "string")
    with ledger.session() as session:
        runs = {r.stage: json.loads(r.stats_json) for r in session.query(StageRun)}
        rejects = session.query(Reject).all()
    assert set(runs) == {"extract", "transform", "batches"}
    assert runs["batches"]["counts"]["rows_out"] == 3
    assert len(rejects) == extract.counts["rejected"]


def test_rerun_replaces_queued_and_never_duplicates_in_flight(env) -> None:  # type: ignore[no-untyped-def]
    mapping, settings, ledger, pos = env
    _csv(pos, DAY, ["c1,A,x", "c2,B,y"])
    pipeline.prepare(mapping, DAY, settings, ledger)
    first = counts_by_state(ledger)
    pipeline.prepare(mapping, DAY, settings, ledger)  # rerun: replaced, not added
    assert counts_by_state(ledger) == first
    outbox_files = list((settings.outbox / "pos").glob("*.batch"))
    assert len(outbox_files) == 1

    claimed = claim_batches(ledger, "target:demo", 10, "delivery")
    assert claimed
    _csv(pos, DAY, ["c1,A,x", "c2,B,changed"])
    (result,) = [
        r for r in pipeline.prepare(mapping, DAY, settings, ledger) if r.stage == "batches"
    ]
    assert result.counts["rows_out"] == 1  # c1 identical and in flight: not queued again
    assert result.stats["in_flight_skipped"] == 1
    assert _sent(ledger, QUEUED) == [["c2", "B", "changed"]]
    assert counts_by_state(ledger)[CLAIMED]["batches"] == 1


def test_confirmed_digests_make_rows_unchanged_and_clears_reported(env) -> None:  # type: ignore[no-untyped-def]
    mapping, settings, ledger, pos = env
    _csv(pos, DAY, ["c1,A,x", "c2,B,y"])
    results = pipeline.prepare(mapping, DAY, settings, ledger)
    (batch,) = claim_batches(ledger, "target:demo", 10, "delivery")
    record_delivered(
        ledger,
        "target:demo",
        manifests.read(batch.manifest_path),
        mapping=batch.mapping,
        partition=batch.partition,
        batch_id=batch.id,
    )
    assert results[-1].counts["rows_out"] == 2
    day2 = "2026-01-03"
    _csv(pos, day2, ["c1,A,x", "c2,B,"])
    _, transform, batches = pipeline.prepare(mapping, day2, settings, ledger)
    assert transform.counts["unchanged"] == 1
    assert transform.counts["cleared"] == 1
    assert transform.stats["clears_sample"][0]["params"] == ["note"]
    assert batches.counts["rows_out"] == 1


def test_stage_order_is_enforced(env) -> None:  # type: ignore[no-untyped-def]
    mapping, settings, ledger, _ = env
    with pytest.raises(pipeline.StageMissing):
        pipeline.transform_stage(mapping, "2026-02-01", settings, ledger)
    with pytest.raises(pipeline.StageMissing):
        pipeline.batch_stage(mapping, "2026-02-01", settings, ledger)


def test_batches_refuse_updates_of_an_earlier_extract(env) -> None:  # type: ignore[no-untyped-def]
    mapping, settings, ledger, pos = env
    _csv(pos, DAY, ["c1,A,x", "c2,B,y"])
    pipeline.extract_stage(mapping, DAY, settings, ledger)
    pipeline.transform_stage(mapping, DAY, settings, ledger)
    pipeline.extract_stage(mapping, DAY, settings, ledger)  # new rows, new _seq
    with pytest.raises(pipeline.StageMissing, match="transform"):
        pipeline.batch_stage(mapping, DAY, settings, ledger)
    pipeline.transform_stage(mapping, DAY, settings, ledger)
    assert pipeline.batch_stage(mapping, DAY, settings, ledger).counts["rows_out"] == 2


def test_batch_lines_are_the_url_encoded_manifest_rows_in_order(env) -> None:  # type: ignore[no-untyped-def]
    """Each line is ``quote(v, safe="")`` of its manifest row, in the manifest's order, for
    single and merged profiles, and each manifest row carries its profile's digest."""
    from urllib.parse import quote

    from connector.digests import profile_digest
    from connector.ledger import Batch

    mapping, settings, ledger, pos = env
    _csv(
        pos,
        DAY,
        [
            'c1,"Zoë, ☕ 🍰","a%b&c=d+e/f"',
            'c2,"line one\nline two",~._-',
            'é ü,"""quoted""",',
            "c1,,later",  # merged with the first: the store is kept, the note replaced
            'c4," ", ',
        ],
    )
    pipeline.prepare(mapping, DAY, settings, ledger)
    with ledger.session() as session:
        batches = session.query(Batch).order_by(Batch.id).all()
    assert len(batches) == 1
    # the values, decoded from the batch file by its manifest's rows, are the mapped ones
    manifest = manifests.with_values(batches[0].path, manifests.read(batches[0].manifest_path))
    rows = manifest.select(["_identity", "store", "note"]).to_pylist()
    # the digests, computed with the lines (extract stages none), are the defined ones
    assert manifest.column("_digest").to_pylist() == [
        profile_digest(["store", "note"], [r["store"], r["note"]]) for r in rows
    ]
    # _filled: carried from extract for single rows, computed for the merged one (c1)
    assert manifest.column("_filled").to_pylist() == [
        "".join("1" if r[n] else "0" for n in ("store", "note")) for r in rows
    ]
    assert set(manifest.column("_filled").to_pylist()) >= {"10", "11"}
    lines = "".join("\n" + ",".join(quote(v or "", safe="") for v in row.values()) for row in rows)
    body = Path(batches[0].path).read_bytes().decode()
    assert body == "batch=thirdPartyId,store,note" + lines
    assert {r["_identity"]: (r["store"], r["note"]) for r in rows} == {
        "c1": ("Zoë, ☕ 🍰", "later"),
        "c2": ("line one\nline two", "~._-"),
        "é ü": ('"quoted"', None),
        "c4": (" ", " "),
    }


def _staged_seqs(settings: Settings) -> list[list[int]]:
    from connector import staging

    parts = staging.parts(pipeline.stage_path(settings, "pos", DAY) / "mapped")
    return [staging.read(p, ["_seq"]).column("_seq").to_pylist() for p in parts]


def test_extract_stages_every_part_in_source_order(env) -> None:  # type: ignore[no-untyped-def]
    # chunk_rows=2: 20 parts pass through the digest thread and the writer thread
    mapping, settings, ledger, pos = env
    _csv(pos, DAY, [f"c{i},s{i},n{i}" for i in range(40)])
    result = pipeline.extract_stage(mapping, DAY, settings, ledger)
    seqs = _staged_seqs(settings)
    assert result.counts["rows_out"] == 40
    assert len(seqs) == 20 and all(len(s) == 2 for s in seqs)
    flat = [v for s in seqs for v in s]
    assert flat == sorted(flat) and len(set(flat)) == 40


@pytest.mark.parametrize("where", ["digest", "write"])
def test_extract_raises_a_failure_of_its_digest_or_writer_thread(
    env, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:  # type: ignore[no-untyped-def]
    import threading

    from connector import staging
    from connector.digests import DigestColumns

    mapping, settings, ledger, pos = env
    _csv(pos, DAY, [f"c{i},s{i},n{i}" for i in range(40)])
    calls = {"n": 0}

    def failing(real):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(f"{where} failed (test)")
            return real(*args, **kwargs)

        return call

    if where == "digest":
        monkeypatch.setattr(DigestColumns, "add", failing(DigestColumns.add))
    else:
        monkeypatch.setattr(staging, "write", failing(staging.write))
    with pytest.raises(OSError, match=f"{where} failed"):
        pipeline.extract_stage(mapping, DAY, settings, ledger)
    names = [t.name for t in threading.enumerate()]
    assert not [n for n in names if n.startswith(("stage-digest", "stage-writer"))]
    # the parts before the failure were written whole; nothing after it was
    assert 1 <= len(_staged_seqs(settings)) <= 3
