"""Loss functions: scalar measures of the distance between two arrays."""

from __future__ import annotations

from typing import Any

from ..engine import Function, Variable, sum_to
from .registry import register


@register("mse", rule="d/dx mse(x, y) = 2*(x-y)/n, d/dy = -2*(x-y)/n", elementwise=True)
class MeanSquaredError(Function):
    """mean of (x - y)**2 over all elements (broadcasting)"""

    def forward(self, x: Any, y: Any) -> Any:
        d = x - y
        return (d * d).sum() / d.size

    def backward(self, gy: Variable) -> tuple[Variable, Variable]:
        x, y = self.inputs
        d = x - y
        g = gy * d * (2.0 / d.size)
        return sum_to(g, x.shape), sum_to(-g, y.shape)
