"""The three stages end to end over a real CSV source (the colleague's sources/transform),
then the account's outbox (``connector.outbox.build``) that turns their changes into batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector import pipeline
from connector.ledger import (
    CLAIMED,
    COMPLETE,
    QUEUED,
    Batch,
    Ledger,
    Reject,
    StageRun,
    claim_batches,
    counts_by_state,
    record_delivered,
)
from connector.mapping import SourceMapping
from connector.outbox import build as outbox
from connector.outbox import manifests
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
    with ledger.session() as session:
        q = session.query(Batch).order_by(Batch.id)
        batches = [b for b in q if state is None or b.state == state]
    return [row for b in batches for row in decode_batch(Path(b.path).read_bytes())[1]]


def _cycle(mapping, day: str, settings: Settings, ledger: Ledger):  # type: ignore[no-untyped-def]
    """One day's stages, then the account's outbox: (the stage results, the build)."""
    results = pipeline.prepare(mapping, day, settings, ledger)
    return results, outbox.build(settings, ledger, "target")


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
    (extract, transform, profiles), built = _cycle(mapping, DAY, settings, ledger)
    assert extract.counts["rows_in"] == 5
    assert extract.counts["rejected"] >= 1  # the row without an identity
    assert transform.counts["duplicates_merged"] == 1
    assert transform.counts["rows_out"] == 3
    assert profiles.stage == "profiles"
    assert profiles.counts["rows_in"] == profiles.counts["rows_out"] == 3  # all new: changed
    assert profiles.stats["destination_key"] == "target:demo"
    assert profiles.stats["store_identities"] == 3
    assert len(built.batches) == 1 and built.rows == built.candidates == 3
    assert sorted(_sent(ledger)) == [
        ["c1", "Amsterdam", "later, wins"],
        ["c2", "Utrecht", ""],
        ["c3", "Den Haag", "a&b"],
    ]
    assert len(transform.preview) == 3 and transform.schema[0] == ("_identity", "string")
    with ledger.session() as session:
        runs = {r.stage: json.loads(r.stats_json) for r in session.query(StageRun)}
        rejects = session.query(Reject).all()
    assert set(runs) == {"extract", "transform", "profiles"}
    assert runs["profiles"]["counts"]["rows_out"] == 3
    assert len(rejects) == extract.counts["rejected"]


def test_a_rerun_never_duplicates_rows_queued_or_in_flight(env) -> None:  # type: ignore[no-untyped-def]
    """Re-running a day changes nothing that was not changed at the source: no row queued
    twice, whether its batch waits in the queue or is on its way; a value changed at the
    source since goes out as the profile's one new row."""
    mapping, settings, ledger, pos = env
    _csv(pos, DAY, ["c1,A,x", "c2,B,y"])
    _cycle(mapping, DAY, settings, ledger)
    first = counts_by_state(ledger)
    (_, _, profiles), again = _cycle(mapping, DAY, settings, ledger)  # rerun, batch queued
    assert (profiles.counts["rows_out"], profiles.counts["unchanged"]) == (0, 2)
    assert (again.candidates, again.batches) == (0, [])
    assert counts_by_state(ledger) == first
    assert len(list((settings.outbox.local_path / "pos").glob("*.batch"))) == 1

    claimed = claim_batches(ledger, "target:demo", 10, "delivery")
    assert claimed
    _csv(pos, DAY, ["c1,A,x", "c2,B,changed"])
    (_, _, profiles), changed = _cycle(mapping, DAY, settings, ledger)
    assert (profiles.counts["rows_out"], profiles.counts["unchanged"]) == (1, 1)
    assert changed.rows == 1  # c1 identical and in flight: not queued again
    assert _sent(ledger, QUEUED) == [["c2", "B", "changed"]]
    assert counts_by_state(ledger)[CLAIMED]["batches"] == 1
    # and once more: the queued row already says it
    (_, _, profiles), same = _cycle(mapping, DAY, settings, ledger)
    assert profiles.counts["rows_out"] == 0 and same.batches == []
    assert _sent(ledger, QUEUED) == [["c2", "B", "changed"]]


def test_confirmed_digests_make_rows_unchanged_and_clears_reported(env) -> None:  # type: ignore[no-untyped-def]
    mapping, settings, ledger, pos = env
    _csv(pos, DAY, ["c1,A,x", "c2,B,y"])
    results, built = _cycle(mapping, DAY, settings, ledger)
    assert results[-1].counts["rows_out"] == 2 and built.rows == 2
    (batch,) = claim_batches(ledger, "target:demo", 10, "delivery")
    record_delivered(
        ledger,
        "target:demo",
        manifests.delivered_table(manifests.read(batch.manifest_path)),
        partition=batch.partition,
        batch_id=batch.id,
    )
    with ledger.session() as session:
        session.get(Batch, batch.id).state = COMPLETE  # type: ignore[union-attr]
    day2 = "2026-01-03"
    # c2's note empty at the source: the value stays (the APIs cannot clear it), reported
    _csv(pos, day2, ["c1,A,x", "c2,B,"])
    (_, _, profiles), nothing = _cycle(mapping, day2, settings, ledger)
    assert profiles.counts["unchanged"] == 2 and profiles.counts["rows_out"] == 0
    assert profiles.counts["cleared"] == 1
    assert profiles.stats["clears_sample"][0]["params"] == ["note"]
    assert nothing.batches == []
    # c2 changes on day 3, and day 3 is corrected back before the outbox runs: the
    # profile changed in the store, but its row is the one confirmed: not sent
    day3 = "2026-01-04"
    _csv(pos, day3, ["c1,A,x", "c2,B,z"])
    assert pipeline.prepare(mapping, day3, settings, ledger)[-1].counts["rows_out"] == 1
    _csv(pos, day3, ["c1,A,x", "c2,B,y"])
    assert pipeline.prepare(mapping, day3, settings, ledger)[-1].counts["rows_out"] == 1
    skipped = outbox.build(settings, ledger, "target")
    assert (skipped.candidates, skipped.unchanged, skipped.batches) == (1, 1, [])


def test_a_backfilled_older_day_adds_its_values_under_the_newer_ones(env) -> None:  # type: ignore[no-untyped-def]
    """Days run out of order: the later day's values stay, the older day fills in what the
    later one did not hold; what goes out is the profile with both."""
    mapping, settings, ledger, pos = env
    later, older = "2026-01-05", DAY
    _csv(pos, later, ["c1,Later,", "c2,Later,later"])
    _cycle(mapping, later, settings, ledger)
    _csv(pos, older, ["c1,Older,older note", "c2,Older,older", "c3,Older,"])
    (_, _, profiles), built = _cycle(mapping, older, settings, ledger)
    assert profiles.counts["rows_out"] == 2  # c1 (its note), c3 (new)
    assert profiles.counts["superseded"] == 1  # c2: every value lost to the later day
    assert profiles.counts["cleared"] == 0  # an older day's empties say nothing of today
    assert sorted(decode_batch(Path(built.batches[0].path).read_bytes())[1]) == [
        ["c1", "Later", "older note"],
        ["c3", "Older", ""],
    ]


def test_stage_order_is_enforced(env) -> None:  # type: ignore[no-untyped-def]
    mapping, settings, ledger, _ = env
    with pytest.raises(pipeline.StageMissing):
        pipeline.transform_stage(mapping, "2026-02-01", settings, ledger)
    with pytest.raises(pipeline.StageMissing):
        pipeline.profile_stage(mapping, "2026-02-01", settings, ledger)


def test_the_profile_stage_refuses_updates_of_an_earlier_extract(env) -> None:  # type: ignore[no-untyped-def]
    mapping, settings, ledger, pos = env
    _csv(pos, DAY, ["c1,A,x", "c2,B,y"])
    pipeline.extract_stage(mapping, DAY, settings, ledger)
    pipeline.transform_stage(mapping, DAY, settings, ledger)
    pipeline.extract_stage(mapping, DAY, settings, ledger)  # new rows, new _seq
    with pytest.raises(pipeline.StageMissing, match="transform"):
        pipeline.profile_stage(mapping, DAY, settings, ledger)
    pipeline.transform_stage(mapping, DAY, settings, ledger)
    assert pipeline.profile_stage(mapping, DAY, settings, ledger).counts["rows_out"] == 2


def test_batch_lines_are_the_url_encoded_manifest_rows_in_order(env) -> None:  # type: ignore[no-untyped-def]
    """Each line is ``quote(v, safe="")`` of its manifest row, in the manifest's order, for
    single and merged profiles, and each manifest row carries its profile's digest."""
    from urllib.parse import quote

    from connector.digests import profile_digest

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
    _cycle(mapping, DAY, settings, ledger)
    with ledger.session() as session:
        batches = session.query(Batch).order_by(Batch.id).all()
    assert len(batches) == 1
    # the values, decoded from the batch file by its manifest's rows, are the mapped ones
    manifest = manifests.with_values(batches[0].path, manifests.read(batches[0].manifest_path))
    rows = manifest.select(["_identity", "store", "note"]).to_pylist()
    # the digests, computed by the outbox over the profile's whole row, are the defined ones
    assert manifest.column("_digest").to_pylist() == [
        profile_digest(["store", "note"], [r["store"], r["note"]]) for r in rows
    ]
    # _filled: one flag per param, non-empty or not
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
    from connector.profiles import staging

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


def test_extract_raises_a_failure_of_its_writer_thread(
    env, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import threading

    from connector.profiles import staging

    where = "write"
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

    monkeypatch.setattr(staging, "write", failing(staging.write))
    with pytest.raises(OSError, match=f"{where} failed"):
        pipeline.extract_stage(mapping, DAY, settings, ledger)
    names = [t.name for t in threading.enumerate()]
    assert not [n for n in names if n.startswith("stage-writer")]
    # the parts before the failure were written whole; nothing after it was
    assert 1 <= len(_staged_seqs(settings)) <= 3
