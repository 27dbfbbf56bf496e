"""A parsed expression as a flat list of instructions, and how to run it on inputs.

Instruction ``i`` writes slot ``i`` (static single assignment), and the list is in the order the
parser reduced it, which is a topological order: running a program is one loop, never recursion,
however deep the expression. A Program knows nothing of input values, so one parse serves many
evaluations (batch mode).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import backend
from .engine import Variable, grad, paused_gc
from .functions.registry import Spec

INPUT, CONST, CALL, UNPACK, GRAD = "input", "const", "call", "unpack", "grad"


class ExpressionError(ValueError):
    """A problem located in the expression text: shown with the line and a caret under it."""

    def __init__(self, message: str, text: str = "", pos: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.text = text
        self.pos = pos

    def __str__(self) -> str:
        if self.pos is None or not self.text:
            return self.message
        return f"{self.message}\n{caret_excerpt(self.text, self.pos)}"


class EvaluationError(ExpressionError):
    """The expression parsed, but evaluating it on these inputs failed (e.g. shapes)."""


def caret_excerpt(text: str, pos: int, width: int = 76) -> str:
    """The line of ``text`` holding offset ``pos``, with a caret under that column.

    Control characters are shown escaped (``\\r``, ``\\x07``) so they cannot rewrite the
    terminal line or ring its bell; the caret counts the escaped width.
    """
    pos = max(0, min(pos, len(text)))
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    raw = text[start : end if end != -1 else len(text)]
    shown = [_visible(ch) for ch in raw]
    col = sum(len(piece) for piece in shown[: pos - start])
    line = "".join(shown)
    if len(line) > width:  # keep the caret in view on long lines
        lo = max(0, min(col - width // 2, len(line) - width))
        line, col = ("..." if lo else "") + line[lo : lo + width], col - lo + (3 if lo else 0)
    return f"  {line}\n  {' ' * col}^"


def _visible(ch: str) -> str:
    if ch == "\t":
        return " "
    if ch.isprintable():
        return ch
    return repr(ch)[1:-1]


class Op:
    """One instruction. ``args`` are slots read; ``where`` is the offset in the text it came from."""

    __slots__ = ("kind", "args", "spec", "params", "value", "where", "n_outputs")

    def __init__(
        self,
        kind: str,
        args: tuple[int, ...] = (),
        spec: Spec | None = None,
        params: Mapping[str, Any] | None = None,
        value: Any = None,
        where: int = 0,
        n_outputs: int = 1,
    ) -> None:
        self.kind, self.args, self.spec, self.params = kind, args, spec, params or {}
        self.value, self.where, self.n_outputs = value, where, n_outputs


class Run:
    """The result of running a program: its outputs and the input Variables, by name."""

    __slots__ = ("outputs", "variables")

    def __init__(self, outputs: list[Variable], variables: dict[str, Variable]) -> None:
        self.outputs, self.variables = outputs, variables


class Program:
    """A parsed expression: ``inputs`` (names, in order of first use), instructions, outputs."""

    def __init__(self, text: str, ops: list[Op], outputs: tuple[int, ...], names: dict[int, str]) -> None:
        self.text = text
        self.ops = ops
        self.outputs = outputs
        self.names = names  # slot -> name given to it by an assignment
        self.inputs: tuple[str, ...] = tuple(op.value for op in ops if op.kind == INPUT)
        self._frees = _last_uses(ops, outputs)
        # grad(EXPR, NAME) inside: any input may be differentiated with respect to, even one
        # the caller holds constant.
        self.differentiates_inside = any(op.kind == GRAD for op in ops)
        self.has_array_constants = any(op.kind == CONST and op.value.ndim for op in ops)

    def __repr__(self) -> str:
        return f"Program({self.text!r}, inputs={self.inputs}, ops={len(self.ops)})"

    def run(self, values: Mapping[str, Any]) -> Run:
        """Evaluate on ``values`` (name -> number or array), recording the graph for backward."""
        missing = [n for n in self.inputs if n not in values]
        if missing:
            raise EvaluationError(f"no value given for {', '.join(repr(n) for n in missing)}")
        extra = [n for n in values if n not in self.inputs]
        if extra:
            raise EvaluationError(
                f"{', '.join(repr(n) for n in extra)} {'is' if len(extra) == 1 else 'are'} not used by the "
                f"expression (its variables: {', '.join(self.inputs) or 'none'})"
            )
        variables = {n: Variable(values[n], name=n) for n in self.inputs}
        return Run(self.run_variables(variables), variables)

    def run_variables(self, variables: Mapping[str, Variable]) -> list[Variable]:
        """Evaluate with the given input Variables (the seam that calculus builds on)."""
        with paused_gc():
            return self._run(variables)

    def _run(self, variables: Mapping[str, Variable]) -> list[Variable]:
        xp = constants_namespace(self, variables)
        slots: list[Any] = [None] * len(self.ops)
        frees = self._frees
        for i, op in enumerate(self.ops):
            kind = op.kind
            try:
                if kind == CALL:
                    assert op.spec is not None
                    out = op.spec.cls(**op.params)(*[slots[j] for j in op.args])
                    if isinstance(out, tuple) and op.n_outputs == 1:
                        raise EvaluationError(
                            f"{op.spec.name}() has {len(out)} outputs: unpack them, e.g. "
                            f"{', '.join('abcdefgh'[: len(out)])} = {op.spec.name}(...)",
                            self.text,
                            op.where,
                        )
                    if i in self.names and not isinstance(out, tuple):
                        out.name = self.names[i]
                elif kind == INPUT:
                    out = variables[op.value]
                elif kind == CONST:
                    out = op.value if xp is np else constant_in(op.value, xp)
                elif kind == UNPACK:
                    whole = slots[op.args[0]]
                    index, count = op.value
                    got = len(whole) if isinstance(whole, tuple) else 1
                    if got != count:
                        raise EvaluationError(
                            f"cannot unpack {got} output{'s' if got != 1 else ''} into {count} names",
                            self.text,
                            op.where,
                        )
                    out = whole[index]
                    if i in self.names:
                        out.name = self.names[i]
                else:  # GRAD: d(slot a)/d(slot b), itself differentiable
                    y, x = slots[op.args[0]], slots[op.args[1]]
                    if not x.requires_grad:
                        raise EvaluationError(
                            "grad(): the second argument must be a variable, not a constant",
                            self.text,
                            op.where,
                        )
                    out = grad([y], [x], create_graph=True)[0]
            except ExpressionError:
                raise
            except (ValueError, TypeError, IndexError, ArithmeticError, np.linalg.LinAlgError) as exc:
                name = op.spec.name if op.spec is not None else kind
                shapes = ", ".join(str(tuple(slots[j].shape)) for j in op.args if hasattr(slots[j], "shape"))
                detail = str(exc).removeprefix(f"{name}: ")
                raise EvaluationError(f"{name} of shapes {shapes}: {detail}", self.text, op.where) from exc
            slots[i] = out
            for j in frees[i]:
                slots[j] = None
        return [slots[j] for j in self.outputs]


def constants_namespace(program: Program, variables: Mapping[str, Variable]) -> Any:
    """The array module the program's array constants must be in to mix with the inputs."""
    if not program.has_array_constants:
        return np
    return backend.common_namespace([v.data for v in variables.values()])


def constant_in(value: Variable, xp: Any) -> Variable:
    """A constant of the program in the array module ``xp`` (CuPy refuses NumPy arrays)."""
    data = backend.moved(value.data, xp)
    return value if data is value.data else Variable(data, requires_grad=False)


def _last_uses(ops: list[Op], outputs: tuple[int, ...]) -> list[tuple[int, ...]]:
    """For each instruction, the slots it was the last reader of: freed right after it runs, so a
    long evaluation without a graph (no_grad) holds only the arrays still to be read."""
    last: dict[int, int] = {}
    for i, op in enumerate(ops):
        for j in op.args:
            last[j] = i
    keep = set(outputs)
    frees: list[list[int]] = [[] for _ in ops]
    for j, i in last.items():
        if j not in keep:
            frees[i].append(j)
    return [tuple(f) for f in frees]
