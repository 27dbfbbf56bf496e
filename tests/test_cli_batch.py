"""``--batch`` on every expression command: as many lines out as in, in order, a bad line
reported in its place whatever its bytes, one summary line on stderr, and output that cannot be
written reported once (exit 1) with no half-written line left behind."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke, run_shell

from gradcli import batch

POINTS = '{"x": 1, "y": 2}\n{"x": 3}\n{"x": 3, "y": 4}\n'


def records(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


# --- every expression command -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "key", "first"),
    [
        ("eval", "grad", {"x": 2.0, "y": 1.0}),
        ("hessian", "hessian", {"x": {"x": 0.0, "y": 1.0}, "y": {"x": 1.0, "y": 0.0}}),
        ("jacobian", "jacobian", {"x": 2.0, "y": 1.0}),
        ("check", "ok", True),
    ],
)
def test_every_expression_command_answers_each_line_in_order(command: str, key: str, first: Any) -> None:
    rc, out, err = invoke(command, "x*y", "--batch", input=POINTS)
    assert rc == 1
    got = records(out)
    assert len(got) == 3
    assert got[0][key] == first
    assert got[1] == {"line": 2, "error": "missing value for 'y' (variables: x, y)"}
    assert key in got[2]
    assert err == "error: 1 of 3 lines failed (first: line 2, missing value for 'y' (variables: x, y))\n"


def test_every_line_good_is_exit_0_and_nothing_on_stderr() -> None:
    assert invoke("eval", "x*2", "--batch", input='{"x": 1}\n{"x": 2}\n') == (
        0,
        '{"value": 2.0, "grad": {"x": 2.0}}\n{"value": 4.0, "grad": {"x": 2.0}}\n',
        "",
    )


def test_a_check_that_fails_on_a_line_keeps_its_result_and_counts_as_failed(tmp_path: Path) -> None:
    rc, out, err = invoke("check", "exp(x)", "--eps", "1", "--batch", input='{"x": 0}\n{"x": -30}\n')
    assert rc == 1
    bad, good = records(out)
    assert bad["ok"] is False and bad["failures"] == 1 and good["ok"] is True
    assert err.startswith("error: 1 of 2 lines failed (first: line 1, 1 of 1 derivatives differ")


def test_strict_reports_the_line_in_place() -> None:
    rc, out, err = invoke("eval", "log(x)", "--strict", "--batch", input='{"x": 1}\n{"x": 0}\n')
    assert rc == 1
    assert records(out)[1] == {"line": 2, "error": "--strict: a value or gradient is NaN or infinite"}
    assert err.splitlines()[-1] == (
        "error: 1 of 2 lines failed (first: line 2, --strict: a value or gradient is NaN or infinite)"
    )


def test_wrt_and_order_apply_to_every_line() -> None:
    rc, out, _ = invoke("eval", "x**3 * y", "--wrt", "x", "--order", "2", "--batch", input=POINTS)
    first = records(out)[0]
    assert first == {"value": 2.0, "grad": {"x": 6.0}, "derivatives": {"x": [6.0, 12.0]}}


def test_output_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "results.ndjson"
    rc, out, _ = invoke("jacobian", "x*y", "--batch", "-o", str(path), input=POINTS)
    assert (rc, out) == (1, "")
    assert [("error" in r) for r in records(path.read_text())] == [False, True, False]


def test_arrays_files_are_refused_in_batch_mode(tmp_path: Path) -> None:
    rc, _, err = invoke("eval", "x", "--batch", "-o", str(tmp_path / "r.npz"), input='{"x": 1}\n')
    assert rc == 2 and "-o FILE takes a JSON file here" in err


# --- whatever the bytes -----------------------------------------------------------------------

GOOD = b'{"x": 1}\n'


def _same_from_stdin_and_file(tmp_path: Path, data: bytes) -> tuple[int, list[dict[str, Any]]]:
    path = tmp_path / "points.ndjson"
    path.write_bytes(data)
    from_file = invoke("eval", "x*2", "--batch", str(path))
    from_stdin = invoke("eval", "x*2", "--batch", input=data)
    assert from_file == from_stdin
    return from_file[0], records(from_file[1])


def test_invalid_utf8_is_an_error_in_its_line_only(tmp_path: Path) -> None:
    data = GOOD * 200 + b'{"x": "\xff"}\n' + GOOD * 178
    rc, got = _same_from_stdin_and_file(tmp_path, data)
    assert rc == 1 and len(got) == 379
    assert got[200] == {"line": 201, "error": "not UTF-8 text (byte 0xff at column 8)"}
    assert all(r["value"] == 2.0 for k, r in enumerate(got) if k != 200)


@pytest.mark.parametrize(
    ("data", "values"),
    [
        (b'{"x": 1}\r\n{"x": 2}\r\n', [2.0, 4.0]),
        (b'{"x": 1}\n{"x": 2}', [2.0, 4.0]),  # no newline at the end
        (b'\xef\xbb\xbf{"x": 1}\n{"x": 2}\n', [2.0, 4.0]),  # a byte-order mark
        (b'{"x": 1}\r{"x": 2}\n{"x": 3}\n', [None, 6.0]),  # a lone \r does not end a line
        (b'{"x": 1}\r\r\n', [2.0]),  # one \r is removed, the other is JSON whitespace
    ],
    ids=["crlf", "no final newline", "bom", "lone cr", "cr cr lf"],
)
def test_lines_end_at_newline_the_same_from_stdin_and_from_a_file(
    tmp_path: Path, data: bytes, values: list[float | None]
) -> None:
    _, got = _same_from_stdin_and_file(tmp_path, data)
    assert [r.get("value") for r in got] == values
    assert all(r["line"] == k for k, r in enumerate(got, start=1) if "error" in r)


def test_a_line_too_long_is_an_error_in_place_and_is_not_held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "MAX_LINE_BYTES", 100)
    long_line = b'{"x": [' + b"1, " * 10_000 + b"1]}\n"
    rc, out, _ = invoke("eval", "sum(x)", "--batch", input=GOOD + long_line + GOOD)
    assert rc == 1
    assert records(out) == [
        {"value": 1.0, "grad": {"x": 1.0}},
        {"line": 2, "error": "the line is longer than 100 bytes"},
        {"value": 1.0, "grad": {"x": 1.0}},
    ]


def test_a_result_too_big_to_write_is_an_error_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    # Writing a line's answer as JSON came after the line's own try: a MemoryError there (an
    # outer product of 3,000 elements under --max-memory 500M) ended the stream, status 1,
    # and the lines after it were never answered. (A line of its own shape is answered alone;
    # a batch of lines that fails in any way is answered again line by line.)
    real = batch.dumps

    def exhausted(data: Any) -> str:
        if isinstance(data, dict) and list(data.get("value", []))[:1] == [7.0]:
            raise MemoryError
        return real(data)

    monkeypatch.setattr(batch, "dumps", exhausted)
    text = '{"x": [1, 2]}\n{"x": [7, 7, 7]}\n{"x": [3, 4]}\n'
    rc, out, _ = invoke("--max-memory", "4G", "eval", "x * 1", "--batch", input=text)
    assert rc == 1
    got = records(out)
    assert [r.get("value") for r in got] == [[1.0, 2.0], None, [3.0, 4.0]]
    assert got[1]["line"] == 2 and got[1]["error"].startswith("out of memory: ")


def test_reading_takes_a_long_line_in_pieces() -> None:
    stream = io.BytesIO(b"a" * 1000 + b"\nb\n")
    assert list(batch.read_lines(stream, limit=10)) == [(None, 1001), (b"b", 2)]


# --- the progress bar ---------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("source", "allowed", "shown"),
    [("file", True, True), ("file", False, False), ("-", True, False)],
)
def test_progress_bar_only_for_a_file_and_never_on_the_terminal_of_the_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, allowed: bool, shown: bool
) -> None:
    path = tmp_path / "points.ndjson"
    path.write_bytes(GOOD * 100)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    name = str(path) if source == "file" else "-"
    with path.open("rb") as stream, batch.Progress(stream, name, allowed) as advance:
        for line in stream:
            advance(len(line))
    assert ("batch" in terminal.getvalue() and "100%" in terminal.getvalue()) == shown
    assert shown or terminal.getvalue() == ""


def test_a_batch_file_that_is_also_the_output_file_is_refused_not_emptied(tmp_path: Path) -> None:
    points = tmp_path / "points.ndjson"
    points.write_text(POINTS)
    (tmp_path / "link.ndjson").symlink_to(points)
    for output in (points, tmp_path / "link.ndjson"):
        rc, out, err = invoke("eval", "x*y", "--batch", str(points), "-o", str(output))
        assert (rc, out) == (2, "")
        assert err == (
            f"error: --batch {points} and -o {output} are the same file: "
            "writing the results would empty it before it is read\n"
        )
    assert points.read_text() == POINTS


def test_a_batch_from_stdin_redirected_from_the_output_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "points.ndjson").write_text(POINTS)
    rc, out, err = run_shell(f"cd {tmp_path} && gradcli eval 'x*y' --batch -o points.ndjson < points.ndjson")
    assert rc == 2
    assert err == (
        "error: --batch reads standard input from points.ndjson, the file -o writes: "
        "writing the results would empty it before it is read\n"
    )
    assert (tmp_path / "points.ndjson").read_text() == POINTS


def _stderr_on_a_terminal(*args: str, cwd: Path, stdout: str = "terminal") -> tuple[int, str]:
    """``gradcli ARGS`` with stderr on a pseudo-terminal, and stdout on it too or on a pipe:
    (status, what the terminal showed)."""
    import os
    import pty
    import subprocess
    import threading

    from conftest import read_terminal, subprocess_env

    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "gradcli", *args],
        stdin=subprocess.DEVNULL,
        stdout=follower if stdout == "terminal" else subprocess.PIPE,
        stderr=follower,
        cwd=cwd,
        env=subprocess_env(),
    ) as proc:
        os.close(follower)
        if proc.stdout is not None:
            threading.Thread(target=proc.stdout.read, daemon=True).start()
        shown = read_terminal(leader)
    os.close(leader)
    return proc.returncode, shown.decode()


@pytest.mark.parametrize(
    ("args", "stdout", "shown"),
    [
        (["-o", "out"], "terminal", True),
        (["-o", "out"], "pipe", False),  # in a pipe: never
        ([], "pipe", False),
        (["-o", "out", "-q"], "terminal", False),
    ],
    ids=["-o, from a terminal", "-o, stdout a pipe", "stdout a pipe", "-q"],
)
def test_a_progress_bar_only_from_a_terminal_never_in_a_pipe(
    tmp_path: Path, args: list[str], stdout: str, shown: bool
) -> None:
    (tmp_path / "points.ndjson").write_text(GOOD.decode() * 100)
    rc, seen = _stderr_on_a_terminal(
        "check", "x", "--batch", "points.ndjson", *args, cwd=tmp_path, stdout=stdout
    )
    assert rc == 0, seen
    assert ("batch  [" in seen) == shown, repr(seen)


def test_a_warning_during_a_batch_is_written_above_the_progress_bar(tmp_path: Path) -> None:
    (tmp_path / "points.ndjson").write_text('{"x": 1}\n{"x": 0}\n{"x": 2}\n')
    rc, shown = _stderr_on_a_terminal("eval", "log(x)", "--batch", "points.ndjson", "-o", "out", cwd=tmp_path)
    assert rc == 0, shown
    assert "warning: log: divide by zero" in shown and "100%" in shown, shown
    # each warning starts a cleared line of its own (not after the bar's "0%"), the bar after it
    for start in (i for i in range(len(shown)) if shown.startswith("warning:", i)):
        assert shown[:start].endswith(("\r\x1b[K", "\n")), repr(shown)
    assert shown.rstrip().endswith("100%\x1b[?25h"), repr(shown)


# --- output that cannot be written ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("batch_mode", [False, True], ids=["one result", "batch"])
@pytest.mark.parametrize(
    ("redirect", "reason"),
    [(">&-", "standard output is closed"), ("> /dev/full", "No space left on device")],
    ids=["stdout closed", "disk full"],
)
def test_output_that_cannot_be_written_is_one_error_with_exit_1(
    redirect: str, reason: str, batch_mode: bool
) -> None:
    command = "printf '{\"x\": 1}\\n' | gradcli eval x --batch" if batch_mode else "gradcli eval x --x 1"
    rc, out, err = run_shell(f"{command} {redirect}")
    assert rc == 1
    assert err == f"error: cannot write the output: {reason}\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        "gradcli --help",
        "gradcli --version",
        "gradcli eval --help",
        "gradcli plot x --x -1:1",
        "gradcli plot x --x -1:1 --format csv --points 2000",
    ],
)
@pytest.mark.parametrize(
    ("redirect", "reason"),
    [(">&-", "standard output is closed"), ("> /dev/full", "No space left on device")],
    ids=["stdout closed", "disk full"],
)
def test_help_version_and_plots_that_cannot_be_written_are_one_error_with_exit_1(
    command: str, redirect: str, reason: str
) -> None:
    """click's help and version and the plots went through print and click.echo, whose failure
    was a traceback (or 'internal error') and the interpreter's exit status 120; with standard
    output closed (Python's sys.stdout is None), help was silently lost with status 0 and a plot
    drawn in the terminal an internal error."""
    rc, out, err = run_shell(f"{command} {redirect}")
    assert (rc, err) == (1, f"error: cannot write the output: {reason}\n")


@pytest.mark.slow
def test_with_standard_streams_closed_a_command_that_writes_a_file_still_works(tmp_path: Path) -> None:
    """Closed stdout or stderr is a problem only for what would be written there: a plot or an
    answer that goes to a file is written, and an error still ends with its status."""
    rc, out, err = run_shell(f"cd {tmp_path} && gradcli plot 'x**2' --x -1:1 -o p.svg >&- 2>&-")
    assert rc == 0 and (tmp_path / "p.svg").read_bytes().startswith(b"<?xml")
    rc, out, err = run_shell(f"cd {tmp_path} && gradcli eval 'x*y' --x 2 --y 3 --json -o r.json >&-")
    assert (rc, err) == (0, "")
    assert json.loads((tmp_path / "r.json").read_text())["grad"] == {"x": 3.0, "y": 2.0}
    rc, out, err = run_shell("gradcli eval 'x*' --x 1 2>&-")
    assert (rc, err) == (2, "")


@pytest.mark.slow
def test_a_file_size_limit_leaves_whole_lines_only(tmp_path: Path) -> None:
    points = tmp_path / "points.ndjson"
    points.write_text("".join(json.dumps({"x": [k] * 7}) + "\n" for k in range(3000)))
    out = tmp_path / "out.ndjson"
    rc, _, err = run_shell(f"ulimit -f 8; gradcli eval 'x*2' --batch {points} > {out}")
    assert rc == 1
    assert err == "error: cannot write the output: File too large\n"
    text = out.read_text()
    assert text.endswith("\n") and len(text) <= 8192
    assert [r["value"][0] for r in records(text)] == [2.0 * k for k in range(len(text.splitlines()))]


# -- runs of lines as one batch -----------------------------------------------------------------------


def test_runs_of_lines_with_the_same_shapes_give_what_each_line_gives_alone() -> None:
    """Lines are evaluated together where their shapes agree; the text is the same as one by one
    (the scalar template, arrays, a bad line and a shape change in the middle of the stream)."""
    lines = [
        '{"x": 1.5, "y": 2}',
        '{"x": -0.25, "y": 3}',
        '{"x": 2, "y": [1, 2]}',
        '{"x": 3, "y": [4, 5]}',
        "not json",
        '{"x": 0, "y": 0}',
        '{"x": 1e300, "y": 1e300}',
    ]
    rc, together, _ = invoke("eval", "x*y + sin(x)", "--batch", input="\n".join(lines) + "\n")
    alone = [invoke("eval", "x*y + sin(x)", "--batch", input=line + "\n")[1] for line in lines]
    # Alone, each is line 1: number them as in the stream.
    alone = [a.replace('{"line": 1,', f'{{"line": {k},') for k, a in enumerate(alone, start=1)]
    assert rc == 1 and together == "".join(alone)


def test_strict_flags_each_line_of_a_run_in_its_place() -> None:
    text = '{"x": 1}\n{"x": 0}\n{"x": 2}\n'
    rc, out, _ = invoke("eval", "log(x)", "--strict", "--batch", input=text)
    records = [json.loads(line) for line in out.splitlines()]
    assert rc == 1 and "error" not in records[0] and "error" not in records[2]
    assert records[1] == {"line": 2, "error": "--strict: a value or gradient is NaN or infinite"}


def test_a_run_that_fails_as_a_whole_is_answered_line_by_line() -> None:
    """inv of a singular matrix fails the whole batch; each line then gets its own answer."""
    text = '{"a": [[1, 0], [0, 1]]}\n{"a": [[1, 2], [2, 4]]}\n{"a": [[2, 0], [0, 2]]}\n'
    rc, out, _ = invoke("eval", "sum(inv(a))", "--batch", input=text)
    records = [json.loads(line) for line in out.splitlines()]
    assert rc == 1 and [r.get("value") for r in records] == [2.0, None, 1.0]
    assert records[1]["line"] == 2 and "singular" in records[1]["error"].lower()


@pytest.mark.slow
def test_an_interactive_pipe_is_answered_line_by_line_without_waiting_for_more() -> None:
    """A reader that waits for each answer before it writes the next line must get it: the batch
    reader takes what has arrived, never a full chunk."""
    import select
    import subprocess
    import sys

    from conftest import subprocess_env

    proc = subprocess.Popen(
        [sys.executable, "-m", "gradcli", "eval", "x*y", "--y", "2", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=subprocess_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for x in (1, 2, 3):
            proc.stdin.write(f'{{"x": {x}}}\n'.encode())
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, f"no answer to line {x} while the pipe stays open"
            assert json.loads(proc.stdout.readline())["value"] == 2.0 * x
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0
