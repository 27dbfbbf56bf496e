"""Time of the first-order backward pass alone, through the Python API, on row 5's expression at
10^7 elements: the best of 8 passes, with the minor page faults and system time of that pass.

    OPENBLAS_NUM_THREADS=1 python bench/experiments/backward_time.py [label]

It measures whichever gradcli the interpreter imports; bench/README.md ("A blocked backward pass,
tried") runs it on this checkout and on one with ``blocked-backward.diff`` applied.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np

from gradcli import Variable
from gradcli.functions import exp, log1p, sin


def main() -> None:
    rng = np.random.default_rng(0)
    n = 10**7
    x0, y0 = rng.standard_normal(n), rng.standard_normal(n)
    best = (float("inf"), 0, 0.0)
    for _ in range(8):
        vx, vy = Variable(x0), Variable(y0)
        z = sin(vx) * exp(-(vy**2)) + log1p(vx**2)
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        z.backward()
        took = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        if took < best[0]:
            best = (took, after.ru_minflt - before.ru_minflt, after.ru_stime - before.ru_stime)
        del vx, vy, z
    label = sys.argv[1] if len(sys.argv) > 1 else "backward"
    print(f"{label}: {best[0]:.3f} s, {best[1]} minor faults, {best[2]:.3f} s system")


if __name__ == "__main__":
    main()
