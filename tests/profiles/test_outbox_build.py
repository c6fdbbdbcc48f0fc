"""The account's outbox (connector/outbox/build.py): one full row per changed profile, built
from every store of the account, left out when it would tell the destination nothing new."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from connector.digests import profile_digest
from connector.ledger import COMPLETE, Batch, Ledger, record_delivered
from connector.outbox import build as outbox
from connector.outbox import manifests
from connector.profiles import store as profile_store
from connector.settings import Settings
from tests.batches.fakes import decode_batch
from tests.profiles.helpers import KEY, merge, store

CRM, POS = ["email", "tier"], ["lastStore"]
ALL = CRM + POS  # the account's params: the stores' in mapping order
D1, D2, D3, D4, D5 = (f"2026-01-0{i}" for i in range(1, 6))


@pytest.fixture(autouse=True, params=["looked_up", "exported"])
def last_sent_digests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test both ways: the changed profiles' confirmed digests looked up in the ledger
    (a night's few changes), or every digest of the account exported (LOOKUP_MAX 0)."""
    if request.param == "exported":
        monkeypatch.setattr(outbox, "LOOKUP_MAX", 0)
    return str(request.param)


def _crm(ledger: Ledger, settings: Settings, day: str, rows: list[tuple[str | None, ...]]) -> None:
    merge(ledger, settings.state_dir, day, rows, names=CRM, mapping="crm")


def _pos(ledger: Ledger, settings: Settings, day: str, rows: list[tuple[str | None, ...]]) -> None:
    merge(ledger, settings.state_dir, day, rows, names=POS, mapping="pos")


def _lines(batches: list[Batch], names: list[str] = ALL) -> dict[str, list[str]]:
    """identity -> the values of its line, as the service reads them."""
    got: dict[str, list[str]] = {}
    for batch in batches:
        header, rows = decode_batch(Path(batch.path).read_bytes())
        assert header == ["thirdPartyId", *names]
        for row in rows:
            assert row[0] not in got, f"{row[0]} twice"
            got[row[0]] = row[1:]
    return got


def _confirm(ledger: Ledger, batches: list[Batch]) -> None:
    """The destination confirmed the batches: digests delivered, batches complete."""
    for batch in batches:
        record_delivered(
            ledger,
            KEY,
            manifests.delivered_table(manifests.read(batch.manifest_path)),
            partition=batch.partition,
            batch_id=batch.id,
        )
        with ledger.session() as session:
            session.execute(update(Batch).where(Batch.id == batch.id).values(state=COMPLETE))


def test_two_stores_give_one_full_row_per_profile(ledger: Ledger, settings: Settings) -> None:
    _crm(ledger, settings, D1, [("a", "a@x", "gold"), ("b", "b@x", None)])
    _pos(ledger, settings, D1, [("a", "Utrecht"), ("c", "Delft")])
    result = outbox.build(settings, ledger, "target")
    assert (result.candidates, result.unchanged, result.rows) == (3, 0, 3)
    assert result.mappings == ["crm", "pos"] and result.param_names == ALL
    (batch,) = result.batches
    assert batch.mapping == "crm+pos" and batch.destination_key == KEY and batch.partition == D1
    # a param no store holds for the identity is empty: the whole set goes on every row
    assert _lines(result.batches) == {
        "a": ["a@x", "gold", "Utrecht"],
        "b": ["b@x", "", ""],
        "c": ["", "", "Delft"],
    }
    rows = manifests.read(batch.manifest_path).to_pylist()
    assert {r["_identity"]: r["_digest"] for r in rows} == {
        "a": profile_digest(ALL, ["a@x", "gold", "Utrecht"]),
        "b": profile_digest(ALL, ["b@x", None, None]),
        "c": profile_digest(ALL, [None, None, "Delft"]),
    }
    assert {r["_identity"]: r["_source_ref"] for r in rows}["a"] == f"crm={D1}:0; pos={D1}:0"
    # taken: nothing changed since, nothing to write
    again = outbox.build(settings, ledger, "target")
    assert (again.candidates, again.rows, again.batches) == (0, 0, [])


def test_changes_of_two_mappings_to_one_profile_go_out_as_one_row(
    ledger: Ledger, settings: Settings
) -> None:
    _crm(ledger, settings, D1, [("a", "a@x", "gold"), ("b", "b@x", None)])
    _pos(ledger, settings, D1, [("a", "Utrecht")])
    outbox.build(settings, ledger, "target")
    _crm(ledger, settings, D2, [("a", None, "silver"), ("b", "b@x", None)])
    _pos(ledger, settings, D2, [("a", "Delft")])
    result = outbox.build(settings, ledger, "target")
    # b's values did not change: not a candidate; a: one row with both changes and the rest
    assert (result.candidates, result.rows) == (1, 1)
    assert _lines(result.batches) == {"a": ["a@x", "silver", "Delft"]}


def test_a_profile_back_to_its_confirmed_row_is_not_sent(
    ledger: Ledger, settings: Settings
) -> None:
    _crm(ledger, settings, D1, [("a", "a@x", "gold"), ("b", "b@x", "gold")])
    first = outbox.build(settings, ledger, "target")
    _confirm(ledger, first.batches)
    # a changes and changes back before the outbox runs again; b changes for good
    _crm(ledger, settings, D2, [("a", "other@x", None), ("b", "b2@x", None)])
    _crm(ledger, settings, D3, [("a", "a@x", None)])
    result = outbox.build(settings, ledger, "target")
    assert (result.candidates, result.unchanged, result.rows) == (2, 1, 1)
    assert _lines(result.batches, CRM) == {"b": ["b2@x", "gold"]}


def test_the_latest_row_on_its_way_decides_over_the_confirmed_one(
    ledger: Ledger, settings: Settings
) -> None:
    _crm(ledger, settings, D1, [("a", "x", None)])
    _confirm(ledger, outbox.build(settings, ledger, "target").batches)
    _crm(ledger, settings, D2, [("a", "y", None)])
    on_its_way = outbox.build(settings, ledger, "target")  # queued, not confirmed
    assert _lines(on_its_way.batches, CRM) == {"a": ["y", ""]}
    # back to the confirmed value: the queued row (y) would land last, so x goes again
    _crm(ledger, settings, D3, [("a", "x", None)])
    back = outbox.build(settings, ledger, "target")
    assert (back.unchanged, back.rows) == (0, 1)
    assert _lines(back.batches, CRM) == {"a": ["x", ""]}
    # y, then x again before the next build: the latest queued row (x) already says it,
    # though an earlier queued one says y
    _crm(ledger, settings, D4, [("a", "y", None)])
    _crm(ledger, settings, D5, [("a", "x", None)])
    again = outbox.build(settings, ledger, "target")
    assert (again.candidates, again.unchanged, again.rows, again.batches) == (1, 1, 0, [])


def test_built_version_moves_only_after_the_batches_are_registered(
    ledger: Ledger, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _crm(ledger, settings, D1, [("a", "a@x", None), ("b", "b@x", None)])

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full (test)")

    with monkeypatch.context() as m:  # the batch files could not be written
        m.setattr(outbox, "write_rows", fail)
        with pytest.raises(OSError, match="disk full"):
            outbox.build(settings, ledger, "target")
    assert store(ledger).built_version == 0
    real = profile_store.mark_built
    with monkeypatch.context() as m:  # registered, then a crash before the store is marked
        m.setattr(profile_store, "mark_built", fail)
        with pytest.raises(OSError, match="disk full"):
            outbox.build(settings, ledger, "target")
    assert profile_store.mark_built is real
    assert store(ledger).built_version == 0
    with ledger.session() as session:
        assert session.query(Batch).count() == 1
    # the repeated build finds its rows queued: nothing written twice, and the store marked
    repeated = outbox.build(settings, ledger, "target")
    assert (repeated.candidates, repeated.unchanged, repeated.batches) == (2, 2, [])
    assert store(ledger).built_version == store(ledger).version == 1
    with ledger.session() as session:
        assert session.query(Batch).count() == 1
    assert outbox.build(settings, ledger, "target").candidates == 0


def test_only_the_mappings_named_and_one_profile_per_account(
    ledger: Ledger, settings: Settings
) -> None:
    _crm(ledger, settings, D1, [("a", "a@x", "gold")])
    _pos(ledger, settings, D1, [("a", "Utrecht")])
    only = outbox.build(settings, ledger, "target", mappings={"crm"})
    assert only.param_names == CRM and only.rows == 1
    header, rows = decode_batch(Path(only.batches[0].path).read_bytes())
    assert header == ["thirdPartyId", *CRM] and rows == [["a", "a@x", "gold"]]
    assert outbox.build(settings, ledger, "copernica").batches == []  # no store there
    # a param fed by two mappings, or two identity types: no one profile to send
    merge(ledger, settings.state_dir, D1, [("a", "a@y")], names=["email"], mapping="web")
    with pytest.raises(
        outbox.OutboxError, match=r"params\.email: also fed to the same target account"
    ):
        outbox.build(settings, ledger, "target")
    merge(
        ledger,
        settings.state_dir,
        D1,
        [("a", "x")],
        names=["city"],
        mapping="web",
        identity_type="pcId",
    )
    with pytest.raises(outbox.OutboxError, match=r"identity\.type: .* identify profiles one way"):
        outbox.build(settings, ledger, "target")


def test_current_rows_are_the_profiles_as_they_stand(ledger: Ledger, settings: Settings) -> None:
    _crm(ledger, settings, D1, [("a", "a@x", "gold"), ("b", "b@x", None)])
    _pos(ledger, settings, D1, [("b", "Delft")])
    built = outbox.build(settings, ledger, "target")
    _crm(ledger, settings, D2, [("b", None, "silver")])
    acct, table = outbox.current_rows(settings, ledger, "target", ["b", "a"])
    assert acct.param_names == tuple(ALL) and acct.key == KEY
    assert table.column_names == ["_identity", "_source_ref", "_digest", *ALL]
    rows = table.to_pylist()
    assert [(r["_identity"], r["email"], r["tier"], r["lastStore"]) for r in rows] == [
        ("a", "a@x", "gold", None),
        ("b", "b@x", "silver", "Delft"),  # the value learnt since the build
    ]
    assert [r["_digest"] for r in rows] == [
        profile_digest(ALL, ["a@x", "gold", None]),
        profile_digest(ALL, ["b@x", "silver", "Delft"]),
    ]
    # a's row as built: the same digest
    built_a = [
        r
        for r in manifests.read(built.batches[0].manifest_path).to_pylist()
        if r["_identity"] == "a"
    ]
    assert built_a[0]["_digest"] == rows[0]["_digest"]
