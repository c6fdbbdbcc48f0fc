"""A local listing is what ``glob`` finds, regular CSV files only, with each file's size,
mtime and ETag (its size and mtime), from one ``stat``."""

from __future__ import annotations

import datetime as dt
import glob
import os
from pathlib import Path

import pytest

from connector.sources.source_files import is_csv_name, list_files, local_file
from connector.storage import local_etag


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    exports = tmp_path / "exports"
    (exports / "sub").mkdir(parents=True)
    for name in ("pos_2026-11-01.csv", "pos_2026-11-02.csv.gz", "other.txt", ".pos_hidden.csv"):
        (exports / name).write_text(name)
    (exports / "sub" / "pos_2026-11-03.csv").write_text("nested")
    (exports / "pos_dir.csv").mkdir()  # not a file
    (exports / "pos_link.csv").symlink_to(exports / "pos_2026-11-01.csv")
    (exports / "pos_broken.csv").symlink_to(exports / "gone.csv")
    (tmp_path / "top_2026-11-04.csv").write_text("cwd")
    return exports


@pytest.mark.parametrize(
    "pattern",
    [
        "{exports}/*.csv",
        "{exports}/pos_*",
        "{exports}/.*.csv",
        "{exports}/**/*.csv",
        "{exports}/*/*.csv",
        "{exports}/pos_2026-11-01.csv",
        "{exports}/missing/*.csv",
        "exports/pos_[0-9]*.csv",
        "*.csv",
    ],
)
def test_a_listing_finds_what_glob_finds(folder: Path, pattern: str) -> None:
    pattern = pattern.format(exports=folder)
    expected = sorted(
        p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p) and is_csv_name(p)
    )
    listed = list_files(pattern)
    assert [f.path for f in listed] == expected
    for f in listed:
        info = os.stat(f.path)
        assert (f.size, f.etag, f.modified_ns) == (
            info.st_size,
            local_etag(info),
            info.st_mtime_ns,
        )
        assert (
            abs(f.mtime - dt.datetime.fromtimestamp(info.st_mtime, dt.UTC)).total_seconds() < 1e-5
        )


def test_a_file_that_is_not_there_or_not_a_file_is_not_listed(folder: Path) -> None:
    assert local_file(str(folder / "gone.csv")) is None
    assert local_file(str(folder / "pos_dir.csv")) is None
    listed = local_file(str(folder / "pos_2026-11-01.csv"))
    assert listed is not None and listed.size == len("pos_2026-11-01.csv")
