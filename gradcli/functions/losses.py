"""Loss functions: scalar measures of the distance between two arrays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend
from ..engine import Function, data_of, keepdims_shape
from .elementwise import log, whole_number
from .registry import lookup, register


@register("mse", rule="d/dx mse(x, y) = 2*(x-y)/n, d/dy = -2*(x-y)/n", group="losses")
class MeanSquaredError(Function):
    """mean of (x - y)**2 over all elements (broadcasting)"""

    raw_vjp = True
    uses_outputs = False

    def forward(self, x: Any, y: Any) -> Any:
        d = x - y
        return (d * d).sum() / d.size

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        x, y = xs
        d = x - y
        g = gys[0] * d * (2.0 / d.size)
        return g, -g


class _Reduced(Function):
    """A loss: one value per element (or per sample), then PyTorch's ``reduction``: their mean
    (the default), their sum, or 'none' (the values themselves)."""

    raw_vjp = True
    uses_outputs = False

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{self.name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def reduce(self, losses: Any) -> Any:
        self.n = losses.size
        if self.reduction == "none":
            return losses
        total = losses.sum()
        return total / self.n if self.reduction == "mean" else total

    def spread(self, gy: Any) -> Any:
        """The output's gradient as a factor on each value's derivative."""
        return gy / float(self.n) if self.reduction == "mean" else gy


@register(
    "huber",
    rule="d/dx huber(x, y) = x - y where |x - y| < delta, else delta*sign(x - y); d/dy = -d/dx",
    group="losses",
)
class Huber(_Reduced):
    """mean of 0.5*d**2 where |d| < delta, else delta*(|d| - delta/2), d = x - y (PyTorch's huber_loss)"""

    def __init__(self, delta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if not delta > 0:
            raise ValueError(f"huber: delta must be > 0, got {delta!r}")
        self.delta = delta

    def forward(self, x: Any, y: Any) -> Any:
        d = np.abs(x - y)
        return self.reduce(np.where(d < self.delta, 0.5 * d * d, self.delta * (d - 0.5 * self.delta)))

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        x, y = xs
        d = x - y
        inside = np.abs(data_of(d)) < self.delta
        g = self.spread(gys[0]) * (d * inside + np.where(inside, 0.0, self.delta * np.sign(data_of(d))))
        return g, -g


@register(
    "cross_entropy",
    rule="d/dx = softmax(x)*sum(target) - target (one-hot for class indices), d/dtarget = -log_softmax(x)",
    group="losses",
    sample_shapes=((2, 3), (2, 3)),
)
class CrossEntropy(_Reduced):
    """-sum(target*log_softmax(x)) along axis, mean over samples; target: probabilities or class indices"""

    def __init__(self, axis: int = -1, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.axis = axis

    def forward(self, x: Any, target: Any) -> Any:
        if x.ndim == 0:
            raise ValueError("cross_entropy: x needs an axis of class scores, got a single number")
        try:
            self.ax = range(x.ndim)[whole_number("cross_entropy", "axis", self.axis)]
        except IndexError:
            raise ValueError(
                f"cross_entropy: axis {self.axis} is out of range for x of shape {x.shape}"
            ) from None
        logp = lookup("log_softmax")(x, axis=self.ax)
        if target.shape == x.shape:  # class probabilities (or one-hot rows)
            self.one_hot = None
            return self.reduce(-(target * logp).sum(axis=self.ax))
        # Each sample's class picked by comparison with every class number (no indexing, which
        # Dask and GPU arrays do not share with NumPy): where() keeps the picked value exactly.
        along = tuple(n if a == self.ax else 1 for a, n in enumerate(x.shape))
        classes = backend.namespace(x).arange(x.shape[self.ax], dtype=np.float64).reshape(along)
        hit = self._class_indices(target, x.shape) == classes
        self.one_hot = hit * 1.0
        return self.reduce(-np.where(hit, logp, 0.0).sum(axis=self.ax))

    def _class_indices(self, target: Any, shape: tuple[int, ...]) -> Any:
        """Whole numbers 0 .. C-1, one per sample, with the class axis put back (length 1)."""
        want = shape[: self.ax] + shape[self.ax + 1 :]
        if target.shape != want:
            raise ValueError(
                f"cross_entropy: target must have x's shape {shape} (class probabilities) or "
                f"{want} (class indices), got {target.shape}"
            )
        classes = shape[self.ax]
        target = backend.checked(
            target,
            lambda t: (t != np.floor(t)) | (t < 0) | (t >= classes),
            f"cross_entropy: class indices must be whole numbers from 0 to {classes - 1}",
        )
        return np.expand_dims(target, self.ax)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        x, target = xs
        g = self.spread(gys[0])
        if self.reduction == "none":
            g = g.reshape(keepdims_shape(x.shape, self.ax))
        p = lookup("softmax")(x, axis=self.ax)
        if self.one_hot is not None:  # class indices: constants, no gradient
            return g * (p - self.one_hot), None
        gx = g * (p * target.sum(axis=self.ax, keepdims=True) - target)
        return gx, g * -lookup("log_softmax")(x, axis=self.ax)


_LOG_FLOOR = -100.0
_CLAMPED_BELOW = math.exp(_LOG_FLOOR)


def _clamped_log(z: Any) -> Any:
    """max(log(z), -100) for z >= 0 (PyTorch's binary cross-entropy): finite at z = 0."""
    low = data_of(z) <= _CLAMPED_BELOW
    if not backend.maybe_any(low):
        return log(z)
    return log(z + low * 1.0) * (1.0 - low) + _LOG_FLOOR * low


def _clamped_log_grad(z: Any) -> Any:
    """d/dz of :func:`_clamped_log`: 1/z, and 0 where the log is clamped."""
    low = data_of(z) <= _CLAMPED_BELOW
    return (1.0 - low) / (z + low * 1.0)


@register(
    "binary_cross_entropy",
    rule="d/dp bce(p, t) = (p - t)/(p*(1 - p)), d/dt = log(1 - p) - log(p); 0 from a clamped log",
    group="losses",
    sample_domain=(0.1, 0.9),
)
class BinaryCrossEntropy(_Reduced):
    """mean of -(t*log(p) + (1-t)*log(1-p)), p in [0, 1], each log clamped at -100 (PyTorch)"""

    def forward(self, p: Any, target: Any) -> Any:
        p = backend.checked(
            p,
            lambda v: (v < 0) | (v > 1),
            "binary_cross_entropy: p must be probabilities in [0, 1] (e.g. sigmoid(x))",
        )
        return self.reduce(-(target * _clamped_log(p) + (1.0 - target) * _clamped_log(1.0 - p)))

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        p, target = xs
        g = self.spread(gys[0])
        q = 1.0 - p
        gp = g * ((1.0 - target) * _clamped_log_grad(q) - target * _clamped_log_grad(p))
        return gp, g * (_clamped_log(q) - _clamped_log(p))
