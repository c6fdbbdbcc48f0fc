"""Manifests hold no values: rows are read back from the batch file through them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector import delivery
from connector.ledger import Batch, Delivered, Ledger, RowOutcome, record_delivered
from connector.outbox import build as outbox
from connector.outbox import manifests
from connector.outbox.files import OutboxFile
from connector.outbox.writer import write_batches
from connector.settings import Settings
from tests.batches.fakes import FakeMapping, make_settings
from tests.profiles.helpers import merge

NAMES = ["email", "tier", "city"]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    led.create_all()
    yield led
    led.dispose()


HOSTILE: list[tuple[str | None, ...]] = [
    ("id 1", "a,b\nc", None, "%41+/&=?"),
    ("é ü", "", "gold", "Zoë ☕ 🍰\x1f\r\t"),
    ("x,y", "'\"\\", "%", None),
    ("id 4", None, None, None),
]


def _table(rows: list[tuple[str | None, ...]]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "_identity": pa.array(cols[0], pa.string()),
            "_source_ref": pa.array([f"f.csv:{i + 2}" for i in range(len(rows))], pa.string()),
            **{n: pa.array(cols[i + 1], pa.string()) for i, n in enumerate(NAMES)},
        }
    )


def _written(tmp_path: Path, ledger: Ledger, destination: str = "target") -> tuple[Batch, Settings]:
    """HOSTILE written as one batch (file and manifest) and registered."""
    settings = make_settings(tmp_path)
    (batch,) = write_batches(
        _table(HOSTILE),
        mapping=FakeMapping(destination=destination),
        partition="2026-01-02",
        settings=settings,
        ledger=ledger,
    )
    return batch, settings


def _expected(rows: list[tuple[str | None, ...]]) -> list[dict[str, str | None]]:
    return [
        {"_identity": r[0], **{n: (v or None) for n, v in zip(NAMES, r[1:], strict=True)}}
        for r in rows
    ]


@pytest.mark.parametrize("block", [manifests.READ_BLOCK, 7])  # 7: lines cut across reads
@pytest.mark.parametrize("destination", ["target", "copernica"])
def test_values_read_back_are_the_ones_written(
    tmp_path: Path, ledger: Ledger, destination: str, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifests, "READ_BLOCK", block)
    batch, _ = _written(tmp_path, ledger, destination)
    rows = manifests.read(batch.manifest_path)
    assert manifests.param_names(rows) == NAMES
    assert not manifests.has_values(rows)
    got = manifests.with_values(batch.path, rows).select(["_identity", *NAMES]).to_pylist()
    assert got == _expected(HOSTILE)
    # a subset, out of the file's order: each row gets its own line's values
    for order in ([3, 1], [0], [1], [2, 0]):
        picked = rows.take(order)
        got = manifests.with_values(batch.path, picked).select(["_identity", *NAMES]).to_pylist()
        assert got == _expected([HOSTILE[i] for i in order])
    assert manifests.with_values(batch.path, rows.slice(0, 0)).column_names[-3:] == NAMES


def test_a_batch_file_that_does_not_match_its_manifest_is_refused(
    tmp_path: Path, ledger: Ledger
) -> None:
    batch, _ = _written(tmp_path, ledger)
    rows = manifests.read(batch.manifest_path)
    path = Path(batch.path)
    head, *lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([head, lines[1], lines[0], *lines[2:]]))
    with pytest.raises(manifests.ManifestMismatch, match=rf"{path.name}: line 2 is for 'é ü'"):
        manifests.with_values(batch.path, rows)
    path.write_bytes(b"\n".join([head, *lines[:2]]))
    with pytest.raises(manifests.ManifestMismatch, match="lists line 5 but the file has 2"):
        manifests.with_values(batch.path, rows)
    path.write_bytes(b"\n".join([head, lines[0] + b",extra", *lines[1:]]))
    with pytest.raises(manifests.ManifestMismatch, match="line 2 has 5 fields, expected 4"):
        manifests.with_values(batch.path, rows)


def test_a_copernica_file_that_does_not_match_its_manifest_is_refused(
    tmp_path: Path, ledger: Ledger
) -> None:
    batch, _ = _written(tmp_path, ledger, "copernica")
    rows = manifests.read(batch.manifest_path)
    path = Path(batch.path)
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([lines[1], lines[0], *lines[2:]]))
    with pytest.raises(manifests.ManifestMismatch, match=rf"{path.name}: line 1 is for 'é ü'"):
        manifests.with_values(batch.path, rows)
    path.write_bytes(b"\n".join([b"{not json", *lines[1:]]))
    with pytest.raises(manifests.ManifestMismatch, match="line 1 is not a profile line"):
        manifests.with_values(batch.path, rows)


def test_manifests_with_values_written_before_are_still_read(tmp_path: Path) -> None:
    old = tmp_path / "old.manifest.parquet"
    table = _table(HOSTILE[:2]).append_column("_digest", pa.array(["d1", "d2"]))
    pq.write_table(table, old)
    rows = manifests.read(old)
    assert manifests.param_names(rows) == NAMES and manifests.has_values(rows)
    # the values are the manifest's own: the batch file is not even opened
    assert manifests.with_values(tmp_path / "gone.batch", rows) is rows


def test_confirmed_rows_record_their_non_empty_params_from_filled(
    tmp_path: Path, ledger: Ledger
) -> None:
    batch, _ = _written(tmp_path, ledger)
    record_delivered(
        ledger,
        "target:demo",
        manifests.delivered_table(manifests.read(batch.manifest_path)),
        partition="2026-01-02",
    )
    with ledger.session() as session:
        got = {d.identity: d.nonempty for d in session.query(Delivered)}
    assert got == {"id 1": "email,city", "é ü": "tier,city", "x,y": "email,tier", "id 4": ""}


def _from_the_store(tmp_path: Path, ledger: Ledger) -> tuple[Batch, Settings]:
    """HOSTILE merged into the crm store of the account and sent by its outbox (but id 4:
    a profile with no value is not sent)."""
    settings = make_settings(tmp_path)
    merge(ledger, settings.state_dir, "2026-01-02", HOSTILE, names=NAMES)
    (batch,) = outbox.build(settings, ledger, "target").batches
    assert sorted(OutboxFile.of(batch).manifest().column("_identity").to_pylist()) == sorted(
        str(r[0]) for r in HOSTILE[:3]
    )
    return batch, settings


def _requeued(ledger: Ledger) -> list[dict[str, str | None]]:
    with ledger.session() as session:
        (again,) = session.query(Batch).filter(Batch.attempt == 2).all()
    rows = manifests.with_values(again.path, manifests.read(again.manifest_path))
    return rows.select(["_identity", *NAMES]).to_pylist()


def test_failed_rows_are_requeued_as_the_profiles_current_rows(
    tmp_path: Path, ledger: Ledger
) -> None:
    """A re-queue sends each failed profile as it stands now (a value learnt since the
    failed row goes too), never the failed row's copy; the rows that did not fail, not."""
    batch, settings = _from_the_store(tmp_path, ledger)
    merge(ledger, settings.state_dir, "2026-01-03", [("x,y", None, None, "Delft")], names=NAMES)
    by_id = {r["_identity"]: r for r in OutboxFile.of(batch).manifest().to_pylist()}
    manifest = OutboxFile.of(batch).manifest()
    order = manifest.column("_identity").to_pylist()
    failed = manifest.take([order.index("x,y"), order.index("id 1")])
    requeued, dead = delivery.requeue_or_dead(ledger, settings, batch, failed, {})
    assert (requeued, dead) == (2, 0)
    # id 1 as it was; x,y with the city learnt since (current_rows: in identity order)
    now = ("x,y", *HOSTILE[2][1:3], "Delft")
    assert _requeued(ledger) == _expected([HOSTILE[0], now])
    with ledger.session() as session:
        (again,) = session.query(Batch).filter(Batch.attempt == 2).all()
        assert again.parent_id == batch.id and again.mapping == "crm"
    digests = {
        r["_identity"]: r["_digest"] for r in manifests.read(again.manifest_path).to_pylist()
    }
    assert digests["id 1"] == by_id["id 1"]["_digest"]  # unchanged profile: the same row
    assert digests["x,y"] != by_id["x,y"]["_digest"]


def test_a_requeue_needs_no_batch_file(tmp_path: Path, ledger: Ledger) -> None:
    """The rows to re-send come from the profile store, not the failed batch's file: a file
    gone by then loses nothing."""
    batch, settings = _from_the_store(tmp_path, ledger)
    rows = OutboxFile.of(batch).manifest()
    Path(batch.path).unlink()
    assert delivery.requeue_or_dead(ledger, settings, batch, rows, {}) == (3, 0)
    with ledger.session() as session:
        outcomes = session.query(RowOutcome).filter(RowOutcome.batch_id == batch.id).all()
        assert {o.status for o in outcomes} == {"requeued"}
    assert sorted(_requeued(ledger), key=lambda r: str(r["_identity"])) == sorted(
        _expected(HOSTILE[:3]), key=lambda r: str(r["_identity"])
    )
