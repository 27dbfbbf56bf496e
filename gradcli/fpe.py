"""Floating-point events (NumPy's divide-by-zero, invalid, overflow, underflow) as one short
line each, naming the function where they happened: ``warning: log: divide by zero``.

NumPy calls our handler from inside the failing ufunc, so the Python stack at that moment shows
which :class:`~gradcli.engine.Function` was running, and whether in forward or backward. The
stack is only inspected when an event happens: evaluation without events costs nothing extra.
"""

from __future__ import annotations

import _thread
import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np

from .engine import Function
from .functions.registry import Spec


def _where() -> str:
    """The running function: the innermost ``backward`` on the stack if any (a backward is built
    from other functions, but the user thinks of it as that function's derivative), else the
    innermost ``forward``. A tape runs both outside any method of the function: in a frame with
    a local ``forward_of`` or ``backward_of``, the function whose rule it is running (a batched
    run on arrays: ``forward_of``, the registry's entry). Work outside any function names itself
    in a local ``fpe_name`` ("central differences")."""
    found = "numpy"
    frame = sys._getframe(2)
    while frame is not None:
        local = frame.f_locals
        running = local.get("backward_of")
        if isinstance(running, Function):
            return f"{running.name} (in backward)"
        running = local.get("forward_of")
        if isinstance(running, (Function, Spec)) and found == "numpy":  # (a Spec: on arrays)
            found = running.name
        named = local.get("fpe_name")  # work of gradcli's own, outside any function: its name
        if type(named) is str and found == "numpy":
            found = named
        owner = local.get("self")
        if isinstance(owner, Function):
            if frame.f_code.co_name in ("backward", "vjp"):
                return f"{owner.name} (in backward)"
            if frame.f_code.co_name in ("forward", "__call__") and found == "numpy":
                found = owner.name
        frame = frame.f_back  # type: ignore[assignment]
    return found


# Python's warnings machinery is one per process (showwarning and the filters are module globals),
# and catch_warnings() swaps them without regard to other threads: with two threads inside it at
# once, one thread's warnings went to the other, and the replaced showwarning outlived both. So
# while any thread is reporting, one dispatcher stands in for showwarning and sends each warning
# to the reporter of the thread (or async context) that raised it.
_reporter: ContextVar[Callable[[str], None] | None] = ContextVar("gradcli_warning_reporter", default=None)
_lock = _thread.allocate_lock()
_users = 0
_saved: dict[str, Any] = {}
# NumPy's run-time warnings every time, not once per place: each evaluation reports its own.
_ALWAYS = ("always", None, RuntimeWarning, None, 0)


def _dispatch(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    report = _reporter.get()
    if report is not None and issubclass(category, RuntimeWarning):
        report(str(message).rstrip(".").lower())
    else:
        _saved["showwarning"](message, category, *args, **kwargs)


def _install() -> None:
    global _users
    with _lock:
        if _users == 0:
            _saved["showwarning"] = warnings.showwarning
            warnings.showwarning = _dispatch
            warnings.filters.insert(0, _ALWAYS)  # type: ignore[attr-defined]  # a list at run time
            warnings._filters_mutated()  # type: ignore[attr-defined]  # what simplefilter calls
        _users += 1


def _uninstall() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users == 0:
            if warnings.showwarning is _dispatch:  # unless someone replaced it since
                warnings.showwarning = _saved["showwarning"]
            if _ALWAYS in warnings.filters:
                warnings.filters.remove(_ALWAYS)  # type: ignore[attr-defined]
                warnings._filters_mutated()  # type: ignore[attr-defined]


@contextlib.contextmanager
def reporting(emit: Callable[[str], None]) -> Iterator[list[str]]:
    """Inside the block, each distinct event is passed once to ``emit`` (and kept in the list).

    NumPy's other run-time warnings (``Mean of empty slice``, ...) come through Python's
    ``warnings`` module instead; they are reported the same way, in place of NumPy's raw text,
    to the thread that raised them.
    """
    seen: list[str] = []

    def report(what: str) -> None:
        line = f"warning: {_where()}: {what}"
        if line not in seen:
            seen.append(line)
            emit(line)

    def handler(kind: str, _flag: int) -> None:
        report(kind)

    token = _reporter.set(report)
    _install()
    try:
        with np.errstate(divide="call", invalid="call", over="call", under="ignore", call=handler):
            yield seen
    finally:
        _uninstall()
        _reporter.reset(token)
