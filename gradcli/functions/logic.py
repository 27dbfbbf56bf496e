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


def _comparison(name: str, test: Callable[..., Any], symbol: str) -> Spec:
    return binary(
        name,
        _as_float(test),
        (None, None),
        ("0", "0"),
        doc=f"x {symbol} y: 1.0 where true, else 0.0; zero gradient",
        **LOGIC,
    )


less = _comparison("less", np.less, "<")
less_equal = _comparison("less_equal", np.less_equal, "<=")
greater = _comparison("greater", np.greater, ">")
greater_equal = _comparison("greater_equal", np.greater_equal, ">=")
equal = _comparison("equal", np.equal, "==")
not_equal = _comparison("not_equal", np.not_equal, "!=")

logical_and = binary(
    "logical_and",
    _as_float(np.logical_and),
    (None, None),
    ("0", "0"),
    doc="x and y: 1.0 where both are nonzero, else 0.0; zero gradient",
    **LOGIC,
)
logical_or = binary(
    "logical_or",
    _as_float(np.logical_or),
    (None, None),
    ("0", "0"),
    doc="x or y: 1.0 where either is nonzero, else 0.0; zero gradient",
    **LOGIC,
)
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
