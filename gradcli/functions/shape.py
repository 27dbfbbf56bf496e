"""Shape changes: the same numbers moved, copied or cut; each rule is another shape change (of
the gradient), so it runs on arrays and on Variables alike and differentiates again.

Options follow NumPy's names and meanings (``axis``, ``reps``, ``repeats``, ``source``...). The
functions that rules of other modules call (``swapaxes``, ``moveaxis``, ``flip``, ``concat``)
dispatch like every registered function: Variables in, graph nodes out; arrays in, arrays out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Function, Reshape, Transpose, Variable, scatter
from .registry import REGISTRY, register

SHAPE: dict[str, Any] = {"group": "shape"}

register(
    "transpose",
    doc="x with its axes reversed, or permuted by axes",
    rule="d/dx transpose(x) = transpose back",
    sample_shapes=((2, 3),),
    **SHAPE,
)(Transpose)
register(
    "reshape",
    doc="x with a new shape of the same size (e.g. reshape(x, [3, 2]))",
    rule="d/dx reshape(x) = reshape back",
    sample_shapes=((2, 3),),
    sample_params={"shape": (3, 2)},
    **SHAPE,
)(Reshape)


class _ShapeOp(Function):
    raw_vjp = True
    uses_outputs = False


def axis_option(axis: Any) -> Any:
    """An axis option as NumPy takes it: None, an int, or a tuple (the language gives lists)."""
    return tuple(axis) if isinstance(axis, list) else axis


def along(axis: int, ndim: int, index: Any) -> tuple[Any, ...]:
    """The subscript that takes ``index`` along ``axis`` and everything along the other axes."""
    return (slice(None),) * (axis % ndim) + (index,)


def concat_parts(parts: tuple[Any, ...] | list[Any], axis: int) -> Any:
    """``concat`` of arrays or Variables (a graph node if any part is a Variable)."""
    if any(isinstance(p, Variable) for p in parts):
        return Concat(axis)(*parts)
    return np.concatenate(parts, axis=axis)


@register(
    "split",
    doc="x cut into sections along axis: a function with several outputs (a, b = split(x))",
    rule="d/dx split(x) = the outputs' gradients joined back",
    n_outputs=2,
    sample_shapes=((4, 3),),
    **SHAPE,
)
class Split(_ShapeOp):
    """x cut into sections along axis: a function with several outputs (a, b, c = split(x, 3))

    ``sections`` is a number of equal pieces, or the indices where to cut ([1, 3]).
    """

    def __init__(self, sections: int | list[int] = 2, axis: int = 0) -> None:
        self.sections = list(sections) if isinstance(sections, (list, tuple)) else int(sections)
        self.axis = axis

    def forward(self, x: Any) -> tuple[Any, ...]:
        # Slices at np.split's cut points (which NumPy computes the same way): Dask has no split.
        n = x.shape[self.axis]
        if isinstance(self.sections, int):
            if self.sections < 1:
                raise ValueError(f"split: sections must be >= 1 (or a list of indices), got {self.sections}")
            if n % self.sections:
                raise ValueError("array split does not result in an equal division")
            cuts = [n // self.sections * i for i in range(1, self.sections)]
        else:
            cuts = self.sections
        ends = [0, *cuts, n]
        return tuple(x[along(self.axis, x.ndim, slice(a, b))] for a, b in zip(ends, ends[1:]))

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        return concat_parts(gys, self.axis)


@register(
    "concat",
    doc="the inputs joined along an existing axis (any number of arrays)",
    rule="d/dx_i concat(...) = the slice of gy that came from x_i",
    sample_shapes=((2, 3), (2, 3)),
    **SHAPE,
)
class Concat(_ShapeOp):
    def __init__(self, axis: int = 0) -> None:
        self.axis = axis

    def forward(self, *xs: Any) -> Any:
        return np.concatenate(xs, axis=self.axis)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,) = gys
        ends = np.cumsum([x.shape[self.axis] for x in xs])
        starts = [0, *ends[:-1]]
        return tuple(gy[along(self.axis, gy.ndim, slice(int(a), int(b)))] for a, b in zip(starts, ends))


@register(
    "stack",
    doc="the inputs (of one shape) joined along a new axis: stack(x, y) has shape (2, *x.shape)",
    rule="d/dx_i stack(...) = gy[i] along axis",
    sample_shapes=((2, 3), (2, 3)),
    **SHAPE,
)
class Stack(_ShapeOp):
    def __init__(self, axis: int = 0) -> None:
        self.axis = axis

    def forward(self, *xs: Any) -> Any:
        return np.stack(xs, axis=self.axis)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,) = gys
        return tuple(gy[along(self.axis, gy.ndim, i)] for i in range(len(xs)))


class _Reshaping(_ShapeOp):
    """Same numbers in the same order, another shape: the gradient is reshaped back."""

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        return gys[0].reshape(xs[0].shape)


@register(
    "squeeze",
    rule="d/dx squeeze(x) = reshape back",
    sample_shapes=((2, 1, 3),),
    **SHAPE,
)
class Squeeze(_Reshaping):
    """x without its axes of length 1 (all of them, or those named by axis)"""

    def __init__(self, axis: int | tuple[int, ...] | None = None) -> None:
        self.axis = axis_option(axis)

    def forward(self, x: Any) -> Any:
        return np.squeeze(x, self.axis)


@register(
    "expand_dims",
    rule="d/dx expand_dims(x) = reshape back",
    sample_shapes=((2, 3),),
    sample_params={"axis": 1},
    **SHAPE,
)
class ExpandDims(_Reshaping):
    """x with a new axis of length 1 at position axis (default 0; a tuple adds several)"""

    def __init__(self, axis: int | tuple[int, ...] = 0) -> None:
        self.axis = axis_option(axis)

    def forward(self, x: Any) -> Any:
        return np.expand_dims(x, self.axis)


@register("ravel", rule="d/dx ravel(x) = reshape back", sample_shapes=((2, 3),), **SHAPE)
class Ravel(_Reshaping):
    """x flattened to one axis, in row-major (C) order"""

    def forward(self, x: Any) -> Any:
        return np.ravel(x)


@register(
    "flip",
    rule="d/dx flip(x) = flip(gy) along the same axes",
    sample_shapes=((2, 3),),
    sample_params={"axis": 1},
    **SHAPE,
)
class Flip(_ShapeOp):
    """x with the order of its elements reversed along axis (all axes when None)"""

    def __init__(self, axis: int | tuple[int, ...] | None = None) -> None:
        self.axis = axis_option(axis)

    def forward(self, x: Any) -> Any:
        return np.flip(x, self.axis)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        return flip(gys[0], axis=self.axis)


@register(
    "roll",
    rule="d/dx roll(x, shift) = roll(gy, -shift)",
    sample_shapes=((2, 3),),
    sample_params={"shift": 1, "axis": 1},
    **SHAPE,
)
class Roll(_ShapeOp):
    """x with its elements shifted by shift along axis, wrapping around (flattened when axis is None)"""

    def __init__(self, shift: int | tuple[int, ...], axis: int | tuple[int, ...] | None = None) -> None:
        self.shift, self.axis = axis_option(shift), axis_option(axis)

    def forward(self, x: Any) -> Any:
        return np.roll(x, self.shift, self.axis)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        back = tuple(-s for s in self.shift) if isinstance(self.shift, tuple) else -self.shift
        return roll(gys[0], shift=back, axis=self.axis)


def interleave(first: tuple[int, ...], second: tuple[int, ...]) -> tuple[int, ...]:
    """(a0, b0, a1, b1, ...): a shape whose axes pair up the axes of two others."""
    return tuple(n for pair in zip(first, second) for n in pair)


@register(
    "tile",
    rule="d/dx tile(x, reps) = the sum of gy over the copies",
    sample_shapes=((2, 3),),
    sample_params={"reps": (2, 1)},
    **SHAPE,
)
class Tile(_ShapeOp):
    """x repeated reps times along each axis, as a whole (NumPy's tile)"""

    def __init__(self, reps: int | tuple[int, ...]) -> None:
        self.reps = tuple(reps) if isinstance(reps, (list, tuple)) else (reps,)

    def forward(self, x: Any) -> Any:
        d = max(x.ndim, len(self.reps))
        # Both padded to d axes with leading 1s, as NumPy does.
        self.x_shape = (1,) * (d - x.ndim) + x.shape
        self.counts = (1,) * (d - len(self.reps)) + self.reps
        return np.tile(x, self.reps)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        # The output's axis k is (copy, element) pairs: split each in two and sum out the copies.
        g = gys[0].reshape(interleave(self.counts, self.x_shape))
        return g.sum(axis=tuple(range(0, g.ndim, 2))).reshape(xs[0].shape)


@register(
    "repeat",
    rule="d/dx repeat(x, repeats) = the sum of gy over each element's copies",
    sample_shapes=((2, 3),),
    sample_params={"repeats": 2, "axis": 1},
    **SHAPE,
)
class Repeat(_ShapeOp):
    """each element of x repeated (repeats: a count, or one per element) along axis (flattened when None)"""

    def __init__(self, repeats: int | tuple[int, ...], axis: int | None = None) -> None:
        self.repeats, self.axis = axis_option(repeats), axis

    def forward(self, x: Any) -> Any:
        lead = x.reshape(-1) if self.axis is None else np.moveaxis(x, self.axis, 0)  # (checks the axis)
        counts = np.asarray(self.repeats)
        if counts.ndim > 1 or counts.size not in (1, len(lead)):
            raise ValueError(
                f"repeats must be one count or a list of {len(lead)} (one per element along the axis), "
                f"not {self.repeats!r}"
            )
        return np.repeat(x, self.repeats, self.axis)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,), (x,) = gys, xs
        shape = (x.size,) if self.axis is None else x.shape
        axis = 0 if self.axis is None else self.axis % x.ndim
        if np.ndim(self.repeats) == 0:  # r copies in a row: an axis of r to sum out
            r = int(self.repeats)
            g = gy.reshape(shape[:axis] + (shape[axis], r) + shape[axis + 1 :]).sum(axis=axis + 1)
        else:
            source = np.repeat(np.arange(shape[axis]), self.repeats)
            g = scatter(gy, along(axis, len(shape), source), shape)
        return g.reshape(x.shape)


@register(
    "swapaxes",
    rule="d/dx swapaxes(x) = swapaxes(gy) back",
    sample_shapes=((2, 3, 4),),
    sample_params={"axis1": 0, "axis2": 2},
    **SHAPE,
)
class Swapaxes(_ShapeOp):
    """x with axes axis1 and axis2 interchanged"""

    def __init__(self, axis1: int, axis2: int) -> None:
        self.axis1, self.axis2 = axis1, axis2

    def forward(self, x: Any) -> Any:
        return np.swapaxes(x, self.axis1, self.axis2)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        return swapaxes(gys[0], axis1=self.axis1, axis2=self.axis2)


@register(
    "moveaxis",
    rule="d/dx moveaxis(x, source, destination) = moveaxis(gy, destination, source)",
    sample_shapes=((2, 3, 4),),
    sample_params={"source": 0, "destination": -1},
    **SHAPE,
)
class Moveaxis(_ShapeOp):
    """x with the axes source moved to the positions destination, the others kept in order"""

    def __init__(self, source: int | tuple[int, ...], destination: int | tuple[int, ...]) -> None:
        self.source, self.destination = axis_option(source), axis_option(destination)

    def forward(self, x: Any) -> Any:
        return np.moveaxis(x, self.source, self.destination)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        return moveaxis(gys[0], source=self.destination, destination=self.source)


flip, roll, swapaxes, moveaxis = (REGISTRY[n] for n in ("flip", "roll", "swapaxes", "moveaxis"))


def swap_last(x: Any) -> Any:
    """x with its last two axes interchanged (the matrix transpose of a stack of matrices)."""
    return swapaxes(x, axis1=-1, axis2=-2)
