"""Stand-ins for functions the language calls that other branches define (``mod`` and
``floor_divide`` for ``%`` and ``//``), and small functions with string options (as ``einsum`` and
``norm(ord=...)`` will have): registered for one test if the registry lacks them, removed after.

Once the real functions are on main the stand-ins are never registered, and the same tests run
against the real ones (their expected values are Python's and NumPy's).

    with stand_ins("mod"):
        ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gradcli.engine import Function, data_of
from gradcli.functions import REGISTRY
from gradcli.functions.registry import define, register


def _mod() -> None:
    define(
        "mod",
        np.mod,
        [lambda gy: gy, lambda gy, x, y: gy * -np.floor(data_of(x) / data_of(y))],
        ["1", "-floor(x/y)"],
        inputs=("x", "y"),
        doc="stand-in for x % y (Python's sign convention)",
        group="piecewise",
        smooth=False,
    )


def _floor_divide() -> None:
    define(
        "floor_divide",
        np.floor_divide,
        [None, None],
        ["0", "0"],
        inputs=("x", "y"),
        doc="stand-in for x // y; zero gradient",
        group="piecewise",
        smooth=False,
    )


class _Contract(Function):
    """stand-in for einsum: its subscripts are an option given as a string"""

    def __init__(self, subscripts: str = "i,i->") -> None:
        self.subscripts = subscripts

    def forward(self, *xs: Any) -> Any:
        return np.einsum(self.subscripts, *xs)


class _Scaled(Function):
    """x times 1, 2 or 3 by the string option how ("one", "two", "three")"""

    def __init__(self, how: str = "one", axis: Any = None) -> None:
        self.factor = {"one": 1.0, "two": 2.0, "three": 3.0}[how]

    def forward(self, x: Any) -> Any:
        return x * self.factor


STAND_INS: dict[str, Callable[[], Any]] = {
    "mod": _mod,
    "floor_divide": _floor_divide,
    "contract": lambda: register("contract")(_Contract),
    "scaled": lambda: register("scaled")(_Scaled),
}


@contextlib.contextmanager
def stand_ins(*names: str) -> Iterator[None]:
    added = [n for n in names if n not in REGISTRY]
    for name in added:
        STAND_INS[name]()
    try:
        yield
    finally:
        for name in added:
            del REGISTRY[name]
