"""Failures of resources and of plugin code, as users read them: one place that maps them to a
message and an exit status, for the CLI's error translation and for batch lines alike.

- MemoryError: the memory budget (``--max-memory``) or the machine ran out;
- ``engine.GraphTooLarge``: a derivative's graph grew past ``--max-nodes``;
- anything a plugin's Function raised, or a Function without ``backward``.
"""

from __future__ import annotations

import sys

__all__ = ["describe", "one_line"]

NODES_ADVICE = (
    "each order of derivative can multiply the graph: lower --order, use `gradcli hessian` for "
    "second derivatives, or raise --max-nodes"
)


def one_line(text: object) -> str:
    """``text`` (a message, or anything whose ``str`` is one) on one line: an error is one line,
    and the messages of SciPy, distributed and Python's own exceptions may break theirs."""
    return " ".join(str(text).split())


def out_of_memory() -> str:
    from .budget import format_size, limit

    budget = limit()
    if budget is None:
        return "out of memory: the inputs or the expression are too large for this machine"
    return (
        f"out of memory: the inputs or the expression need more than the memory budget "
        f"(--max-memory {format_size(budget)}): give smaller inputs, or raise --max-memory"
    )


def describe(exc: BaseException) -> tuple[str, int] | None:
    """(message, exit status) for ``exc``, or None when it is none of these failures."""
    if isinstance(exc, MemoryError):
        budget = sys.modules.get("gradcli.budget")
        if budget is not None and isinstance(exc, budget.BudgetTooSmallError):
            return str(exc), 2  # the option's value is the mistake
        return out_of_memory(), 1
    engine = sys.modules.get("gradcli.engine")
    if engine is None:  # no Function has run, so neither a graph nor a plugin can have failed
        return None
    if isinstance(exc, engine.GraphTooLarge):
        if exc.predicted:  # refused before the work, from how fast the graph grows per order
            return (
                f"the graph of derivatives would grow past --max-nodes {exc.limit:,} functions "
                f"(about {exc.visited:.2g} by the last order): {NODES_ADVICE}",
                2,
            )
        return f"the graph of derivatives grew past --max-nodes {exc.limit:,} functions: {NODES_ADVICE}", 2
    from .plugins import failure

    message = failure(exc)
    return None if message is None else (message, 1)
