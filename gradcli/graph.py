"""The computational graph of a Program, for people: Graphviz DOT and an indented text tree.

Without values the graph is drawn from the Program's instructions (structure only). With values
the program is run with every slot kept, backward runs from its outputs with ``retain_grad`` so
intermediate gradients stay, and the trace of that backward pass is recorded for ``explain``.

Node ids come from instruction indices (``v4`` is the variable written by instruction 4, ``f4``
the function that instruction calls), so they are the same from run to run; a variable read
twice is one node with two edges. Everything walks the instruction list or an explicit stack:
nothing recurses, however deep the expression.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .engine import Function, Variable, backward
from .program import CALL, CONST, GRAD, INPUT, UNPACK, Program
from .render import PLAIN, Style, format_array

__all__ = [
    "Graph",
    "FunctionNode",
    "VariableNode",
    "dot_quote",
    "evaluate",
    "format_value",
    "param_text",
    "structure",
    "to_dot",
    "to_text",
]

# Arrays larger than this are summarised ("[1 2 ... 9 10]"): a graph node or a tree line is not
# the place to read a whole array (gradcli eval --json is).
_COMPACT: dict[str, int] = {"threshold": 6, "edgeitems": 2, "width": 40}
_WIDE: dict[str, int] = {"threshold": 24}
# Deeper than this, the text tree stops indenting (a 100,000-deep chain would otherwise print
# lines of 400,000 spaces) and writes the depth instead.
MAX_TREE_INDENT = 24
# Graphviz refuses a label over 16,384 characters; names and titles are cut well before that.
MAX_TITLE = 200
MAX_NAME = 60


def format_value(a: Any, indent: int = 0, *, compact: bool = False, style: Style = PLAIN) -> str:
    """A value by render's one rule for numbers: a scalar as its shortest exact text, an array
    summarised when large (compact: shorter, for graph labels), continuation lines indented by
    ``indent``."""
    return format_array(a, indent, style, **(_COMPACT if compact else _WIDE))


def cut(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, with "..." where it was cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class VariableNode:
    """A value in the graph: an input, a constant, or what an instruction computed.

    ``creator`` is the slot of the function that wrote it (None for inputs and constants) and
    ``index`` its position among that function's outputs. ``value``/``grad`` are set only when
    the graph was evaluated (``grad`` stays None where no gradient reached it)."""

    __slots__ = ("slot", "label", "kind", "creator", "index", "value", "grad", "is_output")

    def __init__(self, slot: int, label: str, kind: str, creator: int | None, index: int = 0) -> None:
        self.slot, self.label, self.kind, self.creator, self.index = slot, label, kind, creator, index
        self.value: np.ndarray | None = None
        self.grad: np.ndarray | None = None
        self.is_output = False


class FunctionNode:
    """A call: ``name`` (the registry name, or ``grad``), constant ``params``, the variable slots
    it reads (``args``) and writes (``outputs``)."""

    __slots__ = ("slot", "name", "params", "args", "outputs")

    def __init__(
        self,
        slot: int,
        name: str,
        params: Mapping[str, Any],
        args: tuple[int, ...],
    ) -> None:
        self.slot, self.name, self.params, self.args = slot, name, params, args
        self.outputs: list[int] = []

    def call_text(self, labels: Mapping[int, str]) -> str:
        """``add(t1, t2)``, ``sum(t1, axis=0)``: the call as a person would write it."""
        parts = [labels[a] for a in self.args] + [f"{k}={param_text(v)}" for k, v in self.params.items()]
        return f"{self.name}({', '.join(parts)})"


class Graph:
    """Variables and functions of one program, by instruction slot, in instruction order.

    After :func:`evaluate`: ``steps`` is the backward pass as the engine ran it, one
    ``(function, gys, gxs)`` per step; ``variable_slot``/``function_slot`` map the engine's
    objects back to slots (None for those inside a ``grad(...)``'s derivative graph)."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.variables: dict[int, VariableNode] = {}
        self.functions: dict[int, FunctionNode] = {}
        self.outputs: tuple[int, ...] = program.outputs
        self.labels: dict[int, str] = {}  # slot -> label, for every variable
        self.evaluated = False
        self.steps: list[tuple[Function, list[Variable], tuple[Any, ...]]] = []
        self.seeds: list[Variable] = []
        self._variable_slots: dict[int, int] = {}
        self._function_slots: dict[int, int] = {}
        self._engine_variables: dict[int, Variable] = {}

    def variable_slot(self, var: Variable) -> int | None:
        return self._variable_slots.get(id(var))

    def function_slot(self, f: Function) -> int | None:
        return self._function_slots.get(id(f))

    def engine_variable(self, slot: int) -> Variable | None:
        """The engine's Variable of ``slot``, after :func:`evaluate` (None for several outputs)."""
        return self._engine_variables.get(slot)

    def definition(self, slot: int) -> str:
        """How a variable came to be: ``square(x)``, ``sincos(x)[1]``; its value for a constant,
        its name for an input."""
        node = self.variables[slot]
        if node.creator is None:
            return node.label
        f = self.functions[node.creator]
        text = f.call_text(self.labels)
        return f"{text}[{node.index}]" if len(f.outputs) > 1 else text


def param_text(v: Any) -> str:
    """A constant parameter as it would be written: ``0``, ``(0, 1)``, ``1:3``, ``::2``."""
    if isinstance(v, slice):
        text = ":".join("" if p is None else str(p) for p in (v.start, v.stop, v.step))
        return text.removesuffix(":") if v.step is None else text
    if isinstance(v, tuple):
        return "(" + ", ".join(param_text(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if v is Ellipsis:
        return "..."
    if hasattr(v, "tolist"):  # an array of indices: as it was written, [0, 2]
        return str(v.tolist())
    return repr(v)


def structure(program: Program) -> Graph:
    """The graph as the instructions describe it, without running anything."""
    graph = Graph(program)
    taken = set(program.names.values()) | set(program.inputs)
    counters = {"t": 0, "c": 0}

    def fresh(prefix: str) -> str:
        while True:
            counters[prefix] += 1
            label = f"{prefix}{counters[prefix]}"
            if label not in taken:
                return label

    for i, op in enumerate(program.ops):
        if op.kind == INPUT:
            graph.variables[i] = VariableNode(i, op.value, INPUT, None)
        elif op.kind == CONST:
            data = np.asarray(op.value.data)
            label = program.names.get(i) or (format_value(data) if data.ndim == 0 else fresh("c"))
            node = graph.variables[i] = VariableNode(i, label, CONST, None)
            node.value = data
        elif op.kind == UNPACK:
            creator = op.args[0]
            graph.variables[i] = VariableNode(i, program.names[i], UNPACK, creator, op.value[0])
            graph.functions[creator].outputs.append(i)
        else:  # CALL or GRAD: a function node, and its variable unless it has several outputs
            if op.kind == CALL:
                assert op.spec is not None
                f = FunctionNode(i, op.spec.name, op.params, op.args)
            else:
                f = FunctionNode(i, "grad", {}, op.args)
            graph.functions[i] = f
            if op.kind == GRAD or op.n_outputs == 1:
                graph.variables[i] = VariableNode(i, program.names.get(i) or fresh("t"), op.kind, i)
                f.outputs.append(i)
    for s in program.outputs:
        if s in graph.variables:
            graph.variables[s].is_output = True
    graph.labels = {s: v.label for s, v in graph.variables.items()}
    return graph


def evaluate(program: Program, values: Mapping[str, Any]) -> Graph:
    """Run ``program`` on ``values`` keeping every intermediate, then backpropagate from its
    outputs (seeded with ones; with several outputs, the gradient of their sum), recording each
    step of the backward pass in the order the engine runs it."""
    graph = structure(program)
    # The same instructions with every slot as an output: nothing is freed, each value is kept.
    everything = Program(program.text, program.ops, tuple(range(len(program.ops))), program.names)
    slots = everything.run(values).outputs
    for i, out in enumerate(slots):
        first = out[0] if isinstance(out, tuple) else out
        # A grad(...) slot's creator belongs to its derivative graph, not to instruction i.
        if program.ops[i].kind == CALL and first.creator is not None:
            graph._function_slots.setdefault(id(first.creator), i)
        if isinstance(out, tuple):
            continue
        graph._variable_slots.setdefault(id(out), i)
        graph._engine_variables[i] = out
        graph.variables[i].value = np.asarray(out.data)
    # Constants cannot have a gradient; seeding one would only write into the Program's own
    # constant (shared by every run).
    graph.seeds = [slots[s] for s in program.outputs if slots[s].requires_grad]
    if graph.seeds:
        backward(graph.seeds, retain_grad=True, trace=lambda f, gys, gxs: graph.steps.append((f, gys, gxs)))
    for i, var in graph._engine_variables.items():
        if var.grad is not None:
            graph.variables[i].grad = np.asarray(var.grad.data)
    graph.evaluated = True
    return graph


# --- Graphviz DOT --------------------------------------------------------------------------------


def dot_quote(text: str) -> str:
    """``text`` as a DOT double-quoted string: backslashes and quotes escaped, newlines as the
    centred line break ``\\n``."""
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r\n", "\n").replace("\n", "\\n")
    return f'"{body}"'


def _variable_label(graph: Graph, node: VariableNode, style: Style) -> str:
    lines = [cut(node.label, MAX_NAME)]
    if node.kind == CONST:  # a number is its own label; an array constant shows what it holds
        if node.value is not None and node.value.ndim > 0:
            lines += [
                f"shape {tuple(node.value.shape)}",
                f"value {format_value(node.value, compact=True, style=style)}",
            ]
    elif graph.evaluated:
        assert node.value is not None
        grad = format_value(node.grad, compact=True, style=style) if node.grad is not None else "none"
        lines += [
            f"shape {tuple(node.value.shape)}",
            f"value {format_value(node.value, compact=True, style=style)}",
            f"grad {grad}",
        ]
    return "\n".join(lines)


def _function_label(f: FunctionNode) -> str:
    return "\n".join([f.name, *(f"{k}={param_text(v)}" for k, v in f.params.items())])


def to_dot(graph: Graph, style: Style = PLAIN) -> str:
    """The graph in Graphviz's DOT language: variables as ellipses (inputs filled, constants
    dashed, outputs doubled), functions as boxes, edges in the direction data flows, labelled
    ``#1``, ``#2``... by argument position where a function has several (a parameter's name,
    such as sub's ``x``, could be mistaken for a variable). The title is the expression, cut
    when long."""
    lines = [
        "digraph gradcli {",
        f"  label={dot_quote(cut(' '.join(graph.program.text.split()), MAX_TITLE))};",
        "  labelloc=t;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for slot, node in graph.variables.items():
        attrs = ["shape=ellipse", f"label={dot_quote(_variable_label(graph, node, style))}"]
        if node.kind == INPUT:
            attrs.append('style=filled, fillcolor="#dbe9f6"')
        elif node.kind == CONST:
            attrs.append("style=dashed")
        if node.is_output:
            attrs.append("peripheries=2")
        lines.append(f"  v{slot} [{', '.join(attrs)}];")
    for slot, f in graph.functions.items():
        label = dot_quote(_function_label(f))
        lines.append(f'  f{slot} [shape=box, style="rounded,filled", fillcolor="#f2f2f2", label={label}];')
    for slot, f in graph.functions.items():
        numbered = len(f.args) > 1
        for k, a in enumerate(f.args, start=1):
            lines.append(f"  v{a} -> f{slot}" + (f' [label="#{k}"];' if numbered else ";"))
        for o in f.outputs:
            lines.append(f"  f{slot} -> v{o};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- an indented text tree -----------------------------------------------------------------------


def _tree_line(graph: Graph, node: VariableNode, style: Style) -> str:
    head = node.label if node.creator is None else f"{node.label} = {graph.definition(node.slot)}"
    if node.kind == CONST and node.value is not None and node.value.ndim > 0:
        head += f" = {_one_line(node.value, style)}"
    if not graph.evaluated:
        return head
    parts = [head]
    if node.value is not None and node.value.ndim > 0:
        parts.append(f"shape {tuple(node.value.shape)}")
    if node.kind != CONST:
        parts.append(f"value {_one_line(node.value, style)}")
        parts.append(f"grad {_one_line(node.grad, style) if node.grad is not None else 'none'}")
    return "  ".join(parts)


def _one_line(a: Any, style: Style) -> str:
    return " ".join(part.strip() for part in format_value(a, compact=True, style=style).split("\n"))


def to_text(graph: Graph, style: Style = PLAIN) -> str:
    """The graph as an indented tree from each output down to the inputs; a variable already
    drawn is not drawn again but referred to: ``x (see above)``."""
    lines: list[str] = []
    shown: set[int] = set()
    # (slot, prefix of this line, prefix for its children, depth)
    stack: list[tuple[int, str, str, int]] = [(s, "", "", 0) for s in reversed(graph.outputs)]
    while stack:
        slot, prefix, child_prefix, depth = stack.pop()
        node = graph.variables.get(slot)
        if node is None:
            continue
        if slot in shown and node.kind != CONST:
            lines.append(f"{prefix}{node.label} (see above)")
            continue
        shown.add(slot)
        marker = f"[depth {depth}] " if depth > MAX_TREE_INDENT else ""
        lines.append(f"{prefix}{marker}{_tree_line(graph, node, style)}")
        if node.creator is None:
            continue
        args = graph.functions[node.creator].args
        if depth >= MAX_TREE_INDENT:
            # Stop indenting: keep the prefix, so line length stays bounded however deep it goes.
            stack.extend((a, child_prefix, child_prefix, depth + 1) for a in reversed(args))
            continue
        for k in range(len(args) - 1, -1, -1):
            last = k == len(args) - 1
            stack.append(
                (
                    args[k],
                    child_prefix + ("`-- " if last else "|-- "),
                    child_prefix + ("    " if last else "|   "),
                    depth + 1,
                )
            )
    return "\n".join(lines)
