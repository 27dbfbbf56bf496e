"""Reductions over all elements or along an axis, and the normalisations built on them."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Function, Sum, Variable, keepdims_shape, unreduce
from .elementwise import Exp
from .registry import register

AXIS = {"sample_shapes": ((2, 3),), "sample_params": {"axis": 1}}

register(
    "sum",
    doc="sum of the elements, over all axes or along axis",
    rule="d/dx sum(x) = 1 for every element",
    **AXIS,
)(Sum)


@register("mean", rule="d/dx mean(x) = 1/n for every element", **AXIS)
class Mean(Function):
    """mean of the elements, over all axes or along axis"""

    def __init__(self, axis: int | None = None) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        return x.mean(axis=self.axis)

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0]
        n = x.size // max(self.output().size, 1)
        return unreduce(gy, x.shape, self.axis) / float(n)


class _Extreme(Function):
    """Shared backward of max/min: ties split the gradient evenly (PyTorch)."""

    def __init__(self, axis: int | None = None) -> None:
        self.axis = axis

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0]
        y = self.output().data.reshape(keepdims_shape(x.shape, self.axis))
        hit = x.data == y
        share = hit / hit.sum(axis=self.axis, keepdims=True)
        return unreduce(gy, x.shape, self.axis) * Variable(share, requires_grad=False)


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
class Norm(Function):
    """Euclidean (2-)norm of all elements or along axis; norm'(0) = 0 (PyTorch)"""

    def __init__(self, axis: int | None = None) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        return np.sqrt((x * x).sum(axis=self.axis))

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0]
        y = self.output()
        zero = y.data == 0
        if zero.any():  # the minimum-norm subgradient at 0 is 0: divide by 1 there, times x = 0
            y = y + Variable(zero * 1.0, requires_grad=False)
        return x * unreduce(gy / y, x.shape, self.axis)


@register("logsumexp", rule="d/dx logsumexp(x) = softmax(x)", **AXIS)
class LogSumExp(Function):
    """log(sum(exp(x))) over all axes or along axis, without overflow"""

    def __init__(self, axis: int | None = None) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        m = x.max(axis=self.axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        y = np.log(np.exp(x - m).sum(axis=self.axis, keepdims=True)) + m
        return y.sum(axis=self.axis)  # drop the kept axes

    def backward(self, gy: Variable) -> Variable:
        x = self.inputs[0]
        y = unreduce(self.output(), x.shape, self.axis)
        return unreduce(gy, x.shape, self.axis) * Exp()(x - y)


SOFT = {"sample_shapes": ((2, 3),)}


@register("softmax", rule="d/dx softmax(x) = y*(gy - sum(gy*y))", **SOFT)
class Softmax(Function):
    """exp(x) / sum(exp(x)) along axis (default the last), without overflow"""

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        z = np.exp(x - x.max(axis=self.axis, keepdims=True))
        return z / z.sum(axis=self.axis, keepdims=True)

    def backward(self, gy: Variable) -> Variable:
        y = self.output()
        gx = y * gy
        return gx - y * gx.sum(axis=self.axis, keepdims=True)


@register("log_softmax", rule="d/dx log_softmax(x) = gy - softmax(x)*sum(gy)", **SOFT)
class LogSoftmax(Function):
    """x - logsumexp(x) along axis (default the last), without overflow"""

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        m = x.max(axis=self.axis, keepdims=True)
        return x - m - np.log(np.exp(x - m).sum(axis=self.axis, keepdims=True))

    def backward(self, gy: Variable) -> Variable:
        return gy - Exp()(self.output()) * gy.sum(axis=self.axis, keepdims=True)
