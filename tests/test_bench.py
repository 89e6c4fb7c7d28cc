"""Fetching the peers' source files for ``dropkit bench`` (pip faked: no network in tests)."""

import subprocess
import zipfile
from pathlib import Path

from dropkit import bench


def fake_pip(calls):
    def run(command, **kwargs):
        calls.append(command)
        folder = Path(command[command.index("-d") + 1])
        requirement = command[-1]
        name = requirement.split("==")[0]
        with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as archive:
            for relative in bench.PEER_FILES.values():
                if relative.startswith(name):
                    archive.writestr(relative, f"# {relative}\n")
            archive.writestr(f"{name}/other.py", "# not extracted\n")
        return subprocess.CompletedProcess(command, 0, "", "")

    return run


def test_fetch_extracts_only_the_peer_files(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(bench.subprocess, "run", fake_pip(calls))
    assert bench.fetch_peers(tmp_path) == []
    assert [command[-1] for command in calls] == list(bench.PEER_WHEELS)
    assert all("--no-deps" in command for command in calls)
    files = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*.py"))
    assert files == sorted(bench.PEER_FILES.values())
    # a second call finds everything in place and downloads nothing
    assert bench.fetch_peers(tmp_path) == []
    assert len(calls) == len(bench.PEER_WHEELS)


def test_fetch_reports_what_pip_could_not_get(tmp_path, monkeypatch):
    def failing(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "no network")

    monkeypatch.setattr(bench.subprocess, "run", failing)
    assert bench.fetch_peers(tmp_path) == list(bench.PEER_FILES.values())


def test_peers_dir_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPKIT_PEERS_DIR", str(tmp_path / "env"))
    assert bench.default_peers_dir(str(tmp_path / "arg")) == tmp_path / "arg"
    assert bench.default_peers_dir() == tmp_path / "env"
    monkeypatch.delenv("DROPKIT_PEERS_DIR")
    assert bench.default_peers_dir().parts[-3:] == (".cache", "dropkit", "peers")
