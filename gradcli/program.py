"""A parsed expression as a flat list of instructions, and how to run it on inputs.

Instruction ``i`` writes slot ``i`` (static single assignment), and the list is in the order the
parser reduced it, which is a topological order: running a program is one loop, never recursion,
however deep the expression. A Program knows nothing of input values, so one parse serves many
evaluations (batch mode).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import backend
from .engine import Variable, data_of, grad, paused_gc, using_grad
from .functions.registry import Spec

INPUT, CONST, CALL, UNPACK, GRAD = "input", "const", "call", "unpack", "grad"


#: What a function raises for inputs it cannot take (shapes, domains, singular matrices): an
#: evaluation error at the instruction, not a bug.
FAILURES = (ValueError, TypeError, IndexError, ArithmeticError, np.linalg.LinAlgError)


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


def _input_variable(name: str, value: Any) -> Variable:
    try:
        return Variable(value, name=name)
    except (TypeError, ValueError) as e:
        raise EvaluationError(f"value of {name!r}: {e}") from None


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
    columns = [_columns(piece) for piece in shown]
    if sum(columns) > width:  # keep the caret in view on long lines: at most width columns of it
        at = pos - start
        lo, used = at, 0
        while lo > 0 and used + columns[lo - 1] <= width // 2:  # half before the caret
            lo, used = lo - 1, used + columns[lo - 1]
        hi, used = lo, 0
        while hi < len(shown) and used + columns[hi] <= width:  # the rest after it
            used, hi = used + columns[hi], hi + 1
        while lo > 0 and used + columns[lo - 1] <= width:  # near the end: more before it
            lo, used = lo - 1, used + columns[lo - 1]
        shown, columns = shown[lo:hi], columns[lo:hi]
        if lo:
            shown, columns, start = ["...", *shown], [3, *columns], start + lo - 1
    col = sum(columns[: pos - start])
    return f"  {''.join(shown)}\n  {' ' * col}^"


def _columns(piece: str) -> int:
    """The columns a terminal gives ``piece``: two for each wide character (CJK, emoji), none for a
    combining mark, one for the rest (the caret once stood left of where it points, after CJK)."""
    if piece.isascii():
        return len(piece)
    import unicodedata

    width = 0
    for ch in piece:
        if not unicodedata.combining(ch):
            width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def _visible(ch: str) -> str:
    if ch == "\t":
        return " "
    if ch.isprintable():
        return ch
    return repr(ch)[1:-1]


NO_OPTIONS: Mapping[str, Any] = {}  # shared by every instruction without options: never written to


class Op:
    """One instruction. ``args`` are slots read; ``where`` is the offset in the text it came from
    (for an input, its first appearance). ``leaf``: a value without a graph behind it (a name
    assigned a constant) is made a differentiable leaf, because a ``grad(EXPR, NAME)`` differentiates
    with respect to it."""

    __slots__ = ("kind", "args", "spec", "params", "value", "where", "n_outputs", "leaf")

    def __init__(
        self,
        kind: str,
        args: tuple[int, ...] = (),
        spec: Spec | None = None,
        params: Mapping[str, Any] | None = None,
        value: Any = None,
        where: int = 0,
        n_outputs: int = 1,
        leaf: bool = False,
    ) -> None:
        self.kind, self.args, self.spec = kind, args, spec
        self.params = params if params is not None else NO_OPTIONS
        self.value, self.where, self.n_outputs, self.leaf = value, where, n_outputs, leaf


class Run:
    """The result of running a program: its outputs and the input Variables, by name."""

    __slots__ = ("outputs", "variables")

    def __init__(self, outputs: list[Variable], variables: dict[str, Variable]) -> None:
        self.outputs, self.variables = outputs, variables


class Program:
    """A parsed expression: ``inputs`` (names, in the order they first appear in the text),
    instructions, outputs."""

    def __init__(self, text: str, ops: list[Op], outputs: tuple[int, ...], names: dict[int, str]) -> None:
        self.text = text
        self.ops = ops
        self.outputs = outputs
        self.names = names  # slot -> name given to it by an assignment
        input_ops: list[tuple[int, Op]] = []  # (slot, instruction) of each input
        # grad(EXPR, NAME) inside: any input may be differentiated with respect to, even one
        # the caller holds constant.
        self.differentiates_inside = False
        for i, op in enumerate(ops):  # one pass: a long expression has millions of instructions
            kind = op.kind
            if kind == CALL:
                continue
            if kind == INPUT:
                input_ops.append((i, op))
            elif kind == GRAD:
                self.differentiates_inside = True
        self.inputs: tuple[str, ...] = tuple(op.value for _, op in sorted(input_ops, key=_first_appearance))
        self._input_slots = {op.value: i for i, op in input_ops}
        self.frees, self.quiet, self.guards = _plan(ops, outputs)

    def __repr__(self) -> str:
        return f"Program({self.text!r}, inputs={self.inputs}, ops={len(self.ops)})"

    def input_slot(self, name: str) -> int | None:
        """The instruction that reads the input ``name`` (None: the expression has no such input)."""
        return self._input_slots.get(name)

    def run(self, values: Mapping[str, Any]) -> Run:
        """Evaluate on ``values`` (name -> number or array), recording the graph for backward."""
        if not isinstance(values, Mapping):
            raise TypeError(f"values map each input's name to its value, e.g. {{'x': 1.0}}; got {values!r}")
        listed = ", ".join(self.inputs) or "none"
        missing = [n for n in self.inputs if n not in values]
        if missing:
            raise EvaluationError(
                f"missing value for {', '.join(repr(n) for n in missing)} (variables: {listed})"
            )
        known = set(self.inputs)  # a set: a tuple scan per name is quadratic with 40,000 variables
        extra = [n for n in values if n not in known]
        if extra:
            raise EvaluationError(f"no variable {extra[0]!r} (variables: {listed})")
        variables = {n: _input_variable(n, values[n]) for n in self.inputs}
        return Run(self.run_variables(variables), variables)

    def run_variables(self, variables: Mapping[str, Variable]) -> list[Variable]:
        """Evaluate with the given input Variables (the seam that calculus builds on)."""
        with paused_gc():
            return self._run(variables)

    def _run(self, variables: Mapping[str, Variable]) -> list[Variable]:
        slots: list[Any] = [None] * len(self.ops)
        frees, quiet, guards = self.frees, self.quiet, self.guards
        for i, op in enumerate(self.ops):
            try:
                if i in quiet:
                    with np.errstate(all="ignore"):
                        slots[i] = self._execute(i, op, slots, variables)
                else:
                    slots[i] = self._execute(i, op, slots, variables)
            except ExpressionError:
                raise
            except FAILURES as exc:
                raise self.failed(op, slots, exc) from exc
            if i in guards:
                self.warn_where_taken(i, slots, lambda k, s: self._execute(k, self.ops[k], s, variables))
            for j in frees[i]:
                slots[j] = None
        return [slots[j] for j in self.outputs]

    def failed(self, op: Op, slots: Any, exc: BaseException) -> EvaluationError:
        """An instruction's failure (shapes, domains, singular matrices) in words, at its place."""
        name = op.spec.name if op.spec is not None else op.kind
        shapes = ", ".join(str(tuple(np.shape(data_of(slots[j])))) for j in op.args)
        detail = str(exc).removeprefix(f"{name}: ")
        if isinstance(exc, OverflowError) and "too large to convert to C" in detail:
            detail = "a whole number in its options is too large (at most 2**63 - 1)"  # (Python's words)
        elif detail.startswith("operands could not be broadcast together"):  # (NumPy's, shapes again)
            detail = "the shapes do not broadcast together (each axis, from the last: equal, or one is 1)"
        if detail.startswith(f"shapes {shapes.replace('), (', ') and (')} "):  # (it names them already)
            return EvaluationError(f"{name}: {detail}", self.text, op.where)
        return EvaluationError(f"{name} of shapes {shapes}: {detail}", self.text, op.where)

    def unpacked(self, op: Op, whole: Any) -> Any:
        """The output an UNPACK instruction takes of a function's outputs (``whole``)."""
        index, count = op.value
        got = len(whole) if isinstance(whole, tuple) else 1
        if got != count:
            raise EvaluationError(
                f"cannot unpack {got} output{'s' if got != 1 else ''} into {count} names", self.text, op.where
            )
        return whole[index]

    def _execute(self, i: int, op: Op, slots: Any, variables: Mapping[str, Variable]) -> Any:
        """Instruction ``i``'s value, its arguments read from ``slots``."""
        kind = op.kind
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
            out = constant_in(op.value, variables) if op.value.ndim else op.value
        elif kind == UNPACK:
            out = self.unpacked(op, slots[op.args[0]])
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
            return grad([y], [x], create_graph=True)[0]
        if op.leaf and not out.requires_grad:
            out = Variable(out.data, name=self.names.get(i))
        return out

    def warn_where_taken(self, i: int, slots: Any, execute: Callable[[int, Any], Any]) -> None:
        """After the masking function (``where``) at ``i``: a quiet branch that holds the output's
        own non-finite value (inf for inf, NaN for NaN) was taken there, so its floating-point
        warnings are real. It is computed again (``execute(k, slots)`` computes instruction k),
        with warnings on, to report them as usual; its untaken elements alone never are.
        """
        out = data_of(slots[i])
        if backend.is_lazy(out):  # not computed yet; its warnings arise on the workers
            return
        bad = ~np.isfinite(out)
        if not bad.any():
            return
        for j in self.guards[i]:
            branch = data_of(slots[j])
            try:
                branch = np.broadcast_to(branch, np.shape(out))
            except ValueError:  # shapes that line up only inside a batched call: assume taken
                taken = not np.isfinite(branch).all()
            else:
                taken = (bad & ((branch == out) | (np.isnan(branch) & np.isnan(out)))).any()
            if not taken:
                continue
            todo, branch_ops = [j], {j}
            while todo:
                for a in self.ops[todo.pop()].args:
                    if a in self.quiet and a not in branch_ops:
                        branch_ops.add(a)
                        todo.append(a)
            again = _Overlay(slots)
            # (With the graph where the branch differentiates: a grad() of it needs one.)
            with using_grad(any(self.ops[k].kind == GRAD for k in branch_ops)):
                for k in sorted(branch_ops):
                    again[k] = execute(k, again)


def sizing(program: Any) -> contextlib.AbstractContextManager[None]:
    """Around a run that only learns sizes (the shapes of the outputs, how many numbers a run
    computes): no graph, so that each value goes after its last use, unless ``program`` has a
    ``grad()`` inside. That one's value needs the graph: without it the inner derivative is
    zero, and what follows it (``inv``, a division) fails or warns where the real run does not."""
    return using_grad(bool(getattr(program, "differentiates_inside", False)))


def constant_in(value: Variable, variables: Mapping[str, Variable]) -> Variable:
    """An array constant of a program in the array library of its inputs (CuPy refuses to mix
    NumPy arrays in)."""
    xp = backend.common_namespace([v.data for v in variables.values()])
    data = backend.moved(value.data, xp)
    return value if data is value.data else Variable(data, requires_grad=False)


class _Overlay(dict[int, Any]):
    """Slots computed again, over the slots of the run they came from."""

    def __init__(self, slots: Any) -> None:
        super().__init__()
        self.slots = slots

    def __missing__(self, j: int) -> Any:
        return self.slots[j]


def _first_appearance(input_op: tuple[int, Op]) -> int:
    return input_op[1].where


def _branches(op: Op) -> tuple[int, ...]:
    """The positions of a masking function's branches (where's x and y): the inputs its gradient
    flows to. Other functions have none."""
    if op.kind != CALL or op.spec is None or not op.spec.cls.masks_gradient:
        return ()
    rules = getattr(op.spec.cls, "rules", ())
    return tuple(k for k, rule in enumerate(rules) if rule is not None)


def _plan(
    ops: list[Op], outputs: tuple[int, ...]
) -> tuple[list[tuple[int, ...]], frozenset[int], dict[int, tuple[int, ...]]]:
    """When each slot is freed, which instructions run quietly, and which branches each loud
    ``where`` guards. One pass from the last instruction to the first.

    An instruction is quiet when its value flows only into branches of a masking function
    (``where(cond, a, b)``'s a and b), directly or through other quiet instructions: it runs with
    floating-point warnings off, since the elements it computes for nothing (sqrt(x) where x < 0 in
    ``where(x > 0, sqrt(x), 0)``) are not results. The loud ``where`` it reaches warns for the
    elements it did take (:meth:`Program.warn_where_taken`).

    A slot is freed right after its last reader, so a long evaluation without a graph (no_grad)
    holds only the arrays still to be read; a quiet reader counts as reading at the last loud
    ``where`` its value reaches, so the branch can be computed again there.
    """
    n = len(ops)
    # Without a where, nothing is quiet, and a slot's last reader is simply the last: the first
    # met going backwards.
    read = bytearray(n)
    for s in outputs:
        read[s] = True  # the outputs are kept
    frees: list[tuple[int, ...]] = [()] * n
    for i in range(n - 1, -1, -1):
        op = ops[i]
        spec = op.spec
        if spec is not None and spec.cls.masks_gradient:
            break
        fresh = None  # (a list: one instruction may free 100,000 slots, a stack's)
        for j in op.args:
            if not read[j]:
                read[j] = True
                if fresh is None:
                    fresh = [j]
                else:
                    fresh.append(j)
        if fresh is not None:
            frees[i] = tuple(fresh)
    else:
        return frees, frozenset(), {}
    masking = {
        i: _branches(op) for i, op in enumerate(ops) if op.spec is not None and op.spec.cls.masks_gradient
    }
    loud = [False] * n
    reach = [-1] * n  # the last loud where a value reaches through branches (-1: none)
    last = [-1] * n
    for s in outputs:
        loud[s] = True
    quiet: set[int] = set()
    for i in range(n - 1, -1, -1):
        op = ops[i]
        if reach[i] >= 0 and not loud[i] and op.kind in (CALL, UNPACK, GRAD):
            quiet.add(i)  # what a quiet instruction reads flows on to the same where
            at = reach[i]
            for j in op.args:
                if last[j] < at:
                    last[j] = at
                if reach[j] < at:
                    reach[j] = at
            continue
        branches = masking.get(i, ())
        for k, j in enumerate(op.args):
            if last[j] < i:
                last[j] = i
            if k in branches:
                if reach[j] < i:
                    reach[j] = i
            else:
                loud[j] = True
    guards: dict[int, tuple[int, ...]] = {}
    for i, branches in masking.items():
        if i not in quiet:
            quiet_branches = tuple(ops[i].args[k] for k in branches if ops[i].args[k] in quiet)
            if quiet_branches:
                guards[i] = quiet_branches
    return _frees(last, outputs, n), frozenset(quiet), guards


def _frees(last: list[int], outputs: tuple[int, ...], n: int) -> list[tuple[int, ...]]:
    """For each instruction, the slots it is the last reader of (the outputs are kept)."""
    keep = set(outputs)
    freed: dict[int, list[int]] = {}
    for j, i in enumerate(last):
        if i >= 0 and j not in keep:
            freed.setdefault(i, []).append(j)
    frees: list[tuple[int, ...]] = [()] * n
    for i, slots in freed.items():
        frees[i] = tuple(slots)
    return frees
