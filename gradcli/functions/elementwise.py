"""Elementwise functions of one or two arrays: one table row each, the forward beside its rule.

Each rule is written with operators and registered functions, so the same rule runs on arrays
(a first-order backward) and on Variables (higher orders). Non-differentiable points follow
PyTorch's autograd notes; the value chosen is in each doc.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Function, Log, data_of
from .registry import binary, define, register, unary

EXP_LOG = {"group": "exponents and logarithms"}
TRIG = {"group": "trigonometric"}
HYPERBOLIC = {"group": "hyperbolic"}
NN = {"group": "neural network"}
PIECEWISE = {"group": "piecewise", "smooth": False}

# --- powers, exponentials, logarithms -------------------------------------------------------------

square = unary("square", np.square, lambda gy, x: gy * 2.0 * x, "2*x", doc="x**2", **EXP_LOG)
sqrt = unary(
    "sqrt",
    np.sqrt,
    lambda gy, out: gy / (2.0 * out),
    "1/(2*sqrt(x))",
    doc="square root; sqrt'(0) = inf (PyTorch)",
    sample_domain=(0.2, 3.0),
    **EXP_LOG,
)
exp = unary("exp", np.exp, lambda gy, out: gy * out, "exp(x)", doc="e**x", **EXP_LOG)
register(
    "log",
    doc="natural logarithm",
    rule="d/dx log(x) = 1/x",
    partials=("1/x",),
    elementwise=True,
    sample_domain=(0.2, 3.0),
    **EXP_LOG,
)(Log)
log1p = unary(
    "log1p",
    np.log1p,
    lambda gy, x: gy / (1.0 + x),
    "1/(1 + x)",
    doc="log(1 + x), accurate for small x",
    sample_domain=(-0.5, 3.0),
    **EXP_LOG,
)
expm1 = unary(
    "expm1",
    np.expm1,
    lambda gy, out: gy * (out + 1.0),
    "exp(x)",
    doc="exp(x) - 1, accurate for small x",
    **EXP_LOG,
)

# --- trigonometric and hyperbolic ---------------------------------------------------------------

sin = unary("sin", np.sin, lambda gy, x: gy * cos(x), "cos(x)", doc="sine", **TRIG)
cos = unary("cos", np.cos, lambda gy, x: gy * -sin(x), "-sin(x)", doc="cosine", **TRIG)
tan = unary(
    "tan",
    np.tan,
    lambda gy, out: gy * (1.0 + out * out),
    "1 + tan(x)**2",
    doc="tangent",
    sample_domain=(-1.2, 1.2),
    **TRIG,
)
asin = unary(
    "asin",
    np.arcsin,
    lambda gy, x: gy / sqrt(1.0 - x * x),
    "1/sqrt(1 - x**2)",
    doc="inverse sine",
    sample_domain=(-0.9, 0.9),
    **TRIG,
)
acos = unary(
    "acos",
    np.arccos,
    lambda gy, x: -gy / sqrt(1.0 - x * x),
    "-1/sqrt(1 - x**2)",
    doc="inverse cosine",
    sample_domain=(-0.9, 0.9),
    **TRIG,
)
atan = unary(
    "atan", np.arctan, lambda gy, x: gy / (1.0 + x * x), "1/(1 + x**2)", doc="inverse tangent", **TRIG
)
sinh = unary("sinh", np.sinh, lambda gy, x: gy * cosh(x), "cosh(x)", doc="hyperbolic sine", **HYPERBOLIC)
cosh = unary("cosh", np.cosh, lambda gy, x: gy * sinh(x), "sinh(x)", doc="hyperbolic cosine", **HYPERBOLIC)
tanh = unary(
    "tanh",
    np.tanh,
    lambda gy, out: gy * (1.0 - out * out),
    "1 - tanh(x)**2",
    doc="hyperbolic tangent",
    **HYPERBOLIC,
)

# --- neural-network activations ----------------------------------------------------------------


def _sigmoid(x: Any) -> Any:
    return 0.5 * np.tanh(0.5 * x) + 0.5


def _softplus(x: Any) -> Any:
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


sigmoid = unary(
    "sigmoid",
    _sigmoid,
    lambda gy, out: gy * out * (1.0 - out),
    "sigmoid(x)*(1 - sigmoid(x))",
    doc="1/(1+exp(-x)), computed as 0.5*tanh(x/2)+0.5 so it stays finite for any x",
    **NN,
)
softplus = unary(
    "softplus",
    _softplus,
    lambda gy, x: gy * sigmoid(x),
    "sigmoid(x)",
    doc="log(1+exp(x)), computed without overflow (finite derivative at +-1000)",
    **NN,
)
log_sigmoid = unary(
    "log_sigmoid",
    lambda x: -_softplus(-x),
    lambda gy, x: gy * sigmoid(-x),
    "sigmoid(-x)",
    doc="log(sigmoid(x)) = -softplus(-x), without overflow",
    **NN,
)
relu = unary(
    "relu",
    lambda x: np.maximum(x, 0.0),
    lambda gy, x: gy * (data_of(x) > 0),
    "x > 0",
    doc="max(x, 0); relu'(0) = 0 (PyTorch)",
    **{**NN, "smooth": False},
)

# --- piecewise ---------------------------------------------------------------------------------------

absolute = unary(
    "abs",
    np.abs,
    lambda gy, x: gy * np.sign(data_of(x)),
    "sign(x)",
    doc="absolute value; abs'(0) = 0 (PyTorch: subgradient of minimum norm)",
    **PIECEWISE,
)


def _first_chosen(x: Any, y: Any, pick: Any) -> Any:
    """Where ``pick(x, y)`` chose x: 1; at ties each side gets half (PyTorch)."""
    x, y = data_of(x), data_of(y)
    return pick(x, y) * 1.0 + 0.5 * (x == y)


maximum = binary(
    "maximum",
    np.maximum,
    (
        lambda gy, x, y: gy * _first_chosen(x, y, np.greater),
        lambda gy, x, y: gy * (1.0 - _first_chosen(x, y, np.greater)),
    ),
    ("(x > y) + 0.5*(x == y)", "(x < y) + 0.5*(x == y)"),
    doc="elementwise larger of x and y; at ties each gets half the gradient (PyTorch)",
    **PIECEWISE,
)
minimum = binary(
    "minimum",
    np.minimum,
    (
        lambda gy, x, y: gy * _first_chosen(x, y, np.less),
        lambda gy, x, y: gy * (1.0 - _first_chosen(x, y, np.less)),
    ),
    ("(x < y) + 0.5*(x == y)", "(x > y) + 0.5*(x == y)"),
    doc="elementwise smaller of x and y; at ties each gets half the gradient (PyTorch)",
    **PIECEWISE,
)


def _bounds(lo: Any, hi: Any) -> tuple[Any, Any]:
    return (-np.inf if lo is None else lo), (np.inf if hi is None else hi)


def _clip(x: Any, lo: Any = None, hi: Any = None) -> Any:
    return np.clip(x, *_bounds(lo, hi))


def _inside(x: Any, lo: Any, hi: Any) -> Any:
    lo, hi = _bounds(lo, hi)
    x = data_of(x)
    return (x >= lo) & (x <= hi)


clip = define(
    "clip",
    _clip,
    [lambda gy, x, lo, hi: gy * _inside(x, lo, hi)],
    [None],
    inputs=("x",),
    params={"lo": None, "hi": None},
    rule="d/dx clip(x, lo, hi) = 1 where lo <= x <= hi, else 0",
    doc="x limited to [lo, hi]; gradient 1 on the closed interval, 0 outside (PyTorch's clamp)",
    sample_params={"lo": -1.0, "hi": 1.0},
    **PIECEWISE,
)


@register("sincos", rule="d/dx (sin(x), cos(x)) = (cos(x), -sin(x))", n_outputs=2, **TRIG)
class SinCos(Function):
    """both sin(x) and cos(x): a function with two outputs (s, c = sincos(x))"""

    raw_vjp = True
    uses_outputs = False

    def forward(self, x: Any) -> tuple[Any, Any]:
        return np.sin(x), np.cos(x)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        gs, gc = gys
        (x,) = xs
        return gs * cos(x) - gc * sin(x)
