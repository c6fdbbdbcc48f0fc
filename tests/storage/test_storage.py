"""connector.storage against a real S3 endpoint (moto in server mode) and a local folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connector import storage
from tests.conftest import S3Server

BIG = 11 << 20  # over one multipart part (8 MiB): the upload is a real multipart upload


@pytest.fixture(params=["s3", "local", "file-url"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> storage.Location:
    """The same contract on an S3 bucket, a plain folder and a ``file://`` URL."""
    if request.param == "s3":
        s3: S3Server = request.getfixturevalue("s3_env")
        return storage.location(f"s3://{s3.new_bucket('store')}/outbox")
    if request.param == "local":
        return storage.location(tmp_path / "store")
    return storage.location(f"file://{tmp_path}/store")


def _file(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / "work" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def test_put_then_read_back_every_way(where: storage.Location, tmp_path: Path) -> None:
    source = _file(tmp_path, "a.batch", BIG)
    url = where.put_file(source, "day/a.batch")

    assert url == where.url_of("day/a.batch")
    assert source.exists()  # a put without move keeps the local file
    assert storage.exists(url)
    info = storage.head(url)
    assert info.size == BIG and info.etag
    chunks = list(storage.open_stream(url, chunk_bytes=1 << 20))
    assert b"".join(chunks) == source.read_bytes()
    assert len(chunks) > 1  # streamed, not one read of the whole object
    cached = storage.fetch(url, tmp_path / "cache")
    assert cached.read_bytes() == source.read_bytes()
    assert [(i.name, i.size) for i in where.list()] == [("day/a.batch", BIG)]
    assert [i.url for i in where.list("day/")] == [url]
    assert where.list("other/") == []


def test_move_removes_the_local_file(where: storage.Location, tmp_path: Path) -> None:
    source = _file(tmp_path, "m.batch", 1000)
    data = source.read_bytes()
    url = where.put_file(source, "m.batch", move=True)
    assert not source.exists()
    assert b"".join(storage.open_stream(url)) == data


def test_delete_is_idempotent_and_a_missing_object_is_named(
    where: storage.Location, tmp_path: Path
) -> None:
    url = where.put_file(_file(tmp_path, "d.batch", 10), "d.batch")
    storage.delete(url)
    storage.delete(url)  # already gone: no error
    assert not storage.exists(url)
    for call in (storage.head, storage.open_stream, lambda u: storage.fetch(u, tmp_path / "c")):
        with pytest.raises(storage.ObjectMissing) as caught:
            call(url)
        assert url in str(caught.value) and "no such object" in str(caught.value)


def test_a_put_replaces_the_object_whole(where: storage.Location, tmp_path: Path) -> None:
    url = where.put_file(_file(tmp_path, "one", BIG), "same")
    second = _file(tmp_path, "two", 100)
    assert where.put_file(second, "same") == url
    assert b"".join(storage.open_stream(url)) == second.read_bytes()
    cached = storage.fetch(url, tmp_path / "cache")
    assert cached.read_bytes() == second.read_bytes()


def test_a_local_put_leaves_no_temporary_file(tmp_path: Path) -> None:
    where = storage.location(tmp_path / "out")
    where.put_file(_file(tmp_path, "x", 100), "k/x")
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["k", "x"]
    assert where.is_local and where.local_path == tmp_path / "out"


def test_fetch_of_a_local_path_is_the_path_itself(tmp_path: Path) -> None:
    source = _file(tmp_path, "local", 10)
    assert storage.fetch(str(source), tmp_path / "cache") == source
    assert not (tmp_path / "cache").exists()


def test_a_missing_bucket_fails_naming_the_url(s3_env: S3Server, tmp_path: Path) -> None:
    where = storage.location("s3://no-such-bucket-here/outbox")
    with pytest.raises(storage.StorageError) as caught:
        where.put_file(_file(tmp_path, "x", 10), "x")
    message = str(caught.value)
    assert "s3://no-such-bucket-here/outbox/x" in message
    assert not isinstance(caught.value, storage.ObjectMissing)
    assert s3_env.env["AWS_SECRET_ACCESS_KEY"] not in message


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("s3://bucket/a/b/", "s3://bucket/a/b"),
        ("s3://bucket", "s3://bucket"),
        ("gs://bucket/p", "gs://bucket/p"),
        ("az://container/p", "az://container/p"),
        ("file:///srv/outbox", "/srv/outbox"),
        ("/srv/outbox", "/srv/outbox"),
    ],
)
def test_locations_parse_to_one_url(given: str, expected: str) -> None:
    where = storage.location(given)
    assert str(where) == expected
    assert where.is_local == expected.startswith("/")
    assert storage.is_object_url(given) == (not where.is_local)


def test_a_relative_path_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert storage.location(".connector/outbox").local_path == tmp_path / ".connector/outbox"


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("s3://key:secret@bucket/p", "credentials"),
        ("s3://bucket/p?region=x", "credentials or options"),
        ("ftp://host/p", "not a storage URL"),
        ("s3:///p", "no bucket"),
        ("", "empty"),
    ],
)
def test_bad_locations_are_refused(given: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        storage.location(given)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("key", ["", "../x", "a//b", "a/./b"])
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="not a key"):
        storage.location("s3://bucket/p").join(key)
