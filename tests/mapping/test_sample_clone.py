"""The shipped mappings work right after a clone: the sample database is in the repository."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.sample_data import ensure_sample_db

ROOT = Path(__file__).resolve().parents[2]


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The files git tracks under mappings/ and sample_exports/, as a clone has them."""
    tracked = subprocess.run(
        ["git", "ls-files", "--", "mappings", "sample_exports"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "sample_exports/crm.db" in tracked
    for name in tracked:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")  # the preview's tables whole
    return tmp_path


def test_preview_and_validate_the_shipped_mappings_after_a_clone(clone: Path) -> None:
    runner = CliRunner()
    plain = runner.invoke(main, ["preview", "crm_copernica"])  # the command
    assert plain.exit_code == 0, plain.output
    preview = runner.invoke(main, ["preview", "crm_copernica", "--partition", "2026-11-19"])
    assert preview.exit_code == 0, preview.output
    assert "50 rows mapped, 0 rejects" in preview.output  # customers updated on the 19th
    validate = runner.invoke(main, ["mappings", "validate"])
    assert validate.exit_code == 0, validate.output
    # reading the sample changed nothing a `git status` would show
    assert not (clone / ".connector").exists()
    assert sorted(p.name for p in (clone / "sample_exports").iterdir()) == [
        ".gitignore",
        "crm.db",
        "crm.sql",
        "pos",
    ]


def test_the_shipped_database_holds_what_its_sql_builds(tmp_path: Path) -> None:
    built = ensure_sample_db(tmp_path / "crm.db", sql=ROOT / "sample_exports" / "crm.sql")
    assert _dump(ROOT / "sample_exports" / "crm.db") == _dump(built)
