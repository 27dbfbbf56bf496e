"""Central differences: the independent check that analytic gradients are held against.

    from numerics import numeric_grad
    gx, gy = numeric_grad(lambda x, y: float((x * y).sum()), [x0, y0])

``f`` takes NumPy arrays (the same number and shapes as ``arrays``) and returns a float. Each
element is perturbed on its own by ``h = step * max(1, |x|)``: relative to the value so that large
inputs are not lost in round-off, absolute near zero so that the step never vanishes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Scalar = Callable[..., float]


def numeric_grad(f: Scalar, arrays: Sequence[np.ndarray], step: float = 1e-6) -> list[np.ndarray]:
    """d f / d arrays[k] for every k, by per-element central differences (f is not modified)."""
    xs = [np.array(a, dtype=np.float64, copy=True) for a in arrays]
    grads = [np.zeros_like(x) for x in xs]
    for x, g in zip(xs, grads):
        flat, gflat = x.reshape(-1), g.reshape(-1)  # views: writing flat perturbs x in place
        for i in range(flat.size):
            orig = flat[i]
            h = step * max(1.0, abs(orig))
            flat[i] = orig + h
            up = float(f(*xs))
            flat[i] = orig - h
            down = float(f(*xs))
            flat[i] = orig
            gflat[i] = (up - down) / (2.0 * h)
    return grads


def numeric_derivative(f: Callable[[float], float], x: float, step: float = 1e-6) -> float:
    """d f / d x for a function of one float (a convenience over :func:`numeric_grad`)."""
    return float(numeric_grad(lambda a: f(float(a)), [np.array(x)], step)[0])
