"""What only the real ``dropkit`` process does: stay quiet after Ctrl-C and a closed output.

A call of :func:`dropkit.cli.main` from Python changes nothing of the process; the installed
command (``main()`` without arguments) creates one :class:`CommandProcess`.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any, NoReturn


class CommandProcess:
    """What only the real ``dropkit`` process does (never a call of ``main`` from Python).

    Ctrl-C silences standard error at once, so that nothing (a library's log of the interrupted
    work, a worker thread's or an exit handler's traceback) is printed after it; a closed or
    failing standard output is pointed at the null device, so that the interpreter's last flush
    prints nothing either.
    """

    def __init__(self) -> None:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self.interrupt)
        if sys.stdout is not None:
            sys.stdout = NamedOutput(sys.stdout)

    def interrupt(self, signum: int, frame: FrameType | None) -> None:
        self.quiet()
        raise KeyboardInterrupt

    def quiet(self) -> None:
        """Nothing more on standard error, from any thread or exit handler."""
        threading.excepthook = lambda args: None
        sys.unraisablehook = lambda unraisable: None
        silence_stream(sys.stderr, 2)

    def exit_interrupted(self, code: int) -> NoReturn:
        """End the process with ``code`` (130) once Ctrl-C has been handled.

        CPython kills a process with SIGINT at exit, whatever exit code it asked for, when a
        ``KeyboardInterrupt`` has passed through code compiled from a string (``exec`` of
        source, as ``dataclasses`` and ``namedtuple`` run while a module imports), even if the
        exception was caught later. Ctrl-C during a lazy import of torch's would then end the
        command with -SIGINT instead of 130. So the exit handlers run here, and the process ends
        with ``os._exit``, which also leaves threads the interrupt stopped nothing to wait for.
        """
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)

    def flush_output(self) -> OSError | None:
        """Flush standard output; on failure point it at the null device and return the error."""
        try:
            sys.stdout.flush()
        except OSError as error:
            silence_stream(None, 1)
            return error
        except ValueError:  # closed by the user's code
            pass
        return None


class NamedOutput:
    """Standard output whose write errors name it (``No space left on device: 'standard output'``).

    Everything else is the wrapped stream's.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError as error:
            raise self._named(error) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as error:
            raise self._named(error) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    @staticmethod
    def _named(error: OSError) -> OSError:
        if error.filename is not None:
            return error
        return OSError(error.errno, error.strerror, "standard output")


def silence_stream(stream: Any, descriptor: int) -> None:
    """Point ``descriptor`` (1 or 2) at the null device so that nothing more reaches the user."""
    try:
        if stream is not None:
            stream.flush()
    except (OSError, ValueError):
        pass
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, descriptor)
    finally:
        os.close(null)
