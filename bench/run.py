"""gradcli against the floor (NumPy by hand) and its peers, every workload of issue 6 in one run.

    python bench/run.py                 # full sizes (several minutes on 2 cores)
    python bench/run.py --quick         # tiny sizes: checks that the harness works, not the speed
    python bench/run.py --write         # also put the tables into bench/README.md
    python bench/run.py --peers none --only cold,ops

Every measurement runs in a process of its own (``bench/peers/worker.py`` for in-process work,
the real command line for whole-process workloads), so one implementation's imports and memory
never weigh on another's. A peer that is not installed is skipped with a note. Each result is
checked against the floor's answer before its time is shown: a ratio never flatters a wrong
answer. Linux (or another Unix with ``os.wait4``) is assumed for the per-process peak memory.
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
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
README = ROOT / "bench" / "README.md"
MARK_START = "<!-- bench:run.py start -->"
MARK_END = "<!-- bench:run.py end -->"

SEED_EXPR = "add(square(x), square(y))"
WORKLOADS = ("cold", "ops", "arrays", "graphs", "batch", "hessian")
# Live intermediates of sin(x)*exp(-y**2) + log1p(x**2) besides its output: sin, y**2, neg, exp,
# product, x**2, log1p. The aim allows gradcli this many arrays above the hand-written peak.
ARRAY_INTERMEDIATES = 7
TEXT_COLUMNS = {"note", "answer checked"}


@dataclass(frozen=True)
class Impl:
    key: str  # module in bench/peers
    short: str  # name for --peers
    label: str
    needs: str | None  # import name of the peer library; None: always there
    workloads: frozenset[str]
    peer: bool = True


IMPLS = (
    Impl("numpy_hand", "floor", "by hand (floor)", None, frozenset({"chain", "arrays", "hessian"}), False),
    Impl(
        "gradcli_api",
        "gradcli",
        "gradcli, Python API",
        None,
        frozenset({"chain", "arrays", "hessian"}),
        False,
    ),
    Impl("gradcli_expr", "gradcli", "gradcli, expression", None, frozenset({"arrays", "hessian"}), False),
    Impl(
        "torch_eager",
        "torch",
        "PyTorch eager (CPU)",
        "torch",
        frozenset({"cold", "chain", "arrays", "hessian"}),
    ),
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
    cold_runs: int
    chain_n: int
    chain_runs: int
    array_n: int
    array_runs: int
    graph_nodes: tuple[int, ...]
    graph_runs: int
    fit_from: int  # smallest graph size in the exponent fit (below it, startup dominates)
    parse_nodes: int
    batch_n: int
    batch_runs: int
    hessian_n: int
    hessian_runs: int
    rounds: int  # in-process workloads: implementations take turns, this many times


FULL = Sizes(
    cold_runs=10,
    chain_n=100_000,
    chain_runs=2,
    array_n=10_000_000,
    array_runs=2,
    graph_nodes=(1_000, 10_000, 100_000, 1_000_000),
    graph_runs=3,
    fit_from=10_000,
    parse_nodes=100_000,
    batch_n=100_000,
    batch_runs=3,
    hessian_n=100,
    hessian_runs=3,
    rounds=2,
)
QUICK = Sizes(
    cold_runs=2,
    chain_n=300,
    chain_runs=2,
    array_n=10_000,
    array_runs=2,
    graph_nodes=(100, 300, 1_000),
    graph_runs=1,
    fit_from=100,
    parse_nodes=1_000,
    batch_n=200,
    batch_runs=1,
    hessian_n=5,
    hessian_runs=2,
    rounds=1,
)


# --- running processes ---------------------------------------------------------------------------


@dataclass
class Proc:
    seconds: float
    peak_kb: int
    rc: int
    out: str
    err: str


def environment() -> dict[str, str]:
    """This checkout first on the path, so an uninstalled gradcli runs too; bytecode cached.

    An installed gradcli has its .pyc files from pip; a checkout run with PYTHONDONTWRITEBYTECODE
    would compile every module of gradcli again at each start (about 30 ms, a third of NumPy's
    import), which no user pays.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("GRADCLI_PLUGINS", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


ENV = environment()


def run_process(
    cmd: Sequence[str], stdin: Path | None = None, stdout: Path | None = None, timeout: float = 900.0
) -> Proc:
    """Wall time and peak RSS (``wait4``'s ru_maxrss, this child only) of one whole process."""
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
        fout = open(stdout, "wb") if stdout else out_f
        try:
            t0 = time.perf_counter()
            p = subprocess.Popen(list(cmd), stdin=fin, stdout=fout, stderr=err_f, env=ENV, cwd=ROOT)
            killer = threading.Timer(timeout, p.kill)
            killer.start()
            _, status, usage = os.wait4(p.pid, 0)
            seconds = time.perf_counter() - t0
            killer.cancel()
            p.returncode = os.waitstatus_to_exitcode(status)
        finally:
            for f in (fin, fout):
                if f not in (subprocess.DEVNULL, out_f):
                    f.close()
        out_f.seek(0)
        err_f.seek(0)
        out = out_f.read().decode(errors="replace")
        err = err_f.read().decode(errors="replace")
    return Proc(seconds, usage.ru_maxrss, p.returncode, out, err)


def last_line(text: str, limit: int = 200) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


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


def work(workload: str, impl: Impl, size: int, repeats: int, text_file: Path | None = None) -> Measured:
    cmd = [sys.executable, str(PEERS / "worker.py"), workload, impl.key, str(size), str(repeats)]
    if text_file is not None:
        cmd.append(str(text_file))
    p = run_process(cmd)
    if p.rc != 0:
        return Measured(error=f"failed (exit {p.rc}): {last_line(p.err) or last_line(p.out)}")
    try:
        data = json.loads(last_line(p.out, limit=1 << 20))
    except ValueError:
        return Measured(error=f"no result: {last_line(p.out)!r}")
    return Measured(data["times"], data["checks"], data["extra_kb"])


def agrees(a: Any, b: Any) -> bool:
    return len(a) == len(b) and bool(np.allclose(a, b, rtol=1e-8, atol=1e-12))


def median_process(cmd: Sequence[str], runs: int, **kw: Any) -> tuple[float, int, Proc]:
    """Median wall time and median peak RSS over ``runs``, after one untimed run (file cache)."""
    first = run_process(cmd, **kw)
    if first.rc != 0:
        return math.nan, 0, first
    procs = [run_process(cmd, **kw) for _ in range(runs)]
    return (
        statistics.median(p.seconds for p in procs),
        int(statistics.median(p.peak_kb for p in procs)),
        procs[-1],
    )


# --- the report ----------------------------------------------------------------------------------


@dataclass
class Report:
    sections: list[str] = field(default_factory=list)
    aims: list[str] = field(default_factory=list)
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
        lines = [
            f"### {title}",
            "",
            intro,
            "",
            "| " + " | ".join(header) + " |",
            "|"
            + "|".join("---" if i == 0 or h in TEXT_COLUMNS else "---:" for i, h in enumerate(header))
            + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        if after:
            lines += ["", *after]
        self.sections.append("\n".join(lines))
        print(self.sections[-1] + "\n", flush=True)

    def aim(self, what: str, got: str, aim: str, met: bool | None) -> None:
        verdict = "n/a" if met is None else ("met" if met else "**not met**")
        self.aims.append(f"- {what}: {got} (aim: {aim}) - {verdict}")


def ratio(t: float, floor: float) -> str:
    return f"{t / floor:.2f}x" if floor > 0 and math.isfinite(t) else "-"


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
    parts = [f"numpy {np.__version__}"]
    for impl in impls:
        if impl.peer:
            try:
                parts.append(f"{impl.needs} {importlib.metadata.version(impl.needs or impl.short)}")
            except importlib.metadata.PackageNotFoundError:
                parts.append(f"{impl.needs} (version unknown)")
    return ", ".join(parts)


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


# --- workload 1: cold start ------------------------------------------------------------------------


def numbers(text: str) -> set[float]:
    return {float(m) for m in re.findall(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", text)}


def cold_start(rep: Report, sizes: Sizes, impls: list[Impl]) -> None:
    py = sys.executable
    gradcli_args = ["eval", SEED_EXPR, "--x", "2", "--y", "3"]
    rows_spec: list[tuple[str, list[str], bool, bool]] = [  # label, command, is gradcli, check output
        ('`python -c "import numpy"` (floor)', [py, "-c", "import numpy"], False, False),
        ("`python -c pass` (the interpreter alone)", [py, "-c", "pass"], False, False),
        ("`python -m gradcli eval ...`", [py, "-m", "gradcli", *gradcli_args], True, True),
    ]
    script = Path(py).parent / "gradcli"
    if script.exists():
        rows_spec.append(("`gradcli eval ...` (console script)", [str(script), *gradcli_args], True, True))
    else:
        rep.notes.append(
            "cold start: no `gradcli` console script beside this Python (not installed): "
            "measured through `python -m gradcli` only."
        )
    for impl in impls:
        if "cold" in impl.workloads:
            path = PEERS / "cold_start" / f"{impl.key}.py"
            rows_spec.append(
                (f"{impl.label}: `bench/peers/cold_start/{path.name}`", [py, str(path)], False, True)
            )

    rows = []
    floor = math.nan
    results: dict[str, float] = {}
    # One untimed run each, then the commands take turns: a burst of load from elsewhere falls on
    # all of them alike instead of on whichever was being timed.
    firsts = [run_process(cmd) for _, cmd, _, _ in rows_spec]
    procs: list[list[Proc]] = [[] for _ in rows_spec]
    for _ in range(sizes.cold_runs):
        for i, (_, cmd, _, _) in enumerate(rows_spec):
            if firsts[i].rc == 0:
                procs[i].append(run_process(cmd))
    for (label, _, is_gradcli, check), first, runs in zip(rows_spec, firsts, procs):
        last = runs[-1] if runs else first
        t = statistics.median(p.seconds for p in runs) if runs else math.nan
        peak = int(statistics.median(p.peak_kb for p in runs)) if runs else 0
        ok = last.rc == 0 and (not check or {13.0, 4.0, 6.0} <= numbers(last.out))
        if not ok:
            why = (
                f"exit {last.rc}: {last_line(last.err)}" if last.rc else f"wrong output {last.out.strip()!r}"
            )
            (rep.failed if is_gradcli else rep.notes).append(f"cold start, {label}: {why}")
            rows.append((label, "-", "-", "-", f"failed ({why})"))
            continue
        if math.isnan(floor):
            floor = t
        results[label] = t
        rows.append((label, f"{1000 * t:.0f}", ratio(t, floor), mb(peak), "13, 4, 6" if check else ""))
    rep.table(
        "1. Cold start",
        f"`{SEED_EXPR}` at x=2, y=3 as a whole process, from launch to exit: median of "
        f"{plural(sizes.cold_runs, 'run')} after one untimed run (so the OS file cache is warm, as in a "
        "shell loop), the commands taking turns run by run. Peak RSS from `wait4`.",
        ["command", "median (ms)", "vs import numpy", "peak RSS (MB)", "answer checked"],
        rows,
    )
    ours = [t for k, t in results.items() if "gradcli" in k]
    peers = {k: t for k, t in results.items() if "cold_start/" in k}
    if ours and math.isfinite(floor):
        best = min(ours)
        rep.aim("cold start", f"{best / floor:.2f}x `import numpy`", "at most 1.2x", best / floor <= 1.2)
        if peers:
            slower = [k.split(":")[0] for k, t in peers.items() if t <= best]
            rep.aim(
                "cold start vs peers",
                "faster than all" if not slower else f"slower than {', '.join(slower)}",
                "faster than every peer's script",
                not slower,
            )


# --- workloads 2, 3 and the Hessian: in-process work in a worker per implementation ---------------


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
            if impl.key == "numpy_hand" and floor is None:
                floor = m
            if impl.label in out:
                out[impl.label].times += m.times
                out[impl.label].extra_kb = max(out[impl.label].extra_kb, m.extra_kb)
            else:
                out[impl.label] = m
    return out


def per_operation(rep: Report, sizes: Sizes, impls: list[Impl]) -> None:
    n = sizes.chain_n
    res = compare_in_process(rep, "chain", impls, n, sizes.chain_runs, sizes.rounds)
    floor = res["by hand (floor)"]
    rows = []
    for label, m in res.items():
        if m.error:
            rows.append((label, "-", "-", "-", "-", m.error))
            continue
        rows.append(
            (
                label,
                f"{m.median:.3f}",
                f"{1e6 * m.median / n:.2f}",
                ratio(m.median, floor.median),
                f"{1024 * m.extra_kb / n:.0f}",
                "",
            )
        )
    rep.table(
        "2. Per operation",
        f"A chain of {n:,} scalar operations (`y*{0.999}`, `y+{0.01}`, `relu(y)` in turn), forward and "
        f"backward, building and freeing the graph inside the timed region; median of "
        f"{turns(sizes.chain_runs, sizes.rounds)}. The floor is Python floats with a list as "
        "the tape. Graph memory: peak RSS above the start, per operation.",
        ["implementation", "time (s)", "us per op", "vs floor", "graph memory (bytes per op)", "note"],
        rows,
    )
    ours = res.get("gradcli, Python API")
    if ours is None or ours.error:
        return
    for label, limit, aim in (
        ("PyTorch eager (CPU)", 1.0, "below PyTorch eager"),
        ("HIPS autograd", 1.0, "below HIPS autograd"),
        ("micrograd", 2.0, "within 2x of micrograd"),
    ):
        other = res.get(label)
        if other is not None and not other.error:
            r = ours.median / other.median
            rep.aim(
                f"per operation vs {label}",
                f"{1e6 * ours.median / n:.2f} us vs {1e6 * other.median / n:.2f} us ({r:.2f}x)",
                aim,
                r <= limit,
            )


def big_arrays(rep: Report, sizes: Sizes, impls: list[Impl]) -> None:
    n = sizes.array_n
    res = compare_in_process(rep, "arrays", impls, n, sizes.array_runs, sizes.rounds)
    floor = res["by hand (floor)"]
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
        "3. Big arrays",
        f"`sin(x)*exp(-y**2) + log1p(x**2)` over two arrays of {n:,} float64 ({8 * n / 2**20:.0f} MB each), "
        f"value and both gradients; median of {turns(sizes.array_runs, sizes.rounds)}. Memory: "
        "peak RSS above the RSS once the inputs exist (kernel high-water mark reset just before, read from "
        "/proc/self/status), also in units of one input-sized array.",
        ["implementation", "time (s)", "vs floor", "peak memory above inputs (MB)", "in arrays", "note"],
        rows,
    )
    ours = res.get("gradcli, Python API")
    if ours is None or ours.error:
        return
    rep.aim(
        "big arrays, time",
        f"{ours.median / floor.median:.2f}x the floor",
        "within 1.3x",
        ours.median / floor.median <= 1.3,
    )
    allowed = floor.extra_kb / array_kb + ARRAY_INTERMEDIATES
    got = ours.extra_kb / array_kb
    rep.aim(
        "big arrays, memory",
        f"{got:.1f} arrays (floor {floor.extra_kb / array_kb:.1f})",
        f"at most floor + {ARRAY_INTERMEDIATES} intermediates = {allowed:.1f}",
        got <= allowed,
    )
    slower = [
        lbl
        for lbl in ("PyTorch eager (CPU)", "HIPS autograd")
        if lbl in res and not res[lbl].error and res[lbl].median <= ours.median
    ]
    peers = [lbl for lbl in ("PyTorch eager (CPU)", "HIPS autograd") if lbl in res and not res[lbl].error]
    if peers:
        rep.aim(
            "big arrays vs peers",
            "ahead of all" if not slower else f"behind {', '.join(slower)}",
            "ahead of PyTorch eager and HIPS autograd",
            not slower,
        )


def hessian(rep: Report, sizes: Sizes, impls: list[Impl]) -> None:
    n = sizes.hessian_n
    res = compare_in_process(rep, "hessian", impls, n, sizes.hessian_runs, sizes.rounds)
    floor = res["by hand (floor)"]
    rows = []
    for label, m in res.items():
        if m.error:
            rows.append((label, "-", "-", m.error))
            continue
        rows.append((label, f"{1000 * m.median:.2f}", ratio(m.median, floor.median), ""))
    rep.table(
        "Hessian of a quadratic form",
        f"Value, gradient and Hessian of `0.5 * x @ A @ x` with {n} variables (A not symmetric); the "
        f"floor is `(A + A.T) / 2` by hand. Median of {turns(sizes.hessian_runs, sizes.rounds)}.",
        ["implementation", "time (ms)", "vs floor", "note"],
        rows,
    )
    for label in ("gradcli, Python API", "gradcli, expression"):
        ours = res.get(label)
        if ours is not None and not ours.error:
            rep.aim(
                f"Hessian, {n} variables ({label})",
                f"{1000 * ours.median:.2f} ms, {ours.median / floor.median:.0f}x the hand-written NumPy",
                "recorded (issue 4)",
                None,
            )


# --- workload 4: big graphs ------------------------------------------------------------------------


def graph_text(nodes: int) -> str:
    """An expression of about ``nodes`` function applications that is valid Python as well.

    Terms ``x*c``, ``sin(y)``, ``x*y`` joined by ``+``, in statements of 100 terms each chained
    through names (``t1 = t0 + ...``): the graph is one long chain, while no single statement is
    deep enough for Python's own parser, which gives up (RecursionError) on a 50,000-term sum.
    """
    n_terms = max(1, (nodes + 1) // 2)  # each term is one call, and each join one add
    kinds = ("x*{c:.4f}", "sin(y)", "x*y")
    terms = [kinds[i % 3].format(c=1 + (i % 1000) * 1e-4) for i in range(n_terms)]
    lines = []
    for k, start in enumerate(range(0, n_terms, 100)):
        body = " + ".join(terms[start : start + 100])
        lines.append(f"t{k} = {f't{k - 1} + ' if k else ''}{body}")
    lines.append(f"t{(n_terms - 1) // 100}")
    return "\n".join(lines) + "\n"


def fit_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if y > 0]
    if len(pts) < 2:
        return math.nan
    return float(np.polyfit([p[0] for p in pts], [p[1] for p in pts], 1)[0])


def big_graphs(rep: Report, sizes: Sizes, impls: list[Impl], tmp: Path) -> None:
    gradcli_expr = next(i for i in impls if i.key == "gradcli_expr")

    def cmd(path: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gradcli",
            "eval",
            "-f",
            str(path),
            "--x",
            "0.5",
            "--y",
            "0.25",
            "--json",
        ]

    base_file = tmp / "graph-base.txt"
    base_file.write_text("x*y\n")
    base_t, base_kb, base_p = median_process(cmd(base_file), sizes.graph_runs)
    rows = [("1 (startup)", f"{len('x*y') / 1024:.2f}", f"{base_t:.3f}", mb(base_kb), "-", "-")]
    if base_p.rc != 0:
        rep.failed.append(f"big graphs, startup: exit {base_p.rc}: {last_line(base_p.err)}")
        return
    sizes_done, net_t, net_kb = [], [], []
    for nodes in sizes.graph_nodes:
        path = tmp / f"graph-{nodes}.txt"
        text = graph_text(nodes)
        path.write_text(text)
        runs = 1 if nodes >= 1_000_000 else sizes.graph_runs
        t, kb, last = median_process(cmd(path), runs) if runs > 1 else _once(cmd(path))
        if last.rc != 0:
            rep.failed.append(f"big graphs, {nodes:,} nodes: exit {last.rc}: {last_line(last.err)}")
            rows.append(
                (f"{nodes:,}", f"{len(text) / 1024:.0f}", "-", "-", "-", f"failed: {last_line(last.err)}")
            )
            continue
        sizes_done.append(nodes)
        net_t.append(t - base_t)
        net_kb.append(kb - base_kb)
        rows.append(
            (
                f"{nodes:,}",
                f"{len(text) / 1024:.0f}",
                f"{t:.3f}",
                mb(kb),
                f"{1e6 * (t - base_t) / nodes:.1f}",
                f"{1024 * (kb - base_kb) / nodes:.0f}" + (" (1 run)" if runs == 1 else ""),
            )
        )
    fit = [(n, t, k) for n, t, k in zip(sizes_done, net_t, net_kb) if n >= sizes.fit_from]
    e_time = fit_exponent([f[0] for f in fit], [f[1] for f in fit])
    e_mem = fit_exponent([f[0] for f in fit], [f[2] for f in fit])
    after = [
        f"Growth exponent (log-log least squares over {', '.join(f'{f[0]:,}' for f in fit)} nodes, "
        f"after subtracting the startup row): time **{e_time:.2f}**, peak memory **{e_mem:.2f}**."
    ]

    # Where the time goes, and parsing against Python's own parser, on one size in-process.
    path = tmp / f"graph-{sizes.parse_nodes}.txt"
    if not path.exists():
        path.write_text(graph_text(sizes.parse_nodes))
    text_mb = path.stat().st_size / 2**20
    phases = work("phases", gradcli_expr, sizes.parse_nodes, 1, path)
    if phases.error:
        rep.failed.append(f"big graphs, phases: {phases.error}")
    else:
        total = sum(phases.checks.values())
        after += [
            "",
            f"In one process at {sizes.parse_nodes:,} nodes: "
            + ", ".join(f"{k} {v:.2f} s ({100 * v / total:.0f}%)" for k, v in phases.checks.items())
            + ".",
        ]
    ours = work("parse", gradcli_expr, sizes.parse_nodes, sizes.graph_runs, path)
    theirs = work(
        "parse",
        Impl("python_ast", "ast", "ast.parse", None, frozenset()),
        sizes.parse_nodes,
        sizes.graph_runs,
        path,
    )
    parse_ratio = math.nan
    if ours.error or theirs.error:
        (rep.failed if ours.error else rep.notes).append(f"parse throughput: {ours.error or theirs.error}")
    else:
        parse_ratio = ours.median / theirs.median
        after += [
            "",
            "| parser | time (s) | MB/s | vs ast.parse |",
            "|---|---:|---:|---:|",
            f"| gradcli (`gradcli.language.parse`) | {ours.median:.3f} | {text_mb / ours.median:.2f} | "
            f"{parse_ratio:.2f}x |",
            f"| Python (`ast.parse`) | {theirs.median:.3f} | {text_mb / theirs.median:.2f} | 1.00x |",
        ]
    rep.table(
        "4. Big graphs",
        "`gradcli eval -f FILE --x 0.5 --y 0.25 --json` as a whole process (parse, evaluate, backward, "
        f"print) on generated expressions (terms `x*c`, `sin(y)`, `x*y` summed, 100 per statement, chained "
        f"through names); median of {plural(sizes.graph_runs, 'run')} (1 at a million nodes). Per-node "
        "columns subtract the startup row. Parse throughput on the same text (it is valid Python), "
        f"{sizes.parse_nodes:,} nodes ({text_mb:.2f} MB), median of {plural(sizes.graph_runs, 'run')}.",
        ["nodes", "text (KB)", "time (s)", "peak RSS (MB)", "us per node", "bytes per node"],
        rows,
        after,
    )
    if fit:
        worst = max(e_time, e_mem)
        rep.aim(
            "big graphs, growth",
            f"exponent {e_time:.2f} (time), {e_mem:.2f} (memory)",
            "at most 1.1",
            worst <= 1.1 if math.isfinite(worst) else None,
        )
    if math.isfinite(parse_ratio):
        rep.aim(
            "parse throughput", f"{parse_ratio:.2f}x the time of `ast.parse`", "within 10x", parse_ratio <= 10
        )


def _once(cmd: list[str]) -> tuple[float, int, Proc]:
    p = run_process(cmd)
    return p.seconds, p.peak_kb, p


# --- workload 5: batch -----------------------------------------------------------------------------


def batch(rep: Report, sizes: Sizes, tmp: Path) -> None:
    py = sys.executable
    helptext = run_process([py, "-m", "gradcli", "eval", "--help"]).out
    if "--batch" not in helptext:
        rep.notes.append("batch: this gradcli has no `eval --batch` yet; workload 5 skipped.")
        return
    n = sizes.batch_n
    rng = np.random.default_rng(2)
    xs, ys = rng.uniform(-3, 3, n), rng.uniform(-3, 3, n)
    lines_in = tmp / "points.ndjson"
    lines_in.write_text("".join(json.dumps({"x": float(a), "y": float(b)}) + "\n" for a, b in zip(xs, ys)))
    np.save(tmp / "x.npy", xs)
    np.save(tmp / "y.npy", ys)
    out = tmp / "out.txt"

    def measured(cmd: list[str], stdin: Path | None, check: str) -> tuple[float, str]:
        t, _, last = median_process(cmd, sizes.batch_runs, stdin=stdin, stdout=out)
        if last.rc != 0:
            return math.nan, f"failed (exit {last.rc}): {last_line(last.err)}"
        text = out.read_text()
        if check == "lines":
            got = text.splitlines()
            first = json.loads(got[0]) if got else {}
            ok = len(got) == n and math.isclose(first.get("value", math.nan), xs[0] ** 2 + ys[0] ** 2)
        else:
            value = json.loads(text)["value"]
            ok = len(value) == n and math.isclose(value[0], xs[0] ** 2 + ys[0] ** 2)
        return t, "" if ok else "wrong or missing output"

    specs = [
        (
            "stdlib loop: read and write each JSON line (floor)",
            [py, str(PEERS / "json_echo.py")],
            lines_in,
            "echo",
        ),
        (
            f'`gradcli eval "{SEED_EXPR}" --batch`',
            [py, "-m", "gradcli", "eval", SEED_EXPR, "--batch"],
            lines_in,
            "lines",
        ),
        (
            "NumPy by hand on x.npy, y.npy, JSON out (floor)",
            [py, str(PEERS / "numpy_vectorized.py"), str(tmp / "x.npy"), str(tmp / "y.npy")],
            None,
            "array",
        ),
        (
            "`gradcli eval ... --x @x.npy --y @y.npy --json`",
            [
                py,
                "-m",
                "gradcli",
                "eval",
                SEED_EXPR,
                "--x",
                f"@{tmp / 'x.npy'}",
                "--y",
                f"@{tmp / 'y.npy'}",
                "--json",
            ],
            None,
            "array",
        ),
    ]
    rows = []
    floor = math.nan
    for label, cmd, stdin, check in specs:
        if check == "echo":
            t, _, last = median_process(cmd, sizes.batch_runs, stdin=stdin, stdout=out)
            problem = "" if last.rc == 0 else f"failed: {last_line(last.err)}"
        else:
            t, problem = measured(cmd, stdin, check)
        if "(floor)" in label:
            floor = t
        if problem:
            (rep.failed if "gradcli" in label else rep.notes).append(f"batch, {label}: {problem}")
            rows.append((label, "-", "-", "-", problem))
            continue
        rows.append((label, f"{t:.3f}", f"{n / t:,.0f}", ratio(t, floor), ""))
        if "--batch" in label:
            rep.aim(
                "batch throughput",
                f"{n / t:,.0f} points/s, {t / floor:.2f}x the time of the stdlib loop",
                "recorded (no target set)",
                None,
            )
    rep.table(
        "5. Batch",
        f"{n:,} points of `{SEED_EXPR}`: as NDJSON lines through `--batch` (stdin and stdout are "
        "files), against a loop that only reads and writes the same lines with the standard library; "
        f"and the same points as two arrays in one vectorized evaluation. Whole processes, median of "
        f"{plural(sizes.batch_runs, 'run')} after one untimed run.",
        ["route", "time (s)", "points per second", "vs floor", "note"],
        rows,
    )


# --- main -------------------------------------------------------------------------------------------


METHOD_NOTES = [
    "Processes run with bytecode caching on (`PYTHONDONTWRITEBYTECODE` is removed from their "
    "environment): an installed gradcli has its .pyc files, and recompiling gradcli's modules at "
    "every start would add about 30 ms that no user pays.",
    "PyTorch runs with its default intra-op threads (all CPUs listed above) on the big arrays; NumPy, "
    "autograd and gradcli use one thread.",
    "micrograd's chain time is mostly Python's cyclic garbage collector: each node's backward closure "
    "refers to the node itself, so the whole graph is cycles that the collector walks as it grows.",
]


def render(
    rep: Report,
    info: dict[str, str],
    sizes: Sizes,
    args: argparse.Namespace,
    loads: tuple[str, str],
    impls: list[Impl],
    elapsed: float,
) -> str:
    quick = " --quick" if args.quick else ""
    lines = [
        "## All workloads against the peers (issue 6)",
        "",
        "Written by `bench/run.py --write`; everything between the markers is regenerated.",
        "",
        "How to reproduce (peers are optional; the harness skips any that is missing):",
        "",
        "```sh",
        "python -m venv /tmp/benchvenv && . /tmp/benchvenv/bin/activate",
        "pip install -e .                       # gradcli from this checkout (numpy, click, lark)",
        "pip install torch --index-url https://download.pytorch.org/whl/cpu   # the CPU build",
        "pip install autograd sympy micrograd   # the other peers",
        "python bench/run.py                    # full sizes (about 5 minutes on 2 cores)",
        "python bench/run.py --write            # and write the tables here",
        "python bench/run.py --quick --peers none   # tiny sizes, seconds: does the harness work?",
        "```",
        "",
        "What the numbers are: wall-clock medians; ratios are to the floor of each table (the same "
        "computation written by hand, or `import numpy` for startup), so they carry across machines "
        "better than the seconds. Peak memory of a whole process is `ru_maxrss` from `wait4`; inside a "
        "worker it is the kernel's high-water mark of the resident set (see `bench/peers/worker.py`). "
        "Every answer is checked against the floor's before it is timed.",
        "",
        f"Machine: {info['cpu']}; {info['os']}; {info['python']}; {versions(impls)}. gradcli at "
        f"`{info['commit']}`. Run: `bench/run.py{quick}` in {elapsed / 60:.1f} min; load average "
        f"{loads[0]} at the start, {loads[1]} at the end.",
    ]
    if args.note:
        lines += ["", f"Note: {args.note}"]
    lines += ["", "### Aims of issue 6", "", *(rep.aims or ["- (no aim measured in this run)"])]
    lines += ["", *rep.sections]
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
    ap.add_argument("--only", default=",".join(WORKLOADS), help=f"workloads to run: {','.join(WORKLOADS)}")
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
        elif why != "not selected (--peers)":
            rep.notes.append(f"{impl.label}: {why}; skipped (`pip install {impl.needs}` to include it).")
    info = machine()
    load_start = load()
    t0 = time.perf_counter()
    print(f"{info['cpu']}; {info['python']}; {versions(impls)}; load {load_start}\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="gradcli-bench-") as tmp:
        steps = {
            "cold": lambda: cold_start(rep, sizes, impls),
            "ops": lambda: per_operation(rep, sizes, impls),
            "arrays": lambda: big_arrays(rep, sizes, impls),
            "graphs": lambda: big_graphs(rep, sizes, impls, Path(tmp)),
            "batch": lambda: batch(rep, sizes, Path(tmp)),
            "hessian": lambda: hessian(rep, sizes, impls),
        }
        for name in WORKLOADS:
            if name in only:
                steps[name]()
    section = render(rep, info, sizes, args, (load_start, load()), impls, time.perf_counter() - t0)
    print("\n".join(line for line in section.splitlines() if line.startswith("- ")) or "", flush=True)
    if args.write:
        write_readme(section)
        print(f"\nwrote {README.relative_to(ROOT)}")
    if rep.failed:
        print("\ngradcli or the floor failed:\n" + "\n".join(f"  {f}" for f in rep.failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
