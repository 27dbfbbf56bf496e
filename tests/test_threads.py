"""The Python API from 8 threads at once: every thread gets the results a single thread gets, with
its own expression and values, whatever the others do at the same moment (parse, evaluate,
differentiate twice, run under no_grad). A barrier lines the threads up so that the work really
overlaps, and again in the middle of each round, so that some threads are inside no_grad() while
the others build graphs.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gradcli
from gradcli import calculus, fpe, language
from gradcli.engine import is_grad_enabled, no_grad
from gradcli.language import parse

THREADS = 8
ROUNDS = 6

# One case per thread: an expression, and values that differ from thread to thread.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("x**2 * y + sin(x*y)", {"x": 0.7, "y": -1.3}),
    ("a = x*y; b = exp(a); log(b + 1) * x", {"x": 0.2, "y": 1.1}),
    ("sum(tanh(x) * [1, 2, 3]) + norm(x)", {"x": [0.5, -0.25, 1.5]}),
    ("sum(softmax(x, axis=-1) * x)", {"x": [[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]]}),
    ("s, c = sincos(x); sum(s * c) + grad(x**3, x)", {"x": 1.25}),
    ("logsumexp(x @ y)", {"x": [[1.0, 2.0], [0.5, -0.5]], "y": [0.3, -0.7]}),
    ("sqrt(x*x + y*y) / (1 + sigmoid(x - y))", {"x": 3.0, "y": 4.0}),
    ("mean(square(x - y)) + sum(softplus(x))", {"x": [1.0, -2.0, 0.5], "y": [0.25, 0.0, -1.0]}),
]


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Any:
    """Switch threads every few microseconds instead of every 5 ms, so that the threads'
    bytecode interleaves finely (one round is over in well under 5 ms)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def scaled(values: dict[str, Any], factor: float) -> dict[str, np.ndarray]:
    return {n: np.asarray(v, dtype=np.float64) * factor for n, v in values.items()}


def compute(expr: str, values: dict[str, np.ndarray], graph: bool) -> dict[str, Any]:
    """Everything one thread computes for one case: with a graph, value, gradient and Hessian;
    under no_grad, the values alone (and proof that no graph was built)."""
    program = parse(expr)
    if not graph:
        with no_grad():
            assert not is_grad_enabled()
            run = program.run(values)
            assert all(y.creator is None and not y.requires_grad for y in run.outputs)
            return {"nograd": [y.data.copy() for y in run.outputs]}
    assert is_grad_enabled()
    ev = calculus.evaluate(program, values)
    out = {"value": ev.value, "grad": ev.grad}
    if all(np.size(v) == 1 for v in ev.value) and len(ev.value) == 1:
        h = calculus.hessian(program, values)
        out["hessian"] = h.hessian
    return out


def assert_same(got: Any, want: Any, where: str) -> None:
    """Equal to the last bit: the same arithmetic in the same order gives the same floats."""
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    else:
        np.testing.assert_array_equal(got, want, err_msg=where)


def run_threads(work: Callable[[int, threading.Barrier], None], count: int = THREADS) -> None:
    """Run ``work(k, barrier)`` in ``count`` threads and re-raise the first failure in the test thread."""
    barrier = threading.Barrier(count, timeout=120)
    errors: list[BaseException] = []

    def target(k: int) -> None:
        try:
            work(k, barrier)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(k,), name=f"gradcli-{k}") for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if real or errors:
        raise (real or errors)[0]


def test_eight_threads_parse_evaluate_and_differentiate_independently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Single-threaded answers first: each (thread, round) has its own values.
    expected = {}
    for k in range(THREADS):
        expr, base = CASES[k]
        for r in range(ROUNDS):
            values = scaled(base, 1.0 + 0.1 * k + 0.01 * r)
            expected[k, r] = (expr, values, compute(expr, values, graph=(k + r) % 2 == 0))

    # The parser is built on first use: let the threads race to build it.
    monkeypatch.setattr(language, "_parser", None)

    def work(k: int, barrier: threading.Barrier) -> None:
        for r in range(ROUNDS):
            expr, values, want = expected[k, r]
            barrier.wait()
            got = compute(expr, values, graph=(k + r) % 2 == 0)
            assert_same(got, want, f"thread {k} round {r}")

    run_threads(work)


def test_no_grad_in_one_thread_leaves_the_others_recording() -> None:
    def work(k: int, barrier: threading.Barrier) -> None:
        x = gradcli.Variable(np.array([1.0, 2.0]) * (k + 1))
        if k % 2:
            with no_grad():
                barrier.wait()  # every thread is now at this point: half inside no_grad
                y = (x * x).sum()
                barrier.wait()
            assert y.creator is None
        else:
            barrier.wait()
            y = (x * x).sum()
            barrier.wait()
            assert y.creator is not None
            y.backward()
            np.testing.assert_array_equal(x.grad.data, 2 * x.data)
        assert is_grad_enabled()

    run_threads(work)


def test_the_text_api_from_eight_threads_gives_the_single_thread_results() -> None:
    exprs = ["x**2 * y", "sin(x) * cos(y)", "exp(x - y)", "x / (1 + y*y)"]
    points = [{"x": 0.5 + k, "y": -0.25 * k} for k in range(THREADS)]
    want = [
        (gradcli.grad(exprs[k % 4], points[k]), gradcli.hessian(exprs[k % 4], points[k]).hessian)
        for k in range(THREADS)
    ]

    def work(k: int, barrier: threading.Barrier) -> None:
        for _ in range(ROUNDS):
            barrier.wait()
            g = gradcli.grad(exprs[k % 4], points[k])
            h = gradcli.hessian(exprs[k % 4], points[k]).hessian
            assert_same((g, h), want[k], f"thread {k}")

    run_threads(work)


def test_concurrent_parses_give_the_same_programs() -> None:
    texts = [expr for expr, _ in CASES] + ["(" * 2000 + "x" + ")" * 2000, " + ".join(["x"] * 2000)]
    want = [(parse(t).inputs, len(parse(t).ops)) for t in texts]
    bad = ["x +", "sin(x", "a, b = sin(x); a", "[1, [2]]"]

    def work(k: int, barrier: threading.Barrier) -> None:
        for r in range(ROUNDS * 3):
            barrier.wait()
            i = (k + r) % len(texts)
            program = parse(texts[i])
            assert (program.inputs, len(program.ops)) == want[i]
            with pytest.raises(language.ParseError):
                parse(bad[(k + r) % len(bad)])

    run_threads(work)


def test_floating_point_warnings_are_reported_to_the_thread_that_caused_them() -> None:
    causes = [
        ("log(x)", 0.0, "warning: log: divide by zero"),
        ("sqrt(x)", -1.0, "warning: sqrt: invalid value"),
    ]
    programs = [parse(expr) for expr, _, _ in causes]

    def work(k: int, barrier: threading.Barrier) -> None:
        expr, value, line = causes[k % 2]
        seen: list[str] = []
        with fpe.reporting(seen.append):
            barrier.wait()
            for _ in range(ROUNDS):
                with no_grad():
                    programs[k % 2].run({"x": value})
            barrier.wait()
        assert seen == [line], (k, seen)

    run_threads(work)


def test_python_warnings_reach_the_thread_that_raised_them_and_showwarning_is_put_back() -> None:
    """NumPy's "Mean of empty slice" goes through Python's warnings module, whose showwarning and
    filters are process-wide: 16 threads report at once, half of them with a warning to report."""
    import warnings

    before = warnings.showwarning, list(warnings.filters)
    empty = parse("mean(x)")

    def work(k: int, barrier: threading.Barrier) -> None:
        seen: list[str] = []
        with fpe.reporting(seen.append):
            barrier.wait()
            for _ in range(ROUNDS):
                with no_grad():
                    empty.run({"x": [] if k % 2 else [1.0, 2.0]})
            barrier.wait()
        expected = ["warning: mean: mean of empty slice", "warning: mean: invalid value"] if k % 2 else []
        assert sorted(seen) == sorted(expected), (k, seen)

    run_threads(work, count=16)
    assert (warnings.showwarning, list(warnings.filters)) == before
