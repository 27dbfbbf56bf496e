"""The elementwise, special, piecewise, neural-network and loss functions: values against
references written here independently (Python's math module, plain formulas and loops; SciPy only
where the standard library has nothing), values at edge points, the documented conventions at
kinks and jumps, derivatives of higher order at known points, aliases, which modules a plain
evaluation loads, and a few through the command line.

First and second derivatives at ordinary points, and broadcasting, are checked for every function
by tests/test_registry_derivatives.py; this file pins what that generic check cannot see.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import invoke, subprocess_env

from gradcli import Variable
from gradcli.engine import grad
from gradcli.functions import REGISTRY
from gradcli.functions.registry import ALIASES, lookup
from gradcli.language import parse

GROUPS = {
    "exponents and logarithms",
    "trigonometric",
    "hyperbolic",
    "special",
    "piecewise",
    "neural network",
    "losses",
}
EULER_GAMMA = 0.5772156649015329
ZETA3 = 1.2020569031595942


def each(f: Callable[..., float]) -> Callable[..., np.ndarray]:
    """``f`` of Python floats applied to every element (broadcasting the arrays it is given)."""

    def apply(*arrays: np.ndarray, **params: Any) -> np.ndarray:
        b = np.broadcast_arrays(*arrays)
        out = [f(*(float(a.flat[i]) for a in b), **params) for i in range(b[0].size)]
        return np.array(out, dtype=float).reshape(b[0].shape)

    return apply


# --- independent references for the functions that have no counterpart in math -------------------------


def erfinv_ref(v: float) -> float:
    """Newton's method on math.erf."""
    t = 0.0
    for _ in range(100):
        step = (math.erf(t) - v) / (2.0 / math.sqrt(math.pi) * math.exp(-t * t))
        t -= step
        if abs(step) < 1e-17 * max(1.0, abs(t)):
            break
    return t


BERNOULLI = [1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730]


def polygamma_ref(n: int, x: float) -> float:
    """psi^(n)(x): the recurrence psi^(n)(x) = psi^(n)(x+1) + (-1)^(n+1) n!/x^(n+1) carries x past 30,
    where the asymptotic (Stirling) series is exact to round-off."""
    sign = (-1.0) ** (n + 1)
    shift = 0.0
    while x < 30.0:
        shift += sign * math.factorial(n) / x ** (n + 1)
        x += 1.0
    if n == 0:
        tail = math.log(x) - 1 / (2 * x) - sum(b / (2 * k * x ** (2 * k)) for k, b in enumerate(BERNOULLI, 1))
        return tail + shift
    tail = math.factorial(n - 1) / x**n + math.factorial(n) / (2 * x ** (n + 1))
    tail += sum(
        b * math.factorial(2 * k + n - 1) / (math.factorial(2 * k) * x ** (2 * k + n))
        for k, b in enumerate(BERNOULLI, 1)
    )
    return sign * tail + shift


def spherical_jn_ref(x: float, n: int) -> float:
    """Upward recurrence j_(k+1) = (2k+1)/x j_k - j_(k-1) from j_0 and j_1 (x well away from 0)."""
    a, b = math.sin(x) / x, math.sin(x) / x**2 - math.cos(x) / x
    for k in range(1, n):
        a, b = b, (2 * k + 1) / x * b - a
    return a if n == 0 else b


def clamped_log(z: float) -> float:
    return -100.0 if z <= 0 else max(math.log(z), -100.0)


def huber_ref(x: np.ndarray, y: np.ndarray, delta: float = 1.0) -> float:
    d = np.abs(np.subtract(x, y)).ravel()
    return math.fsum(0.5 * v * v if v < delta else delta * (v - 0.5 * delta) for v in d) / d.size


def cross_entropy_ref(x: np.ndarray, target: np.ndarray) -> float:
    """Rows of x along the last axis; target: probabilities of x's shape or one class per row."""
    rows = x.reshape(-1, x.shape[-1])
    per_row = []
    for i, row in enumerate(rows):
        norm = math.log(math.fsum(math.exp(v) for v in row))
        if target.shape == x.shape:
            t = target.reshape(rows.shape)[i]
            per_row.append(-math.fsum(t[c] * (row[c] - norm) for c in range(row.size)))
        else:
            per_row.append(norm - row[int(target.ravel()[i])])
    return math.fsum(per_row) / len(per_row)


def bce_ref(p: np.ndarray, t: np.ndarray) -> float:
    pb, tb = np.broadcast_arrays(p, t)
    terms = [-(b * clamped_log(a) + (1 - b) * clamped_log(1 - a)) for a, b in zip(pb.ravel(), tb.ravel())]
    return math.fsum(terms) / len(terms)


def sigmoid_ref(x: float) -> float:
    return 1 / (1 + math.exp(-x))


REFERENCE: dict[str, Callable[..., Any]] = {
    # exponents and logarithms
    "square": each(lambda x: x * x),
    "sqrt": each(math.sqrt),
    "exp": each(math.exp),
    "log": each(math.log),
    "log1p": each(math.log1p),
    "expm1": each(math.expm1),
    "log10": each(math.log10),
    "log2": each(math.log2),
    "exp2": each(lambda x: 2.0**x),
    "cbrt": each(lambda x: math.copysign(abs(x) ** (1 / 3), x)),
    "reciprocal": each(lambda x: 1 / x),
    "logaddexp": each(lambda x, y: max(x, y) + math.log1p(math.exp(-abs(x - y)))),
    "logit": each(lambda x: math.log(x / (1 - x))),
    "xlogy": each(lambda x, y: 0.0 if x == 0 else x * math.log(y)),
    # trigonometric
    "sin": each(math.sin),
    "cos": each(math.cos),
    "tan": each(math.tan),
    "asin": each(math.asin),
    "acos": each(math.acos),
    "atan": each(math.atan),
    "atan2": each(math.atan2),
    "hypot": each(math.hypot),
    "sec": each(lambda x: 1 / math.cos(x)),
    "csc": each(lambda x: 1 / math.sin(x)),
    "cot": each(lambda x: math.cos(x) / math.sin(x)),
    "sinc": each(lambda x: 1.0 if x == 0 else math.sin(math.pi * x) / (math.pi * x)),
    "deg2rad": each(math.radians),
    "rad2deg": each(math.degrees),
    "sincos": lambda x: (each(math.sin)(x), each(math.cos)(x)),
    # hyperbolic
    "sinh": each(math.sinh),
    "cosh": each(math.cosh),
    "tanh": each(math.tanh),
    "asinh": each(math.asinh),
    "acosh": each(math.acosh),
    "atanh": each(math.atanh),
    # special
    "erf": each(math.erf),
    "erfc": each(math.erfc),
    "erfinv": each(erfinv_ref),
    "gamma": each(math.gamma),
    "lgamma": each(math.lgamma),
    "digamma": each(lambda x: polygamma_ref(0, x)),
    "polygamma": each(lambda x, n: polygamma_ref(n, x)),
    "spherical_jn": each(spherical_jn_ref),
    # piecewise
    "abs": each(math.fabs),
    "maximum": each(max),
    "minimum": each(min),
    "clip": each(lambda x, lo, hi: min(max(x, lo), hi)),
    "floor": each(math.floor),
    "ceil": each(math.ceil),
    "trunc": each(math.trunc),
    "round": each(lambda x, decimals: round(x, decimals)),  # Python's: halves to even
    "sign": each(lambda x: float((x > 0) - (x < 0))),
    "heaviside": each(lambda x, h: 0.0 if x < 0 else 1.0 if x > 0 else h),
    "mod": each(lambda x, y: x % y),
    "floor_divide": each(lambda x, y: x // y),
    # neural network
    "sigmoid": each(sigmoid_ref),
    "softplus": each(lambda x: math.log1p(math.exp(x))),
    "log_sigmoid": each(lambda x: -math.log1p(math.exp(-x))),
    "relu": each(lambda x: max(x, 0.0)),
    "gelu": each(lambda x: 0.5 * x * math.erfc(-x / math.sqrt(2))),
    "silu": each(lambda x: x * sigmoid_ref(x)),
    "elu": each(lambda x, alpha: x if x > 0 else alpha * math.expm1(x)),
    "leaky_relu": each(lambda x, negative_slope: x if x > 0 else negative_slope * x),
    "softsign": each(lambda x: x / (1 + abs(x))),
    "hardtanh": each(lambda x, min_val=-1.0, max_val=1.0: min(max(x, min_val), max_val)),
    # losses
    "mse": lambda x, y: math.fsum(((np.subtract(x, y)) ** 2).ravel()) / np.broadcast(x, y).size,
    "huber": huber_ref,
    "cross_entropy": cross_entropy_ref,
    "binary_cross_entropy": bce_ref,
}

# Wider than the registry's sample domains (which keep to where each function is smooth), so that
# negative arguments, both branches of a piecewise function and far tails are compared too.
REFERENCE_DOMAIN = {
    "cbrt": (-3.0, 3.0),
    "reciprocal": (-3.0, 3.0),
    "logaddexp": (-50.0, 50.0),
    "logit": (0.001, 0.999),
    "atan2": (-2.0, 2.0),
    "sinc": (-3.0, 3.0),
    "erf": (-5.0, 5.0),
    "erfc": (-4.0, 12.0),
    "erfinv": (-0.999, 0.999),
    "gamma": (-3.5, 6.0),
    "lgamma": (-3.5, 30.0),
    "digamma": (-3.5, 10.0),
    "polygamma": (0.1, 10.0),
    "spherical_jn": (2.0, 12.0),
    "floor": (-3.0, 3.0),
    "ceil": (-3.0, 3.0),
    "trunc": (-3.0, 3.0),
    "round": (-3.0, 3.0),
    "mod": (-3.0, 3.0),
    "floor_divide": (-3.0, 3.0),
    "heaviside": (-1.0, 1.0),
    "gelu": (-8.0, 8.0),
    "silu": (-30.0, 30.0),
    "elu": (-5.0, 5.0),
    "leaky_relu": (-5.0, 5.0),
    "hardtanh": (-3.0, 3.0),
}
# Where the reference itself rounds more (a cube root by pow, a recurrence, a series) or the value
# is near 0 in relative terms; everything else agrees to a few ulp.
REFERENCE_RTOL = {
    "cbrt": 1e-15,
    "spherical_jn": 1e-11,
    "polygamma": 1e-12,
    "digamma": 1e-12,
    "erfinv": 1e-13,
    "erfc": 2e-14,  # far tails (1e-51), where math's and SciPy's erfc differ in the last digits
    "gelu": 2e-14,
}
# lgamma crosses 0 at 1 and 2: there only the absolute error is small.
REFERENCE_ATOL = {"lgamma": 1e-15}
ELEMENTS = 25


def reference_inputs(name: str) -> list[np.ndarray]:
    spec = REGISTRY[name]
    lo, hi = REFERENCE_DOMAIN.get(name, spec.sample_domain)
    rng = np.random.default_rng(sum(map(ord, name)))
    if spec.elementwise:
        return [rng.uniform(lo, hi, size=ELEMENTS) for _ in range(spec.arity[0])]
    shapes = spec.sample_shapes or ((2, 3),) * spec.arity[0]
    return [rng.uniform(lo, hi, size=s) for s in shapes]


def test_every_function_of_these_groups_has_a_reference() -> None:
    ours = {
        name
        for name, spec in REGISTRY.items()
        if spec.group in GROUPS and spec.cls.__module__.startswith("gradcli.")
    }
    assert ours == set(REFERENCE)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_value_matches_an_independent_reference(name: str) -> None:
    spec = REGISTRY[name]
    arrays = reference_inputs(name)
    got = spec(*arrays, **spec.sample_params)
    want = REFERENCE[name](*arrays, **spec.sample_params)
    for g, w in zip(*(v if isinstance(v, tuple) else (v,) for v in (got, want))):
        rtol, atol = REFERENCE_RTOL.get(name, 4e-15), REFERENCE_ATOL.get(name, 1e-300)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=name)


def test_cross_entropy_from_class_indices_matches_the_reference() -> None:
    x = np.random.default_rng(0).normal(size=(4, 5)) * 3
    t = np.array([0.0, 4.0, 2.0, 2.0])
    np.testing.assert_allclose(lookup("cross_entropy")(x, t), cross_entropy_ref(x, t), rtol=1e-14)


def test_cross_entropy_from_one_hot_targets_equals_the_same_classes_as_indices() -> None:
    x = np.random.default_rng(1).normal(size=(3, 4))
    t = np.array([3.0, 0.0, 1.0])
    one_hot = np.eye(4)[t.astype(int)]
    ce = lookup("cross_entropy")
    np.testing.assert_allclose(ce(x, one_hot), ce(x, t), rtol=1e-15)


def test_cross_entropy_along_the_first_axis_is_that_of_the_transpose() -> None:
    x = np.random.default_rng(2).normal(size=(5, 3))
    t = np.array([4.0, 0.0, 2.0])
    ce = lookup("cross_entropy")
    assert float(ce(x, t, axis=0)) == pytest.approx(float(ce(x.T, t)), rel=1e-15)


LOSS_INPUTS = {
    "huber": (np.array([[0.2, 2.7, -0.1], [0.9, -3.0, 0.5]]), np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])),
    "binary_cross_entropy": (
        np.array([[0.2, 0.7, 0.1], [0.9, 0.05, 0.5]]),
        np.array([[1.0, 0.0, 0.0], [0.0, 0.3, 1.0]]),
    ),
    "cross_entropy": (np.array([[0.2, 2.7, -0.1], [0.9, -3.0, 0.5]]), np.array([1.0, 2.0])),
}


def per_sample(name: str, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The loss of each element (each row, for cross_entropy) on its own."""
    if name == "cross_entropy":
        return np.array([cross_entropy_ref(x[i : i + 1], target[i : i + 1]) for i in range(len(x))])
    return each(lambda a, b: REFERENCE[name](np.array(a), np.array(b)))(x, target)


@pytest.mark.parametrize(
    ("reduction", "combine"),
    [("mean", np.mean), ("sum", np.sum), ("none", lambda v: v)],
    ids=["mean", "sum", "none"],
)
@pytest.mark.parametrize("name", sorted(LOSS_INPUTS))
def test_loss_reduction_is_pytorchs(name: str, reduction: str, combine: Callable[[np.ndarray], Any]) -> None:
    x, target = LOSS_INPUTS[name]
    got = lookup(name)(x, target, reduction=reduction)
    np.testing.assert_allclose(got, combine(per_sample(name, x, target)), rtol=1e-14)


# --- values at edge points -----------------------------------------------------------------------------

INF, NAN = math.inf, math.nan
SQRT_PI = math.sqrt(math.pi)

EDGE_VALUES = [
    ("log10", (1000.0,), {}, 3.0),
    ("log10", (0.0,), {}, -INF),
    ("log10", (-1.0,), {}, NAN),
    ("log2", (2.0**-1074,), {}, -1074.0),
    ("exp2", (-1.0,), {}, 0.5),
    ("exp2", (1024.0,), {}, INF),
    ("cbrt", (-8.0,), {}, -2.0),
    ("cbrt", (-INF,), {}, -INF),
    ("reciprocal", (0.0,), {}, INF),
    ("reciprocal", (-4.0,), {}, -0.25),
    ("logaddexp", (1000.0, 1000.0), {}, 1000.0 + math.log(2)),
    ("logaddexp", (-INF, 3.0), {}, 3.0),
    ("logaddexp", (-1000.0, -1000.0), {}, -1000.0 + math.log(2)),
    ("logit", (0.5,), {}, 0.0),
    ("logit", (0.0,), {}, -INF),
    ("logit", (1.0,), {}, INF),
    ("logit", (1e-300,), {}, math.log(1e-300)),
    ("xlogy", (0.0, 0.0), {}, 0.0),
    ("xlogy", (0.0, -1.0), {}, 0.0),
    ("xlogy", (2.0, math.e), {}, 2.0),
    ("xlogy", (1.0, 0.0), {}, -INF),
    ("atan2", (0.0, -1.0), {}, math.pi),
    ("atan2", (-0.0, -1.0), {}, -math.pi),
    ("atan2", (1.0, 0.0), {}, math.pi / 2),
    ("atan2", (0.0, 0.0), {}, 0.0),
    ("atan2", (INF, INF), {}, math.pi / 4),
    ("hypot", (3.0, 4.0), {}, 5.0),
    ("hypot", (1e300, 1e300), {}, math.sqrt(2) * 1e300),
    ("hypot", (INF, NAN), {}, INF),
    ("sec", (0.0,), {}, 1.0),
    ("csc", (math.pi / 2,), {}, 1.0),
    ("csc", (0.0,), {}, INF),
    ("cot", (math.pi / 4,), {}, 1.0),
    ("cot", (0.0,), {}, INF),
    ("sinc", (0.0,), {}, 1.0),
    ("sinc", (0.5,), {}, 2 / math.pi),
    ("sinc", (1e-200,), {}, 1.0),
    ("deg2rad", (180.0,), {}, math.pi),
    ("rad2deg", (-math.pi,), {}, -180.0),
    ("asinh", (-1e300,), {}, -math.asinh(1e300)),
    ("acosh", (1.0,), {}, 0.0),
    ("acosh", (0.5,), {}, NAN),
    ("atanh", (1.0,), {}, INF),
    ("atanh", (-1.0,), {}, -INF),
    ("atanh", (2.0,), {}, NAN),
    ("erf", (0.0,), {}, 0.0),
    ("erf", (INF,), {}, 1.0),
    ("erf", (-INF,), {}, -1.0),
    ("erfc", (10.0,), {}, 2.088487583762545e-45),
    ("erfc", (-INF,), {}, 2.0),
    ("erfinv", (0.0,), {}, 0.0),
    ("erfinv", (1.0,), {}, INF),
    ("erfinv", (-1.0,), {}, -INF),
    ("erfinv", (1.5,), {}, NAN),
    ("erfinv", (math.erf(0.5),), {}, 0.5),
    ("gamma", (5.0,), {}, 24.0),
    ("gamma", (0.5,), {}, SQRT_PI),
    ("gamma", (-1.5,), {}, 4 * SQRT_PI / 3),
    ("gamma", (0.0,), {}, INF),
    ("gamma", (-2.0,), {}, NAN),
    ("gamma", (172.0,), {}, INF),
    ("lgamma", (1000.0,), {}, math.lgamma(1000.0)),
    ("lgamma", (-0.5,), {}, math.log(2 * SQRT_PI)),
    ("lgamma", (0.0,), {}, INF),
    ("lgamma", (-3.0,), {}, INF),
    ("digamma", (1.0,), {}, -EULER_GAMMA),
    ("digamma", (0.5,), {}, -EULER_GAMMA - 2 * math.log(2)),
    ("digamma", (0.0,), {}, -INF),
    ("digamma", (-2.0,), {}, NAN),
    ("polygamma", (1.0,), {"n": 1}, math.pi**2 / 6),
    ("polygamma", (1.0,), {"n": 2}, -2 * ZETA3),
    ("polygamma", (1.0,), {"n": 0}, -EULER_GAMMA),
    ("spherical_jn", (0.0,), {}, 1.0),
    ("spherical_jn", (0.0,), {"n": 1}, 0.0),
    ("spherical_jn", (math.pi,), {}, math.sin(math.pi) / math.pi),
    ("floor", (-0.5,), {}, -1.0),
    ("floor", (2.0,), {}, 2.0),
    ("ceil", (-0.5,), {}, 0.0),
    ("trunc", (-1.7,), {}, -1.0),
    ("trunc", (INF,), {}, INF),
    ("round", (2.5,), {}, 2.0),
    ("round", (3.5,), {}, 4.0),
    ("round", (-0.5,), {}, 0.0),
    ("round", (1234.5,), {"decimals": -2}, 1200.0),
    ("round", (0.125,), {"decimals": 2}, 0.12),
    ("sign", (-3.0,), {}, -1.0),
    ("sign", (0.0,), {}, 0.0),
    ("sign", (-INF,), {}, -1.0),
    ("sign", (NAN,), {}, NAN),
    ("heaviside", (0.0, 0.5), {}, 0.5),
    ("heaviside", (-1e-300, 0.5), {}, 0.0),
    ("heaviside", (INF, 0.5), {}, 1.0),
    ("mod", (-1.0, 3.0), {}, 2.0),
    ("mod", (1.0, -3.0), {}, -2.0),
    ("mod", (5.5, 2.0), {}, 1.5),
    ("mod", (6.0, 3.0), {}, 0.0),
    ("floor_divide", (-1.0, 3.0), {}, -1.0),
    ("floor_divide", (7.0, 2.0), {}, 3.0),
    ("floor_divide", (7.0, -2.0), {}, -4.0),
    ("gelu", (0.0,), {}, 0.0),
    ("gelu", (1.0,), {}, 0.8413447460685429),
    ("gelu", (-1.0,), {}, -0.15865525393145707),
    ("gelu", (-40.0,), {}, -40.0 * 0.5 * math.erfc(40.0 / math.sqrt(2))),
    ("silu", (0.0,), {}, 0.0),
    ("silu", (-1000.0,), {}, -0.0),
    ("silu", (1000.0,), {}, 1000.0),
    ("elu", (-INF,), {}, -1.0),
    ("elu", (-INF,), {"alpha": 2.0}, -2.0),
    ("elu", (1000.0,), {}, 1000.0),
    ("leaky_relu", (-2.0,), {}, -0.02),
    ("leaky_relu", (-2.0,), {"negative_slope": 0.5}, -1.0),
    ("softsign", (-3.0,), {}, -0.75),
    ("softsign", (INF,), {}, NAN),
    ("hardtanh", (5.0,), {}, 1.0),
    ("hardtanh", (-5.0,), {"min_val": -2.0}, -2.0),
    ("binary_cross_entropy", (0.0, 1.0), {}, 100.0),
    ("binary_cross_entropy", (1.0, 0.0), {}, 100.0),
    ("binary_cross_entropy", (0.0, 0.0), {}, 0.0),
    ("binary_cross_entropy", (1.0, 1.0), {}, 0.0),
    ("binary_cross_entropy", (1e-50, 1.0), {}, 100.0),
    ("binary_cross_entropy", (0.5, 0.25), {}, math.log(2)),
    ("huber", (3.0, 0.0), {}, 2.5),
    ("huber", (3.0, 0.0), {"delta": 2.0}, 4.0),
    ("huber", (0.5, 0.0), {}, 0.125),
    ("cross_entropy", (np.array([0.0, 0.0]), np.array(1.0)), {}, math.log(2)),
    ("cross_entropy", (np.array([1000.0, 0.0]), np.array(1.0)), {}, 1000.0),
]


@pytest.mark.parametrize(("name", "args", "params", "want"), EDGE_VALUES, ids=repr)
def test_value_at_an_edge_point(
    name: str, args: tuple[Any, ...], params: dict[str, Any], want: float
) -> None:
    with np.errstate(all="ignore"):
        got = lookup(name)(*(np.asarray(a, dtype=float) for a in args), **params)
    np.testing.assert_allclose(float(got), want, rtol=2e-15, atol=1e-300)


@pytest.mark.parametrize(
    ("name", "args", "sign"),
    [("round", (-0.5,), -1.0), ("ceil", (-0.5,), -1.0), ("trunc", (-0.5,), -1.0), ("mod", (-3.0, 3.0), 1.0)],
    ids=repr,
)
def test_zeros_keep_the_sign_ieee_gives_them(name: str, args: tuple[float, ...], sign: float) -> None:
    got = float(lookup(name)(*(np.asarray(a) for a in args)))
    assert got == 0.0 and math.copysign(1.0, got) == sign


# --- derivatives where the function is not differentiable: the documented conventions -------------------


def gradients(name: str, args: tuple[float, ...], params: dict[str, Any] | None = None) -> list[float]:
    xs = [Variable(np.asarray(a, dtype=float)) for a in args]
    with np.errstate(all="ignore"):
        y = lookup(name)(*xs, **(params or {}))
        return [float(g.data) for g in grad(y.sum() if y.ndim else y, xs)]


def second_gradients(name: str, args: tuple[float, ...], params: dict[str, Any] | None = None) -> list[float]:
    """d/dx_k of the sum of the first derivatives (every entry of the Hessian, summed by row)."""
    xs = [Variable(np.asarray(a, dtype=float)) for a in args]
    y = lookup(name)(*xs, **(params or {}))
    first = grad(y, xs, create_graph=True)
    total = first[0]
    for g in first[1:]:
        total = total + g
    return [float(g.data) for g in grad(total, xs)]


ZERO_GRADIENT_AT_JUMPS = [
    ("floor", (1.0,), 1.0),
    ("floor", (1.0 - 1e-12,), 0.0),
    ("ceil", (1.0,), 1.0),
    ("ceil", (1.0 + 1e-12,), 2.0),
    ("trunc", (-1.0,), -1.0),
    ("trunc", (0.0,), 0.0),
    ("round", (0.5,), 0.0),
    ("round", (1.5,), 2.0),
    ("round", (0.5 + 1e-12,), 1.0),
    ("sign", (0.0,), 0.0),
    ("sign", (1e-300,), 1.0),
    ("floor_divide", (3.0, 1.5), 2.0),
    ("floor_divide", (3.0 - 1e-12, 1.5), 1.0),
]


@pytest.mark.parametrize(("name", "args", "value"), ZERO_GRADIENT_AT_JUMPS, ids=repr)
def test_piecewise_constant_function_has_zero_gradient_of_every_order_at_and_beside_its_jumps(
    name: str, args: tuple[float, ...], value: float
) -> None:
    assert float(lookup(name)(*(np.asarray(a) for a in args))) == value
    assert gradients(name, args) == [0.0] * len(args)
    assert second_gradients(name, args) == [0.0] * len(args)
    assert "zero gradient" in REGISTRY[name].doc


CONVENTIONS = [
    # (function, inputs, options, gradient with respect to each input)
    ("heaviside", (0.0, 0.3), {}, [0.0, 1.0]),
    ("heaviside", (1e-300, 0.3), {}, [0.0, 0.0]),
    ("heaviside", (-2.0, 0.3), {}, [0.0, 0.0]),
    ("mod", (3.0, 1.5), {}, [1.0, -2.0]),  # at a jump: d/dy = -floor(x/y), d/dx = 1
    ("mod", (3.0 - 1e-12, 1.5), {}, [1.0, -1.0]),
    ("mod", (-1.0, 3.0), {}, [1.0, 1.0]),
    ("abs", (0.0,), {}, [0.0]),
    ("relu", (0.0,), {}, [0.0]),
    ("elu", (0.0,), {"alpha": 2.0}, [2.0]),
    ("elu", (-1.0,), {"alpha": 2.0}, [2.0 * math.exp(-1.0)]),
    ("elu", (1000.0,), {}, [1.0]),
    ("leaky_relu", (0.0,), {"negative_slope": 0.1}, [0.1]),
    ("leaky_relu", (1e-300,), {"negative_slope": 0.1}, [1.0]),
    ("hardtanh", (1.0,), {}, [0.0]),
    ("hardtanh", (-1.0,), {}, [0.0]),
    ("hardtanh", (0.999,), {}, [1.0]),
    ("hardtanh", (2.5,), {"max_val": 3.0}, [1.0]),
    ("softsign", (0.0,), {}, [1.0]),
    ("hypot", (0.0, 0.0), {}, [0.0, 0.0]),
    ("hypot", (3.0, -4.0), {}, [0.6, -0.8]),
    ("atan2", (0.0, 0.0), {}, [NAN, NAN]),
    ("atan2", (1.0, -1.0), {}, [-0.5, -0.5]),
    ("xlogy", (0.0, 0.0), {}, [0.0, 0.0]),
    ("xlogy", (0.0, -1.0), {}, [0.0, 0.0]),
    ("xlogy", (0.0, 2.0), {}, [math.log(2.0), 0.0]),
    ("xlogy", (3.0, 2.0), {}, [math.log(2.0), 1.5]),
    ("cbrt", (0.0,), {}, [INF]),
    ("reciprocal", (0.0,), {}, [-INF]),
    ("erfinv", (1.0,), {}, [INF]),
    ("atanh", (1.0,), {}, [INF]),
    ("sinc", (0.0,), {}, [0.0]),
    ("sinc", (1.0,), {}, [-1.0]),
    ("logit", (0.5,), {}, [4.0]),
    ("logaddexp", (1000.0, 1000.0), {}, [0.5, 0.5]),
    ("logaddexp", (-1000.0, 1000.0), {}, [0.0, 1.0]),
    ("gelu", (0.0,), {}, [0.5]),
    ("silu", (0.0,), {}, [0.5]),
    ("silu", (-1000.0,), {}, [0.0]),
    ("huber", (1.0, 0.0), {}, [1.0, -1.0]),  # |x - y| = delta: both branches give delta*sign
    ("huber", (3.0, 0.0), {}, [1.0, -1.0]),
    ("huber", (-0.25, 0.0), {}, [-0.25, 0.25]),
    ("binary_cross_entropy", (0.5, 1.0), {}, [-2.0, 0.0]),
    ("binary_cross_entropy", (0.0, 1.0), {}, [0.0, 100.0]),  # the log is clamped there: 0, not -inf
    ("binary_cross_entropy", (1.0, 0.0), {}, [0.0, -100.0]),
    ("binary_cross_entropy", (0.0, 0.0), {}, [1.0, 100.0]),
]


@pytest.mark.parametrize(("name", "args", "params", "want"), CONVENTIONS, ids=repr)
def test_gradient_follows_the_documented_convention(
    name: str, args: tuple[float, ...], params: dict[str, Any], want: list[float]
) -> None:
    np.testing.assert_allclose(gradients(name, args, params), want, rtol=1e-15, atol=1e-300)


FINITE_AT_EXTREMES = [
    ("softsign", (-1e308,)),
    ("silu", (-1000.0,)),
    ("silu", (1000.0,)),
    ("gelu", (-1000.0,)),
    ("elu", (1000.0,)),
    ("logaddexp", (-1000.0, 1000.0)),
    ("asinh", (1e300,)),
    ("acosh", (1e300,)),
    ("hypot", (0.0, 0.0)),
    ("hypot", (1e300, 1e300)),
    ("xlogy", (0.0, 0.0)),
    ("binary_cross_entropy", (0.0, 1.0)),
    ("binary_cross_entropy", (1.0, 1.0)),
    ("sinc", (0.0,)),
    ("spherical_jn", (0.0,)),
]


@pytest.mark.parametrize(("name", "args"), FINITE_AT_EXTREMES, ids=repr)
def test_value_and_gradient_at_extreme_inputs_are_finite_without_floating_point_errors(
    name: str, args: tuple[float, ...]
) -> None:
    with np.errstate(all="raise", under="ignore"):
        xs = [Variable(np.asarray(a)) for a in args]
        y = lookup(name)(*xs)
        gs = grad(y, xs)
    assert np.isfinite(y.data) and all(np.isfinite(g.data) for g in gs)


def test_functions_with_a_documented_convention_say_so_in_their_doc() -> None:
    phrases = {
        "heaviside": "h at x == 0",
        "sign": "x == 0",
        "mod": "d/dy = -floor(x/y)",
        "elu": "elu'(0) = alpha",
        "leaky_relu": "leaky_relu'(0) = negative_slope",
        "hardtanh": "0 at the bounds",
        "hypot": "0 at (0, 0)",
        "atan2": "NaN at (0, 0)",
        "xlogy": "x == 0",
        "cbrt": "cbrt'(0) = inf",
        "round": "halves to even",
        "digamma": "digamma(0) = -inf",
        "binary_cross_entropy": "clamped at -100",
    }
    for name, phrase in phrases.items():
        assert phrase in REGISTRY[name].doc, name


def test_cross_entropy_gradient_from_class_indices_is_softmax_minus_one_hot_over_the_batch() -> None:
    x0 = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]])
    x, t = Variable(x0), Variable(np.array([0.0, 2.0]))
    gx, gt = grad(lookup("cross_entropy")(x, t), [x, t])
    p = np.exp(x0) / np.exp(x0).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(gx.data, (p - np.eye(3)[[0, 2]]) / 2, rtol=1e-14)
    assert np.array_equal(gt.data, [0.0, 0.0])  # class indices get no gradient


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ([0.0, 3.0], "from 0 to 2"),
        ([0.0, 1.5], "whole numbers"),
        ([-1.0, 0.0], "from 0 to 2"),
        ([0.0, 1.0, 2.0], "class indices"),
    ],
)
def test_cross_entropy_refuses_targets_that_are_neither_classes_nor_probabilities(
    target: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        lookup("cross_entropy")(np.zeros((2, 3)), np.array(target))


def test_binary_cross_entropy_refuses_numbers_that_are_not_probabilities() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lookup("binary_cross_entropy")(np.array([0.5, 1.5]), np.array([1.0, 0.0]))


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("polygamma", {"n": -1}, "whole number >= 0"),
        ("polygamma", {"n": 1.5}, "whole number >= 0"),
        ("spherical_jn", {"n": -2}, "whole number >= 0"),
        ("round", {"decimals": 0.5}, "whole number"),
        ("huber", {"delta": 0.0}, "delta must be > 0"),
        ("cross_entropy", {"reduction": "average"}, "'mean', 'sum' or 'none'"),
    ],
)
def test_options_out_of_their_range_are_refused(name: str, params: dict[str, Any], message: str) -> None:
    spec = lookup(name)
    with pytest.raises(ValueError, match=message):
        spec(*(np.ones((2, 3)) * 0.5 for _ in range(spec.arity[0])), **params)


# --- derivatives of higher order at known points --------------------------------------------------------


def derivatives_at(name: str, x: float, order: int, params: dict[str, Any] | None = None) -> list[float]:
    v = Variable(np.asarray(x))
    y = lookup(name)(v, **(params or {}))
    out = []
    for _ in range(order):
        (y,) = grad(y, [v], create_graph=True)
        out.append(float(y.data))
    return out


PHI0 = 1 / math.sqrt(2 * math.pi)
D_ERF = 2 / SQRT_PI * math.exp(-0.09)

HIGHER = [
    # sinc(x) = sum (-1)^k (pi x)^(2k) / (2k+1)!
    ("sinc", 0.0, {}, [0.0, -(math.pi**2) / 3, 0.0, math.pi**4 / 5]),
    ("spherical_jn", 0.0, {}, [0.0, -1 / 3, 0.0, 1 / 5]),
    ("spherical_jn", 0.0, {"n": 1}, [1 / 3, 0.0, -1 / 5]),
    ("lgamma", 2.5, {}, [polygamma_ref(0, 2.5), polygamma_ref(1, 2.5), polygamma_ref(2, 2.5)]),
    ("digamma", 1.0, {}, [math.pi**2 / 6, -2 * ZETA3, math.pi**4 / 15]),
    ("gamma", 1.0, {}, [-EULER_GAMMA, EULER_GAMMA**2 + math.pi**2 / 6]),
    ("polygamma", 0.7, {"n": 2}, [polygamma_ref(3, 0.7), polygamma_ref(4, 0.7)]),
    ("erf", 0.3, {}, [D_ERF, -0.6 * D_ERF, (4 * 0.09 - 2) * D_ERF]),
    ("erfc", 0.3, {}, [-D_ERF, 0.6 * D_ERF]),
    ("erfinv", 0.0, {}, [SQRT_PI / 2, 0.0, math.pi**1.5 / 4]),
    ("gelu", 0.0, {}, [0.5, 2 * PHI0, 0.0, -4 * PHI0]),
    ("atanh", 0.5, {}, [4 / 3, 1 / 0.5625, 3.5 / 0.421875]),
    ("logit", 0.5, {}, [4.0, 0.0, 32.0]),
    ("cot", math.pi / 2, {}, [-1.0, 0.0, -2.0]),
]


@pytest.mark.parametrize(("name", "x", "params", "want"), HIGHER, ids=repr)
def test_higher_derivatives_at_known_points(
    name: str, x: float, params: dict[str, Any], want: list[float]
) -> None:
    np.testing.assert_allclose(derivatives_at(name, x, len(want), params), want, rtol=1e-12, atol=1e-14)


# --- aliases ------------------------------------------------------------------------------------------------

ALIAS_TARGETS = {
    "ln": "log",
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "arctan2": "atan2",
    "arcsinh": "asinh",
    "arccosh": "acosh",
    "arctanh": "atanh",
    "fabs": "abs",
    "gammaln": "lgamma",
    "psi": "digamma",
}


@pytest.mark.parametrize(("alias", "target"), sorted(ALIAS_TARGETS.items()))
def test_alias_stands_for_its_function_in_expressions(alias: str, target: str) -> None:
    assert ALIASES[alias] == target
    assert lookup(alias) is REGISTRY[target]
    spec = REGISTRY[target]
    args = ", ".join(spec.inputs)
    lo, hi = spec.sample_domain
    values = {name: lo + (hi - lo) * (k + 1) / 3 for k, name in enumerate(spec.inputs)}
    via_alias = parse(f"{alias}({args})").run(values).outputs[0].data
    assert via_alias == parse(f"{target}({args})").run(values).outputs[0].data


# --- what a plain evaluation imports ------------------------------------------------------------------


def modules_imported_by(*args: str) -> set[str]:
    """Every module a real ``python -m gradcli ARGS`` imports (``-X importtime`` lists them)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gradcli", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


HEAVY = ("scipy", "matplotlib", "dask", "distributed", "zarr")


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in HEAVY}


@pytest.mark.parametrize(
    "args",
    [
        ("eval", "x*y", "--x", "2", "--y", "3"),
        (
            "eval",
            "log10(x) + atan2(y, x) + floor(x) + mod(x, y) + silu(x) + hypot(x, y)",
            "--x",
            "2",
            "--y",
            "3",
        ),
        ("functions",),
    ],
    ids=["x*y", "numpy functions", "functions"],
)
def test_evaluation_without_special_functions_imports_no_scipy_matplotlib_or_dask(
    args: tuple[str, ...],
) -> None:
    assert heavy(modules_imported_by(*args)) == set()


def test_a_special_function_imports_scipy_when_it_runs() -> None:
    """The other side of the check above: the import is seen when it happens."""
    assert "scipy.special" in modules_imported_by("eval", "erf(x)", "--x", "0.5")


# --- through the command line --------------------------------------------------------------------------


def eval_json(*args: str) -> Any:
    rc, out, err = invoke("eval", *args, "--json")
    assert rc == 0, err
    return json.loads(out)


def test_cli_erf() -> None:
    assert eval_json("erf(x)", "--x", "0.5") == {
        "value": math.erf(0.5),
        "grad": {"x": pytest.approx(2 / SQRT_PI * math.exp(-0.25), rel=1e-15)},
    }


def test_cli_piecewise_functions_add_no_gradient_and_mod_passes_one() -> None:
    assert eval_json("floor(x) + round(x) + sign(x) + mod(x, 2)", "--x", "3.5") == {
        "value": 3.0 + 4.0 + 1.0 + 1.5,
        "grad": {"x": 1.0},
    }


def test_cli_arctan2_takes_y_first() -> None:
    got = eval_json("arctan2(y, x)", "--y", "1", "--x", "-1")
    assert got["value"] == pytest.approx(3 * math.pi / 4, rel=1e-15)
    assert got["grad"] == {"y": pytest.approx(-0.5, rel=1e-15), "x": pytest.approx(-0.5, rel=1e-15)}


def test_cli_cross_entropy_from_class_indices() -> None:
    got = eval_json("cross_entropy(x, t)", "--x", "[[1, 2, 3], [1, 0, -1]]", "--t", "[0, 2]")
    assert got["value"] == pytest.approx(
        cross_entropy_ref(np.array([[1, 2, 3], [1, 0, -1.0]]), np.array([0, 2]))
    )
    assert got["grad"]["t"] == [0.0, 0.0]


def test_cli_hessian_of_sinc_at_zero() -> None:
    rc, out, err = invoke("hessian", "sinc(x)", "--x", "0", "--json")
    assert rc == 0, err
    assert json.loads(out)["hessian"] == {"x": {"x": pytest.approx(-(math.pi**2) / 3, rel=1e-14)}}


@pytest.mark.parametrize(
    ("expr", "inputs", "message"),
    [
        ("polygamma(x, n=-1)", ("--x", "1"), "polygamma of shapes (): n must be a whole number >= 0, got -1"),
        (
            "cross_entropy(x, t)",
            ("--x", "[[1, 2]]", "--t", "[2]"),
            "class indices must be whole numbers from 0 to 1",
        ),
        ("binary_cross_entropy(p, t)", ("--p", "2", "--t", "1"), "p must be probabilities in [0, 1]"),
    ],
)
def test_cli_reports_bad_arguments_of_these_functions_in_one_error_line(
    expr: str, inputs: tuple[str, ...], message: str
) -> None:
    rc, out, err = invoke("eval", expr, *inputs)
    assert rc == 1 and out == ""
    first = err.splitlines()[0]
    assert first.startswith("error: ") and message in first, err
    assert "Traceback" not in err


@pytest.mark.parametrize("n", [149, 150, 1000, 1_000_000])
def test_spherical_jn_of_a_high_order_is_scipys(n: int) -> None:
    # The series term for subnormal x, (2n+1)!!, was an exact integer for every element: no float
    # past n = 150 ("int too large to convert to float"), minutes of work at n = 10**6.
    from scipy.special import spherical_jn as scipy_jn

    rc, out, err = invoke("eval", f"spherical_jn(x, n={n})", "--x", "[200, 1e-200]", "--json")
    assert (rc, err) == (0, "")
    data = json.loads(out)
    assert data["value"] == [float(scipy_jn(n, 200.0)), 0.0]
    up, down = scipy_jn(n + 1, 200.0), scipy_jn(n - 1, 200.0)
    expected = (n * down - (n + 1) * up) / (2 * n + 1)
    assert data["grad"]["x"][0] == pytest.approx(expected, rel=1e-12, abs=1e-300)
