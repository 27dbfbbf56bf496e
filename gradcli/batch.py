"""``--batch``: one JSON object of values per input line, one JSON result per output line.

The contract: as many lines out as in, in the same order, each written whole and flushed as it
is answered (it works in a pipe); a line that cannot be answered, whatever its bytes, gives
``{"line": N, "error": "..."}`` in its place and the stream goes on.

Three parts, kept apart so each can change alone:

- reading (:func:`read_lines`): bytes up to each ``\\n``, one trailing ``\\r`` removed, a UTF-8
  byte-order mark at the start dropped, a line longer than the cap skipped without being held;
  the same from stdin and from a file;
- understanding one line (:func:`parse_line`): UTF-8, then JSON, then values;
- answering (:func:`answer_lines`): a list of parsed lines in, their records out, in order. It
  is the seam for evaluating runs of lines together; today each is evaluated alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

import click

from .command import Sink, bounded, describe, fail

if TYPE_CHECKING:
    from .render import Output

# A line longer than this (or than the memory budget's share for text, inputs.text_cap) is an
# error in its place, read past without being held in memory.
MAX_LINE_BYTES = 256 << 20
_BOM = b"\xef\xbb\xbf"


class Line:
    """One input line: its ``number`` (from 1), its ``values`` or why it has none (``error``)."""

    __slots__ = ("number", "values", "error")

    def __init__(self, number: int, values: dict[str, Any] | None = None, error: str | None = None) -> None:
        self.number, self.values, self.error = number, values, error


class Record:
    """The answer to one line: its JSON ``text``, and why the line failed (None if it did not)."""

    __slots__ = ("number", "text", "failure")

    def __init__(self, number: int, text: str, failure: str | None = None) -> None:
        self.number, self.text, self.failure = number, text, failure


class Summary:
    """How many lines were answered, how many failed, and the first failure."""

    def __init__(self) -> None:
        self.total = 0
        self.failed = 0
        self.first: tuple[int, str] | None = None

    def add(self, record: Record) -> None:
        self.total += 1
        if record.failure is not None:
            self.failed += 1
            if self.first is None:
                self.first = (record.number, record.failure)

    def text(self) -> str:
        line = f"{self.failed:,} of {self.total:,} lines failed"
        if self.first is not None:
            line += f" (first: line {self.first[0]}, {self.first[1]})"
        return line


# --- reading --------------------------------------------------------------------------------------


def read_lines(stream: IO[bytes], limit: int | None = None) -> Iterator[tuple[bytes | None, int]]:
    """``(line, bytes consumed)`` for each line of ``stream``, without its end (``\\n`` and one
    ``\\r`` before it); ``None`` for a line longer than ``limit`` bytes (default
    :func:`line_limit`), which is read past in pieces, never held whole."""
    limit = line_limit() if limit is None else limit
    first = True
    while True:
        raw = stream.readline(limit + 1)
        if not raw:
            return
        size = len(raw)
        if size > limit and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = stream.readline(1 << 20)
                size += len(raw)
            first = False
            yield None, size
            continue
        line = raw.removesuffix(b"\n").removesuffix(b"\r")
        if first:
            line = line.removeprefix(_BOM)
            first = False
        yield line, size


def line_limit() -> int:
    """The longest line read: :data:`MAX_LINE_BYTES`, or less where the memory budget is small
    (the line's numbers take many times its size once parsed)."""
    from .inputs import text_cap

    cap = text_cap()
    return MAX_LINE_BYTES if cap is None else min(MAX_LINE_BYTES, cap)


def parse_line(number: int, raw: bytes | None) -> Line:
    """One line's values, or the reason it has none (``raw`` None: it was too long), in words."""
    import json

    from .inputs import InputError, json_loads, values_from_json_object

    if raw is None:
        return Line(number, error=f"the line is longer than {line_limit():,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Line(number, error=f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")
    if not text.strip():
        return Line(number, error="empty line: expected a JSON object of values")
    try:
        return Line(number, values_from_json_object(json_loads(text)))
    except json.JSONDecodeError as exc:
        return Line(number, error=f"not JSON: {exc.msg} at column {exc.colno}")
    except InputError as exc:
        return Line(number, error=str(exc))
    except RecursionError:
        return Line(number, error="JSON nested too deeply")
    except MemoryError:
        return Line(number, error="out of memory reading the line")
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        return Line(number, error=str(exc))


# --- answering ------------------------------------------------------------------------------------


def _error_record(number: int, message: str) -> Record:
    from .render import dumps

    message = bounded(message)
    return Record(number, dumps({"line": number, "error": message}), message)


def answer_lines(lines: Sequence[Line], answer: Callable[[dict[str, Any]], Output]) -> list[Record]:
    """The record of each line, in order: ``answer(values)``'s JSON, or the error in its place
    (bad values, shapes, memory, nesting, ``--strict``)."""
    from .render import dumps

    records = []
    for line in lines:
        if line.values is None:
            assert line.error is not None
            records.append(_error_record(line.number, line.error))
            continue
        try:
            output = answer(line.values)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a plugin's SystemExit is this line's error too
            described = describe(exc, excerpt=False)
            if described is None:
                raise
            records.append(_error_record(line.number, described[0]))
            continue
        if output.error is not None:
            records.append(_error_record(line.number, output.error))
        else:
            records.append(Record(line.number, dumps(output.data()), output.failed))
    return records


# --- the whole stream -----------------------------------------------------------------------------


def _open(source: str) -> IO[bytes]:
    if source == "-":
        if sys.stdin is None:
            fail("--batch: standard input is closed", 2)
        return sys.stdin.buffer
    try:
        return open(source, "rb")  # noqa: SIM115 - closed by run()
    except OSError as exc:
        fail(f"--batch {source}: {exc.strerror or exc}", 2)


class Progress:
    """A progress bar on stderr while a FILE is read, when stderr is a terminal and the results
    do not go to that terminal too (they would mix with the bar on the same screen)."""

    def __init__(self, stream: IO[bytes], source: str, to_terminal: bool) -> None:
        self.bar: Any = None
        if source != "-" and not to_terminal and sys.stderr is not None and sys.stderr.isatty():
            size = os.fstat(stream.fileno()).st_size
            self.bar = click.progressbar(length=size, file=sys.stderr, label="batch")

    def __enter__(self) -> Callable[[int], None]:
        if self.bar is None:
            return lambda n: None
        return self.bar.__enter__().update

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def run(
    source: str, answer: Callable[[dict[str, Any]], Output], sink: Sink, *, to_terminal: bool = False
) -> Summary:
    """Answer every line of ``source`` (``-`` for stdin) into ``sink``; returns the summary."""
    summary = Summary()
    stream = _open(source)
    try:
        with Progress(stream, source, to_terminal) as advance:
            for number, (raw, size) in enumerate(read_lines(stream), start=1):
                advance(size)
                for record in answer_lines([parse_line(number, raw)], answer):
                    sink.line(record.text)
                    summary.add(record)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        fail(f"--batch {source}: {exc.strerror or exc}", 2)
    finally:
        if stream is not getattr(sys.stdin, "buffer", None):
            stream.close()
    return summary
