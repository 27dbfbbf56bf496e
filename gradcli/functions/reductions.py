"""Reductions over all elements or along an axis, and the normalisations built on them.

Each rule is written with operators, ``unreduce`` (spread a reduced gradient back over the
input) and registered functions, so it runs on arrays and on Variables alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Function, Sum, data_of, keepdims_shape, unreduce
from .elementwise import exp
from .registry import register

REDUCTIONS = {"group": "reductions"}
AXIS = {"sample_shapes": ((2, 3),), "sample_params": {"axis": 1}, **REDUCTIONS}

register(
    "sum",
    doc="sum of the elements, over all axes or along axis",
    rule="d/dx sum(x) = 1 for every element",
    **AXIS,
)(Sum)


class _Reduction(Function):
    """A reduction along ``axis`` (all axes when None), its rule run on arrays or Variables."""

    raw_vjp = True

    def __init__(self, axis: int | None = None) -> None:
        self.axis = axis


@register("mean", rule="d/dx mean(x) = 1/n for every element", **AXIS)
class Mean(_Reduction):
    """mean of the elements, over all axes or along axis"""

    uses_outputs = False

    def forward(self, x: Any) -> Any:
        y = x.mean(axis=self.axis)
        self.n = x.size // max(y.size, 1)
        return y

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (x,) = xs
        return unreduce(gys[0], x.shape, self.axis) / float(self.n)


class _Extreme(_Reduction):
    """Shared rule of max/min: ties split the gradient evenly (PyTorch)."""

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        x, y = data_of(xs[0]), data_of(ys[0])
        hit = x == y.reshape(keepdims_shape(x.shape, self.axis))
        share = hit / hit.sum(axis=self.axis, keepdims=True)
        return unreduce(gys[0], x.shape, self.axis) * share


@register("max", rule="d/dx max(x) = 1 at the maximum (ties split evenly)", smooth=False, **AXIS)
class Max(_Extreme):
    """largest element, over all axes or along axis; tied maxima share the gradient evenly"""

    def forward(self, x: Any) -> Any:
        return x.max(axis=self.axis)


@register("min", rule="d/dx min(x) = 1 at the minimum (ties split evenly)", smooth=False, **AXIS)
class Min(_Extreme):
    """smallest element, over all axes or along axis; tied minima share the gradient evenly"""

    def forward(self, x: Any) -> Any:
        return x.min(axis=self.axis)


@register("norm", rule="d/dx norm(x) = x / norm(x) (0 at x = 0)", **AXIS)
class Norm(_Reduction):
    """Euclidean (2-)norm of all elements or along axis; norm'(0) = 0 (PyTorch)"""

    def forward(self, x: Any) -> Any:
        return np.sqrt((x * x).sum(axis=self.axis))

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (x,), (y,) = xs, ys
        # The minimum-norm subgradient at 0 is 0: divide by 1 there, times x = 0.
        y = y + (data_of(y) == 0) * 1.0
        return x * unreduce(gys[0] / y, x.shape, self.axis)


@register("logsumexp", rule="d/dx logsumexp(x) = softmax(x)", **AXIS)
class LogSumExp(_Reduction):
    """log(sum(exp(x))) over all axes or along axis, without overflow"""

    def forward(self, x: Any) -> Any:
        m = x.max(axis=self.axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        y = np.log(np.exp(x - m).sum(axis=self.axis, keepdims=True)) + m
        return y.sum(axis=self.axis)  # drop the kept axes

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (x,), (out,) = xs, ys
        y = unreduce(out, x.shape, self.axis)
        return unreduce(gys[0], x.shape, self.axis) * exp(x - y)


SOFT = {"sample_shapes": ((2, 3),), **REDUCTIONS}


class _Normalisation(Function):
    raw_vjp = True

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis


@register("softmax", rule="d/dx softmax(x) = y*(gy - sum(gy*y))", **SOFT)
class Softmax(_Normalisation):
    """exp(x) / sum(exp(x)) along axis (default the last), without overflow"""

    def forward(self, x: Any) -> Any:
        z = np.exp(x - x.max(axis=self.axis, keepdims=True))
        return z / z.sum(axis=self.axis, keepdims=True)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (y,) = ys
        gx = y * gys[0]
        return gx - y * gx.sum(axis=self.axis, keepdims=True)


@register("log_softmax", rule="d/dx log_softmax(x) = gy - softmax(x)*sum(gy)", **SOFT)
class LogSoftmax(_Normalisation):
    """x - logsumexp(x) along axis (default the last), without overflow"""

    def forward(self, x: Any) -> Any:
        m = x.max(axis=self.axis, keepdims=True)
        return x - m - np.log(np.exp(x - m).sum(axis=self.axis, keepdims=True))

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,), (out,) = gys, ys
        return gy - exp(out) * gy.sum(axis=self.axis, keepdims=True)
