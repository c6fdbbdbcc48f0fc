"""Profile store snapshots in an object store (moto's S3 on loopback): the ledger names the
object only once it is complete, another machine (an empty local folder) reads the store, old
versions leave the bucket as they leave a folder, a missing object fails loudly."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from connector.ledger import Ledger
from connector.profiles import snapshot_files
from connector.profiles import store as profile_store
from connector.storage import Location, ObjectMissing, StorageError, delete
from tests.conftest import S3Server
from tests.profiles.helpers import KEY, merge, store, values

NAMES = ["email", "tier"]
D1, D2, D3, D4 = "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"


@pytest.fixture
def bucket(s3_env: S3Server) -> Location:
    """A fresh prefix in the test bucket: the profiles location of one test."""
    return Location.parse(s3_env.url(f"profiles-{uuid.uuid4().hex[:8]}"))


def _objects(location: Location) -> list[str]:
    return [info.name.rsplit("/", 1)[-1][:11] for info in location.list()]


def test_the_ledger_names_the_object_and_an_empty_folder_reads_the_store(
    ledger: Ledger, tmp_path: Path, bucket: Location
) -> None:
    here = tmp_path / "a"
    merge(ledger, here, D1, [("a", "a@x", "gold"), ("b", "b@x", None)], names=NAMES)
    # the first version went to a folder: the store moves to the bucket with the next one
    assert store(ledger).url.startswith(str(here))
    merge(ledger, here, D2, [("a", "", "silver")], names=NAMES, location=bucket)
    ref = store(ledger)
    assert ref.url.startswith(f"{bucket}/{profile_store.store_key(KEY, 'crm')}/v0000000002-")
    assert _objects(bucket) == ["v0000000002"]
    # a run on another machine: nothing on its disk, the store read from the bucket
    elsewhere = tmp_path / "other-machine" / "profiles"
    assert not elsewhere.exists()
    remote = store(ledger, cache_dir=elsewhere)
    assert values(remote) == {
        "a": {"email": "a@x", "tier": "silver"},
        "b": {"email": "b@x", "tier": None},
    }
    assert remote.path.parent == profile_store.store_dir(elsewhere, KEY, "crm")
    # a day merged there builds on the store it read, and the next reader sees both
    other = tmp_path / "other-machine"
    merge(ledger, other, D3, [("c", "c@x", None)], names=NAMES, location=bucket)
    third = store(ledger, cache_dir=tmp_path / "third" / "profiles")
    assert set(values(third)) == {"a", "b", "c"} and values(third)["a"]["tier"] == "silver"


def test_no_cache_folder_for_a_remote_snapshot_is_a_clear_error(
    ledger: Ledger, tmp_path: Path, bucket: Location
) -> None:
    merge(ledger, tmp_path, D1, [("a", "a@x", None)], names=NAMES, location=bucket)
    with pytest.raises(ValueError, match="no cache folder"):
        _ = store(ledger).path


def test_a_snapshot_that_cannot_be_uploaded_is_never_named_in_the_ledger(
    ledger: Ledger, tmp_path: Path, bucket: Location, s3_env: S3Server
) -> None:
    merge(ledger, tmp_path, D1, [("a", "a@x", None)], names=NAMES, location=bucket)
    before = store(ledger)
    nowhere = Location.parse(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/profiles")
    with pytest.raises(StorageError, match="no-such-bucket"):
        merge(ledger, tmp_path, D2, [("a", "new@x", None)], names=NAMES, location=nowhere)
    assert store(ledger) == before
    fresh = store(ledger, cache_dir=tmp_path / "fresh")
    assert values(fresh) == {"a": {"email": "a@x", "tier": None}}


def test_replaced_snapshots_leave_the_bucket_after_the_readers_grace(
    ledger: Ledger, tmp_path: Path, bucket: Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    for day in (D1, D2, D3):
        merge(ledger, tmp_path, day, [("a", f"{day}@x", None)], names=NAMES, location=bucket)
    # a build in another container that opened an older version can still read it
    assert _objects(bucket) == ["v0000000001", "v0000000002", "v0000000003"]
    monkeypatch.setattr(snapshot_files, "READER_GRACE_S", -1.0)
    merge(ledger, tmp_path, D4, [("a", "4@x", None)], names=NAMES, location=bucket)
    assert _objects(bucket) == ["v0000000003", "v0000000004"]
    cached = profile_store.store_dir(tmp_path / "profiles", KEY, "crm")
    assert sorted(p.name[:11] for p in cached.glob("*.parquet")) == ["v0000000003", "v0000000004"]


def test_a_missing_snapshot_object_fails_loudly_naming_it(
    ledger: Ledger, tmp_path: Path, bucket: Location
) -> None:
    merge(ledger, tmp_path, D1, [("a", "a@x", None)], names=NAMES, location=bucket)
    ref = store(ledger, cache_dir=tmp_path / "empty")
    delete(ref.url)
    with pytest.raises(ObjectMissing, match=ref.url):
        _ = ref.path
    with pytest.raises(ObjectMissing):
        merge(ledger, tmp_path / "b", D2, [("a", "b@x", None)], names=NAMES, location=bucket)
