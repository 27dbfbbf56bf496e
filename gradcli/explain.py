"""Backpropagation narrated: the forward pass instruction by instruction, then the backward pass
step by step in the order the engine ran it, each gradient with the local rule that made it.

    forward, one instruction at a time
      x = 2
      t1 = sin(x) = 0.9092974268256817
      ...
    backward, in the order the engine runs it (highest generation first)
      seed grad t2 = 1
      [gen 1] t2 = mul(t1, x)
          in   grad t2 = 1
          out  grad t1 = grad t2 * x = 1 * 2 = 2
          out  grad x = grad t2 * t1 = 1 * 0.9092974268256817 = 0.9092974268256817
      ...

A variable that receives gradient from two places shows it: ``grad x += ... -> 2``. Every node
named is defined in the forward part, including the functions that a ``grad(...)`` builds when
it differentiates (named ``u1``, ``u2``, ...). The local rule is the registry's derivative rule
with the step's own names; when every number in it is a scalar and the rule is an expression
gradcli can evaluate, its numbers are shown too. Lines fit the style's width: long arrays are
summarised and wrapped under the column where they start.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np

from .engine import Function, Variable
from .graph import Graph, VariableNode, format_value
from .program import CONST, GRAD, Program
from .render import PLAIN, Style, as_float_array, to_jsonable

__all__ = ["explain", "explain_json"]

_BODY = " " * 6


class _Lines:
    """Text within a width: wrapped at spaces, and labelled values aligned after their label."""

    def __init__(self, style: Style) -> None:
        self.style = style
        self.width = max(40, style.width)

    def wrap(self, text: str) -> list[str]:
        """``text`` cut at spaces to the width; continuation lines indented 4 more than the first.
        A space at the end of ``text`` stays at the end of its last line (a value follows it)."""
        if len(text) <= self.width:
            return [text]
        import textwrap

        indent = " " * (len(text) - len(text.lstrip()) + 4)
        lines = textwrap.wrap(text, self.width, subsequent_indent=indent, break_on_hyphens=False)
        if text.endswith(" "):
            lines[-1] += " "
        return lines

    def value(self, a: Any, indent: int = 0) -> str:
        return format_value(a, indent, style=self.style)

    def labelled(self, label: str, value: Any) -> list[str]:
        """``label`` followed by ``value``: continuation lines of an array start under its first
        bracket; a value that does not fit after its label goes on the next line."""
        arr = as_float_array(value)
        head = self.wrap(label)
        last = head[-1]
        text = self.value(arr, len(last))
        fits = len(last) <= self.width // 2 if arr.ndim > 0 else len(last) + len(text) <= self.width
        if fits:
            return head[:-1] + (last + text).split("\n")
        deeper = " " * (len(label) - len(label.lstrip()) + 4)
        return [line.rstrip() for line in head] + (deeper + self.value(arr, len(deeper))).split("\n")


# --- names -------------------------------------------------------------------------------------


class _Namer:
    """Labels for the engine's objects: the graph's own where it has one, else ``u1``, ``u2``...
    for what a ``grad(...)`` builds inside its derivative graph, in the order it is defined."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.unnamed: dict[int, str] = {}
        self.taken = set(graph.labels.values())

    def known(self, var: Variable) -> bool:
        return self.graph.variable_slot(var) is not None or id(var) in self.unnamed

    def variable(self, var: Variable | None) -> str:
        if var is None:
            return "(freed)"
        slot = self.graph.variable_slot(var)
        if slot is not None:
            return self.graph.labels[slot]
        if id(var) not in self.unnamed:
            k = len(self.unnamed) + 1
            while f"u{k}" in self.taken:
                k += 1
            self.unnamed[id(var)] = label = f"u{k}"
            self.taken.add(label)
        return self.unnamed[id(var)]

    def call(self, f: Function) -> str:
        """``t3 = add(t1, t2)``: the step as the expression wrote it, or as the engine made it."""
        slot = self.graph.function_slot(f)
        if slot is not None:
            node = self.graph.functions[slot]
            outs = ", ".join(self.graph.labels[o] for o in node.outputs)
            return f"{outs} = {node.call_text(self.graph.labels)}"
        outs = ", ".join(self.variable(ref()) for ref in f.outputs)
        return f"{outs} = {f.name}({', '.join(self.variable(x) for x in f.inputs)})"


def _built_by_grad(graph: Graph, namer: _Namer, var: Variable) -> tuple[list[Variable], list[Function]]:
    """What a ``grad(...)`` built for ``var``: the constants and functions of its derivative
    graph not defined before, in an order where each comes after what it reads (generation)."""
    constants: list[Variable] = []
    functions: list[Function] = []
    seen: set[int] = set()
    stack = [var]
    while stack:
        v = stack.pop()
        f = v.creator
        if f is None or graph.function_slot(f) is not None or id(f) in seen:
            continue
        seen.add(id(f))
        functions.append(f)
        for x in f.inputs:
            if x.creator is None and not namer.known(x) and all(x is not c for c in constants):
                constants.append(x)
            elif not namer.known(x):
                stack.append(x)
    functions.sort(key=lambda f: f.generation)
    return constants, functions


# --- the local rule of a step --------------------------------------------------------------------

_MARK = re.compile(r"d/d(\w+)")
_EQUALS = re.compile(r"(?<![<>=!])=(?!=)")
_WORD = re.compile(r"[^\W\d]\w*")
# A name, a number or a call with nothing around it: needs no parentheses after "grad t1 * ".
_ATOM = re.compile(r"[\w.]+|\w+\([^()]*(\([^()]*\))*[^()]*\)")


def _rules(f: Function) -> dict[str, str] | None:
    """The registry's rule for ``f``, as {input parameter: its local derivative}: the partials
    of an elementwise function, else what its rule for people says of each input; None when
    there is no rule to show (unregistered, or several outputs)."""
    from .functions.registry import REGISTRY

    spec = REGISTRY.get(f.name)
    if spec is None or type(f) is not spec.cls or len(f.outputs) != 1:
        return None
    names = spec.arg_names(len(f.inputs))
    if spec.partials:
        return {n: p for n, p in zip(names, spec.partials) if p is not None}
    if not spec.rule:
        return None
    marks = list(_MARK.finditer(spec.rule))
    if not marks:  # the rule is the derivative itself ("cos(x)"), for a function of one input
        return {spec.inputs[0]: spec.rule.strip()} if len(spec.inputs) == 1 else None
    rules = {}
    for k, m in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(spec.rule)
        segment = spec.rule[m.end() : end].strip().rstrip(",").strip()
        eq = _EQUALS.search(segment)
        if eq is not None and m.group(1) in spec.inputs:
            rules[m.group(1)] = segment[eq.end() :].strip()
    return rules


def _substituted(rhs: str, names: dict[str, str]) -> str:
    return _WORD.sub(lambda m: names.get(m.group(0), m.group(0)), rhs)


@functools.lru_cache(maxsize=256)
def _rule_program(rhs: str) -> Program | None:
    from .language import parse
    from .program import ExpressionError

    try:
        return parse(rhs)
    except ExpressionError:
        return None


def _local_value(rhs: str, arrays: dict[str, Any]) -> Any:
    """The rule's right-hand side evaluated where the step ran, or None if it is not an
    expression gradcli can evaluate there."""
    program = _rule_program(rhs)
    if program is None or len(program.outputs) != 1 or not set(program.inputs) <= set(arrays):
        return None
    try:
        with np.errstate(all="ignore"):
            return program.run({n: arrays[n] for n in program.inputs}).outputs[0].data
    except (ValueError, TypeError, ArithmeticError):
        return None


class _Step:
    """How the gradient of each input of one backward step came about, in words and numbers."""

    def __init__(self, f: Function, gys: list[Any], namer: _Namer, lines: _Lines) -> None:
        from .functions.registry import REGISTRY

        self.out = namer.variable(f.outputs[0]())
        self.gy = as_float_array(gys[0])
        self.lines = lines
        self.rules = _rules(f)
        spec = REGISTRY.get(f.name)
        params = spec.arg_names(len(f.inputs)) if spec is not None else ()
        self.names = {p: namer.variable(x) for p, x in zip(params, f.inputs)}
        self.names["gy"] = f"grad {self.out}"
        self.arrays: dict[str, Any] = {p: as_float_array(x.data) for p, x in zip(params, f.inputs)}
        self.arrays["gy"] = self.gy
        self.params = params

    def formula(self, i: int, gx: Any) -> str | None:
        """``grad t1 * cos(x) = 2 * 0.5403023058681398`` for input ``i``, or None without a rule."""
        if self.rules is None or i >= len(self.params) or self.params[i] not in self.rules:
            return None
        rhs = self.rules[self.params[i]]
        text = _substituted(rhs, self.names)
        if "gy" in _WORD.findall(rhs):
            return text
        if rhs == "1":
            return f"grad {self.out}"
        if rhs == "-1":
            return f"-grad {self.out}"
        formula = f"grad {self.out} * {text if _ATOM.fullmatch(rhs) else f'({text})'}"
        scalars = all(np.ndim(a) == 0 for a in self.arrays.values()) and np.ndim(gx) == 0
        local = _local_value(rhs, self.arrays) if scalars else None
        if local is None or np.ndim(local) != 0:
            return formula
        return f"{formula} = {self.lines.value(self.gy)} * {self.lines.value(local)}"


# --- the narration -------------------------------------------------------------------------------


class _Entry:
    """One definition of the forward part; ``inside`` is the label of the grad(...) whose
    derivative graph holds it (None for the program's own instructions)."""

    __slots__ = ("name", "definition", "value", "inside", "kind")

    def __init__(
        self, name: str, definition: str | None, value: Any, inside: str | None, kind: str = ""
    ) -> None:
        self.name, self.definition, self.value, self.inside, self.kind = name, definition, value, inside, kind


def _entries(graph: Graph, namer: _Namer) -> list[_Entry]:
    """Every node the narration names, defined before it is read: the program's instructions
    in order, each grad(...) preceded by what its backward pass built."""
    entries = []
    for slot, node in graph.variables.items():
        if node.kind == CONST and node.label == format_value(node.value):
            continue  # a number written in the expression: shown where it is used
        var = graph.engine_variable(slot) if node.kind == GRAD else None
        if var is not None:
            constants, functions = _built_by_grad(graph, namer, var)
            for c in constants:
                entries.append(_Entry(namer.variable(c), None, c.data, node.label))
            for f in functions:
                names, _, call = namer.call(f).partition(" = ")
                result = f.outputs[0]() if len(f.outputs) == 1 else None
                entries.append(_Entry(names, call, None if result is None else result.data, node.label))
        definition = graph.definition(slot) if node.creator is not None else None
        entries.append(_Entry(node.label, definition, node.value, None, node.kind))
    return entries


def _forward(graph: Graph, namer: _Namer, lines: _Lines) -> list[str]:
    out = ["forward, one instruction at a time"]
    opened: set[str] = set()
    for e in _entries(graph, namer):
        if e.inside is not None:
            if e.inside not in opened:
                opened.add(e.inside)
                slot = next(s for s, label in graph.labels.items() if label == e.inside)
                out += lines.wrap(f"  {e.inside} = {graph.definition(slot)}, built by a backward pass:")
            label = f"{_BODY}{e.name} = " + (f"{e.definition} = " if e.definition else "")
        elif e.kind == GRAD and e.name in opened:
            continue  # its value ended the backward pass that built it, just above
        else:
            label = f"  {e.name} = " + (f"{e.definition} = " if e.definition else "")
        out += lines.labelled(label, e.value) if e.value is not None else lines.wrap(label.rstrip(" ="))
    return out


class _Totals:
    """What the engine accumulates, replayed: per variable, the gradient received so far."""

    def __init__(self, lines: _Lines) -> None:
        self.sums: dict[int, np.ndarray] = {}
        self.lines = lines

    def add(self, name: str, var: Variable, g: Any, lead: str, formula: str | None = None) -> list[str]:
        """Lines for ``var`` receiving ``g``: ``grad x = <formula> = 4`` the first time, then
        ``grad x += <formula> = 4 -> 8`` (the total on a line of its own when that does not fit)."""
        g = as_float_array(g)
        how = f"{formula} = " if formula else ""
        previous = self.sums.get(id(var))
        if previous is None:
            self.sums[id(var)] = g
            return self.lines.labelled(f"{lead}grad {name} = {how}", g)
        total = self.sums[id(var)] = previous + g
        if g.ndim == 0 and total.ndim == 0:
            line = f"{lead}grad {name} += {how}{self.lines.value(g)} -> {self.lines.value(total)}"
            if len(line) <= self.lines.width:
                return [line]
        pad = " " * len(lead)
        return self.lines.labelled(f"{lead}grad {name} += {how}", g) + self.lines.labelled(
            f"{pad}-> grad {name} = ", total
        )

    def total(self, var: Variable) -> np.ndarray:
        return self.sums[id(var)]


def _backward(graph: Graph, namer: _Namer, lines: _Lines) -> list[str]:
    if not graph.seeds:
        return ["backward: nothing to do (the output does not depend on any variable)"]
    out = lines.wrap("backward, in the order the engine runs it (highest generation first)")
    if len(graph.seeds) > 1:
        out += lines.wrap("  (several outputs, each seeded with ones: the gradients of their sum)")
    totals = _Totals(lines)
    for y in graph.seeds:
        out += totals.add(namer.variable(y), y, np.ones_like(y.data), "  seed ")
    for f, gys, gxs in graph.steps:
        out += lines.wrap(f"  [gen {f.generation}] {namer.call(f)}")
        for ref, gy in zip(f.outputs, gys):
            out += lines.labelled(f"{_BODY}in   grad {namer.variable(ref())} = ", gy)
        step = _Step(f, gys, namer, lines)
        for i, (x, gx) in enumerate(zip(f.inputs, gxs)):
            if not x.requires_grad:
                continue  # a constant: the engine drops its gradient
            name = namer.variable(x)
            if gx is None:
                out.append(f"{_BODY}out  grad {name}: none (no gradient flows back to it)")
            else:
                out += totals.add(name, x, gx, f"{_BODY}out  ", step.formula(i, as_float_array(gx)))
    return out


def _result(graph: Graph, lines: _Lines) -> list[str]:
    out = ["result"]
    for slot in graph.outputs:
        node = graph.variables[slot]
        out += lines.labelled(f"  {node.label} = ", node.value)
    for node in _inputs(graph):
        out += lines.labelled(f"  grad {node.label} = ", _grad_or_zeros(node))
    return out


def _inputs(graph: Graph) -> list[VariableNode]:
    return [node for node in graph.variables.values() if node.creator is None and node.kind != CONST]


def _grad_or_zeros(node: VariableNode) -> np.ndarray:
    """An input that does not reach the output has gradient zero (as ``gradcli eval`` says)."""
    assert node.value is not None
    return node.grad if node.grad is not None else np.zeros_like(node.value)


def _checked(graph: Graph) -> None:
    if not graph.evaluated:
        raise ValueError("explain needs an evaluated graph (values for every variable)")


def explain(graph: Graph, style: Style = PLAIN) -> str:
    """The narration of an evaluated graph (see :func:`gradcli.graph.evaluate`)."""
    _checked(graph)
    namer, lines = _Namer(graph), _Lines(style)
    forward = _forward(graph, namer, lines)
    return "\n".join([*forward, "", *_backward(graph, namer, lines), "", *_result(graph, lines)])


def explain_json(graph: Graph) -> dict[str, Any]:
    """The same narration as data::

        {"forward": [{"name": "x", "definition": null, "value": 2.0},
                     {"name": "t1", "definition": "sin(x)", "value": 0.909...}, ...],
         "backward": [{"step": "t2 = mul(t1, x)", "generation": 1,
                       "outputs": [{"name": "t2", "grad": 1.0}],
                       "inputs": [{"name": "t1", "rule": "grad t2 * x = 1 * 2", "grad": 2.0,
                                   "total": 2.0}, ...]}, ...],
         "seeds": [{"name": "t2", "grad": 1.0}],
         "value": 1.8185948536513634, "grad": {"x": 2.0}}

    ``forward`` lists every node named in ``backward`` (``inside`` names the grad(...) whose
    derivative graph holds it); ``total`` is what the input has received so far; ``value`` is
    as in ``gradcli eval --json`` (a list with several outputs), ``grad`` the gradient of the
    sum of every output's elements (what the seeds of ones backpropagate).
    """
    _checked(graph)
    namer, lines = _Namer(graph), _Lines(PLAIN)
    forward = [
        {"name": e.name, "definition": e.definition, "value": to_jsonable(e.value)}
        | ({"inside": e.inside} if e.inside is not None else {})
        for e in _entries(graph, namer)
        if e.inside is None or e.name != e.inside
    ]
    totals = _Totals(lines)
    seeds = []
    for y in graph.seeds:
        totals.add(namer.variable(y), y, np.ones_like(y.data), "")
        seeds.append({"name": namer.variable(y), "grad": to_jsonable(np.ones_like(y.data))})
    backward = []
    for f, gys, gxs in graph.steps:
        step = _Step(f, gys, namer, lines)
        inputs = []
        for i, (x, gx) in enumerate(zip(f.inputs, gxs)):
            if not x.requires_grad:
                continue
            entry: dict[str, Any] = {"name": namer.variable(x), "rule": None, "grad": None, "total": None}
            if gx is not None:
                g = as_float_array(gx)
                entry["rule"] = step.formula(i, g)
                totals.add(entry["name"], x, g, "")
                entry["grad"], entry["total"] = to_jsonable(g), to_jsonable(totals.total(x))
            inputs.append(entry)
        backward.append(
            {
                "step": namer.call(f),
                "generation": f.generation,
                "outputs": [
                    {"name": namer.variable(ref()), "grad": to_jsonable(gy)}
                    for ref, gy in zip(f.outputs, gys)
                ],
                "inputs": inputs,
            }
        )
    values = [to_jsonable(graph.variables[s].value) for s in graph.outputs]
    return {
        "forward": forward,
        "backward": backward,
        "seeds": seeds,
        "value": values if len(values) > 1 else values[0],
        "grad": {node.label: to_jsonable(_grad_or_zeros(node)) for node in _inputs(graph)},
    }
