"""Engine benchmark: forward + backward through gradcli, as a ratio to the same work by hand in NumPy.

    python bench/engine_bench.py            # full size (about a minute; ~2 GiB of memory)
    python bench/engine_bench.py --quick    # tiny sizes, a smoke test

Two cases, each timed in the same run as its hand-written twin (value and analytic gradients in
plain NumPy), reported as the median of several runs:

- chain: 100,000 scalar operations, one after another (cost per operation of the graph machinery);
- array: sin(x)*exp(-y**2) + log1p(x**2) on two 10,000,000-element arrays (overhead on big data).

Each run builds and frees its whole graph inside the timed region. Before timing, the two versions'
results are compared, so a ratio never flatters a wrong answer.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from gradcli import Variable  # noqa: E402
from gradcli import functions as F  # noqa: E402, N812 - as torch.nn.functional is F

Result = tuple[Any, ...]

# The chain cycles through these steps: y*a, y+b, sin(y); values stay in a small range forever.
A, B = 0.999, 0.01


def chain_gradcli(n: int) -> Result:
    x = Variable(0.5)
    y = x
    for i in range(n):
        k = i % 3
        if k == 0:
            y = y * A
        elif k == 1:
            y = y + B
        else:
            y = F.sin(y)
    y.backward()
    return float(y.data), float(x.grad.data)


def chain_numpy(n: int) -> Result:
    y = np.float64(0.5)
    derivs = []  # d(step)/d(its input), kept for the backward sweep as a tape would
    for i in range(n):
        k = i % 3
        if k == 0:
            y = y * A
            derivs.append(A)
        elif k == 1:
            y = y + B
            derivs.append(1.0)
        else:
            derivs.append(np.cos(y))
            y = np.sin(y)
    g = np.float64(1.0)
    for d in reversed(derivs):
        g = g * d
    return float(y), float(g)


def array_gradcli(x0: np.ndarray, y0: np.ndarray) -> Result:
    x, y = Variable(x0), Variable(y0)
    z = F.sin(x) * F.exp(-(y**2)) + F.log1p(x**2)
    z.backward()
    return z.data, x.grad.data, y.grad.data


def array_numpy(x: np.ndarray, y: np.ndarray) -> Result:
    s = np.sin(x)
    e = np.exp(-(y * y))
    x2 = x * x
    se = s * e
    z = se + np.log1p(x2)
    gx = np.cos(x) * e + 2.0 * x / (1.0 + x2)
    gy = -2.0 * y * se
    return z, gx, gy


def median_time(fn: Callable[[], Result], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def agree(a: Result, b: Result, what: str) -> None:
    for p, q in zip(a, b):
        if not np.allclose(p, q, rtol=1e-12, atol=1e-12):
            raise SystemExit(f"{what}: gradcli and hand-written NumPy disagree")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, not the speed")
    ap.add_argument("--repeats", type=int, default=None, help="runs per measurement (median is reported)")
    args = ap.parse_args(argv)

    n_chain, n_array = (300, 10_000) if args.quick else (100_000, 10_000_000)
    repeats = args.repeats or (3 if args.quick else 5)
    rng = np.random.default_rng(0)
    x0, y0 = rng.uniform(-2.0, 2.0, n_array), rng.uniform(-2.0, 2.0, n_array)

    agree(chain_gradcli(n_chain), chain_numpy(n_chain), "chain")
    agree(array_gradcli(x0, y0), array_numpy(x0, y0), "array")

    rows = []
    t_g = median_time(lambda: chain_gradcli(n_chain), repeats)
    t_n = median_time(lambda: chain_numpy(n_chain), repeats)
    rows.append((f"chain, {n_chain:,} scalar ops", t_g, t_n, 1e6 * t_g / n_chain, 1e6 * t_n / n_chain))
    t_g = median_time(lambda: array_gradcli(x0, y0), repeats)
    t_n = median_time(lambda: array_numpy(x0, y0), repeats)
    rows.append((f"array, {n_array:,} elements", t_g, t_n, None, None))

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}; median of {repeats} runs; forward + backward"
    )
    print()
    print("| case | gradcli (s) | NumPy by hand (s) | ratio | gradcli us/op | NumPy us/op |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, tg, tn, ug, un in rows:
        per_op = f"{ug:.2f} | {un:.2f}" if ug is not None else "- | -"
        print(f"| {name} | {tg:.4f} | {tn:.4f} | {tg / tn:.2f}x | {per_op} |")


if __name__ == "__main__":
    main()
