"""Backpropagation narrated: the forward pass instruction by instruction, then the backward pass
step by step in the order the engine ran it, for a person learning how it works.

    forward
      x = 2
      t1 = square(x) = 4
      ...
    backward, in the order the engine runs it (highest generation first)
      seed grad t3 = 1
      [gen 1] t3 = add(t1, t2)
          in   grad t3 = 1
          out  grad t1 = 1
      ...

A variable that receives gradient from two places shows it: ``grad x0 += 1 -> 2``. Every line
fits in 80 columns: long arrays are summarised and wrapped under the column where they start.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .engine import Function, Variable
from .graph import Graph, VariableNode, format_value
from .program import CONST
from .render import as_float_array

__all__ = ["explain"]

WIDTH = 80
# A label wider than this would leave an array too little room: the array goes on its own line.
_MAX_LABEL = 40
_BODY = " " * 6


def _wrap(text: str) -> list[str]:
    """``text`` cut at spaces to the width; continuation lines indented 4 more than the first."""
    if len(text) <= WIDTH:
        return [text]
    import textwrap

    indent = " " * (len(text) - len(text.lstrip()) + 4)
    return textwrap.wrap(text, WIDTH, subsequent_indent=indent, break_on_hyphens=False)


def _labelled(label: str, value: Any) -> list[str]:
    """``label`` followed by ``value``, within the width: continuation lines of an array start
    under its first bracket; a value that does not fit after its label goes on the next line."""
    arr = as_float_array(value)
    head = _wrap(label)
    last = head[-1]
    if len(last) <= _MAX_LABEL:
        text = format_value(arr, len(last))
        if arr.ndim > 0 or len(last) + len(text) <= WIDTH:
            return head[:-1] + (last + text).split("\n")
    deeper = " " * (len(label) - len(label.lstrip()) + 4)
    return [line.rstrip() for line in head] + (deeper + format_value(arr, len(deeper))).split("\n")


class _Namer:
    """Labels for the engine's objects: the graph's own where it has one, else ``u1``, ``u2``...
    for the variables that a ``grad(...)`` builds inside its derivative graph."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.labels = graph.labels
        self.unnamed: dict[int, str] = {}

    def variable(self, var: Variable | None) -> str:
        if var is None:
            return "(freed)"
        slot = self.graph.variable_slot(var)
        if slot is not None:
            return self.labels[slot]
        if id(var) not in self.unnamed:
            self.unnamed[id(var)] = var.name or f"u{len(self.unnamed) + 1}"
        return self.unnamed[id(var)]

    def step(self, f: Function) -> str:
        slot = self.graph.function_slot(f)
        if slot is not None:
            node = self.graph.functions[slot]
            outs = ", ".join(self.labels[o] for o in node.outputs)
            return f"{outs} = {node.call_text(self.labels)}"
        outs = ", ".join(self.variable(ref()) for ref in f.outputs)
        ins = ", ".join(self.variable(x) for x in f.inputs)
        return f"{outs} = {f.name}({ins})  (inside a grad(...))"


def _forward(graph: Graph) -> list[str]:
    lines = ["forward, one instruction at a time"]
    for slot, node in graph.variables.items():
        if node.kind == CONST and node.label == format_value(node.value):
            continue  # a number written in the expression: shown where it is used
        if node.creator is not None:
            label = f"  {node.label} = {graph.definition(slot)} = "
        else:
            label = f"  {node.label} = "
        lines += _labelled(label, node.value)
    return lines


class _Totals:
    """What the engine accumulates, replayed: per variable, the gradient received so far."""

    def __init__(self) -> None:
        self.sums: dict[int, np.ndarray] = {}

    def add(self, name: str, var: Variable, g: Any, lead: str) -> list[str]:
        """Lines for ``var`` receiving ``g``: ``grad x = 4`` the first time, then
        ``grad x += 4 -> 8`` (the total on a line of its own when that does not fit)."""
        g = as_float_array(g)
        previous = self.sums.get(id(var))
        if previous is None:
            self.sums[id(var)] = g
            return _labelled(f"{lead}grad {name} = ", g)
        total = self.sums[id(var)] = previous + g
        if g.ndim == 0 and total.ndim == 0:
            line = f"{lead}grad {name} += {format_value(g)} -> {format_value(total)}"
            if len(line) <= WIDTH:
                return [line]
        pad = " " * len(lead)
        return _labelled(f"{lead}grad {name} += ", g) + _labelled(f"{pad}-> grad {name} = ", total)


def _backward(graph: Graph) -> list[str]:
    if not graph.seeds:
        return ["backward: nothing to do (the output does not depend on any variable)"]
    lines = ["backward, in the order the engine runs it (highest generation first)"]
    if len(graph.seeds) > 1:
        lines.append("  (several outputs, each seeded with ones: the gradients of their sum)")
    namer = _Namer(graph)
    totals = _Totals()
    for y in graph.seeds:
        lines += totals.add(namer.variable(y), y, np.ones_like(y.data), "  seed ")
    for f, gys, gxs in graph.steps:
        lines += _wrap(f"  [gen {f.generation}] {namer.step(f)}")
        for ref, gy in zip(f.outputs, gys):
            lines += _labelled(f"{_BODY}in   grad {namer.variable(ref())} = ", gy)
        for x, gx in zip(f.inputs, gxs):
            if not x.requires_grad:
                continue  # a constant: the engine drops its gradient
            name = namer.variable(x)
            if gx is None:
                lines.append(f"{_BODY}out  grad {name}: none (no gradient flows back to it)")
            else:
                lines += totals.add(name, x, gx, f"{_BODY}out  ")
    return lines


def _result(graph: Graph) -> list[str]:
    lines = ["result"]
    for slot in graph.outputs:
        node = graph.variables[slot]
        lines += _labelled(f"  {node.label} = ", node.value)
    for node in graph.variables.values():
        if node.creator is None and node.kind != CONST:
            lines += _labelled(f"  grad {node.label} = ", _grad_or_zeros(node))
    return lines


def _grad_or_zeros(node: VariableNode) -> np.ndarray:
    """An input that does not reach the output has gradient zero (as ``gradcli eval`` says)."""
    return node.grad if node.grad is not None else np.zeros_like(node.value)


def explain(graph: Graph) -> str:
    """The narration of an evaluated graph (see :func:`gradcli.graph.evaluate`)."""
    if not graph.evaluated:
        raise ValueError("explain needs an evaluated graph (values for every variable)")
    return "\n".join([*_forward(graph), "", *_backward(graph), "", *_result(graph)])
