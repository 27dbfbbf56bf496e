"""The floor: each workload written by hand, derivatives worked out on paper.

The chain uses Python floats and a list as the tape (NumPy scalars would only be slower); the
arrays use NumPy with each shared subexpression computed once.
"""

from __future__ import annotations

import numpy as np
from common import CHAIN_START, A, B


def chain(n: int) -> tuple[float, float]:
    y = CHAIN_START
    tape = []  # d(step)/d(its input), read backwards as reverse mode would
    for i in range(n):
        k = i % 3
        if k == 0:
            y = y * A
            tape.append(A)
        elif k == 1:
            y = y + B
            tape.append(1.0)
        else:
            tape.append(1.0 if y > 0.0 else 0.0)
            y = y if y > 0.0 else 0.0
    g = 1.0
    for d in reversed(tape):
        g *= d
    return y, g


def arrays(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.sin(x)
    e = np.exp(-(y * y))
    x2 = x * x
    se = s * e
    z = se + np.log1p(x2)
    gx = np.cos(x) * e + 2.0 * x / (1.0 + x2)
    gy = -2.0 * y * se
    return z, gx, gy


def hessian(a: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    h = 0.5 * (a + a.T)
    return float(0.5 * x @ a @ x), h @ x, h
