"""How the ``dropkit`` command turns an exception into one line on standard error and an exit code.

The mapping (docs/cli.md has the user's view):

- :class:`UsageError`, any ``ValueError`` raised by dropkit's own argument checks, a missing,
  unreadable or misnamed path (``FileNotFoundError``, ``IsADirectoryError``,
  ``NotADirectoryError``, ``FileExistsError``, a name too long, a permission error on a file that
  exists and cannot be read): bad input, exit 2.
- :class:`UserCodeError`, or any exception whose traceback passes through the user's own code
  (a file outside dropkit, the standard library and the installed packages): a failure in their
  code, named with the exception, exit 1.
- :class:`EnvironmentFault`, any other ``OSError`` (disk full, permission denied while writing, a
  read-only file system, a device error), ``MemoryError``, a database error from ``sqlite3`` or
  SQLAlchemy, an ``ImportError`` (a package to install): an environment fault, exit 1.
- A closed standard output (``BrokenPipeError``): nothing printed, exit 141 (128 + SIGPIPE, as a
  command killed by the signal), or 0 while printing the help.
- ``KeyboardInterrupt``: nothing printed, exit 130.
- Anything else is a dropkit bug: ``internal error: ...``, exit 1.

With ``--debug`` the traceback is printed before the line.
"""

from __future__ import annotations

import errno
import functools
import os
import sqlite3
import sys
import sysconfig
import traceback
from types import FrameType

from dropkit.cli._common import (
    CLOSED_OUTPUT,
    FAILURE,
    INTERRUPTED,
    USAGE_ERROR,
    EnvironmentFault,
    UsageError,
    UserCodeError,
    describe,
)

#: ``errno`` values of a path the user gave that names nothing usable (missing, a folder where a
#: file is needed or the reverse, a name already taken, a name too long): bad input, not a fault.
BAD_PATH_ERRNOS = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}
)
#: The same as classes, for errors raised with a message only (no ``errno``).
BAD_PATH_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError)
#: The longest line printed for one error; longer messages (a huge CSV cell) are cut.
LINE_LIMIT = 400
DEBUG_HINT = " (run with --debug for the traceback)"


def report(error: BaseException, command: str | None, *, debug: bool, helping: bool) -> int:
    """Print ``error`` as one line on standard error (after its traceback with ``debug``).

    Returns the exit code. ``helping`` is True while the help text is being printed.
    """
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED
    if closed_output(error):
        return 0 if helping else CLOSED_OUTPUT
    code, line = classify(error)
    prefix = f"dropkit {command}" if command else "dropkit"
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    elif code == FAILURE and line.startswith(("error in your code", "internal error")):
        line += DEBUG_HINT
    print(f"{prefix}: {line}", file=sys.stderr, flush=True)
    return code


def classify(error: BaseException) -> tuple[int, str]:
    """The exit code of ``error`` and its line (without the ``dropkit COMMAND:`` prefix)."""
    if isinstance(error, UserCodeError):
        return FAILURE, f"error in your code: {first_line(str(error))}"
    if isinstance(error, UsageError):  # dropkit's own word for bad input, wherever raised
        return USAGE_ERROR, f"error: {first_line(str(error) or describe(error))}"
    where = user_code(error)
    if where is not None:
        return FAILURE, f"error in your code: {first_line(f'{where} raised {describe(error)}')}"
    cause = error.__cause__
    if cause is not None and (user_code(cause) is not None or user_syntax(cause)):
        return FAILURE, f"error in your code: {first_line(str(error) or describe(cause))}"
    if isinstance(error, (UsageError, ValueError)):
        return USAGE_ERROR, f"error: {first_line(str(error) or describe(error))}"
    if isinstance(error, OSError):
        code = USAGE_ERROR if bad_path(error) else FAILURE
        return code, f"error: {first_line(os_error_text(error))}"
    if isinstance(error, (EnvironmentFault, ImportError, MemoryError)) or database_error(error):
        text = str(error).strip() or ("out of memory" if isinstance(error, MemoryError) else "")
        return FAILURE, f"error: {first_line(text or describe(error))}"
    return FAILURE, f"internal error: {first_line(describe(error))}"


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, cut to :data:`LINE_LIMIT` characters."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= LINE_LIMIT else line[: LINE_LIMIT - 3] + "..."


def closed_output(error: BaseException) -> bool:
    """True for a write to a pipe whose reader has gone (``dropkit ... | head -1``)."""
    return isinstance(error, BrokenPipeError) or (
        isinstance(error, OSError) and error.errno == errno.EPIPE
    )


def bad_path(error: OSError) -> bool:
    """True when the OSError says the input path itself is wrong or unreadable."""
    if error.errno in BAD_PATH_ERRNOS or isinstance(error, BAD_PATH_ERRORS):
        return True
    if isinstance(error, PermissionError) and error.filename is not None:
        path = os.fsdecode(error.filename)
        return os.path.isfile(path) and not os.access(path, os.R_OK)
    return False


def os_error_text(error: OSError) -> str:
    """``"Reason: 'path'"`` for an OSError (the ``[Errno N]`` left out)."""
    reason = error.strerror or str(error).strip() or describe(error)
    if error.filename is None:
        return reason
    names = repr(os.fsdecode(error.filename))
    if error.filename2 is not None:
        names += f" -> {os.fsdecode(error.filename2)!r}"
    return f"{reason}: {names}"


def database_error(error: BaseException) -> bool:
    """An error of the database driver (unreachable, read-only, locked, malformed)."""
    if isinstance(error, sqlite3.Error):
        return True
    return any(
        kind.__module__.startswith(("sqlalchemy.", "psycopg")) and kind.__name__.endswith("Error")
        for kind in type(error).__mro__
    )


def user_code(error: BaseException) -> str | None:
    """Names the outermost frame of ``error``'s traceback that is the user's code, or None."""
    frames: list[tuple[FrameType, int]] = list(traceback.walk_tb(error.__traceback__))
    for frame, line in frames:
        filename = frame.f_code.co_filename
        if is_user_file(filename):
            name = os.path.basename(filename)
            function = frame.f_code.co_name
            return name if function == "<module>" else f"{function}() in {name}, line {line}"
    return None


def user_syntax(error: BaseException) -> bool:
    """True for a syntax error in one of the user's files."""
    filename = error.filename if isinstance(error, SyntaxError) else None
    return filename is not None and is_user_file(filename)


@functools.cache
def library_folders() -> tuple[str, ...]:
    """dropkit's folder, the standard library's and the installed packages'."""
    import dropkit

    paths = sysconfig.get_paths()
    folders = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    folders.add(os.path.dirname(os.path.abspath(dropkit.__file__)))
    folders.update(path for path in sys.path if "-packages" in path)
    return tuple(os.path.join(os.path.realpath(folder), "") for folder in folders)


def is_user_file(filename: str) -> bool:
    """True for a source file that belongs to none of :func:`library_folders`."""
    if filename.startswith("<"):
        return False
    return not os.path.realpath(filename).startswith(library_folders())
