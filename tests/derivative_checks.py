"""Derivatives of one registered function at chosen inputs and options, checked three ways:
first derivatives against central differences, second derivatives (a Hessian-vector product
built with create_graph) against central differences of the first, and the first-order rule
giving bit-identical gradients on arrays and on Variables.

    from derivative_checks import assert_derivatives
    assert_derivatives("prod", [x], axis=1, keepdims=True)

Several outputs, and outputs that are not scalars, are folded into one number with fixed
random weights, so every output and every element counts. Inputs are copied in C order first
(``numerics.numeric_grad`` perturbs them through a flat view, which a Fortran-ordered array
does not give).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from numerics import numeric_grad

from gradcli import Variable, no_grad
from gradcli.engine import grad
from gradcli.functions import REGISTRY


def as_tuple(ys: Any) -> tuple[Any, ...]:
    """A function's outputs as a tuple, whether it has one or several."""
    return ys if isinstance(ys, tuple) else (ys,)


def _outputs(name: str, xs: Sequence[Any], params: dict[str, Any]) -> list[Any]:
    return list(as_tuple(REGISTRY[name](*xs, **params)))


def _fold(ys: list[Variable], weights: list[np.ndarray]) -> Variable:
    total = (ys[0] * weights[0]).sum()
    for y, w in zip(ys[1:], weights[1:]):
        total = total + (y * w).sum()
    return total


def first_derivatives(
    name: str, arrays: Sequence[np.ndarray], weights: list[np.ndarray], **params: Any
) -> list[Any]:
    xs = [Variable(a) for a in arrays]
    return [g.data for g in grad(_fold(_outputs(name, xs, params), weights), xs)]


def assert_derivatives(
    name: str,
    arrays: Sequence[np.ndarray],
    order: int = 2,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    **params: Any,
) -> None:
    arrays = [np.array(a, dtype=np.float64, order="C") for a in arrays]
    rng = np.random.default_rng(zlib.crc32(f"{name}/{params}/{[a.shape for a in arrays]}".encode()))
    with no_grad():
        ys = _outputs(name, [Variable(a) for a in arrays], params)
    weights = [rng.uniform(0.5, 1.5, size=y.shape) for y in ys]
    where = f"{name}({', '.join(str(a.shape) for a in arrays)}, {params})"

    def folded(*a: np.ndarray) -> float:
        return float(sum((y * w).sum() for y, w in zip(_outputs(name, a, params), weights)))

    got = first_derivatives(name, arrays, weights, **params)
    for k, (g, n, a) in enumerate(zip(got, numeric_grad(folded, arrays), arrays)):
        assert g.shape == a.shape, f"{where}: gradient {k} has shape {g.shape}"
        np.testing.assert_allclose(g, n, rtol=rtol, atol=atol, err_msg=f"{where}: d/dx{k}")

    xs = [Variable(a) for a in arrays]
    on_variables = grad(_fold(_outputs(name, xs, params), weights), xs, create_graph=True)
    for k, (a, v) in enumerate(zip(got, on_variables)):
        np.testing.assert_array_equal(a, v.data, err_msg=f"{where}: d/dx{k} on arrays and on Variables")
    if order < 2:
        return
    directions = [rng.uniform(-1.0, 1.0, size=a.shape) for a in arrays]
    second = grad(_fold(list(on_variables), directions), xs)

    def first_dot_v(*a: np.ndarray) -> float:
        return float(
            sum((g * v).sum() for g, v in zip(first_derivatives(name, a, weights, **params), directions))
        )

    for k, (g, n) in enumerate(zip(second, numeric_grad(first_dot_v, arrays))):
        np.testing.assert_allclose(g.data, n, rtol=rtol, atol=atol, err_msg=f"{where}: d2/dx{k}")


def derivative_tensor(name: str, x: np.ndarray, order: int, **params: Any) -> np.ndarray:
    """Every partial derivative of order ``order`` of sum(f(x)), for f of one input, by repeated
    create_graph passes: an array of shape ``(x.size,) * order`` (x's elements in C order)."""
    v = Variable(np.asarray(x, dtype=np.float64))
    level = [_outputs(name, [v], params)[0].sum()]
    for _ in range(order):
        level = [
            g.reshape(-1)[i] for r in level for g in grad(r, [v], create_graph=True) for i in range(v.size)
        ]
    return np.array([r.data for r in level]).reshape((v.size,) * order)
