"""What every implementation computes, and the inputs they all get (same seeds, same sizes).

The chain (workload 2) cycles through ``y*A``, ``y+B``, ``relu(y)``: three operations every peer
has (micrograd has no ``sin``), and values that settle near 10 instead of growing or vanishing, so
the gradient (``A`` to the power n/3) stays a normal float for 100,000 steps.
"""

from __future__ import annotations

import numpy as np

A, B = 0.999, 0.01
CHAIN_START = 0.5

# Workload 3, as gradcli reads it; the peers spell the same thing in their own API.
ARRAY_EXPR = "sin(x)*exp(-y**2) + log1p(x**2)"
# The Hessian workload: a quadratic form whose Hessian is (A + A.T) / 2.
QUADRATIC_EXPR = "0.5 * x @ A @ x"


def make_arrays(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 arrays uniform in [-2, 2), written in place so no temporary raises the peak."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(2):
        a = np.empty(n)
        rng.random(out=a)
        a *= 4.0
        a -= 2.0
        out.append(a)
    return out[0], out[1]


def make_quadratic(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A non-symmetric n x n matrix and a point: the symmetrisation is part of the work."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n)), rng.standard_normal(n)
