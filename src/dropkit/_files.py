"""Writing files without ever clobbering what a user has: check first, write aside, move into place.

Rules, for every file dropkit writes (reports, figures, JSON, study databases):

- Where it will write is checked before any long work starts (:func:`ensure_writable_folder`).
- A file is written under a temporary name in the same folder and then moved into place in one
  step, so a reader never sees half a file and an interrupted run leaves nothing behind.
- A symbolic link is never followed: moving into place replaces the link itself, never the file it
  points to, and without ``overwrite`` an existing name (file, link or folder) is refused.
- :func:`create_new_file` creates a file that did not exist, atomically (``O_EXCL``), for files
  dropkit must never adopt from someone else (a default study database).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["create_new_file", "ensure_writable_folder", "write_file", "written_aside"]


def ensure_writable_folder(folder: str | Path) -> Path:
    """Create ``folder`` if needed and prove a file can be written there; return it.

    Raises:
        FileExistsError: ``folder`` exists and is not a folder.
        PermissionError: nothing can be written there (the message names the folder).
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".dropkit-probe-"):
            pass
    except OSError as error:
        raise PermissionError(f"cannot write into {path}: {error.strerror or error}") from error
    return path


@contextlib.contextmanager
def written_aside(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it to ``path`` in one step.

    The caller writes the temporary file (any writer: ``savefig``, ``write_text``, ...). On an
    exception the temporary file is removed and ``path`` is untouched.

    Raises:
        FileExistsError: ``path`` exists (as a file, link or folder) and ``overwrite`` is false,
            or ``path`` is a folder.
    """
    target = Path(path)
    _refuse_existing(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = _new_scratch(target)
    try:
        yield scratch
        _move_into_place(scratch, target, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            scratch.unlink()


def write_file(
    path: str | Path, data: str | bytes | Callable[[Path], object], *, overwrite: bool = False
) -> Path:
    """Write ``data`` (text, bytes, or a function that writes the path it is given) to ``path``.

    See :func:`written_aside` for the guarantees. Returns ``path``.
    """
    target = Path(path)
    with written_aside(target, overwrite=overwrite) as scratch:
        if isinstance(data, str):
            scratch.write_text(data, encoding="utf-8")
        elif isinstance(data, bytes):
            scratch.write_bytes(data)
        else:
            data(scratch)
    return target


def create_new_file(path: str | Path) -> bool:
    """Create an empty ``path`` if no file, link or folder has that name; True when created here.

    Atomic (``O_CREAT | O_EXCL``, which also refuses a dangling link), so two processes never both
    believe they created it.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    os.close(handle)
    return True


def _new_scratch(target: Path) -> Path:
    """A new empty file beside ``target``, with the mode a plain ``open`` would give (umask)."""
    while True:
        scratch = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
        try:
            handle = os.open(scratch, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(handle)
        return scratch


def _refuse_existing(target: Path, overwrite: bool) -> None:
    if target.is_dir() and not target.is_symlink():
        raise FileExistsError(f"{target} is a folder")
    if not overwrite and (target.exists() or target.is_symlink()):
        raise FileExistsError(f"{target} already exists")


def _move_into_place(scratch: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        _refuse_existing(target, overwrite)
        os.replace(scratch, target)  # replaces a link itself, never the file it points to
        return
    try:
        os.link(scratch, target)  # fails if the name exists: no window to clobber a new file
    except FileExistsError:
        raise FileExistsError(f"{target} already exists") from None
    except OSError:  # a file system without hard links
        _refuse_existing(target, overwrite)
        os.replace(scratch, target)
