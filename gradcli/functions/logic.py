"""Comparisons, logical operators and ``where``: what ``<``, ``and``, ``not`` and ``a if c else b``
call. NumPy's names and truth: results are 1.0 or 0.0, any nonzero value (NaN too) is true.

Comparisons and logical operators are piecewise constant: zero gradient of every order (rule
None), also at their jumps. ``where`` passes each element's gradient to the branch it took and an
exact zero to the other, and is marked ``masks_gradient``: from there on in the backward pass
that zero stays zero through local derivatives that are infinite or NaN, so the untaken branch
cannot poison the gradient (``where(x > 0, sqrt(x), 0)`` at x = -1 has gradient 0, not NaN).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..engine import data_of
from .registry import Spec, binary, define, unary

LOGIC: dict[str, Any] = {"group": "logic", "smooth": False}


def _as_float(test: Callable[..., Any]) -> Callable[..., Any]:
    """A NumPy test (boolean result) as a function giving 1.0 and 0.0."""

    def forward(*xs: Any) -> Any:
        return test(*xs).astype(np.float64)

    return forward


def _test(name: str, test: Callable[..., Any], doc: str) -> Spec:
    """A test of two arrays (broadcasting): 1.0 where it holds, else 0.0; zero gradient."""
    return binary(name, _as_float(test), (None, None), ("0", "0"), doc=f"{doc}; zero gradient", **LOGIC)


less = _test("less", np.less, "x < y: 1.0 where true, else 0.0")
less_equal = _test("less_equal", np.less_equal, "x <= y: 1.0 where true, else 0.0")
greater = _test("greater", np.greater, "x > y: 1.0 where true, else 0.0")
greater_equal = _test("greater_equal", np.greater_equal, "x >= y: 1.0 where true, else 0.0")
equal = _test("equal", np.equal, "x == y: 1.0 where true, else 0.0")
not_equal = _test("not_equal", np.not_equal, "x != y: 1.0 where true (NaN differs from all), else 0.0")
logical_and = _test("logical_and", np.logical_and, "x and y: 1.0 where both are nonzero, else 0.0")
logical_or = _test("logical_or", np.logical_or, "x or y: 1.0 where either is nonzero, else 0.0")
logical_not = unary(
    "logical_not",
    _as_float(np.logical_not),
    None,
    "0",
    doc="not x: 1.0 where x is 0, else 0.0; zero gradient",
    **LOGIC,
)


def _taken(cond: Any) -> Any:
    """Where ``cond`` picks its first branch, as a constant mask (the mask has no derivative)."""
    return data_of(cond) != 0


# Each branch's rule is ``where`` again, so that a derivative of any order keeps the mask and the
# exact zeros of the untaken branch.
where: Spec
where = define(
    "where",
    np.where,
    [
        None,
        lambda gy, cond: where(_taken(cond), gy, 0.0),
        lambda gy, cond: where(_taken(cond), 0.0, gy),
    ],
    ["0", "cond != 0", "cond == 0"],
    inputs=("cond", "x", "y"),
    rule="d/dx = 1 where cond, else 0; d/dy = 1 where not cond, else 0; the other branch gets exactly 0",
    doc="x where cond is nonzero, else y (also: x if cond else y); the untaken branch gets gradient 0",
    masks_gradient=True,
    **LOGIC,
)
