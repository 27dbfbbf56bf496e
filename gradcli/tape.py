"""First derivatives of a Program by a tape: forward over its instructions on plain arrays, then
one reverse sweep, building no graph.

A Program is already a topological order (SSA, in the order the parser reduced it), so reverse
mode needs no Variables: each instruction's value is kept in its slot, and its
function's rule, the same one the engine runs (:meth:`gradcli.engine.Function.vjp` on arrays),
turns the gradient of its output into those of its inputs, from the last instruction to the
first. It serves ``gradcli eval`` and :func:`gradcli.calculus.evaluate`; the Variable/Function
graph remains for higher orders, ``grad()`` inside expressions, ``explain``, ``graph`` and the
Python API. A Program that a tape cannot run (``grad()`` inside, or a plugin whose backward is
written with Variables) says so with :func:`runs_on_tape`, and goes through the graph instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import backend
from .backend import as_array
from .engine import (
    Function,
    Primitive,
    Spare,
    apply_rule,
    as_tuple,
    fit_array,
    gradient_sum,
    lending,
    own,
    paused_gc,
    seed_like,
    sole,
)
from .program import CALL, CONST, FAILURES, GRAD, INPUT, UNPACK, EvaluationError, ExpressionError, Op, Program


class _Needs:
    """What a rule reads of an input on a tape, in place of its Variable: whether it needs a
    gradient (``Function.needs_input_grad`` and table rules read ``inputs[k].requires_grad``)."""

    __slots__ = ("requires_grad",)

    def __init__(self, requires_grad: bool) -> None:
        self.requires_grad = requires_grad


_NEEDED, _CONSTANT = _Needs(True), _Needs(False)


def runs_on_tape(program: Program) -> bool:
    """Whether every instruction can run on a tape: no ``grad()`` inside, and every function's
    rule runs on arrays (``raw_vjp``: the library's own; plugins' backward wants Variables)."""
    cached = getattr(program, "_runs_on_tape", None)
    if cached is None:
        cached = all(
            op.kind != GRAD and (op.kind != CALL or (op.spec is not None and op.spec.cls.raw_vjp))
            for op in program.ops
        )
        program._runs_on_tape = cached  # type: ignore[attr-defined]
    return bool(cached)


def first_order(
    program: Program, arrays: Mapping[str, Any], wrt: Sequence[str]
) -> tuple[list[Any], list[dict[str, Any]]]:
    """The outputs of ``program`` at ``arrays`` and, for each output, the gradient of the sum of
    its elements with respect to each input named in ``wrt`` (zeros where it does not reach)."""
    with paused_gc():
        tape = _forward(program, arrays, set(wrt))
        outputs = [tape.slots[j] for j in program.outputs]
        last = len(program.outputs) - 1
        grads = [_reverse(program, tape, j, wrt, arrays, k == last) for k, j in enumerate(program.outputs)]
    return outputs, grads


class _Tape:
    """What the forward pass leaves for the reverse sweep: each slot's value, the function of
    each call that needs a gradient, which slots need one, and generations (as the engine's);
    the slots each function's rules read, and how many rules read each slot."""

    __slots__ = ("slots", "shapes", "functions", "rules", "needs", "generation", "reads", "readers")

    def __init__(self, n: int) -> None:
        self.slots: list[Any] = [None] * n
        self.shapes: list[tuple[int, ...]] = [()] * n
        self.functions: list[Function | None] = [None] * n
        self.rules: list[_Rules | None] = [None] * n  # see _table_rules
        self.needs = [False] * n
        self.generation = [0] * n
        self.reads: list[tuple[int, ...]] = [()] * n
        self.readers = [0] * n


def _forward(program: Program, arrays: Mapping[str, Any], live: set[str], keep_all: bool = False) -> _Tape:
    """Run every instruction, keeping what the reverse sweep needs. A value no rule will read
    (``x*y``'s output, or ``neg``'s input) is dropped after its last use in forward, as the
    graph's own run does without a graph: a big-array expression holds fewer arrays at once.

    (One loop for a million instructions: what every call repeats is looked up once per
    function and pattern of inputs wanting gradients, in :data:`_PLANS`.)"""
    ops = program.ops
    tape = _Tape(len(ops))
    slots, shapes, functions, rules_of, needs, generation, reads_of, readers = (
        tape.slots,
        tape.shapes,
        tape.functions,
        tape.rules,
        tape.needs,
        tape.generation,
        tape.reads,
        tape.readers,
    )
    quiet, guards, frees = program.quiet, program.guards, program.frees
    read = [keep_all] * len(ops)  # whether a rule that will run reads the slot
    xp = backend.common_namespace(arrays.values())  # array constants go where the inputs are
    plans, ndarray, float64 = _PLANS, np.ndarray, np.float64
    on_numpy = xp is np
    for j in program.outputs:
        read[j] = True
    for i, op in enumerate(ops):
        kind = op.kind
        if kind == CALL:
            args = op.args
            two = len(args) == 2  # the operators: their arguments without a loop
            pattern = (needs[args[0]], needs[args[1]]) if two else tuple([needs[j] for j in args])
            if True in pattern:  # first: what this call's own rule reads is not free for its result
                plan = None if op.params else plans.get((op.spec.cls, pattern))  # type: ignore[union-attr]
                if plan is None:
                    plan = _plan(op, pattern)
                forward_of, positions, cut, reads_output, rules_of[i] = plan
                functions[i] = forward_of
                needs[i] = True
                if two:
                    g, h = generation[args[0]], generation[args[1]]
                    generation[i] = (g if g > h else h) + 1
                else:
                    below = 0
                    for j in args:
                        if generation[j] > below:
                            below = generation[j]
                    generation[i] = below + 1
                if positions or reads_output:
                    reads = args[cut] if cut is not None else tuple([args[k] for k in positions])
                    if reads_output:
                        reads += (i,)
                    reads_of[i] = reads
                    for j in reads:
                        read[j] = True
                        readers[j] += 1
            else:
                forward_of = _function(op)
            into = None
            if forward_of.ufunc is not None and not (guards and i in guards):  # a where's branches stay
                for j in args:
                    if type(slots[j]) is ndarray:  # (a number is never a buffer to write into)
                        into = _spent(args, frees[i], read, ops, slots)
                        break
            if into is None and two and not (quiet and i in quiet):
                # _call's work for the operators, in place (a million calls); the result goes
                # straight into its slot (a local name would hold it: see _spent)
                try:
                    slots[i] = forward_of.forward(slots[args[0]], slots[args[1]])
                except ExpressionError:
                    raise
                except FAILURES as exc:
                    raise program.failed(op, slots, exc) from exc
                if type(slots[i]) is not float64:
                    slots[i] = _output(program, op, slots[i])
            elif quiet and i in quiet:
                with np.errstate(all="ignore"):
                    slots[i] = _call(program, i, forward_of, slots, into)
            else:
                slots[i] = _call(program, i, forward_of, slots, into)
            if guards and i in guards:
                program.warn_where_taken(i, slots, lambda k, s: _call(program, k, _function(ops[k]), s))
        elif kind == INPUT:
            slots[i] = arrays[op.value]
            needs[i] = op.value in live
        elif kind == CONST:
            slots[i] = op.value.data if on_numpy else backend.moved(op.value.data, xp)
        elif kind == UNPACK:
            slots[i] = program.unpacked(op, slots[op.args[0]])
            needs[i] = needs[op.args[0]]
            generation[i] = generation[op.args[0]]
        else:
            raise EvaluationError(
                "grad() inside an expression needs the graph, not a tape", program.text, op.where
            )
        held = type(slots[i])  # (no local name for the value: it would hold the array, see _spent)
        if held is ndarray:
            shapes[i] = slots[i].shape
        elif held is not float64 and held is not tuple:  # (a number's is (), as the list starts)
            shapes[i] = np.shape(slots[i])
        for j in frees[i]:
            if not read[j] and type(slots[j]) is not tuple:
                slots[j] = None
    return tape


def _plan(op: Any, pattern: tuple[bool, ...]) -> _Plan:
    """For a call whose inputs flagged in ``pattern`` want gradients: its Function (see
    :func:`_function`), what its rules read (the positions of the inputs, and whether the
    output), and its rules for the reverse sweep to run itself (:func:`_table_rules`). Kept in
    :data:`_PLANS` where the Function is shared."""
    f = _function(op, pattern)
    if not hasattr(f, "inputs"):  # a new Function, not one shared
        f.inputs = tuple([_NEEDED if n else _CONSTANT for n in pattern])  # type: ignore[misc]
    if isinstance(f, Primitive):
        positions, output = f.reads(pattern)
    else:  # a rule of its own (a class's vjp) may read every input, and its outputs
        positions, output = tuple(range(len(pattern))), f.uses_outputs
    # The inputs read, as a slice of the arguments where they are consecutive (all of them: the
    # arguments' own tuple)
    cut = (
        slice(positions[0], positions[-1] + 1)
        if positions and len(positions) == positions[-1] - positions[0] + 1
        else None
    )
    plan = (f, positions, cut, output, _table_rules(f, pattern, output))
    if f is _SHARED.get((type(f), pattern)):
        _PLANS[(type(f), pattern)] = plan
    return plan


def _table_rules(f: Function, pattern: tuple[bool, ...], reads_output: bool) -> _Rules | None:
    """For a table row of two inputs without options whose rules that run (those of the inputs
    flagged in ``pattern``) do not read its output: ``(rule, picker, rule, picker)``, a rule
    None where :meth:`Primitive.vjp` gives no gradient. The reverse sweep runs them as that
    method does, on the same arguments in the same order, without the call and its tuples (a
    tape of a million additions runs it a million times). None for anything else."""
    if (
        not isinstance(f, Primitive)
        or type(f).vjp is not Primitive.vjp
        or f.params
        or len(pattern) != 2
        or len(f.rules) != 2
        or reads_output
    ):
        return None
    (r0, r1), (p0, p1) = f.rules, f._pickers
    return (r0 if pattern[0] else None, p0, r1 if pattern[1] else None, p1)


def _spent(
    args: tuple[int, ...], last: tuple[int, ...], read: list[bool], ops: list[Any], slots: list[Any]
) -> Any:
    """A buffer a call of a ufunc may write its result into: an argument's, where this
    call is its last use, no rule reads it, and it is an array the tape's own forward made that
    nothing else holds (:func:`gradcli.engine.sole`; never an input, a constant, or a value a
    forward handed back). Its shape must be the result's. None where there is none: a new array."""
    for j in args:
        if j in last and not read[j] and ops[j].kind == CALL and sole(slots[j], 1):
            buffer = slots[j]
            if buffer.dtype == np.float64 and buffer.shape == np.broadcast_shapes(
                *[np.shape(slots[k]) for k in args]
            ):
                return buffer
    return None


def _function(op: Any, pattern: tuple[bool, ...] | None = None) -> Function:
    """A Function object for a call instruction: a new one, with its options; or, for a table
    row without options whose gradient is wanted (``pattern``: which inputs want one), one shared
    by every call with the same inputs wanting gradients (it holds nothing else, and a tape of a
    million additions would hold a million of them)."""
    spec = op.spec
    assert spec is not None
    cls = spec.cls
    if pattern is None or op.params or not issubclass(cls, Primitive):
        return cls(**op.params)
    shared = _SHARED.get((cls, pattern))
    if shared is None:
        shared = _SHARED[(cls, pattern)] = cls()
        shared.inputs = tuple([_NEEDED if n else _CONSTANT for n in pattern])
    return shared


_SHARED: dict[tuple[type, tuple[bool, ...]], Function] = {}
_Rules = tuple[Any, Any, Any, Any]
_Plan = tuple[Function, tuple[int, ...], "slice | None", bool, "_Rules | None"]
_PLANS: dict[tuple[type, tuple[bool, ...]], _Plan] = {}


def _call(program: Program, i: int, forward_of: Function, slots: Any, into: Any = None) -> Any:
    """Instruction ``i`` (a call of ``forward_of``) on the arrays in ``slots``, its errors as the
    graph's run reports them; written into the buffer ``into`` where given (the same ufunc, the
    same numbers). (The local's name tells floating-point warnings which function ran:
    gradcli.fpe.)"""
    op = program.ops[i]
    args = op.args
    try:
        if into is not None:
            return forward_of.ufunc(*[slots[j] for j in args], out=into)  # type: ignore[misc]
        if len(args) == 2:  # the operators: their arguments without building a list
            out = forward_of.forward(slots[args[0]], slots[args[1]])
        else:
            out = forward_of.forward(*[slots[j] for j in args])
    except ExpressionError:
        raise
    except FAILURES as exc:
        raise program.failed(op, slots, exc) from exc
    return out if type(out) is np.float64 else _output(program, op, out)


def _output(program: Program, op: Op, out: Any) -> Any:
    """A call's result as the tape keeps it: float64 arrays and numbers, a tuple of them for a
    function with several outputs (an error where one was not unpacked)."""
    if type(out) is tuple:
        if op.n_outputs == 1:
            raise EvaluationError(
                f"{op.spec.name}() has {len(out)} outputs: unpack them, e.g. "  # type: ignore[union-attr]
                f"{', '.join('abcdefgh'[: len(out)])} = {op.spec.name}(...)",  # type: ignore[union-attr]
                program.text,
                op.where,
            )
        return tuple([_float64(y) for y in out])
    return _float64(out)


def _float64(y: Any) -> Any:
    kind = type(y)
    if kind is np.float64 or kind is np.ndarray and y.ndim and y.dtype == np.float64:
        return y
    return as_array(y)


def _reverse(
    program: Program, tape: _Tape, output: int, wrt: Sequence[str], arrays: Mapping[str, Any], last: bool
) -> dict[str, Any]:
    """One reverse sweep from slot ``output`` (seeded with ones): the gradient of each ``wrt``.

    Functions run in the engine's order (highest generation first, ties in the order they were
    reached: :class:`gradcli.engine.GenerationQueue`'s, kept here in place), so gradients add up
    in the same order and the numbers are the graph's, bit for bit. In the ``last`` sweep over
    the tape, each value goes once the last rule that reads it has run.
    """
    ops, slots, functions, rules_of, needs, generation, shapes, readers, reads_of = (
        program.ops,
        tape.slots,
        tape.functions,
        tape.rules,
        tape.needs,
        tape.generation,
        tape.shapes,
        tape.readers,
        tape.reads,
    )
    # Each slot's gradient so far, by slot (a list: a million slots are a million lookups);
    # a call's goes once its function has run, and no gradient reaches it after that (those
    # that take it are of higher generations, and ran first). Added into in place where nothing
    # else holds one (sole).
    grads: list[Any] = [None] * len(ops)
    outputs_of: dict[int, list[int | None]] | None = None  # worked out at the first call with several outputs
    # The queue: the calls of each generation, by generation, first come first served. A
    # function reaches only those of lower generations than its own, so the highest generation
    # with work left (``top``) only moves down, and only its calls are taken: from ``bucket``,
    # at ``at``; the others are only added to.
    buckets: list[list[int] | None] = [None] * (generation[output] + 1)
    bucket: list[int] = []
    top, at = -1, 0
    # A call with several outputs, queued at the first of its outputs to be reached.
    queued: set[int] = set()
    ndarray, float64 = np.ndarray, np.float64
    spare = Spare()  # what the sweep lets go of, for the results of the rules still to run
    if needs[output]:
        grads[output] = seed_like(slots[output])
        c = _queued(ops, output, queued)
        if c is not None:
            top = generation[c] - 1
            bucket = buckets[top] = [c]
    strong_zeros = False
    gys: tuple[Any, ...] = ()
    gxs: tuple[Any, ...] = ()
    with lending(spare):
        while True:
            if at < len(bucket):  # the next function
                c = bucket[at]
                at += 1
            else:
                if top >= 0:  # a generation done: its calls go (a chain has a million)
                    buckets[top] = None
                top -= 1
                while top >= 0 and buckets[top] is None:
                    top -= 1
                if top < 0:
                    break
                bucket = buckets[top]  # type: ignore[assignment]
                c, at = bucket[0], 1
            op, backward_of, rules = ops[c], functions[c], rules_of[c]
            assert backward_of is not None
            args = op.args
            if rules is not None and not strong_zeros and not spare.buffers:
                # A table row of two inputs (_table_rules): Primitive.vjp's work, in place
                gys = (grads[c],)  # (no local name for it: spare.give counts who holds it)
                grads[c] = None
                r0, p0, r1, p1 = rules
                values = (gys[0], slots[args[0]], slots[args[1]], None)  # (gy, x, y, out)
                gxs = (None if r0 is None else r0(*p0(values)), None if r1 is None else r1(*p1(values)))
                del values
            else:
                if op.n_outputs > 1:
                    if outputs_of is None:
                        outputs_of = _unpacked(ops)
                    out = slots[c]
                    gys = tuple(
                        seed_like(y, 0.0) if u is None or grads[u] is None else grads[u]
                        for u, y in zip(outputs_of.get(c, [None] * len(out)), out)
                    )
                    for u in outputs_of.get(c, ()):
                        if u is not None:
                            grads[u] = None
                    ys = out
                else:
                    gys = (grads[c],)  # (no local name for it: spare.give counts who holds it)
                    grads[c] = None
                    ys = (slots[c],)
                xs = (slots[args[0]], slots[args[1]]) if len(args) == 2 else tuple([slots[j] for j in args])
                if not backward_of.uses_outputs:
                    ys = ()
                if spare.buffers and Spare.lends_to(backward_of):  # its results into buffers let go of
                    gxs = spare.run(backward_of, gys, xs, ys, strong_zeros)
                elif strong_zeros:
                    gxs = apply_rule(backward_of, gys, xs, ys, strong_zeros)
                else:
                    gxs = backward_of.vjp(gys, xs, ys)
                    if type(gxs) is not tuple:
                        gxs = as_tuple(gxs)
                del ys, xs
            if last:  # the last sweep over this tape: a value no rule still to run reads is let go
                for j in reads_of[c]:
                    readers[j] -= 1
                    if not readers[j]:
                        if type(slots[j]) is ndarray:  # (a number is no buffer)
                            spare.give(slots[j], 1)
                        slots[j] = None
            if backward_of.masks_gradient:
                strong_zeros = True
            for j, gx in zip(args, gxs):
                if gx is None or not needs[j]:
                    continue
                held = type(gx)
                if held is float64:  # (a number's shape is ())
                    if shapes[j]:
                        gx = fit_array(gx, shapes[j])
                elif held is not ndarray or gx.shape != shapes[j]:
                    gx = fit_array(gx, shapes[j])
                total = grads[j]
                if total is None:  # the first gradient to reach j: its function is queued
                    grads[j] = gx
                    k = generation[j] - 1  # (an input's is 0: it has none)
                    if k >= 0:
                        q = j if functions[j] is not None else _queued(ops, j, queued)
                        if q is not None:
                            if buckets[k] is None:
                                buckets[k] = [q]
                            else:
                                buckets[k].append(q)  # type: ignore[union-attr]
                elif type(total) is ndarray:
                    alone = sole(total, 2)  # (held by grads and total)
                    grads[j] = gradient_sum(total, gx, alone)
                else:  # a number, or the seed: never added into
                    grads[j] = total + gx
                total = None
            gx = None
            for g in gys:  # a gradient its rule has used, where nothing else holds it
                if type(g) is ndarray:
                    spare.give(g, 2)  # (held by gys and g)
            g = None
    gys = gxs = ()  # the last step's gradients, let go here: own() counts who else holds each
    gx = None
    result = {}
    for name in wrt:
        slot = program.input_slot(name)
        g = grads[slot] if slot is not None else None
        alone = sole(g, 2)  # held by grads and g
        result[name] = np.zeros_like(arrays[name]) if g is None else own(g, alone)
    return result


def _queued(ops: list[Any], j: int, queued: set[int]) -> int | None:
    """The call whose function a gradient reaching slot ``j`` queues: ``j``'s own, or for one of
    the outputs of a call with several, that call's, the first time one of them is reached (None:
    already queued, or an input's)."""
    op = ops[j]
    if op.kind == CALL:
        return j
    if op.kind != UNPACK:
        return None
    c = op.args[0]
    if c in queued:
        return None
    queued.add(c)
    return c


def _unpacked(ops: list[Any]) -> dict[int, list[int | None]]:
    """For each call with several outputs, the slot that holds each of its outputs (None where
    no name took it)."""
    out: dict[int, list[int | None]] = {}
    for i, op in enumerate(ops):
        if op.kind == UNPACK:
            index, count = op.value
            out.setdefault(op.args[0], [None] * count)[index] = i
    return out
