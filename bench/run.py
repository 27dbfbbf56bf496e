"""gradcli against its peers and floors: each row of issue 13's table, measured in one run.

    python bench/run.py                 # full sizes (about 4 minutes on 2 CPUs)
    python bench/run.py --quick         # tiny sizes: checks that the harness works, not the speed
    python bench/run.py --write         # also put the tables into bench/README.md
    python bench/run.py --peers none --only cold,ops

Every measurement runs in a process of its own (``bench/peers/worker.py`` for in-process work,
the real command line for whole-process workloads), so one implementation's imports and memory
never weigh on another's. A peer that is not installed is skipped with a note. Each result is
checked against the floor's answer (or the answer worked out here) before its time is shown: a
ratio never flatters a wrong answer. Linux (or another Unix with ``os.wait4``) is assumed for the
per-process peak memory.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
sys.path.insert(0, str(PEERS))
from common import ARRAY_EXPR, CHAIN_START, QUADRATIC_EXPR, A, B  # noqa: E402 - after the path

README = ROOT / "bench" / "README.md"
MARK_START = "<!-- bench:run.py start -->"
MARK_END = "<!-- bench:run.py end -->"

SEED_EXPR = "add(square(x), square(y))"
BATCH_EXPR = "x*y + sin(x)"
# In the order of issue 13's table.
WORKLOADS = ("batch", "ops", "file", "sum", "arrays", "hessian", "cold")
# The summary: a line per row of issue 13's table (two where a row has two aims or two routes).
SUMMARY = ("row of issue 13", "gradcli", "peer or floor", "ratio", "aim", "met")
TEXT_COLUMNS = {"note", "answer checked", *SUMMARY[:3], *SUMMARY[4:]}
GB = 1e9  # the "1.5 GB": decimal gigabytes


@dataclass(frozen=True)
class Impl:
    key: str  # module in bench/peers
    short: str  # name for --peers
    label: str
    needs: str | None  # import name of the peer library; None: always there
    workloads: frozenset[str]
    peer: bool = True


FLOOR = Impl("numpy_hand", "floor", "by hand (floor)", None, frozenset({"chain", "arrays", "hessian"}), False)
API, EXPR = "gradcli, Python API", "gradcli, expression"
# Also row 3's parser, with Python's beside it.
GRADCLI_EXPR = Impl(
    "gradcli_expr", "gradcli", EXPR, None, frozenset({"arrays", "hessian", "parse", "phases"}), False
)
PYTHON_AST = Impl("python_ast", "ast", "ast.parse", None, frozenset({"parse"}), False)
TORCH, TORCH_VECTORIZED = "PyTorch eager (CPU)", "PyTorch eager (CPU), `vectorize=True`"
IMPLS = (
    FLOOR,
    Impl("gradcli_api", "gradcli", API, None, frozenset({"chain", "arrays", "hessian"}), False),
    GRADCLI_EXPR,
    Impl("torch_eager", "torch", TORCH, "torch", frozenset({"cold", "chain", "arrays", "hessian"})),
    Impl("torch_vectorized", "torch", TORCH_VECTORIZED, "torch", frozenset({"hessian"})),
    Impl(
        "autograd_hips",
        "autograd",
        "HIPS autograd",
        "autograd",
        frozenset({"cold", "chain", "arrays", "hessian"}),
    ),
    Impl("micrograd_value", "micrograd", "micrograd", "micrograd", frozenset({"cold", "chain"})),
    Impl("sympy_symbolic", "sympy", "SymPy, then NumPy", "sympy", frozenset({"cold", "arrays"})),
)


@dataclass(frozen=True)
class Sizes:
    batch_n: int
    batch_runs: int
    chain_n: int  # the chain of rows 2 and 3
    chain_runs: int
    file_runs: int
    sum_terms: int
    sum_runs: int
    array_n: int
    array_runs: int
    array_rounds: int  # a process of its own each round: its pages (huge or not) vary between them
    hessian_n: int
    hessian_runs: int
    cold_runs: int
    rounds: int  # in-process workloads: implementations take turns, this many times


FULL = Sizes(
    batch_n=100_000,
    batch_runs=3,
    chain_n=100_000,
    chain_runs=2,
    file_runs=3,
    sum_terms=1_000_000,
    sum_runs=3,
    array_n=10_000_000,
    array_runs=3,
    array_rounds=5,
    hessian_n=100,
    hessian_runs=30,
    cold_runs=25,
    rounds=2,
)
QUICK = Sizes(
    batch_n=200,
    batch_runs=1,
    chain_n=300,
    chain_runs=2,
    file_runs=1,
    sum_terms=1_000,
    sum_runs=1,
    array_n=10_000,
    array_runs=2,
    array_rounds=1,
    hessian_n=5,
    hessian_runs=2,
    cold_runs=2,
    rounds=1,
)


# --- running processes ----------------------------------------------------------------------------


@dataclass
class Proc:
    seconds: float
    peak_kb: int
    rc: int
    out: str
    err: str


def environment() -> dict[str, str]:
    """This checkout first on the path, so an uninstalled gradcli runs too; gradcli's settings at
    their defaults; bytecode cached.

    ``compile_bytecode`` compiles gradcli itself before anything is timed; leaving
    PYTHONDONTWRITEBYTECODE out lets the untimed first run of each command cache whatever else
    it imports (the peers' helper modules), as any installed program has its .pyc files.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    for name in [n for n in env if n.startswith("GRADCLI_")]:  # gradcli's defaults: no plugins, no caps
        del env[name]
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # NumPy's BLAS on one thread, as PyTorch runs the Hessian: at 100 variables a second thread
    # only adds hand-offs, and with other load on the machine a product waits for it (10-60 ms).
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


ENV = environment()


def run_process(
    cmd: Sequence[str],
    stdin: Path | None = None,
    stdout: Path | None = None,
    pipe: bool = False,
    timeout: float = 900.0,
) -> Proc:
    """Wall time and peak RSS (``wait4``'s ru_maxrss, this command only) of one whole process,
    started by ``bench/peers/spawn.py`` so that the harness's own memory does not count.

    ``stdin`` is redirected from the file, or with ``pipe`` fed through ``cat FILE |``, as a
    shell pipeline would. Output written to ``stdout`` is left there (``out`` is then empty)."""
    with (
        tempfile.TemporaryFile() as out_f,
        tempfile.TemporaryFile() as err_f,
        tempfile.NamedTemporaryFile("r", suffix=".spawn") as result,
    ):
        feeder = None
        if stdin is not None and pipe:
            feeder = subprocess.Popen(["cat", str(stdin)], stdout=subprocess.PIPE)
            fin: Any = feeder.stdout
        else:
            fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
        fout = open(stdout, "wb") if stdout else out_f
        spawn = [sys.executable, "-I", "-S", str(PEERS / "spawn.py"), result.name, *cmd]
        try:
            # A session of its own, so that a timeout ends the command along with the spawner.
            p = subprocess.Popen(
                spawn, stdin=fin, stdout=fout, stderr=err_f, env=ENV, cwd=ROOT, start_new_session=True
            )
            killer = threading.Timer(timeout, _kill_group, (p.pid,))
            killer.start()
            p.wait()
            killer.cancel()
        finally:
            for f in (fin, fout):
                if f not in (subprocess.DEVNULL, out_f):
                    f.close()
            if feeder is not None:
                feeder.wait()
        out_f.seek(0)
        err_f.seek(0)
        out = out_f.read().decode(errors="replace")
        err = err_f.read().decode(errors="replace")
        fields = result.read().split()
    if len(fields) != 3:  # the spawner itself failed or was killed
        return Proc(math.nan, 0, p.returncode or 1, out, err)
    return Proc(float(fields[0]), int(fields[1]), int(fields[2]), out, err)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def last_line(text: str, limit: int = 200) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def compile_bytecode() -> str:
    """Compile the gradcli that the measured processes import (``python -m compileall``).

    With PYTHONDONTWRITEBYTECODE set (as here) an editable install has no .pyc files, and each
    start would time the compiler (about 30 ms, a third of NumPy's import) instead of the start.
    Returns what was done, for the notes."""
    where = run_process(
        [sys.executable, "-c", "import gradcli, os; print(os.path.dirname(gradcli.__file__))"]
    )
    if where.rc != 0:
        return f"gradcli does not import: {last_line(where.err)}"
    package = where.out.strip()
    done = run_process([sys.executable, "-m", "compileall", "-q", package])
    if done.rc != 0:
        return f"`python -m compileall -q {package}` failed: {last_line(done.err or done.out)}"
    return f"`python -m compileall -q {package}` ran first, so every gradcli module has its .pyc file."


@dataclass
class Command:
    """A whole process to time: its arguments, its input, and whose it is."""

    label: str
    argv: list[str]
    stdin: Path | None = None
    pipe: bool = False
    ours: bool = False  # gradcli's: a failure fails the run


@dataclass
class Timed:
    command: Command
    procs: list[Proc]
    problem: str  # "" if the answer was right and every run exited 0

    @property
    def seconds(self) -> float:
        return statistics.median(p.seconds for p in self.procs) if self.procs else math.nan

    @property
    def peak_kb(self) -> int:
        return int(statistics.median(p.peak_kb for p in self.procs)) if self.procs else 0


def judged(p: Proc, c: Command, out: Path, check: Callable[[Command, str], str]) -> str:
    """Why the run ``p`` of ``c`` (its output in ``out``) is not right, or "" if it is."""
    if p.rc:
        return f"exit {p.rc}: {last_line(p.err)}"
    text = out.read_text()
    try:
        return check(c, text)
    except (ValueError, KeyError, TypeError) as exc:
        return f"unreadable output ({exc!r}): {text[:200]!r}"


def take_turns(
    commands: Sequence[Command], runs: int, out: Path, check: Callable[[Command, str], str]
) -> list[Timed]:
    """One untimed run of each command (the OS file cache warm, as in a shell loop) whose output
    ``check`` judges ("" if right), then ``runs`` timed runs with the commands taking turns: a burst
    of load from elsewhere falls on all of them alike instead of on whichever was being timed."""
    results = []
    for c in commands:
        p = run_process(c.argv, stdin=c.stdin, pipe=c.pipe, stdout=out)
        results.append(Timed(c, [], judged(p, c, out, check)))
    for _ in range(runs):
        for r in results:
            if not r.problem:
                p = run_process(r.command.argv, stdin=r.command.stdin, pipe=r.command.pipe, stdout=out)
                r.procs.append(p)
                if p.rc:
                    r.problem = f"exit {p.rc} on a timed run: {last_line(p.err)}"
    return results


@dataclass
class Measured:
    """A worker's answer: run times, check numbers, peak memory above its inputs."""

    times: list[float] = field(default_factory=list)
    checks: Any = None
    extra_kb: int = 0
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else math.nan


def work(
    workload: str,
    impl: Impl,
    size: int,
    repeats: int,
    text_file: Path | None = None,
    values: dict[str, float] | None = None,
) -> Measured:
    cmd = [sys.executable, str(PEERS / "worker.py"), workload, impl.key, str(size), str(repeats)]
    if text_file is not None:
        cmd.append(str(text_file))
    if values is not None:
        cmd.append(json.dumps(values))
    p = run_process(cmd)
    if p.rc != 0:
        return Measured(error=f"failed (exit {p.rc}): {last_line(p.err) or last_line(p.out)}")
    try:
        data = json.loads(last_line(p.out, limit=1 << 20))
    except ValueError:
        return Measured(error=f"no result: {last_line(p.out)!r}")
    return Measured(data["times"], data["checks"], data["extra_kb"])


def agrees(a: Any, b: Any) -> bool:
    """Each number within 1e-8 of the other, relatively: no absolute slack, which would pass the
    chain's gradient (about 3e-15) whatever it was."""
    return len(a) == len(b) and bool(np.allclose(a, b, rtol=1e-8, atol=0.0))


# --- the report -----------------------------------------------------------------------------------


@dataclass
class Report:
    sections: list[str] = field(default_factory=list)
    aims: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # gradcli or the floor broke: the run fails

    def table(
        self,
        title: str,
        intro: str,
        header: Sequence[str],
        rows: list[Sequence[str]],
        after: Sequence[str] = (),
    ) -> None:
        self.sections.append("\n".join([f"### {title}", "", intro, "", *markdown(header, rows), *after]))
        print(self.sections[-1] + "\n", flush=True)

    def aim(self, row: str, ours: str, theirs: str, ratio: str, aim: str, met: bool | None) -> None:
        """One line of the summary: a row of issue 13's table against its peer or floor."""
        verdict = "n/a" if met is None else ("met" if met else "**not met**")
        self.aims.append((row, ours, theirs, ratio, aim, verdict))


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    rule = "|".join("---" if i == 0 or h in TEXT_COLUMNS else "---:" for i, h in enumerate(header))
    return ["| " + " | ".join(header) + " |", f"|{rule}|", *("| " + " | ".join(r) + " |" for r in rows)]


def ratio(t: float, floor: float) -> str:
    return f"{t / floor:.2f}x" if floor > 0 and math.isfinite(t) and math.isfinite(floor) else "-"


def turns(runs: int, rounds: int) -> str:
    each = "after a warm-up" if rounds == 1 else f"in {rounds} rounds taking turns, each after a warm-up"
    return f"{plural(runs * rounds, 'run')} {each}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def mb(kb: float) -> str:
    return f"{kb / 1024:.0f}"


def installed(impl: Impl, chosen: set[str] | None) -> str | None:
    """None if ``impl`` runs; else why not (for the note)."""
    if not impl.peer:
        return None
    if chosen is not None and impl.short not in chosen:
        return "not selected (--peers)"
    if importlib.util.find_spec(impl.needs or impl.short) is None:
        return "not installed"
    return None


def versions(impls: Sequence[Impl]) -> str:
    parts = {"numpy": np.__version__}
    for impl in impls:
        if impl.peer and impl.needs not in parts:
            try:
                parts[impl.needs or impl.short] = importlib.metadata.version(impl.needs or impl.short)
            except importlib.metadata.PackageNotFoundError:
                parts[impl.needs or impl.short] = "(version unknown)"
    return ", ".join(f"{k} {v}" for k, v in parts.items())


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    mem = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
        cpu = found.group(1).strip() if found else cpu
        total = re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.M)
        mem = f", {int(total.group(1)) / 2**20:.0f} GiB RAM" if total else ""
    except OSError:
        pass
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        git = ["git", "-C", str(ROOT), "describe", "--always", "--dirty"]
        commit = subprocess.run(git, capture_output=True, text=True).stdout.strip() or "unknown"
    except OSError:
        commit = "unknown (no git)"
    return {
        "cpu": f"{cpu}, {ncpu} CPUs{mem}",
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "os": platform.platform(),
        "commit": commit,
    }


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def gradcli_eval(*args: str) -> list[str]:
    return [sys.executable, "-m", "gradcli", "eval", *args]


def json_answer(text: str) -> tuple[float, dict[str, float]]:
    data = json.loads(text)
    return data["value"], data["grad"]


# --- row 1: --batch -------------------------------------------------------------------------------


def batch(rep: Report, sizes: Sizes, tmp: Path) -> None:
    n = sizes.batch_n
    rng = np.random.default_rng(2)
    xs, ys = rng.uniform(-3, 3, n), rng.uniform(-3, 3, n)
    points = tmp / "points.ndjson"
    text_in = "".join(json.dumps({"x": float(a), "y": float(b)}) + "\n" for a, b in zip(xs, ys))
    points.write_text(text_in)
    expected = [xs * ys + np.sin(xs), ys + np.cos(xs), xs]

    def check(c: Command, text: str) -> str:
        if not c.ours:
            return "" if text == text_in else "the lines did not come back as they went in"
        lines = [json.loads(line) for line in text.splitlines()]
        got = [
            np.array([d["value"] for d in lines]),
            *(np.array([d["grad"][v] for d in lines]) for v in "xy"),
        ]
        if len(lines) != n:
            return f"{len(lines)} lines of output for {n}"
        wrong = [k for k, (g, e) in enumerate(zip(got, expected)) if not agrees(g, e)]
        return f"wrong {', '.join(['value', 'grad x', 'grad y'][k] for k in wrong)}" if wrong else ""

    echo = [sys.executable, str(PEERS / "json_echo.py")]
    ours = gradcli_eval(BATCH_EXPR, "--batch")
    commands = [
        Command("stdlib loop: `json_echo.py < FILE` (floor)", echo, points),
        Command(f'`gradcli eval "{BATCH_EXPR}" --batch FILE`', [*ours, str(points)], ours=True),
        Command("stdlib loop: `cat FILE \\| json_echo.py` (floor)", echo, points, pipe=True),
        Command(f'`cat FILE \\| gradcli eval "{BATCH_EXPR}" --batch`', ours, points, pipe=True, ours=True),
    ]
    results = take_turns(commands, sizes.batch_runs, tmp / "batch-out.ndjson", check)
    rows = []
    floor = math.nan
    for r in results:
        label, t = r.command.label, r.seconds
        if not r.command.ours:
            floor = math.nan if r.problem else t
        if r.problem:
            (rep.failed if r.command.ours else rep.notes).append(f"batch, {label}: {r.problem}")
            rows.append((label, "-", "-", "-", "-", r.problem))
            continue
        rows.append((label, f"{t:.3f}", f"{n / t:,.0f}", ratio(t, floor), mb(r.peak_kb), ""))
        if r.command.ours and math.isfinite(floor):
            route = "a file (`--batch FILE`)" if not r.command.pipe else "a pipe (stdin)"
            rep.aim(
                f"`--batch` of {n:,} lines, `{BATCH_EXPR}`, from {route}",
                f"{n / t:,.0f} points/s ({t:.2f} s)",
                f"stdlib loop {n / floor:,.0f} points/s",
                ratio(t, floor),
                "at most 1.5x" if not r.command.pipe else "recorded",
                t / floor <= 1.5 if not r.command.pipe else None,
            )
    rep.table(
        f"1. `--batch`: {n:,} lines of `{BATCH_EXPR}`",
        f"One JSON object of values per line in, one JSON result per line out, to a file; whole "
        f"processes. The floor reads and writes the same lines with the standard library's `json` "
        f"and nothing else (`bench/peers/json_echo.py`), from the same source: the file, or a pipe "
        f"fed by `cat`. Each gradcli answer (every line's value and both gradients) is checked "
        f"against NumPy's before it is timed. Median of {plural(sizes.batch_runs, 'run')} after one "
        f"untimed run, the commands taking turns.",
        ["route", "time (s)", "points per second", "vs floor", "peak RSS (MB)", "note"],
        rows,
    )


# --- row 2: the chain through the Python API, in a worker per implementation ----------------------


def compare_in_process(
    rep: Report, workload: str, impls: list[Impl], size: int, runs: int, rounds: int
) -> dict[str, Measured]:
    """Run ``workload`` for each implementation that has it; check every answer against the floor's.

    The implementations take turns for ``rounds`` rounds of ``runs`` timed runs each, so a burst
    of load from elsewhere on the machine falls on several of them rather than all on one.
    """
    out: dict[str, Measured] = {}
    floor: Measured | None = None
    for _ in range(rounds):
        for impl in impls:
            if workload not in impl.workloads or (impl.label in out and out[impl.label].error):
                continue
            m = work(workload, impl, size, runs)
            if m.error is None and floor is not None and not agrees(m.checks, floor.checks):
                m.error = f"wrong answer: {m.checks} vs the floor's {floor.checks}"
            if m.error is not None:
                (rep.failed if not impl.peer else rep.notes).append(f"{workload}, {impl.label}: {m.error}")
                out[impl.label] = m
                continue
            if impl is FLOOR and floor is None:
                floor = m
            if impl.label in out:
                out[impl.label].times += m.times
                out[impl.label].extra_kb = max(out[impl.label].extra_kb, m.extra_kb)
            else:
                out[impl.label] = m
    return out


def usable(res: dict[str, Measured], label: str) -> Measured | None:
    m = res.get(label)
    return m if m is not None and not m.error else None


def per_operation(rep: Report, sizes: Sizes, impls: list[Impl]) -> None:
    n = sizes.chain_n
    res = compare_in_process(rep, "chain", impls, n, sizes.chain_runs, sizes.rounds)
    floor, torch = res[FLOOR.label], usable(res, TORCH)
    rows = []
    for label, m in res.items():
        if m.error:
            rows.append((label, "-", "-", "-", "-", "-", m.error))
            continue
        rows.append(
            (
                label,
                f"{m.median:.3f}",
                f"{1e6 * m.median / n:.2f}",
                ratio(m.median, floor.median),
                ratio(m.median, torch.median) if torch else "-",
                f"{1024 * m.extra_kb / n:.0f}",
                "",
            )
        )
    rep.table(
        f"2. A chain of {n:,} operations, Python API",
        f"`y*{A}`, `y+{B}`, `relu(y)` in turn from x = {CHAIN_START}, forward and backward, building "
        f"and freeing the graph inside the timed region; median of {turns(sizes.chain_runs, sizes.rounds)}. "
        "The floor is Python floats with a list as the tape. Graph memory: peak RSS above the start, "
        "per operation.",
        [
            "implementation",
            "time (s)",
            "us per op",
            "vs floor",
            "vs PyTorch eager",
            "graph memory (bytes per op)",
            "note",
        ],
        rows,
    )
    ours = usable(res, API)
    if ours is not None and torch is not None:
        rep.aim(
            f"{n:,}-operation chain, Python API",
            f"{1e6 * ours.median / n:.2f} us/op",
            f"PyTorch eager {1e6 * torch.median / n:.2f} us/op",
            ratio(ours.median, torch.median),
            "below PyTorch eager (under 1x)",
            ours.median < torch.median,
        )


# --- row 3: the chain as an expression file -------------------------------------------------------


def chain_text(n: int) -> str:
    """Row 2's chain as an expression file: one operation per statement, each result named
    (``y1 = x*0.999``, ``y2 = y1 + 0.01``, ``y3 = relu(y2)``, ...), the last name the output. It
    is valid Python as well, and no statement is deep enough to trouble either parser."""
    lines, prev = [], "x"
    for i in range(n):
        step = (f"{prev}*{A}", f"{prev} + {B}", f"relu({prev})")[i % 3]
        lines.append(f"y{i + 1} = {step}")
        prev = f"y{i + 1}"
    return "\n".join([*lines, prev]) + "\n"


def chain_file(rep: Report, sizes: Sizes, tmp: Path) -> None:
    n = sizes.chain_n
    path = tmp / f"chain-{n}.txt"
    path.write_text(chain_text(n))
    text_mb = path.stat().st_size / 2**20
    floor = work("chain", FLOOR, n, 0)  # the answer only
    if floor.error:
        rep.failed.append(f"chain file, the floor: {floor.error}")
        return

    def check(c: Command, text: str) -> str:
        value, grad = json_answer(text)
        got = [value, grad["x"]]
        return "" if agrees(got, floor.checks) else f"wrong answer: {got} vs the floor's {floor.checks}"

    whole = take_turns(
        [
            Command(
                f"`gradcli eval -f FILE --x {CHAIN_START} --json`",
                gradcli_eval("-f", str(path), "--x", str(CHAIN_START), "--json"),
                ours=True,
            )
        ],
        sizes.file_runs,
        tmp / "chain-out.json",
        check,
    )[0]
    theirs = work("parse", PYTHON_AST, n, sizes.file_runs, path)
    ours = work("parse", GRADCLI_EXPR, n, sizes.file_runs, path)
    phases = work("phases", GRADCLI_EXPR, n, 1, path, {"x": CHAIN_START})
    for what, problem in (("whole run", whole.problem), ("parse", ours.error), ("phases", phases.error)):
        if problem:
            rep.failed.append(f"chain file, {what}: {problem}")
    if theirs.error:
        rep.failed.append(f"chain file, ast.parse: {theirs.error}")
        return
    floor_t = theirs.median
    rows = [
        ("`ast.parse` of the text, in one process (floor)", f"{floor_t:.3f}", "1.00x", "-", ""),
        (
            "`gradcli.language.parse` alone, in one process",
            f"{ours.median:.3f}" if not ours.error else "-",
            ratio(ours.median, floor_t),
            "-",
            ours.error or "",
        ),
        (
            whole.command.label + ", whole process",
            f"{whole.seconds:.3f}" if not whole.problem else "-",
            ratio(whole.seconds, floor_t),
            mb(whole.peak_kb) if not whole.problem else "-",
            whole.problem,
        ),
    ]
    after = []
    if not phases.error:
        total = sum(phases.checks.values())
        after = [
            "",
            "The same work in one process (the CLI's route: parse, then `calculus.evaluate` on the tape): "
            + ", ".join(f"{k} {v:.2f} s ({100 * v / total:.0f}%)" for k, v in phases.checks.items())
            + ".",
        ]
    rep.table(
        f"3. The {n:,}-operation chain as an expression file",
        f"Row 2's chain written one operation per statement (`y1 = x*{A}`, `y2 = y1 + {B}`, "
        f"`y3 = relu(y2)`, ...; {text_mb:.2f} MB, valid Python too), run by `gradcli eval -f` as a "
        f"whole process, against Python's own parser on the same text; the answer checked against the "
        f"floor of row 2. Median of {plural(sizes.file_runs, 'run')} each (the whole run after one "
        "untimed run; the parsers after a warm-up in their process).",
        ["route", "time (s)", "vs ast.parse", "peak RSS (MB)", "note"],
        rows,
        after,
    )
    if not whole.problem:
        rep.aim(
            f"{n:,}-operation chain as an expression file, whole `gradcli eval -f`",
            f"{whole.seconds:.2f} s" + (f" (parse {ours.median:.2f} s)" if not ours.error else ""),
            f"`ast.parse` {floor_t:.2f} s",
            ratio(whole.seconds, floor_t),
            "at most 2.5x",
            whole.seconds / floor_t <= 2.5,
        )


# --- row 4: a million-term sum --------------------------------------------------------------------


def sum_terms(terms: int) -> tuple[str, float]:
    """``x*c + x*c + ...``: one plain sum of ``terms`` terms in one statement, the constants
    cycling through 1.0000 ... 1.0999. Returns it and the sum of the constants (the gradient;
    the value is x times it)."""
    consts = [f"{1 + (i % 1000) * 1e-4:.4f}" for i in range(terms)]
    return " + ".join(f"x*{c}" for c in consts) + "\n", math.fsum(float(c) for c in consts)


def million_sum(rep: Report, sizes: Sizes, tmp: Path) -> None:
    n, x = sizes.sum_terms, CHAIN_START
    scaled, total = sum_terms(n)
    texts = {  # label: (text, the gradient with respect to x)
        "startup: `x`": ("x\n", 1.0),
        f"`x*c + x*c + ...`, {n:,} terms (the aim's row)": (scaled, total),
        f"`x + x + ...`, {n:,} terms (README's limits table, tests/test_reliability.py)": (
            " + ".join(["x"] * n) + "\n",
            float(n),
        ),
    }
    commands, expected = [], {}
    for k, (label, (text, grad)) in enumerate(texts.items()):
        path = tmp / f"sum-{k}.txt"
        path.write_text(text)
        commands.append(Command(label, gradcli_eval("-f", str(path), "--x", str(x), "--json"), ours=True))
        expected[label] = (len(text), [x * grad, grad])

    def check(c: Command, text: str) -> str:
        value, grad = json_answer(text)
        want = expected[c.label][1]
        return "" if agrees([value, grad["x"]], want) else f"wrong answer: {[value, grad['x']]}, not {want}"

    # Each timed run is checked as it is made (no untimed run first: at this size the file cache
    # is a rounding error and a run takes many seconds).
    results = []
    for c in commands:
        procs = []
        problem = ""
        for _ in range(sizes.sum_runs):
            out = tmp / "sum-out.json"
            p = run_process(c.argv, stdout=out)
            problem = judged(p, c, out, check)
            if problem:
                break
            procs.append(p)
        results.append(Timed(c, procs, problem))
    start = results[0]
    rows = []
    for r in results:
        label, size = r.command.label, expected[r.command.label][0]
        if r.problem:
            rep.failed.append(f"sum, {label}: {r.problem}")
            rows.append((label, f"{size / 2**20:.2f}", "-", "-", "-", "-", r.problem))
            continue
        per_term = r is not start and not start.problem
        rows.append(
            (
                label,
                f"{size / 2**20:.2f}",
                f"{r.seconds:.2f}",
                f"{1024 * r.peak_kb / GB:.2f}",
                f"{1e6 * (r.seconds - start.seconds) / n:.1f}" if per_term else "-",
                f"{1024 * (r.peak_kb - start.peak_kb) / n:.0f}" if per_term else "-",
                "",
            )
        )
    rep.table(
        f"4. A {n:,}-term sum, whole `gradcli eval -f`",
        f"`gradcli eval -f FILE --x {x} --json` as a whole process (parse, evaluate, print), the "
        f"answer checked against the sum worked out here; median of {plural(sizes.sum_runs, 'run')}, "
        "each checked (no untimed run first). Peak RSS from `wait4`, in GB (10^9 bytes). Per-term "
        "columns subtract the startup row.",
        ["text", "size (MB)", "time (s)", "peak RSS (GB)", "us per term", "bytes per term", "note"],
        rows,
    )
    aimed = results[1]
    if not aimed.problem:
        for what, got, limit, unit in (
            ("time", aimed.seconds, 30.0, "s"),
            ("peak memory", 1024 * aimed.peak_kb / GB, 1.5, "GB"),
        ):
            rep.aim(
                f"{n:,}-term sum `x*c + ...`, whole `gradcli eval -f`, {what}",
                f"{got:.2f} {unit}",
                "-",
                f"{got / limit:.2f}x the aim",
                f"at most {limit:g} {unit}",
                got <= limit,
            )


# --- row 5: big arrays ----------------------------------------------------------------------------


def big_arrays(rep: Report, sizes: Sizes, impls: list[Impl]) -> None:
    n = sizes.array_n
    res = compare_in_process(rep, "arrays", impls, n, sizes.array_runs, sizes.array_rounds)
    floor = res[FLOOR.label]
    array_kb = 8 * n / 1024
    rows = []
    for label, m in res.items():
        if m.error:
            rows.append((label, "-", "-", "-", "-", m.error))
            continue
        rows.append(
            (
                label,
                f"{m.median:.3f}",
                ratio(m.median, floor.median),
                mb(m.extra_kb),
                f"{m.extra_kb / array_kb:.1f}",
                "",
            )
        )
    rep.table(
        f"5. `{ARRAY_EXPR}` on {n:,} elements",
        f"Two float64 arrays of {n:,} elements ({8 * n / 2**20:.0f} MB each), value and both gradients; "
        f"median of {turns(sizes.array_runs, sizes.array_rounds)}. The floor is NumPy by hand, derivatives "
        "worked out on paper, each shared subexpression computed once. Memory: peak RSS above the RSS "
        "once the inputs exist (kernel high-water mark reset just before, read from /proc/self/status), "
        "also in units of one input array.",
        ["implementation", "time (s)", "vs floor", "peak memory above inputs (MB)", "in arrays", "note"],
        rows,
    )
    for label in (API, EXPR):
        ours = usable(res, label)
        if ours is None:
            continue
        rep.aim(
            f"`{ARRAY_EXPR}`, 10^{round(math.log10(n))} elements ({label}), time",
            f"{ours.median:.3f} s",
            f"NumPy by hand {floor.median:.3f} s",
            ratio(ours.median, floor.median),
            "at most 1.1x",
            ours.median / floor.median <= 1.1,
        )
        got = ours.extra_kb / array_kb
        rep.aim(
            f"`{ARRAY_EXPR}`, 10^{round(math.log10(n))} elements ({label}), memory",
            f"{got:.1f} arrays",
            f"NumPy by hand {floor.extra_kb / array_kb:.1f} arrays",
            ratio(ours.extra_kb, floor.extra_kb),
            "at most 10 arrays",
            got <= 10,
        )


# --- row 6: the Hessian of a quadratic form -------------------------------------------------------


def hessian(rep: Report, sizes: Sizes, impls: list[Impl]) -> None:
    n = sizes.hessian_n
    res = compare_in_process(rep, "hessian", impls, n, sizes.hessian_runs, sizes.rounds)
    floor, vectorized = res[FLOOR.label], usable(res, TORCH_VECTORIZED)
    rows = []
    for label, m in res.items():
        if m.error:
            rows.append((label, "-", "-", "-", m.error))
            continue
        rows.append(
            (
                label,
                f"{1000 * m.median:.2f}",
                ratio(m.median, floor.median),
                ratio(m.median, vectorized.median) if vectorized else "-",
                "",
            )
        )
    rep.table(
        f"6. The Hessian of a {n}-variable quadratic form",
        f"Value, gradient and Hessian of `{QUADRATIC_EXPR}` with {n} variables (A not symmetric); the "
        "floor is `(A + A.T) / 2` by hand. PyTorch through `torch.autograd.functional.hessian`, plainly "
        "(a reverse pass per row) and with `vectorize=True`. Median of "
        f"{turns(sizes.hessian_runs, sizes.rounds)}.",
        ["implementation", "time (ms)", "vs floor", "vs torch vectorize=True", "note"],
        rows,
    )
    for label in (API, EXPR):
        ours = usable(res, label)
        if ours is not None and vectorized is not None:
            rep.aim(
                f"Hessian of a {n}-variable quadratic form ({label})",
                f"{1000 * ours.median:.2f} ms",
                f"torch `hessian(..., vectorize=True)` {1000 * vectorized.median:.2f} ms",
                ratio(ours.median, vectorized.median),
                "ahead of torch's vectorize=True (under 1x)",
                ours.median < vectorized.median,
            )


# --- row 7: cold start ----------------------------------------------------------------------------


def numbers(text: str) -> set[float]:
    return {float(m) for m in re.findall(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", text)}


def cold_start(rep: Report, sizes: Sizes, impls: list[Impl], tmp: Path) -> None:
    py = sys.executable
    args = ["eval", SEED_EXPR, "--x", "2", "--y", "3"]
    commands = [
        Command('`python -c "import numpy"` (floor)', [py, "-c", "import numpy"]),
        Command("`python -c pass` (the interpreter alone)", [py, "-c", "pass"]),
        Command("`python -m gradcli eval ...`", [py, "-m", "gradcli", *args], ours=True),
    ]
    script = Path(py).parent / "gradcli"
    if script.exists():
        commands.append(Command("`gradcli eval ...` (console script)", [str(script), *args], ours=True))
    else:
        rep.notes.append(
            "cold start: no `gradcli` console script beside this Python (not installed): "
            "measured through `python -m gradcli` only."
        )
    for impl in impls:
        if "cold" in impl.workloads:
            path = PEERS / "cold_start" / f"{impl.key}.py"
            commands.append(Command(f"{impl.label}: `bench/peers/cold_start/{path.name}`", [py, str(path)]))

    answering = {c.label for c in commands[2:]}  # gradcli's and the peers' scripts print the answer

    def check(c: Command, text: str) -> str:
        if c.label not in answering or {13.0, 4.0, 6.0} <= numbers(text):
            return ""
        return f"wrong output {text.strip()!r}"

    results = take_turns(commands, sizes.cold_runs, tmp / "cold-out.txt", check)
    floor = results[0].seconds
    rows = []
    for r in results:
        label = r.command.label
        if r.problem:
            (rep.failed if r.command.ours or r is results[0] else rep.notes).append(
                f"cold start, {label}: {r.problem}"
            )
            rows.append((label, "-", "-", "-", f"failed ({r.problem})"))
            continue
        answer = "13, 4, 6" if label in answering else ""
        rows.append((label, f"{1000 * r.seconds:.0f}", ratio(r.seconds, floor), mb(r.peak_kb), answer))
    rep.table(
        "7. Cold start",
        f"`{SEED_EXPR}` at x=2, y=3 as a whole process, from launch to exit: median of "
        f"{plural(sizes.cold_runs, 'run')} after one untimed run (so the OS file cache is warm, as in a "
        "shell loop), the commands taking turns run by run. Peak RSS from `wait4`.",
        ["command", "median (ms)", "vs import numpy", "peak RSS (MB)", "answer checked"],
        rows,
    )
    ours = [r for r in results if r.command.ours and not r.problem]
    if ours and not results[0].problem:
        slowest = max(ours, key=lambda r: r.seconds)
        rep.aim(
            "cold start, seed example (the slower of `python -m gradcli` and the console script)",
            f"{1000 * slowest.seconds:.0f} ms",
            f"`import numpy` {1000 * floor:.0f} ms",
            ratio(slowest.seconds, floor),
            "at most 1.2x",
            slowest.seconds / floor <= 1.2,
        )


# --- main -----------------------------------------------------------------------------------------


METHOD_NOTES = [
    "Processes run with bytecode caching on (`PYTHONDONTWRITEBYTECODE` is removed from their "
    "environment), so the untimed first run of each command caches what it imports.",
    "PyTorch runs with its default intra-op threads (all CPUs listed above) on the big arrays and the "
    "chain, one thread on the Hessian (see `bench/peers/torch_eager.py`); NumPy, autograd and gradcli "
    "use one thread (NumPy's BLAS with `OPENBLAS_NUM_THREADS=1`).",
    "micrograd's chain time is mostly Python's cyclic garbage collector: each node's backward closure "
    "refers to the node itself, so the whole graph is cycles that the collector walks as it grows.",
]


def render(
    rep: Report,
    info: dict[str, str],
    args: argparse.Namespace,
    loads: tuple[str, str],
    impls: list[Impl],
    elapsed: float,
) -> str:
    quick = " --quick" if args.quick else ""
    lines = [
        "## Issue 13's table, measured",
        "",
        "Written by `bench/run.py --write`; everything between the markers is regenerated.",
        "",
        f"Machine: {info['cpu']}; {info['os']}; {info['python']}; {versions(impls)}. gradcli at "
        f"`{info['commit']}`. Run: `bench/run.py{quick}` in {elapsed / 60:.1f} min; load average "
        f"{loads[0]} at the start, {loads[1]} at the end.",
    ]
    if args.note:
        lines += ["", f"Note: {args.note}"]
    aims = markdown(SUMMARY, rep.aims) if rep.aims else ["(no aim measured in this run)"]
    lines += ["", "### The aims", "", *aims]
    lines += ["", *("\n" + s for s in rep.sections)]
    lines += ["", "### Notes", "", *(f"- {n}" for n in METHOD_NOTES + rep.notes)]
    return "\n".join(lines) + "\n"


def write_readme(section: str) -> None:
    block = f"{MARK_START}\n{section}{MARK_END}\n"
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    start, end = text.find(MARK_START), text.find(MARK_END)
    if start != -1 and end > start:
        text = text[:start] + block + text[end + len(MARK_END) :].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    README.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, not the speed")
    ap.add_argument("--write", action="store_true", help=f"write the tables into {README.relative_to(ROOT)}")
    ap.add_argument("--peers", default="all", help="all, none, or a list: torch,autograd,micrograd,sympy")
    ap.add_argument("--only", default=",".join(WORKLOADS), help=f"rows to run: {','.join(WORKLOADS)}")
    ap.add_argument("--note", default="", help="a sentence for the README (e.g. that the machine was busy)")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    only = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = only - set(WORKLOADS)
    if unknown:
        ap.error(f"unknown workload {', '.join(sorted(unknown))}; choose from {', '.join(WORKLOADS)}")
    chosen = (
        None if args.peers == "all" else {p.strip() for p in args.peers.split(",") if p.strip() != "none"}
    )

    rep = Report()
    impls = []
    for impl in IMPLS:
        why = installed(impl, chosen)
        if why is None:
            impls.append(impl)
        elif why != "not selected (--peers)" and impl.key != "torch_vectorized":
            rep.notes.append(f"{impl.label}: {why}; skipped (`pip install {impl.needs}` to include it).")
    info = machine()
    load_start = load()
    t0 = time.perf_counter()
    print(f"{info['cpu']}; {info['python']}; {versions(impls)}; load {load_start}\n", flush=True)
    rep.notes.append(compile_bytecode())
    with tempfile.TemporaryDirectory(prefix="gradcli-bench-") as tmp:
        steps = {
            "batch": lambda: batch(rep, sizes, Path(tmp)),
            "ops": lambda: per_operation(rep, sizes, impls),
            "file": lambda: chain_file(rep, sizes, Path(tmp)),
            "sum": lambda: million_sum(rep, sizes, Path(tmp)),
            "arrays": lambda: big_arrays(rep, sizes, impls),
            "hessian": lambda: hessian(rep, sizes, impls),
            "cold": lambda: cold_start(rep, sizes, impls, Path(tmp)),
        }
        for name in WORKLOADS:
            if name in only:
                steps[name]()
    section = render(rep, info, args, (load_start, load()), impls, time.perf_counter() - t0)
    notes = [f"- {n}" for n in METHOD_NOTES + rep.notes]
    print("\n".join([*markdown(SUMMARY, rep.aims), "", *notes]), flush=True)
    if args.write:
        write_readme(section)
        print(f"\nwrote {README.relative_to(ROOT)}")
    if rep.failed:
        print("\ngradcli or the floor failed:\n" + "\n".join(f"  {f}" for f in rep.failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
