"""``--batch``: one JSON object of values per input line, one JSON result per output line.

The contract: as many lines out as in, in the same order, each written whole and flushed as it
is answered (it works in a pipe); a line that cannot be answered, whatever its bytes, gives
``{"line": N, "error": "..."}`` in its place and the stream goes on.

Three parts, kept apart so each can change alone:

- reading (:func:`read_chunks`): the lines that have arrived, as one chunk each time more input
  has been read (all of a file's buffer at once; in a pipe, what is there when the reader asks,
  so an interactive ``--batch`` answers each line as it comes). Bytes up to each ``\\n``, one
  trailing ``\\r`` removed, a UTF-8 byte-order mark at the start dropped, a line longer than the
  cap skipped without being held; the same from stdin and from a file;
- understanding one line (:func:`parse_line`): UTF-8, then JSON, then values;
- answering (:func:`answer_lines`): a chunk of parsed lines in, their records out, in order.
  Runs of lines whose variables have the same shapes are evaluated together, as one batch
  (:mod:`gradcli.batching`), when the command can (``answer_rows``); a run that fails as a whole
  is answered line by line, so every error stays in its line's place.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, Protocol

import numpy as np

from .budget import BudgetTooSmallError
from .command import Sink, bounded, describe, fail, progress_bar
from .inputs import InputError, json_loads, values_from_json_object
from .render import dumps

_orjson: Any
try:  # a fast reader of JSON lines (a dependency; without it, the standard library's)
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is installed with gradcli
    _orjson = None

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
    """``(line, bytes consumed)`` for each line of ``stream``, one at a time (see
    :func:`read_chunks`)."""
    for chunk in read_chunks(stream, limit):
        yield from chunk


def read_chunks(
    stream: IO[bytes], limit: int | None = None, block: int = 1 << 16
) -> Iterator[list[tuple[bytes | None, int]]]:
    """The lines of ``stream`` as they arrive: each chunk holds every complete line read so far
    as ``(line, bytes consumed)``, without its end (``\\n`` and one ``\\r`` before it); ``None``
    for a line longer than ``limit`` bytes (default :func:`line_limit`), which is read past in
    pieces, never held whole. Each read takes what the stream has (``read1``: at most one read
    of the file or pipe), so a chunk never waits for input that has not come."""
    limit = line_limit() if limit is None else limit
    read = getattr(stream, "read1", stream.read)
    pending = b""  # the start of a line whose end has not come yet
    skipping = 0  # bytes of a too-long line read past so far (0: not in one)
    first = True
    while True:
        data = read(block)
        chunk: list[tuple[bytes | None, int]] = []
        if not data:
            if skipping:
                chunk.append((None, skipping))
            elif pending:
                chunk.append(_line(pending, len(pending), first))
            if chunk:
                yield chunk
            return
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                rest = data[start:]
                if skipping:
                    skipping += len(rest)
                elif len(pending) + len(rest) > limit:
                    skipping, pending = len(pending) + len(rest), b""
                else:
                    pending += rest
                break
            piece = data[start:end]
            if skipping:
                chunk.append((None, skipping + len(piece) + 1))
                skipping = 0
            elif len(pending) + len(piece) > limit:
                chunk.append((None, len(pending) + len(piece) + 1))
                pending = b""
            else:
                whole = pending + piece if pending else piece
                pending = b""
                chunk.append(_line(whole, len(whole) + 1, first))
            first = False
            start = end + 1
        if chunk:
            yield chunk


def _line(raw: bytes, size: int, first: bool) -> tuple[bytes, int]:
    line = raw.removesuffix(b"\r")
    return (line.removeprefix(_BOM) if first else line), size


def line_limit() -> int:
    """The longest line read: :data:`MAX_LINE_BYTES`, or less where the memory budget is small
    (the line's numbers take many times its size once parsed)."""
    from .inputs import text_cap

    cap = text_cap()
    return MAX_LINE_BYTES if cap is None else min(MAX_LINE_BYTES, cap)


def parse_line(number: int, raw: bytes | None) -> Line:
    """One line's values, or the reason it has none (``raw`` None: it was too long), in words.

    orjson reads the lines it can (most of a batch's time was the standard library's decoder);
    a line it refuses is read again by the standard library, whose reading, or whose words for
    what is wrong, are gradcli's: it also takes ``NaN``, integers past 64 bits and lone
    surrogates, and it says which column is not JSON. The two agree on every number both read
    (both round correctly: tests/test_batch_reading.py holds them to it)."""
    if raw is None:
        return Line(number, error=f"the line is longer than {line_limit():,} bytes")
    if _orjson is not None:
        try:
            return Line(number, values_from_json_object(_orjson.loads(raw)))
        except (ValueError, InputError, RecursionError, MemoryError):  # (orjson's JSONDecodeError is one)
            pass  # read again below, which says what is wrong in gradcli's words
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
    message = bounded(message)
    return Record(number, dumps({"line": number, "error": message}), message)


RowsAnswer = Callable[[list[dict[str, Any]]], "Rows | None"]


class Rows(Protocol):
    """The answers of a run of lines at once: each line's JSON, or None where the line fails
    (``failure`` says why)."""

    failure: str

    def lines(self) -> list[str | None]: ...


def answer_lines(
    lines: Sequence[Line], answer: Callable[[dict[str, Any]], Output], answer_rows: RowsAnswer | None = None
) -> list[Record]:
    """The record of each line, in order: ``answer(values)``'s JSON, or the error in its place
    (bad values, shapes, memory, nesting, ``--strict``). With ``answer_rows``, each run of lines
    whose variables have the same names and shapes is answered by one call of it (a batch)."""
    return [record for group in answer_groups(lines, answer, answer_rows) for record in group]


def answer_groups(
    lines: Sequence[Line], answer: Callable[[dict[str, Any]], Output], answer_rows: RowsAnswer | None = None
) -> Iterator[list[Record]]:
    """:func:`answer_lines` as it goes: the records of a batch together, else one line's at a
    time, so that each can be written as soon as it is known."""
    for run in _runs(lines):
        rows = _answer_together(run, answer_rows) if answer_rows is not None and len(run) > 1 else None
        if rows is None:
            for line in run:
                yield [_answer_alone(line, answer)]
        else:
            yield rows


def _runs(lines: Sequence[Line]) -> Iterator[list[Line]]:
    """Consecutive lines with values of the same names and shapes; a line without values alone."""
    run: list[Line] = []
    key: Any = None
    for line in lines:
        this = None if line.values is None else _shapes(line.values)
        if run and (this is None or this != key):
            yield run
            run = []
        run.append(line)
        key = this
        if this is None:
            yield run
            run = []
    if run:
        yield run


def _shapes(values: dict[str, Any]) -> tuple[Any, ...]:
    """What lines must share to be answered as one batch: names, and the shapes of arrays."""
    return tuple([n if type(v) is np.float64 else (n, np.shape(v)) for n, v in values.items()])


def _answer_together(run: list[Line], answer_rows: RowsAnswer) -> list[Record] | None:
    """The records of the run from one batch, or None where it is to be answered line by line
    (the command cannot, or something failed: then each line finds its own error)."""
    try:
        rows = answer_rows([line.values for line in run if line.values is not None])
        if rows is None:
            return None
        texts = rows.lines()
    except (KeyboardInterrupt, BudgetTooSmallError):  # (a budget too small ends the run: see gradcli.budget)
        raise
    except BaseException:  # noqa: BLE001 - every line is answered again on its own (a plugin's SystemExit too)
        return None
    return [
        Record(line.number, text) if text is not None else _error_record(line.number, rows.failure)
        for line, text in zip(run, texts)
    ]


def _answer_alone(line: Line, answer: Callable[[dict[str, Any]], Output]) -> Record:
    if line.values is None:
        assert line.error is not None
        return _error_record(line.number, line.error)
    try:
        # The JSON too: a result too big to write within the memory budget is this line's error.
        return _record(line.number, answer(line.values))
    except (KeyboardInterrupt, BudgetTooSmallError):
        raise
    except BaseException as exc:  # a plugin's SystemExit is this line's error too
        described = describe(exc, excerpt=False)
        if described is None:
            raise
        return _error_record(line.number, described[0])


def _record(number: int, output: Output) -> Record:
    if output.error is not None:
        return _error_record(number, output.error)
    return Record(number, dumps(output.data()), output.failed)


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
    """A progress bar on stderr while a FILE is read, where the caller allows one (``shown``)
    and stderr is a terminal. Warnings (:func:`gradcli.command.warn`) are written above it."""

    def __init__(self, stream: IO[bytes], source: str, shown: bool) -> None:
        self.bar: Any = None
        if source != "-" and shown and sys.stderr is not None and sys.stderr.isatty():
            self.bar = progress_bar(os.fstat(stream.fileno()).st_size, "batch")

    def __enter__(self) -> Callable[[int], None]:
        if self.bar is None:
            return lambda n: None
        return self.bar.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def run(
    source: str,
    answer: Callable[[dict[str, Any]], Output],
    sink: Sink,
    *,
    progress: bool = False,
    answer_rows: RowsAnswer | None = None,
) -> Summary:
    """Answer every line of ``source`` (``-`` for stdin) into ``sink``; returns the summary.
    Records are written as soon as they are answered, whole lines: a batch's together."""
    summary = Summary()
    stream = _open(source)
    number = 0
    try:
        with Progress(stream, source, progress) as advance:
            for chunk in read_chunks(stream):
                lines = [parse_line(number + i, raw) for i, (raw, _) in enumerate(chunk, start=1)]
                number += len(chunk)
                for records in answer_groups(lines, answer, answer_rows):
                    sink.write("".join(record.text + "\n" for record in records).encode("utf-8"))
                    for record in records:
                        summary.add(record)
                advance(sum(size for _, size in chunk))
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        fail(f"--batch {source}: {exc.strerror or exc}", 2)
    finally:
        if stream is not getattr(sys.stdin, "buffer", None):
            stream.close()
    return summary
