"""Reductions over all elements or along axes, cumulative sums and products, and the
normalisations built on them.

Every reduction takes ``axis`` (None: all axes, an int, or a tuple of ints) and ``keepdims`` as
NumPy's do. Each rule is written with operators, ``unreduce`` (spread a reduced gradient back
over the input) and registered functions, so it runs on arrays and on Variables alike. Where a
function is not differentiable the value chosen is PyTorch's, written into its doc.

Products stay exact where elements are zero: their rules multiply the other elements instead of
dividing the product by one of them (see :func:`products_of_others` and :func:`linear_scan`).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from .. import backend
from ..backend import is_lazy, maybe_any, namespace
from ..engine import Function, Sum, Variable, data_of, keepdims_shape, unreduce
from .elementwise import absolute, exp, sqrt
from .linalg import eigh
from .registry import REGISTRY, register
from .shape import along, axis_option, concat_parts, flip, moveaxis, swap_last

REDUCTIONS: dict[str, Any] = {"group": "reductions"}
AXIS: dict[str, Any] = {"sample_shapes": ((2, 3),), "sample_params": {"axis": 1}, **REDUCTIONS}

register(
    "sum",
    doc="sum of the elements, over all axes or along axis",
    rule="d/dx sum(x) = 1 for every element",
    **AXIS,
)(Sum)


class _Reduction(Function):
    """A reduction along ``axis`` (all axes when None), its rule run on arrays or Variables."""

    raw_vjp = True

    def __init__(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> None:
        self.axis = axis_option(axis)
        self.keepdims = keepdims

    def spread(self, g: Any, x: Any) -> Any:
        """``g``, shaped like the output, spread over the input's shape."""
        return unreduce(g, x.shape, self.axis, self.keepdims)

    def kept(self, y: Any, x: Any) -> Any:
        """The output with the reduced axes kept as length 1, to broadcast against the input."""
        return y.reshape(keepdims_shape(x.shape, self.axis))


def normalized_axes(axis: int | tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """An int or a tuple of axes, as a tuple of non-negative axes (NumPy has checked them)."""
    return tuple(a % ndim for a in (axis if isinstance(axis, tuple) else (axis,)))


def _ones_at_zeros(y: Any) -> Any:
    """y with 1 in place of 0. A norm (and std) at 0 has a kink whose subgradient of minimum
    norm is 0: dividing by 1 there, times the 0 that the numerator is there, gives it."""
    zero = data_of(y) == 0
    return y + zero * 1.0 if maybe_any(zero) else y


def _ties(values: Any, extreme: Any, axis: Any) -> Any:
    """1/k at each of the k elements equal to ``extreme`` along ``axis``, 0 elsewhere: tied
    extremes share a gradient evenly (PyTorch). A constant (a mask), for either mode."""
    hit = values == extreme
    return hit / hit.sum(axis=axis, keepdims=True)


@register("mean", rule="d/dx mean(x) = 1/n for every element", **AXIS)
class Mean(_Reduction):
    """mean of the elements, over all axes or along axis"""

    uses_outputs = False

    def forward(self, x: Any) -> Any:
        y = x.mean(axis=self.axis, keepdims=self.keepdims)
        self.n = x.size // max(y.size, 1)
        return y

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (x,) = xs
        # Divided before it is spread: one number, not every element (nor, on Dask, one block of
        # the whole size).
        return self.spread(gys[0] / float(self.n), x)


class _Extreme(_Reduction):
    """Shared rule of max/min: ties split the gradient evenly (PyTorch)."""

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        x, y = data_of(xs[0]), data_of(ys[0])
        return self.spread(gys[0], x) * _ties(x, self.kept(y, x), self.axis)


@register("max", rule="d/dx max(x) = 1 at the maximum (ties split evenly)", smooth=False, **AXIS)
class Max(_Extreme):
    """largest element, over all axes or along axis; tied maxima share the gradient evenly"""

    def forward(self, x: Any) -> Any:
        return x.max(axis=self.axis, keepdims=self.keepdims)


@register("min", rule="d/dx min(x) = 1 at the minimum (ties split evenly)", smooth=False, **AXIS)
class Min(_Extreme):
    """smallest element, over all axes or along axis; tied minima share the gradient evenly"""

    def forward(self, x: Any) -> Any:
        return x.min(axis=self.axis, keepdims=self.keepdims)


#: The orders of a matrix norm (numpy.linalg.norm's), as the language writes them.
_MATRIX_ORDERS = ("'fro'", "'nuc'", "1", "-1", "2", "-2", "inf", "-inf")


def _check_norm_order(ord: Any, ndim: int, matrix_axes: Any) -> None:
    """An order that numpy.linalg.norm refuses for this shape, said in the language's words."""
    if isinstance(matrix_axes, tuple) and len(matrix_axes) == 2:
        if ord not in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
            raise ValueError(
                f"ord={_written(ord)} is not an order of a matrix norm: take {', '.join(_MATRIX_ORDERS)}"
            )
    elif matrix_axes is None and ndim > 2:
        raise ValueError(
            f"ord={_written(ord)} of an array of {ndim} axes needs axis: one axis for a vector norm, "
            "two for a matrix norm"
        )
    elif isinstance(ord, str):
        raise ValueError(
            f"ord={_written(ord)} is not an order of a vector norm: take a number (inf, 1, 2, 0.5...)"
        )


def _written(ord: Any) -> str:
    return repr(ord) if isinstance(ord, str) else f"{ord:g}" if isinstance(ord, float) else str(ord)


@register(
    "norm",
    rule="d/dx norm(x) = x/norm(x) (2-norm, 0 at 0); sign(x) at the extremes (1, inf); u v^T (matrix 2, nuc)",
    **AXIS,
)
class Norm(_Reduction):
    """norm as numpy.linalg.norm (ord 2, 1, inf, p; matrices 'fro', 'nuc', 2...); norm'(0) = 0, ties split"""

    def __init__(
        self,
        ord: float | str | None = None,
        axis: int | tuple[int, ...] | None = None,
        keepdims: bool = False,
    ) -> None:
        super().__init__(axis, keepdims)
        self.ord = ord

    def forward(self, x: Any) -> Any:
        matrix_axes = (0, 1) if self.axis is None and x.ndim == 2 else self.axis
        if self.ord is not None:
            _check_norm_order(self.ord, x.ndim, matrix_axes)
        if self.ord is None:  # numpy.linalg.norm's sum, in the order NumPy's sum adds (it uses dot)
            y = np.sqrt((x * x).sum(axis=self.axis, keepdims=self.keepdims))
        elif self.ord in (2, -2, "nuc") and isinstance(matrix_axes, tuple) and len(matrix_axes) == 2:
            # Singular values, matrix by matrix, as NumPy does (Dask's norm takes one matrix only).
            m = np.moveaxis(x, matrix_axes, (-2, -1))
            y = backend.gufunc(functools.partial(np.linalg.norm, ord=self.ord, axis=(-2, -1)), "(m,n)->()", m)
            if self.keepdims:
                y = y.reshape(keepdims_shape(x.shape, matrix_axes))
        else:  # NumPy checks ord against the shape
            y = np.linalg.norm(x, self.ord, self.axis, self.keepdims)  # type: ignore[arg-type]
        if self.axis is None:
            self.axes = tuple(range(x.ndim))
            self.matrix = self.ord is not None and x.ndim == 2
        else:
            self.axes = normalized_axes(self.axis, x.ndim)
            self.matrix = len(self.axes) == 2
        return y

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,), (x,), (y,) = gys, xs, ys
        p = self.ord
        if p is None or p == "fro" or (p == 2 and not self.matrix):
            return x * self.spread(gy / _ones_at_zeros(y), x)
        if p == 0:  # the number of nonzero elements: piecewise constant
            return None
        sign = np.sign(data_of(x))
        if self.matrix:
            if p in (1, -1, math.inf, -math.inf):
                return self.spread(gy, x) * sign * self._extreme_sums(np.abs(data_of(x)))
            return self._singular(gy, x)
        if p == 1:
            return self.spread(gy, x) * sign
        if math.isinf(float(p)):
            return self.spread(gy, x) * sign * _ties(np.abs(data_of(x)), self.kept(data_of(y), x), self.axes)
        q = float(p) - 1.0
        return self.spread(gy / _ones_at_zeros(y) ** q, x) * sign * absolute(x) ** q

    def _extreme_sums(self, a: Any) -> Any:
        """Matrix ord 1, -1 (column sums of |x|) and inf, -inf (row sums): the share of the
        gradient of each element, 1/k in the k tied extreme columns (rows), 0 elsewhere."""
        rows, cols = self.axes
        summed, among = (rows, cols) if self.ord in (1, -1) else (cols, rows)
        sums = a.sum(axis=summed, keepdims=True)
        pick = sums.max if self.ord > 0 else sums.min  # type: ignore[operator]
        return _ties(sums, pick(axis=among, keepdims=True), among)

    def _singular(self, gy: Any, x: Any) -> Any:
        """Matrix ord 2, -2 (largest, smallest singular value) and 'nuc' (their sum): sum of
        u_i v_i^T over the singular values taken. They come from eigh of the smaller Gram
        matrix, so the rule differentiates again where the singular values are distinct;
        a zero singular value contributes 0 (the minimum-norm subgradient)."""
        rows, cols = self.axes
        m = moveaxis(x, source=(rows, cols), destination=(-2, -1))
        wide = m.shape[-2] < m.shape[-1]
        lam, vec = eigh(m @ swap_last(m) if wide else swap_last(m) @ m)
        sigma = np.sqrt(np.maximum(data_of(lam), 0.0))
        k = sigma.shape[-1]
        keep = sigma > sigma.max(axis=-1, keepdims=True) * (max(m.shape[-2:]) * np.finfo(np.float64).eps)
        if self.ord == "nuc":
            taken = 1.0
        else:  # eigh's values ascend
            taken = (namespace(sigma).arange(k) == (k - 1 if self.ord == 2 else 0)) * 1.0
        weight = taken * keep / sqrt(lam * keep + (1.0 - keep))
        scaled = vec * weight.reshape(weight.shape[:-1] + (1, k))
        projector = scaled @ swap_last(vec)
        g = projector @ m if wide else m @ projector
        return moveaxis(g * gy.reshape(m.shape[:-2] + (1, 1)), source=(-2, -1), destination=(rows, cols))


@register("logsumexp", rule="d/dx logsumexp(x) = softmax(x)", **AXIS)
class LogSumExp(_Reduction):
    """log(sum(exp(x))) over all axes or along axis, without overflow"""

    def forward(self, x: Any) -> Any:
        m = x.max(axis=self.axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        y = np.log(np.exp(x - m).sum(axis=self.axis, keepdims=True)) + m
        return y if self.keepdims else y.sum(axis=self.axis)  # the sum drops the kept axes

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (x,), (out,) = xs, ys
        return self.spread(gys[0], x) * exp(x - self.spread(out, x))


@register(
    "prod",
    rule="d/dx prod(x) = the product of the other elements (exact with zeros)",
    sample_shapes=((2, 3),),
    sample_params={"axis": 1},
    **REDUCTIONS,
)
class Prod(_Reduction):
    """product of the elements, over all axes or along axis; exact where elements are zero"""

    def forward(self, x: Any) -> Any:
        return x.prod(axis=self.axis, keepdims=self.keepdims)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (x,), (out,) = xs, ys
        if maybe_any(data_of(x) == 0):
            return self.spread(gys[0], x) * products_of_others(x, self.axis)
        # No zeros: prod/x is the product of the others, here and nearby (so at every order).
        return self.spread(gys[0] * out, x) / x


class _Moment(_Reduction):
    """var and std: ddof is subtracted from the count, as in NumPy (1 for the sample variance)."""

    n: int  # elements per reduced slice, set by forward

    def __init__(
        self, axis: int | tuple[int, ...] | None = None, ddof: float = 0, keepdims: bool = False
    ) -> None:
        super().__init__(axis, keepdims)
        self.ddof = ddof

    def centred(self, x: Any) -> Any:
        """(x - mean(x)) / (n - ddof), differentiable; inf (with NumPy's warning) if n <= ddof."""
        per_dof = float(np.divide(1.0, self.n - self.ddof))
        return (x - mean(x, axis=self.axis, keepdims=True)) * per_dof


@register(
    "var",
    rule="d/dx var(x) = 2*(x - mean(x))/(n - ddof)",
    sample_shapes=((2, 3),),
    sample_params={"axis": 1, "ddof": 1},
    **REDUCTIONS,
)
class Var(_Moment):
    """variance: mean squared deviation from the mean, divided by n - ddof (ddof=1: sample variance)"""

    uses_outputs = False

    def forward(self, x: Any) -> Any:
        y = x.var(axis=self.axis, ddof=self.ddof, keepdims=self.keepdims)
        self.n = x.size // max(y.size, 1)
        return y

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (x,) = xs
        return self.spread(gys[0], x) * self.centred(x) * 2.0


@register(
    "std",
    rule="d/dx std(x) = (x - mean(x))/((n - ddof)*std(x)) (0 where std(x) = 0)",
    sample_shapes=((3, 2),),
    sample_params={"axis": 0, "ddof": 1},
    **REDUCTIONS,
)
class Std(_Moment):
    """standard deviation, sqrt(var(x, ddof)); std'(x) = 0 where all elements are equal (as norm'(0))"""

    def forward(self, x: Any) -> Any:
        y = x.std(axis=self.axis, ddof=self.ddof, keepdims=self.keepdims)
        self.n = x.size // max(y.size, 1)
        return y

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (x,), (y,) = xs, ys
        return self.spread(gys[0] / _ones_at_zeros(y), x) * self.centred(x)


class _Cumulative(Function):
    """A running sum or product along axis; with axis None, over the flattened input (NumPy)."""

    raw_vjp = True

    def __init__(self, axis: int | None = None) -> None:
        self.axis = axis

    def lined_up(self, x: Any) -> tuple[Any, int]:
        """The input as the forward saw it (flattened when axis is None) and the axis."""
        return (x.reshape(-1), 0) if self.axis is None else (x, self.axis)


@register(
    "cumsum",
    rule="d/dx cumsum(x) = gy summed from each element to the end",
    sample_shapes=((2, 3),),
    sample_params={"axis": 1},
    **REDUCTIONS,
)
class Cumsum(_Cumulative):
    """running sum along axis (of the flattened x when axis is None)"""

    uses_outputs = False

    def forward(self, x: Any) -> Any:
        return np.cumsum(x, axis=self.axis)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (x,) = xs
        _, axis = self.lined_up(x)
        return _sum_to_end(gys[0], axis).reshape(x.shape)


def _sum_to_end(g: Any, axis: int) -> Any:
    """At each position, the sum of g from there to the end of axis."""
    return flip(cumsum(flip(g, axis=axis), axis=axis), axis=axis)


@register(
    "cumprod",
    rule="d/dx_j cumprod(x)_i = the product of x_0..x_i without x_j (exact with zeros)",
    sample_shapes=((2, 3),),
    sample_params={"axis": 1},
    **REDUCTIONS,
)
class Cumprod(_Cumulative):
    """running product along axis (of the flattened x when axis is None); exact where elements are zero"""

    def forward(self, x: Any) -> Any:
        return np.cumprod(x, axis=self.axis)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,), (x,), (y,) = gys, xs, ys
        line, axis = self.lined_up(x)
        if not maybe_any(data_of(x) == 0):  # y_i / x_j is the product without x_j, here and nearby
            return (_sum_to_end(gy * y, axis) / line).reshape(x.shape)
        # d/dx_j = (x_0...x_(j-1)) * h_j with h_j = gy_j + x_(j+1) * h_(j+1): a backward scan.
        before = _shifted(y, axis, 1.0, later=True)
        return (before * linear_scan(_shifted(line, axis, 0.0, later=False), gy, axis, True)).reshape(x.shape)


def _shifted(v: Any, axis: int, fill: float, later: bool) -> Any:
    """v moved one place along axis: to later positions (v_(i-1) at i) or to earlier ones
    (v_(i+1) at i), ``fill`` in the place left empty."""
    n, ndim = v.shape[axis], v.ndim
    pad = np.full_like(data_of(v), fill, shape=keepdims_shape(v.shape, axis))
    if later:
        return concat_parts([pad, v[along(axis, ndim, slice(0, n - 1))]], axis)
    return concat_parts([v[along(axis, ndim, slice(1, n))], pad], axis)


def products_of_others(x: Any, axis: int | tuple[int, ...] | None = None) -> Any:
    """For each element of x, the product of the other elements along axis (all axes when None),
    without dividing: exact with zeros, and differentiable again (it is made of cumprods)."""
    axes = tuple(range(x.ndim)) if axis is None else normalized_axes(axis, x.ndim)
    ends = tuple(range(-len(axes), 0))
    moved = moveaxis(x, source=axes, destination=ends)
    line = moved.reshape(moved.shape[: x.ndim - len(axes)] + (-1,))
    before = cumprod(_shifted(line, -1, 1.0, later=True), axis=-1)
    after = flip(cumprod(flip(_shifted(line, -1, 1.0, later=False), axis=-1), axis=-1), axis=-1)
    return moveaxis((before * after).reshape(moved.shape), source=ends, destination=axes)


def linear_scan(a: Any, b: Any, axis: int, reverse: bool = False) -> Any:
    """s_i = a_i * s_(i-1) + b_i along axis (s_(i+1) if reverse), with s = 0 before the start:
    the recurrence behind the gradients of running products. On arrays or Variables."""
    if isinstance(a, Variable) or isinstance(b, Variable):
        return LinearScan(axis, reverse)(a, b)
    return _scan_arrays(a, b, axis, reverse)


def _scan_arrays(a: Any, b: Any, axis: int, reverse: bool) -> Any:
    """Hillis-Steele: log2(n) whole-array steps, each composing every element with the one
    ``step`` before it, instead of n steps of a Python loop."""
    a, b = (np.moveaxis(v, axis, -1) for v in np.broadcast_arrays(a, b))
    if reverse:
        a, b = a[..., ::-1], b[..., ::-1]
    a, s = a.copy(), b.copy()
    step, n = 1, s.shape[-1]
    while step < n:
        s[..., step:] = a[..., step:] * s[..., :-step] + s[..., step:]
        a[..., step:] = a[..., step:] * a[..., :-step]
        step *= 2
    if reverse:
        s = s[..., ::-1]
    s = np.moveaxis(s, -1, axis)
    return s if is_lazy(s) else np.ascontiguousarray(s)  # a Dask array has no memory layout


class LinearScan(Function):
    """The recurrence of :func:`linear_scan` as a graph node. Its rule is the same recurrence run
    the other way (the adjoint), so it differentiates to any order."""

    raw_vjp = True

    def __init__(self, axis: int, reverse: bool) -> None:
        self.axis, self.reverse = axis, reverse

    def forward(self, a: Any, b: Any) -> Any:
        return _scan_arrays(a, b, self.axis, self.reverse)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gs,), (a, _), (s,) = gys, xs, ys
        # s_i = a_i*s_(i-1) + b_i: g_i = gs_i + a_(i+1)*g_(i+1), d/db_i = g_i, d/da_i = g_i*s_(i-1).
        forward = not self.reverse
        g = linear_scan(_shifted(a, self.axis, 0.0, later=not forward), gs, self.axis, forward)
        return g * _shifted(s, self.axis, 0.0, later=forward), g


mean, cumsum, cumprod = (REGISTRY[n] for n in ("mean", "cumsum", "cumprod"))


SOFT: dict[str, Any] = {"sample_shapes": ((2, 3),), **REDUCTIONS}


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
