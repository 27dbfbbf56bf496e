"""gradcli through its Python API: Variables and the functions of ``gradcli.functions``."""

from __future__ import annotations

import numpy as np
from common import CHAIN_START, A, B

from gradcli import Variable, calculus
from gradcli.functions import exp, log1p, relu, sin


def chain(n: int) -> tuple[float, float]:
    x = Variable(CHAIN_START)
    y = x
    for i in range(n):
        k = i % 3
        if k == 0:
            y = y * A
        elif k == 1:
            y = y + B
        else:
            y = relu(y)
    y.backward()
    return float(y.data), float(x.grad.data)


def arrays(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vx, vy = Variable(x), Variable(y)
    z = sin(vx) * exp(-(vy**2)) + log1p(vx**2)
    z.backward()
    return z.data, vx.grad.data, vy.grad.data


def hessian(a: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    def quadratic(x: Variable) -> Variable:
        return 0.5 * (x @ a @ x)

    r = calculus.hessian(quadratic, {"x": x})
    return float(r.value), r.grad["x"], r.hessian["x"]["x"]
