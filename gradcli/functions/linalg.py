"""Products and shape changes: matmul, dot, linear, transpose, reshape, split, concat."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Function, MatMul, Reshape, Transpose, Variable, matmul_backward, sum_to
from .registry import register

register(
    "matmul",
    doc="a @ b: matrix product (1-D operands promoted as in NumPy, batches broadcast)",
    rule="d/da = gy @ b.T, d/db = a.T @ gy",
    sample_shapes=((2, 3), (3, 4)),
)(MatMul)
register(
    "transpose",
    doc="x with its axes reversed, or permuted by axes",
    rule="d/dx transpose(x) = transpose back",
    sample_shapes=((2, 3),),
)(Transpose)
register(
    "reshape",
    doc="x with a new shape of the same size (e.g. reshape(x, [3, 2]))",
    rule="d/dx reshape(x) = reshape back",
    sample_shapes=((2, 3),),
    sample_params={"shape": (3, 2)},
)(Reshape)


@register("dot", rule="d/da dot(a, b) = b, d/db = a", sample_shapes=((3,), (3,)))
class Dot(Function):
    """inner product of two vectors of equal length"""

    def forward(self, a: Any, b: Any) -> Any:
        if a.ndim != 1 or b.ndim != 1:
            raise ValueError(
                f"dot takes two vectors (1-D); got shapes {a.shape} and {b.shape}: use matmul or @"
            )
        return np.dot(a, b)

    def backward(self, gy: Variable) -> tuple[Variable, Variable]:
        a, b = self.inputs
        return gy * b, gy * a


@register(
    "linear",
    rule="d/dx = gy @ W.T, d/dW = x.T @ gy, d/db = sum(gy)",
    sample_shapes=((2, 3), (3, 4), (4,)),
)
class Linear(Function):
    """x @ W + b, the affine map of a dense layer (b optional)"""

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:  # noqa: N803 - the usual name
        y = x @ W
        return y if b is None else y + b

    def backward(self, gy: Variable) -> tuple[Variable | None, ...]:
        x, w = self.inputs[:2]
        gx, gw = matmul_backward(x, w, gy)
        if len(self.inputs) == 3:
            return gx, gw, sum_to(gy, self.inputs[2].shape)
        return gx, gw


@register(
    "split",
    doc="x cut into equal sections along axis: a function with several outputs (a, b = split(x))",
    rule="d/dx split(x) = the outputs' gradients joined back",
    n_outputs=2,
    sample_shapes=((4, 3),),
)
class Split(Function):
    def __init__(self, sections: int | list[int] = 2, axis: int = 0) -> None:
        self.sections = sections if isinstance(sections, list) else int(sections)
        self.axis = axis

    def forward(self, x: Any) -> tuple[Any, ...]:
        return tuple(np.split(x, self.sections, axis=self.axis))

    def backward(self, *gys: Variable) -> Variable:
        return Concat(self.axis)(*gys)


@register(
    "concat",
    doc="the inputs joined along axis (two or three arrays)",
    rule="d/dx_i concat(...) = the slice of gy that came from x_i",
    sample_shapes=((2, 3), (2, 3)),
)
class Concat(Function):
    def __init__(self, axis: int = 0) -> None:
        self.axis = axis

    def forward(self, a: Any, b: Any, c: Any = None) -> Any:
        return np.concatenate([x for x in (a, b, c) if x is not None], axis=self.axis)

    def backward(self, gy: Variable) -> tuple[Variable, ...]:
        ends = np.cumsum([x.shape[self.axis] for x in self.inputs])[:-1]
        return Split([int(e) for e in ends], self.axis)(gy)
