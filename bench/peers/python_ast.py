"""Python's own parser, the yardstick for parse throughput (the big-graph text is valid Python)."""

from __future__ import annotations

import ast


def parse(text: str) -> object:
    return ast.parse(text)
