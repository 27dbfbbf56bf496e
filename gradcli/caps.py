"""Sizes worked out before the work they bound, so that a cap refuses at once instead of after
the machine has spent minutes and gigabytes: the numbers a Jacobian or a check will write (from
the input shapes and the output shapes of one forward pass) and the nodes a drawing will have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Graphviz's layout is superlinear, and steeply so where one variable feeds many functions: a
# 50-term sum of one variable (150 nodes) takes 34 s, a 1,000-term one passes 6 GB. A drawing of
# more than this many nodes is not readable anyway (``--format dot/text`` have no limit).
MAX_RENDER_NODES = 1_000


def _input_size(values: Mapping[str, Any], names: Sequence[str]) -> int:
    import numpy as np

    return sum(int(np.size(values[n])) for n in names)


def jacobian_numbers(program: Any, values: Mapping[str, Any], wrt: Sequence[str] | None) -> int:
    """The entries of the Jacobian: (elements of all outputs) x (elements of the variables)."""
    from .program import sizing

    with sizing(program):  # shapes only: no graph (unless grad() inside needs it)
        outputs = program.run(values).outputs
    return sum(int(y.size) for y in outputs) * _input_size(values, wrt or program.inputs)


def check_numbers(program: Any, values: Mapping[str, Any], wrt: Sequence[str] | None, order: int) -> int:
    """What ``check`` writes: per row the analytic and numeric values and both errors; a row per
    element of each output's gradient, and with order 2 per Hessian entry."""
    size = _input_size(values, wrt or program.inputs)
    rows = len(program.outputs) * size + (size * size if order == 2 else 0)
    return 4 * rows


def render_nodes(program: Any) -> int:
    """The nodes of the drawing of ``program``: its variables and its functions."""
    from .graph import structure

    graph = structure(program)
    return len(graph.variables) + len(graph.functions)


def guard_render(program: Any, fmt: str, limit: int) -> None:
    """Refuse, before evaluating or starting ``dot``, to lay out more than ``limit`` nodes."""
    from .command import fail

    nodes = render_nodes(program)
    if nodes > limit:
        fail(
            f"the graph has {nodes:,} nodes, more than --max-render-nodes {limit:,} that --format {fmt} "
            "lays out: use --format dot or text, or raise --max-render-nodes",
            2,
        )
