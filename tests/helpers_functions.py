"""Small functions with string options, registered for one test and removed after: they pin how
the language passes a string to an option, apart from any real function's own checks.

    with stand_ins("contract"):
        ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gradcli.engine import Function
from gradcli.functions import REGISTRY
from gradcli.functions.registry import register


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
