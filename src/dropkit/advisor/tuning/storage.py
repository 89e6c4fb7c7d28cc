"""Opening a study's storage safely: checks before writing, one creator at a time, retries.

- A SQLite file is checked before anything is written: its folder and the file must be writable,
  and ``PRAGMA integrity_check`` must call it healthy. The default file, ``dropkit-tune.db``, is
  only ever created by dropkit (it holds a marker table); an existing file of that name without the
  marker is refused, never adopted.
- Creating the tables and the study happens under a lock, so workers started at once on a fresh
  storage all run: a lock file beside a SQLite file, ``pg_advisory_lock`` on PostgreSQL, retries on
  the known "already exists" errors elsewhere.
- Writes that fail because the storage is briefly unreachable are retried with a growing pause
  (:data:`RETRY_DELAYS`); a fault that retrying cannot cure (read-only, full, damaged) ends at once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from dropkit._files import create_new_file
from dropkit.advisor.tuning.errors import StorageError, first_line

DEFAULT_FILE = "dropkit-tune.db"
DEFAULT_STORAGE = f"sqlite:///{DEFAULT_FILE}"
#: The table that marks a SQLite file as created by dropkit.
MARKER_TABLE = "dropkit_study_file"
# A worker that stops sending heartbeats for this long (killed, machine lost) has its running
# trial marked failed, so it no longer counts as in flight; finished trials are never touched.
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120
#: Pauses between attempts at a write the storage refused; then the write is given up.
RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
# Faults that no retry cures: say so at once.
_PERMANENT = (
    ("readonly", "the database is read-only"),
    ("read-only", "the database is read-only"),
    ("disk is full", "the disk is full"),
    ("no space left", "the disk is full"),
    ("malformed", "the database file is damaged"),
    ("not a database", "the file is not a database"),
)
LOCK_SECONDS = 120
_ADVISORY_KEY = 0x64726F706B6974  # "dropkit": one lock for creating tables and studies
_T = TypeVar("_T")


def storage_url(storage: str | Path | None) -> str:
    """An Optuna storage URL: ``None`` is the local SQLite default, a plain path a SQLite file."""
    if storage is None:
        return DEFAULT_STORAGE
    text = str(storage)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL, or ``None`` (another backend, or in memory)."""
    if not url.startswith("sqlite:///"):
        return None
    name = url[len("sqlite:///") :].split("?", 1)[0]
    if name in ("", ":memory:"):
        return None
    return Path(name)


def hide_password(url: str) -> str:
    """``url`` for messages: its password, also one given as a query parameter, shown as ``***``.

    The URL is parsed by SQLAlchemy, as Optuna parses it (percent-encoded passwords included).
    A URL that SQLAlchemy cannot parse is shown up to its scheme only.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        scheme, separator, _ = url.partition("://")
        return f"{scheme}://..." if separator else "(an unreadable storage URL)"
    if parsed.host is not None and "@" in parsed.host:  # an unencoded "@" inside the password
        parsed = parsed.set(password="***", host=parsed.host.rpartition("@")[2])
    secret_keys = [key for key in parsed.query if key.lower() == "password"]
    if parsed.password is None and not secret_keys:
        return url
    query = {key: "***" if key in secret_keys else value for key, value in parsed.query.items()}
    return unquote(parsed.set(query=query).render_as_string(hide_password=True))


@contextlib.contextmanager
def creation_lock(url: str, *, default: bool) -> Iterator[None]:
    """Hold the lock under which tables and studies are created, after checking a SQLite file.

    ``default`` marks the default study file, which must have been created by dropkit.
    """
    path = sqlite_path(url)
    if path is not None:
        from filelock import FileLock, Timeout

        _check_folder(path)
        lock = FileLock(str(path.parent / f".{path.name}.lock"), timeout=LOCK_SECONDS)
        try:
            lock.acquire()
        except Timeout as error:
            raise StorageError(
                f"another process held the lock {lock.lock_file} for {LOCK_SECONDS} s"
            ) from error
        try:
            _check_sqlite_file(path, default=default)
            yield
        finally:
            lock.release()
        return
    if url.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres"):
        with _advisory_lock(url):
            yield
        return
    yield


def open_storage(optuna: Any, url: str) -> Any:
    """An ``RDBStorage`` with heartbeats for ``url`` (call it under :func:`creation_lock`)."""
    url = _with_driver(url)
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        # Several local workers write to one file: wait for the lock instead of failing.
        engine_kwargs = {"connect_args": {"timeout": 60}}

    def build() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
            )

    try:
        return retried(build, f"opening the storage {hide_password(url)}", integrity=True)
    except ImportError as error:
        raise ImportError(
            f"the storage {url.split('://')[0]}:// needs its database driver ({error}); for "
            "PostgreSQL: pip install 'dropkit[postgres]'"
        ) from error
    except StorageError:
        raise
    except Exception as error:  # a bad URL: say which, in one line
        raise ValueError(
            f"cannot open the storage {hide_password(url)}: {first_line(error)}"
        ) from error


def retried(action: Callable[[], _T], what: str, *, integrity: bool = False) -> _T:
    """Run ``action``; retry it after a storage fault that may pass, with growing pauses.

    ``integrity`` also retries integrity errors (two processes creating the same rows at once).
    Raises :class:`StorageError` naming ``what`` and the cause when retrying does not help.
    """
    for delay in (*RETRY_DELAYS, None):
        try:
            return action()
        except Exception as error:
            cause = storage_fault(error, integrity=integrity)
            if cause is None:
                raise
            permanent = _permanent(cause)
            if permanent is not None or delay is None:
                reason = f"{permanent}: {cause}" if permanent else cause
                raise StorageError(f"{what} failed: {reason}") from error
            time.sleep(delay)
    raise AssertionError("unreachable")


def storage_fault(error: BaseException, *, integrity: bool = False) -> str | None:
    """The one-line cause when ``error`` is the database's fault, else ``None``."""
    import sqlalchemy.exc
    from optuna.exceptions import StorageInternalError

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, sqlalchemy.exc.IntegrityError) and not integrity:
            return None
        if isinstance(seen, sqlalchemy.exc.DBAPIError):
            return first_line(seen.orig) if seen.orig is not None else first_line(seen)
        if isinstance(seen, (sqlalchemy.exc.OperationalError, sqlite3.Error)):
            return first_line(seen)
        if integrity and isinstance(seen, sqlalchemy.exc.ProgrammingError):
            return first_line(seen)
        if isinstance(seen, StorageInternalError) and seen.__cause__ is None:
            return first_line(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _permanent(cause: str) -> str | None:
    lowered = cause.lower()
    for needle, meaning in _PERMANENT:
        if needle in lowered:
            return meaning
    return None


def _check_folder(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"the folder {folder} of the study file {path} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(
            f"cannot write the study file {path}: its folder {folder} is read-only "
            "(SQLite writes its journal beside the file)"
        )


def _check_sqlite_file(path: Path, *, default: bool) -> None:
    if not path.exists() and not path.is_symlink() and create_new_file(path):
        with contextlib.closing(sqlite3.connect(path)) as connection, connection:
            connection.execute(f"CREATE TABLE {MARKER_TABLE} (created_by TEXT)")
            connection.execute(f"INSERT INTO {MARKER_TABLE} VALUES ('dropkit tune')")
        return
    if not path.is_file():
        raise ValueError(f"the study file {path} is not a file")
    if not os.access(path, os.R_OK | os.W_OK):
        raise StorageError(f"cannot write the study file {path}: it is read-only")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
            if default and MARKER_TABLE not in tables:
                raise _not_ours(path)
            problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as error:
        if default:  # not even a database: certainly not a file dropkit created
            raise _not_ours(path) from error
        problems = [first_line(error)]
    if problems != ["ok"]:
        raise StorageError(
            f"the study file {path} is damaged ({problems[0]}); nothing was written: restore it "
            "from a backup, or start over with another --storage"
        )


def _not_ours(path: Path) -> StorageError:
    return StorageError(
        f"{path} exists and was not created by dropkit tune: move it away, or name another "
        "study file with --storage (storage= in Python)"
    )


@contextlib.contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(_with_driver(url))
        connection = engine.connect()
    except sqlalchemy.exc.DBAPIError as error:
        cause = storage_fault(error) or first_line(error)
        raise StorageError(f"cannot reach the storage {hide_password(url)}: {cause}") from error
    except (sqlalchemy.exc.ArgumentError, ImportError) as error:
        raise ValueError(
            f"cannot open the storage {hide_password(url)}: {first_line(error)}"
        ) from error
    try:
        with connection:
            connection.execute(
                sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_KEY}
            )
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    connection.execute(
                        sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_KEY}
                    )
    finally:
        engine.dispose()


def _with_driver(url: str) -> str:
    """Name the PostgreSQL driver that is installed: recent SQLAlchemy reads a bare
    ``postgresql://`` as psycopg 3, while the ``postgres`` extra installs psycopg2."""
    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return url
    for module, dialect in (("psycopg2", "postgresql+psycopg2"), ("psycopg", "postgresql+psycopg")):
        if importlib.util.find_spec(module) is not None:
            return f"{dialect}{sep}{rest}"
    return url
