"""micrograd's ``Value``: one Python float per node, scalar-only (so only the chain applies)."""

from __future__ import annotations

import sys

from common import CHAIN_START, A, B
from micrograd.engine import Value

# Its backward sorts the graph with a recursive helper: one Python frame per node of the chain.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 1_000_000))


def chain(n: int) -> tuple[float, float]:
    x = Value(CHAIN_START)
    y = x
    for i in range(n):
        k = i % 3
        if k == 0:
            y = y * A
        elif k == 1:
            y = y + B
        else:
            y = y.relu()
    y.backward()
    return float(y.data), float(x.grad)
