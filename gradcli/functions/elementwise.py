"""Elementwise functions of one or two arrays: one table row each, the forward beside its rule.

Each rule is written with operators and registered functions, so the same rule runs on arrays
(a first-order backward) and on Variables (higher orders). Non-differentiable points follow
PyTorch's autograd notes; the value chosen is in each doc.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import maybe_any
from ..engine import Function, Log, data_of
from .registry import REGISTRY, Spec, alias, binary, define, register, unary

EXP_LOG: dict[str, Any] = {"group": "exponents and logarithms"}
TRIG: dict[str, Any] = {"group": "trigonometric"}
HYPERBOLIC: dict[str, Any] = {"group": "hyperbolic"}
NN: dict[str, Any] = {"group": "neural network"}
NN_KINKED: dict[str, Any] = {**NN, "smooth": False}
PIECEWISE: dict[str, Any] = {"group": "piecewise", "smooth": False}

LN2, LN10 = math.log(2.0), math.log(10.0)
DEGREE = math.pi / 180.0


def whole_number(function: str, option: str, value: Any, least: int | None = None) -> int:
    """An option that must be a whole number (``decimals=-2``, ``n=1``), as an int."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not float(value).is_integer() or (least is not None and value < least):
        bound = "" if least is None else f" >= {least}"
        raise ValueError(f"{function}: {option} must be a whole number{bound}, got {value!r}")
    return int(value)


def _nonzero(v: Any) -> Any:
    """``v`` with its exact zeros replaced by 1: a divisor where the quotient is taken as 0 there
    (the numerator is 0 too), so that no 0/0 is ever formed."""
    zero = data_of(v) == 0
    return v + zero * 1.0 if maybe_any(zero) else v


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
log = REGISTRY["log"]
log10 = unary(
    "log10",
    np.log10,
    lambda gy, x: gy / (x * LN10),
    "1/(x*log(10))",
    doc="base-10 logarithm",
    sample_domain=(0.2, 3.0),
    **EXP_LOG,
)
log2 = unary(
    "log2",
    np.log2,
    lambda gy, x: gy / (x * LN2),
    "1/(x*log(2))",
    doc="base-2 logarithm",
    sample_domain=(0.2, 3.0),
    **EXP_LOG,
)
exp2 = unary("exp2", np.exp2, lambda gy, out: gy * out * LN2, "log(2)*exp2(x)", doc="2**x", **EXP_LOG)
cbrt = unary(
    "cbrt",
    np.cbrt,
    lambda gy, out: gy / (3.0 * out * out),
    "1/(3*cbrt(x)**2)",
    doc="cube root, real for x < 0 (cbrt(-8) = -2); cbrt'(0) = inf",
    sample_domain=(0.2, 3.0),
    **EXP_LOG,
)
reciprocal = unary(
    "reciprocal",
    lambda x: 1.0 / x,
    lambda gy, out: -gy * out * out,
    "-1/x**2",
    doc="1/x; reciprocal(0) = inf",
    sample_domain=(0.5, 2.0),
    **EXP_LOG,
)
logaddexp = binary(
    "logaddexp",
    np.logaddexp,
    (lambda gy, x, y: gy * sigmoid(x - y), lambda gy, x, y: gy * sigmoid(y - x)),
    ("sigmoid(x - y)", "sigmoid(y - x)"),
    doc="log(exp(x) + exp(y)), without overflow",
    **EXP_LOG,
)
logit = unary(
    "logit",
    lambda x: np.log(x) - np.log1p(-x),
    lambda gy, x: gy / (x * (1.0 - x)),
    "1/(x*(1 - x))",
    doc="log(x/(1 - x)), the inverse of sigmoid; logit(0) = -inf, logit(1) = inf",
    sample_domain=(0.1, 0.9),
    **EXP_LOG,
)
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
cos: Spec = unary("cos", np.cos, lambda gy, x: gy * -sin(x), "-sin(x)", doc="cosine", **TRIG)
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
atan2 = binary(
    "atan2",
    np.arctan2,
    (lambda gy, y, x: gy * x / (x * x + y * y), lambda gy, y, x: -gy * y / (x * x + y * y)),
    ("x/(x**2 + y**2)", "-y/(x**2 + y**2)"),
    inputs=("y", "x"),
    doc="angle of the point (x, y) in [-pi, pi] (y first, as NumPy); gradient NaN at (0, 0) (PyTorch)",
    sample_domain=(0.3, 2.0),
    **TRIG,
)
hypot = binary(
    "hypot",
    np.hypot,
    (lambda gy, x, out: gy * x / _nonzero(out), lambda gy, y, out: gy * y / _nonzero(out)),
    ("x/hypot(x, y)", "y/hypot(x, y)"),
    doc="sqrt(x**2 + y**2) without overflow; gradient 0 at (0, 0), as norm",
    **TRIG,
)
sec = unary(
    "sec",
    lambda x: 1.0 / np.cos(x),
    lambda gy, x, out: gy * out * tan(x),
    "sec(x)*tan(x)",
    doc="secant 1/cos(x)",
    sample_domain=(-1.2, 1.2),
    **TRIG,
)
csc = unary(
    "csc",
    lambda x: 1.0 / np.sin(x),
    lambda gy, x, out: -gy * out * cot(x),
    "-csc(x)*cot(x)",
    doc="cosecant 1/sin(x); csc(0) = inf",
    sample_domain=(0.3, 2.8),
    **TRIG,
)
cot: Spec = unary(
    "cot",
    lambda x: 1.0 / np.tan(x),
    lambda gy, out: -gy * (1.0 + out * out),
    "-1 - cot(x)**2",
    doc="cotangent 1/tan(x); cot(0) = inf",
    sample_domain=(0.3, 2.8),
    **TRIG,
)
deg2rad = unary(
    "deg2rad", np.deg2rad, lambda gy: gy * DEGREE, "pi/180", doc="degrees to radians: x*pi/180", **TRIG
)
rad2deg = unary(
    "rad2deg", np.rad2deg, lambda gy: gy / DEGREE, "180/pi", doc="radians to degrees: x*180/pi", **TRIG
)
sinh = unary("sinh", np.sinh, lambda gy, x: gy * cosh(x), "cosh(x)", doc="hyperbolic sine", **HYPERBOLIC)
cosh: Spec = unary(
    "cosh", np.cosh, lambda gy, x: gy * sinh(x), "sinh(x)", doc="hyperbolic cosine", **HYPERBOLIC
)
tanh = unary(
    "tanh",
    np.tanh,
    lambda gy, out: gy * (1.0 - out * out),
    "1 - tanh(x)**2",
    doc="hyperbolic tangent",
    **HYPERBOLIC,
)
asinh = unary(
    "asinh",
    np.arcsinh,
    lambda gy, x: gy / hypot(x, 1.0),
    "1/sqrt(1 + x**2)",
    doc="inverse hyperbolic sine",
    **HYPERBOLIC,
)
acosh = unary(
    "acosh",
    np.arccosh,
    lambda gy, x: gy / (sqrt(x - 1.0) * sqrt(x + 1.0)),
    "1/sqrt(x**2 - 1)",
    doc="inverse hyperbolic cosine, for x >= 1; acosh'(1) = inf",
    sample_domain=(1.2, 3.0),
    **HYPERBOLIC,
)
atanh = unary(
    "atanh",
    np.arctanh,
    lambda gy, x: gy / ((1.0 - x) * (1.0 + x)),
    "1/(1 - x**2)",
    doc="inverse hyperbolic tangent, for -1 <= x <= 1; atanh(1) = inf",
    sample_domain=(-0.9, 0.9),
    **HYPERBOLIC,
)

# --- neural-network activations ----------------------------------------------------------------


def _sigmoid(x: Any) -> Any:
    # exp of -|x| only: never overflows, and keeps full relative accuracy far out on the left
    # (sigmoid(-40) = 4.2e-18, where 0.5*tanh(x/2) + 0.5 rounds to 0).
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def _softplus(x: Any) -> Any:
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


sigmoid: Spec = unary(
    "sigmoid",
    _sigmoid,
    lambda gy, out: gy * out * (1.0 - out),
    "sigmoid(x)*(1 - sigmoid(x))",
    doc="1/(1+exp(-x)), computed without overflow and accurate for large negative x",
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
    **NN_KINKED,
)


def _silu_rule(gy: Any, x: Any) -> Any:
    s = exp(log_sigmoid(x))
    return gy * s * (1.0 + x * (1.0 - s))


# sigmoid as exp(log_sigmoid(x)): exact to the last bits for x << 0 too, where 0.5*tanh(x/2) + 0.5
# keeps only absolute accuracy (and x*sigmoid(x) would lose every digit by x = -40).
silu = unary(
    "silu",
    lambda x: x * np.exp(-_softplus(-x)),
    _silu_rule,
    "sigmoid(x)*(1 + x*(1 - sigmoid(x)))",
    doc="x*sigmoid(x) (also called swish)",
    **NN,
)


def _elu_rule(gy: Any, x: Any, alpha: Any) -> Any:
    neg = (data_of(x) <= 0) * 1.0
    # exp(x*neg): exp(x) where it is used, exp(0) elsewhere (exp of a large x would overflow).
    return gy * ((1.0 - neg) + alpha * neg * exp(x * neg))


elu = define(
    "elu",
    lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))),
    [_elu_rule],
    [None],
    inputs=("x",),
    params={"alpha": 1.0},
    rule="d/dx elu(x) = 1 for x > 0, alpha*exp(x) for x <= 0",
    doc="x for x > 0, alpha*(exp(x) - 1) otherwise; elu'(0) = alpha (PyTorch)",
    sample_params={"alpha": 1.5},
    **NN_KINKED,
)
leaky_relu = define(
    "leaky_relu",
    lambda x, negative_slope: np.where(x > 0, x, x * negative_slope),
    [lambda gy, x, negative_slope: gy * np.where(data_of(x) > 0, 1.0, negative_slope)],
    [None],
    inputs=("x",),
    params={"negative_slope": 0.01},
    rule="d/dx leaky_relu(x) = 1 for x > 0, negative_slope for x <= 0",
    doc="x for x > 0, negative_slope*x otherwise; leaky_relu'(0) = negative_slope (PyTorch)",
    sample_params={"negative_slope": 0.2},
    **NN_KINKED,
)


def _softsign_rule(gy: Any, x: Any) -> Any:
    d = 1.0 + absolute(x)
    return gy / d / d  # not / d**2, which overflows for |x| > 1e154


softsign = unary(
    "softsign",
    lambda x: x / (1.0 + np.abs(x)),
    _softsign_rule,
    "1/(1 + abs(x))**2",
    doc="x/(1 + |x|); its second derivative jumps at 0 (abs'(0) = 0 there)",
    **NN_KINKED,
)
hardtanh = define(
    "hardtanh",
    lambda x, min_val, max_val: np.clip(x, min_val, max_val),
    [lambda gy, x, min_val, max_val: gy * ((data_of(x) > min_val) & (data_of(x) < max_val))],
    [None],
    inputs=("x",),
    params={"min_val": -1.0, "max_val": 1.0},
    rule="d/dx hardtanh(x) = 1 for min_val < x < max_val, else 0",
    doc="x limited to [min_val, max_val]; gradient 1 strictly inside, 0 at the bounds and beyond (PyTorch)",
    **NN_KINKED,
)

# --- piecewise ---------------------------------------------------------------------------------------

absolute: Spec = unary(
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

# Piecewise constant: no gradient flows (a None rule), at the jumps too, as in PyTorch.
floor = unary("floor", np.floor, None, "0", doc="largest whole number <= x; zero gradient", **PIECEWISE)
ceil = unary("ceil", np.ceil, None, "0", doc="smallest whole number >= x; zero gradient", **PIECEWISE)
trunc = unary("trunc", np.trunc, None, "0", doc="x rounded towards 0; zero gradient", **PIECEWISE)
round_half_even = define(
    "round",
    lambda x, decimals: np.round(x, whole_number("round", "decimals", decimals)),
    [None],
    ["0"],
    inputs=("x",),
    params={"decimals": 0},
    doc="x rounded to decimals places, halves to even (NumPy, PyTorch: round(2.5) = 2); zero gradient",
    sample_params={"decimals": 1},
    **PIECEWISE,
)
sign = unary(
    "sign",
    np.sign,
    None,
    "0",
    doc="-1, 0 or 1 as x < 0, x == 0, x > 0 (NaN stays NaN); zero gradient",
    **PIECEWISE,
)
heaviside = binary(
    "heaviside",
    np.heaviside,
    (None, lambda gy, x: gy * (data_of(x) == 0)),
    ("0", "x == 0"),
    inputs=("x", "h"),
    doc="step: 0 for x < 0, 1 for x > 0, h at x == 0 (NumPy); zero gradient in x, 1 in h where x == 0",
    **PIECEWISE,
)
mod = binary(
    "mod",
    np.mod,
    (lambda gy: gy, lambda gy, x, y: gy * -np.floor_divide(data_of(x), data_of(y))),
    ("1", "-floor_divide(x, y)"),
    doc="x - y*floor(x/y), signed like y (Python's %); d/dx = 1, d/dy = -floor(x/y), at the jumps too",
    sample_domain=(0.5, 2.0),
    **PIECEWISE,
)
floor_divide = binary(
    "floor_divide",
    np.floor_divide,
    (None, None),
    ("0", "0"),
    doc="floor(x/y), as Python's and NumPy's //; zero gradient",
    sample_domain=(0.5, 2.0),
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


# Other names users type: NumPy's and C's.
alias("ln", "log")
alias("arcsin", "asin")
alias("arccos", "acos")
alias("arctan", "atan")
alias("arctan2", "atan2")
alias("arcsinh", "asinh")
alias("arccosh", "acosh")
alias("arctanh", "atanh")
alias("fabs", "abs")
