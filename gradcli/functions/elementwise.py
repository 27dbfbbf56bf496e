"""Elementwise functions of one or two arrays. Each forward sits beside its backward, and each
backward is written with Variables so that it can be differentiated again.

Non-differentiable points follow PyTorch's autograd notes; the value chosen is in each doc.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Function, Log, Variable, sum_to
from .registry import register


def _const(a: Any) -> Variable:
    return Variable(a, requires_grad=False)


@register("square", rule="d/dx x**2 = 2*x")
class Square(Function):
    """x**2"""

    def forward(self, x: Any) -> Any:
        return x * x

    def backward(self, gy: Variable) -> Variable:
        return gy * 2.0 * self.inputs[0]


@register("sqrt", rule="d/dx sqrt(x) = 1/(2*sqrt(x))", sample_domain=(0.2, 3.0))
class Sqrt(Function):
    """square root; sqrt'(0) = inf (PyTorch)"""

    def forward(self, x: Any) -> Any:
        return np.sqrt(x)

    def backward(self, gy: Variable) -> Variable:
        return gy / (2.0 * self.output())


@register("exp", rule="d/dx exp(x) = exp(x)")
class Exp(Function):
    """e**x"""

    def forward(self, x: Any) -> Any:
        return np.exp(x)

    def backward(self, gy: Variable) -> Variable:
        return gy * self.output()


register("log", doc="natural logarithm", rule="d/dx log(x) = 1/x", sample_domain=(0.2, 3.0))(Log)


@register("log1p", rule="d/dx log1p(x) = 1/(1+x)", sample_domain=(-0.5, 3.0))
class Log1p(Function):
    """log(1 + x), accurate for small x"""

    def forward(self, x: Any) -> Any:
        return np.log1p(x)

    def backward(self, gy: Variable) -> Variable:
        return gy / (1.0 + self.inputs[0])


@register("expm1", rule="d/dx expm1(x) = exp(x)")
class Expm1(Function):
    """exp(x) - 1, accurate for small x"""

    def forward(self, x: Any) -> Any:
        return np.expm1(x)

    def backward(self, gy: Variable) -> Variable:
        return gy * (self.output() + 1.0)


@register("sin", rule="d/dx sin(x) = cos(x)")
class Sin(Function):
    """sine"""

    def forward(self, x: Any) -> Any:
        return np.sin(x)

    def backward(self, gy: Variable) -> Variable:
        return gy * Cos()(self.inputs[0])


@register("cos", rule="d/dx cos(x) = -sin(x)")
class Cos(Function):
    """cosine"""

    def forward(self, x: Any) -> Any:
        return np.cos(x)

    def backward(self, gy: Variable) -> Variable:
        return gy * -Sin()(self.inputs[0])


@register("tan", rule="d/dx tan(x) = 1 + tan(x)**2", sample_domain=(-1.2, 1.2))
class Tan(Function):
    """tangent"""

    def forward(self, x: Any) -> Any:
        return np.tan(x)

    def backward(self, gy: Variable) -> Variable:
        y = self.output()
        return gy * (1.0 + y * y)


@register("asin", rule="d/dx asin(x) = 1/sqrt(1-x**2)", sample_domain=(-0.9, 0.9))
class Asin(Function):
    """inverse sine"""

    def forward(self, x: Any) -> Any:
        return np.arcsin(x)

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0]
        return gy / Sqrt()(1.0 - x * x)


@register("acos", rule="d/dx acos(x) = -1/sqrt(1-x**2)", sample_domain=(-0.9, 0.9))
class Acos(Function):
    """inverse cosine"""

    def forward(self, x: Any) -> Any:
        return np.arccos(x)

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0]
        return -gy / Sqrt()(1.0 - x * x)


@register("atan", rule="d/dx atan(x) = 1/(1+x**2)")
class Atan(Function):
    """inverse tangent"""

    def forward(self, x: Any) -> Any:
        return np.arctan(x)

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0]
        return gy / (1.0 + x * x)


@register("sinh", rule="d/dx sinh(x) = cosh(x)")
class Sinh(Function):
    """hyperbolic sine"""

    def forward(self, x: Any) -> Any:
        return np.sinh(x)

    def backward(self, gy: Variable) -> Variable:
        return gy * Cosh()(self.inputs[0])


@register("cosh", rule="d/dx cosh(x) = sinh(x)")
class Cosh(Function):
    """hyperbolic cosine"""

    def forward(self, x: Any) -> Any:
        return np.cosh(x)

    def backward(self, gy: Variable) -> Variable:
        return gy * Sinh()(self.inputs[0])


@register("tanh", rule="d/dx tanh(x) = 1 - tanh(x)**2")
class Tanh(Function):
    """hyperbolic tangent"""

    def forward(self, x: Any) -> Any:
        return np.tanh(x)

    def backward(self, gy: Variable) -> Variable:
        y = self.output()
        return gy * (1.0 - y * y)


@register("sigmoid", rule="d/dx sigmoid(x) = sigmoid(x)*(1-sigmoid(x))")
class Sigmoid(Function):
    """1/(1+exp(-x)), computed as 0.5*tanh(x/2)+0.5 so it stays finite for any x"""

    def forward(self, x: Any) -> Any:
        return 0.5 * np.tanh(0.5 * x) + 0.5

    def backward(self, gy: Variable) -> Variable:
        y = self.output()
        return gy * y * (1.0 - y)


def _softplus(x: Any) -> Any:
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


@register("softplus", rule="d/dx softplus(x) = sigmoid(x)")
class Softplus(Function):
    """log(1+exp(x)), computed without overflow (finite derivative at +-1000)"""

    def forward(self, x: Any) -> Any:
        return _softplus(x)

    def backward(self, gy: Variable) -> Variable:
        return gy * Sigmoid()(self.inputs[0])


@register("log_sigmoid", rule="d/dx log_sigmoid(x) = sigmoid(-x)")
class LogSigmoid(Function):
    """log(sigmoid(x)) = -softplus(-x), without overflow"""

    def forward(self, x: Any) -> Any:
        return -_softplus(-x)

    def backward(self, gy: Variable) -> Variable:
        return gy * Sigmoid()(-self.inputs[0])


@register("relu", rule="d/dx relu(x) = 1 if x > 0 else 0", smooth=False)
class Relu(Function):
    """max(x, 0); relu'(0) = 0 (PyTorch)"""

    def forward(self, x: Any) -> Any:
        return np.maximum(x, 0.0)

    def backward(self, gy: Variable) -> Variable:
        return gy * _const(self.inputs[0].data > 0)


@register("abs", rule="d/dx abs(x) = sign(x)", smooth=False)
class Abs(Function):
    """absolute value; abs'(0) = 0 (PyTorch: subgradient of minimum norm)"""

    def forward(self, x: Any) -> Any:
        return np.abs(x)

    def backward(self, gy: Variable) -> Variable:
        return gy * _const(np.sign(self.inputs[0].data))


class _Choose(Function):
    """Shared backward of maximum/minimum: the chosen side gets the gradient, ties split it."""

    def _mask(self, x: Any, y: Any) -> Any:
        raise NotImplementedError

    def backward(self, gy: Variable) -> tuple[Variable, Variable]:
        x, y = self.inputs
        mask = self._mask(x.data, y.data) + 0.5 * (x.data == y.data)
        return sum_to(gy * _const(mask), x.shape), sum_to(gy * _const(1.0 - mask), y.shape)


@register("maximum", rule="d/dx = 1 where x > y, 0.5 at ties", elementwise=True, smooth=False)
class Maximum(_Choose):
    """elementwise larger of x and y; at ties each gets half the gradient (PyTorch)"""

    def forward(self, x: Any, y: Any) -> Any:
        return np.maximum(x, y)

    def _mask(self, x: Any, y: Any) -> Any:
        return (x > y) * 1.0


@register("minimum", rule="d/dx = 1 where x < y, 0.5 at ties", elementwise=True, smooth=False)
class Minimum(_Choose):
    """elementwise smaller of x and y; at ties each gets half the gradient (PyTorch)"""

    def forward(self, x: Any, y: Any) -> Any:
        return np.minimum(x, y)

    def _mask(self, x: Any, y: Any) -> Any:
        return (x < y) * 1.0


@register(
    "clip",
    rule="d/dx clip(x, lo, hi) = 1 where lo <= x <= hi, else 0",
    sample_params={"lo": -1.0, "hi": 1.0},
    smooth=False,
)
class Clip(Function):
    """x limited to [lo, hi]; gradient 1 on the closed interval, 0 outside (PyTorch's clamp)"""

    def __init__(self, lo: float | None = None, hi: float | None = None) -> None:
        self.lo = -np.inf if lo is None else lo
        self.hi = np.inf if hi is None else hi

    def forward(self, x: Any) -> Any:
        return np.clip(x, self.lo, self.hi)

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0].data
        return gy * _const((x >= self.lo) & (x <= self.hi))


@register("sincos", rule="d/dx (sin(x), cos(x)) = (cos(x), -sin(x))", n_outputs=2)
class SinCos(Function):
    """both sin(x) and cos(x): a function with two outputs (s, c = sincos(x))"""

    def forward(self, x: Any) -> tuple[Any, Any]:
        return np.sin(x), np.cos(x)

    def backward(self, gs: Variable, gc: Variable) -> Variable:
        x = self.inputs[0]
        return gs * Cos()(x) - gc * Sin()(x)
