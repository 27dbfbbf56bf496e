"""The ``gradcli`` console script (and ``python -m gradcli``).

Ctrl-C while the program is still starting (importing NumPy and click takes a moment) ends like
Ctrl-C later on, with status 130 and no traceback.

While gradcli starts, Python's cyclic garbage collector waits (:func:`started` ends the wait).
Starting makes about 40,000 objects (the modules of NumPy, click and gradcli, their classes and
functions, the parsed expression), and all of them live as long as the process: the collections
that their allocations set off (every 700, by Python's default threshold) free nothing, and took
about a third of gradcli's own start on top of ``import numpy``. So the collector's first
threshold is raised until the command has parsed its expression and read its inputs; then what
exists is frozen (:func:`gc.freeze`: no later collection walks it again) and Python's thresholds
come back. A command that never gets there still collects, only less often.
"""

from __future__ import annotations

import errno
import gc
import io
import sys

# The collector's first threshold while gradcli starts: above what starting allocates, and a
# bound on the cyclic garbage that could wait for a collection should a command never call
# started().
STARTING_THRESHOLD = 100_000

_thresholds: tuple[int, ...] | None = None  # Python's own, while the collector waits


class _Closed(io.TextIOBase):
    """In place of a standard stream that was closed when gradcli started (``>&-``), where Python
    leaves ``sys.stdout`` None: for output, a write fails as one on a closed descriptor does
    (EBADF: the CLI's one line "cannot write the output", status 1, whatever writes it: click's
    --help, a plot drawn in the terminal); for errors, whose messages have nowhere to go, a
    write is dropped and the exit status still tells. Nothing is ever written to descriptor 1
    or 2, which a file gradcli opens may have been given."""

    def __init__(self, fails: bool) -> None:
        self.fails = fails

    def write(self, s: str) -> int:
        if self.fails and s:
            raise OSError(errno.EBADF, "standard output is closed")
        return len(s)

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "closed")


def main() -> None:
    global _thresholds
    if sys.stdout is None:
        sys.stdout = _Closed(fails=True)
    if sys.stderr is None:
        sys.stderr = _Closed(fails=False)
    _thresholds = gc.get_threshold()
    gc.set_threshold(STARTING_THRESHOLD, *_thresholds[1:])
    try:
        from .cli import main as cli
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    try:
        cli(prog_name="gradcli")
    except OSError as exc:  # click's own --help and --version, written before any command runs
        _cannot_write(exc)
    finally:
        _flush_output()


def _flush_output() -> None:
    """Write out what standard output still buffers (``--help``, ``--version`` and short
    answers are flushed only as the interpreter ends), so that a full disk or a closed output is
    one line of error with exit status 1, not a traceback and status 120 from the interpreter's
    own last flush."""
    stream = sys.stdout
    if stream is None:
        return
    try:
        stream.flush()
    except OSError as exc:
        _cannot_write(exc)


def _cannot_write(exc: OSError) -> None:
    """A write to standard output failed: one line, status 1, as the CLI says it for a command
    (a closed pipe, ``| head``: quietly, as the reader has all it wanted)."""
    from .command import WRITE_FAILURES, silence_stdout  # (imported already, with the CLI)

    if not isinstance(exc, BrokenPipeError) and exc.errno not in WRITE_FAILURES:
        raise exc
    silence_stdout()
    if isinstance(exc, BrokenPipeError):
        sys.exit(0)
    sys.stderr.write(f"error: cannot write the output: {exc.strerror or exc}\n")
    sys.exit(1)


def started() -> None:
    """The command has started (its modules imported, its expression parsed, its inputs read):
    freeze what exists and give the collector its thresholds back. Nothing happens unless
    :func:`main` made the collector wait (the Python API leaves it alone)."""
    global _thresholds
    if _thresholds is not None:
        gc.freeze()
        gc.set_threshold(*_thresholds)
        _thresholds = None
