"""HIPS autograd: functions of ``autograd.numpy``, differentiated by tracing."""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd import hessian as ag_hessian
from autograd import make_vjp, value_and_grad
from common import CHAIN_START, A, B


def chain(n: int) -> tuple[float, float]:
    def f(x: float) -> float:
        y = x
        for i in range(n):
            k = i % 3
            if k == 0:
                y = y * A
            elif k == 1:
                y = y + B
            else:
                y = anp.maximum(y, 0.0)
        return y

    value, g = value_and_grad(f)(CHAIN_START)
    return float(value), float(g)


def arrays(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def f(xy: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        u, v = xy
        return anp.sin(u) * anp.exp(-(v**2)) + anp.log1p(u**2)

    vjp, z = make_vjp(f)((x, y))
    gx, gy = vjp(np.ones_like(z))
    return z, gx, gy


def hessian(a: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    def quadratic(v: np.ndarray) -> float:
        return 0.5 * anp.dot(v, anp.dot(a, v))

    value, g = value_and_grad(quadratic)(x)
    return float(value), g, ag_hessian(quadratic)(x)
