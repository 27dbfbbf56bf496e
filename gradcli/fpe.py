"""Floating-point events (NumPy's divide-by-zero, invalid, overflow, underflow) as one short
line each, naming the function where they happened: ``warning: log: divide by zero``.

NumPy calls our handler from inside the failing ufunc, so the Python stack at that moment shows
which :class:`~gradcli.engine.Function` was running, and whether in forward or backward. The
stack is only inspected when an event happens: evaluation without events costs nothing extra.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator

import numpy as np

from .engine import Function


def _where() -> str:
    """The running function: the innermost ``backward`` on the stack if any (a backward is built
    from other functions, but the user thinks of it as that function's derivative), else the
    innermost ``forward``."""
    found = "numpy"
    frame = sys._getframe(2)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, Function):
            if frame.f_code.co_name in ("backward", "vjp"):
                return f"{owner.name} (in backward)"
            if frame.f_code.co_name in ("forward", "__call__") and found == "numpy":
                found = owner.name
        frame = frame.f_back  # type: ignore[assignment]
    return found


@contextlib.contextmanager
def reporting(emit: Callable[[str], None]) -> Iterator[list[str]]:
    """Inside the block, each distinct event is passed once to ``emit`` (and kept in the list).

    NumPy's other run-time warnings (``Mean of empty slice``, ...) come through Python's
    ``warnings`` module instead; they are reported the same way, in place of NumPy's raw text.
    """
    seen: list[str] = []

    def report(what: str) -> None:
        line = f"warning: {_where()}: {what}"
        if line not in seen:
            seen.append(line)
            emit(line)

    def handler(kind: str, _flag: int) -> None:
        report(kind)

    def show(message: Warning | str, *_: object, **__: object) -> None:
        report(str(message).rstrip(".").lower())

    with (
        warnings.catch_warnings(),
        np.errstate(divide="call", invalid="call", over="call", under="ignore", call=handler),
    ):
        warnings.simplefilter("always", RuntimeWarning)
        warnings.showwarning = show
        yield seen
