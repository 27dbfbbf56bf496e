"""Products and shape changes: matmul, dot, linear, transpose, reshape, split, concat."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Function, MatMul, Reshape, Transpose, Variable, matmul_backward
from .registry import register

LINALG = {"group": "linear algebra"}
SHAPE = {"group": "shape"}

register(
    "matmul",
    doc="a @ b: matrix product (1-D operands promoted as in NumPy, batches broadcast)",
    rule="d/da = gy @ b.T, d/db = a.T @ gy",
    sample_shapes=((2, 3), (3, 4)),
    **LINALG,
)(MatMul)
register(
    "transpose",
    doc="x with its axes reversed, or permuted by axes",
    rule="d/dx transpose(x) = transpose back",
    sample_shapes=((2, 3),),
    **SHAPE,
)(Transpose)
register(
    "reshape",
    doc="x with a new shape of the same size (e.g. reshape(x, [3, 2]))",
    rule="d/dx reshape(x) = reshape back",
    sample_shapes=((2, 3),),
    sample_params={"shape": (3, 2)},
    **SHAPE,
)(Reshape)


class _Linalg(Function):
    raw_vjp = True
    uses_outputs = False


@register("dot", rule="d/da dot(a, b) = b, d/db = a", sample_shapes=((3,), (3,)), **LINALG)
class Dot(_Linalg):
    """inner product of two vectors of equal length"""

    def forward(self, a: Any, b: Any) -> Any:
        if a.ndim != 1 or b.ndim != 1:
            raise ValueError(
                f"dot takes two vectors (1-D); got shapes {a.shape} and {b.shape}: use matmul or @"
            )
        return np.dot(a, b)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,), (a, b) = gys, xs
        return gy * b, gy * a


@register(
    "linear",
    rule="d/dx = gy @ W.T, d/dW = x.T @ gy, d/db = sum(gy)",
    sample_shapes=((2, 3), (3, 4), (4,)),
    **LINALG,
)
class Linear(_Linalg):
    """x @ W + b, the affine map of a dense layer (b optional)"""

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:  # noqa: N803 - the usual name
        y = x @ W
        return y if b is None else y + b

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,) = gys
        need = self.needs_input_grad
        gx, gw = matmul_backward(xs[0], xs[1], gy, need[0], need[1])
        return (gx, gw, gy) if len(xs) == 3 else (gx, gw)


def _concat(parts: tuple[Any, ...], axis: int) -> Any:
    if any(isinstance(p, Variable) for p in parts):
        return Concat(axis)(*parts)
    return np.concatenate(parts, axis=axis)


def _along(axis: int, ndim: int, index: Any) -> tuple[Any, ...]:
    """The subscript that takes ``index`` along ``axis`` and everything along the other axes."""
    return (slice(None),) * (axis % ndim) + (index,)


@register(
    "split",
    doc="x cut into sections along axis: a function with several outputs (a, b = split(x))",
    rule="d/dx split(x) = the outputs' gradients joined back",
    n_outputs=2,
    sample_shapes=((4, 3),),
    **SHAPE,
)
class Split(_Linalg):
    """x cut into sections along axis: a function with several outputs (a, b, c = split(x, 3))

    ``sections`` is a number of equal pieces, or the indices where to cut ([1, 3]).
    """

    def __init__(self, sections: int | list[int] = 2, axis: int = 0) -> None:
        self.sections = list(sections) if isinstance(sections, (list, tuple)) else int(sections)
        self.axis = axis

    def forward(self, x: Any) -> tuple[Any, ...]:
        # Slices at np.split's cut points (which NumPy computes the same way): Dask has no split.
        n = x.shape[self.axis]
        if isinstance(self.sections, int):
            if self.sections < 1:
                raise ValueError(f"split: sections must be >= 1 (or a list of indices), got {self.sections}")
            if n % self.sections:
                raise ValueError("array split does not result in an equal division")
            cuts = [n // self.sections * i for i in range(1, self.sections)]
        else:
            cuts = self.sections
        ends = [0, *cuts, n]
        return tuple(x[_along(self.axis, x.ndim, slice(a, b))] for a, b in zip(ends, ends[1:]))

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        return _concat(gys, self.axis)


@register(
    "concat",
    doc="the inputs joined along an existing axis (any number of arrays)",
    rule="d/dx_i concat(...) = the slice of gy that came from x_i",
    sample_shapes=((2, 3), (2, 3)),
    **SHAPE,
)
class Concat(_Linalg):
    def __init__(self, axis: int = 0) -> None:
        self.axis = axis

    def forward(self, *xs: Any) -> Any:
        return np.concatenate(xs, axis=self.axis)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,) = gys
        ends = np.cumsum([x.shape[self.axis] for x in xs])
        starts = [0, *ends[:-1]]
        return tuple(gy[_along(self.axis, gy.ndim, slice(int(a), int(b)))] for a, b in zip(starts, ends))


@register(
    "stack",
    doc="the inputs (of one shape) joined along a new axis: stack(x, y) has shape (2, *x.shape)",
    rule="d/dx_i stack(...) = gy[i] along axis",
    sample_shapes=((2, 3), (2, 3)),
    **SHAPE,
)
class Stack(_Linalg):
    def __init__(self, axis: int = 0) -> None:
        self.axis = axis

    def forward(self, *xs: Any) -> Any:
        return np.stack(xs, axis=self.axis)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,) = gys
        return tuple(gy[_along(self.axis, gy.ndim, i)] for i in range(len(xs)))
