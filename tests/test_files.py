"""The file rules: check first, write aside, move into place, never follow a link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dropkit._files import create_new_file, ensure_writable_folder, write_file, written_aside


def test_write_file_refuses_an_existing_file_and_keeps_it(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("the user's", encoding="utf-8")
    with pytest.raises(FileExistsError, match=r"results\.json already exists"):
        write_file(target, "ours")
    assert target.read_text(encoding="utf-8") == "the user's"
    assert sorted(os.listdir(tmp_path)) == ["results.json"]  # no temporary file left


def test_a_link_is_replaced_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    link = tmp_path / "report" / "index.html"
    link.parent.mkdir()
    link.symlink_to(victim)
    with pytest.raises(FileExistsError, match="already exists"):
        write_file(link, "ours")
    write_file(link, "ours", overwrite=True)
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not link.is_symlink()
    assert link.read_text(encoding="utf-8") == "ours"


def test_a_dangling_link_counts_as_existing(tmp_path: Path) -> None:
    link = tmp_path / "plot.png"
    link.symlink_to(tmp_path / "nowhere" / "file")
    with pytest.raises(FileExistsError, match="already exists"):
        write_file(link, b"png")
    assert create_new_file(link) is False
    assert not (tmp_path / "nowhere").exists()


def test_a_failing_writer_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "figure.png"

    def broken(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("plotting failed")

    with pytest.raises(RuntimeError, match="plotting failed"):
        write_file(target, broken)
    assert list(tmp_path.iterdir()) == []


def test_written_aside_writes_through_any_writer(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "out.txt"
    with written_aside(target) as scratch:
        assert scratch.parent == target.parent and scratch != target
        scratch.write_text("done", encoding="utf-8")
    assert target.read_text(encoding="utf-8") == "done"


def test_a_folder_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "results.json").mkdir()
    with pytest.raises(FileExistsError, match="is a folder"):
        write_file(tmp_path / "results.json", "x", overwrite=True)


def test_create_new_file_only_once(tmp_path: Path) -> None:
    path = tmp_path / "dropkit-tune.db"
    assert create_new_file(path) is True
    assert create_new_file(path) is False


def test_ensure_writable_folder(tmp_path: Path) -> None:
    assert ensure_writable_folder(tmp_path / "a" / "b").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(FileExistsError, match="exists and is not a folder"):
        ensure_writable_folder(blocker)


def test_files_get_the_mode_a_plain_open_gives(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x", encoding="utf-8")
    ours = write_file(tmp_path / "ours.txt", "x")
    assert ours.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
