"""A recorded graph as a Program: a Python function of Variables traced, as JAX traces one.

Calling a model on Variables records a graph of registered functions (each a name and its
options). Walked back from the outputs, that graph is a Program like a parsed expression's, so
whatever serves expressions serves it too: above all the batch axis (:mod:`gradcli.batching`),
which turns the rows of a Hessian or a Jacobian into one batched run instead of a backward pass
per row.

The Program is the computation *at the point it was recorded*: values the function read from
its inputs' arrays (a branch taken on ``x.data``, an array made from them) are constants in it.
It stands for the function only where every row of a batch is that same point (the copies of a
Hessian, a Jacobian, the pure partials), never at other points (a numerical check's steps).

A graph of derivatives (``grad(..., create_graph=True)``) is traced the same way: its functions
are registered ones and the engine's own shape functions (:data:`gradcli.batching.INTERNAL`).
Only what depends on the inputs becomes instructions; the rest of the graph, whatever it is made
of, is constants. Where a function that depends on them is neither (a ``Function`` subclass that
was not registered, a strong zero's mask), there is no Program: :func:`program_of` returns None
and the caller keeps to the graph itself.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .batching import INTERNAL
from .engine import Function, Primitive, Variable
from .functions.registry import REGISTRY, Spec, load_all
from .program import CALL, CONST, INPUT, UNPACK, Op, Program


class Trace:
    """What :func:`program_of` found: the ``program``, and ``elements``, the numbers one run of it
    computes in all (every value of the graph: what each row of a batch costs, as
    :func:`gradcli.batching.elements_per_run` counts it, without a run)."""

    __slots__ = ("program", "elements")

    def __init__(self, program: Program, elements: int) -> None:
        self.program, self.elements = program, elements


def program_of(outputs: Sequence[Variable], inputs: Mapping[str, Variable]) -> Trace | None:
    """The graph from ``inputs`` (name -> a leaf Variable: those the model was called with, the
    seeds of a recorded backward pass) to ``outputs`` as a Program of those inputs, or None when
    a function that depends on them has no entry whose options can be read back. Other leaves,
    and values that depend on no input, are constants of the Program."""
    functions = _functions(outputs, inputs)
    if functions is None:
        return None
    live = {id(f) for f, _, _ in functions}
    names = {id(v): n for n, v in inputs.items()}
    order = {n: k for k, n in enumerate(inputs)}
    ops: list[Op] = []
    slots: dict[int, int] = {}  # id of a Variable of the graph -> its slot
    elements = 0

    def slot(v: Variable) -> int:
        nonlocal elements
        known = slots.get(id(v))
        if known is None:
            name = names.get(id(v))
            if name is not None:
                op = Op(INPUT, value=name, where=order[name])
            else:
                op = Op(CONST, value=v if not v.requires_grad else Variable(v.data, requires_grad=False))
            known = slots[id(v)] = len(ops)
            ops.append(op)
            elements += _size(v.data)
        return known

    for f, spec, params in functions:
        same = _times_one(f, spec, live, names)
        if same is not None:  # x * 1.0 is x, bit for bit: no instruction
            slots[id(f.outputs[0]())] = slot(same)
            continue
        args = tuple([slot(x) for x in f.inputs])
        refs = f._outputs
        call = len(ops)
        if not isinstance(refs, tuple):  # one output
            out = refs()
            assert out is not None  # a consumer or the caller holds it
            ops.append(Op(CALL, args, spec, params))
            slots[id(out)] = call
            elements += _size(out.data)
            continue
        ops.append(Op(CALL, args, spec, params, n_outputs=len(refs)))
        for k, r in enumerate(refs):
            o = r()
            if o is not None:
                slots[id(o)] = len(ops)
                ops.append(Op(UNPACK, args=(call,), value=(k, len(refs))))
        elements += sum(_size(s) for s in f._out_shapes)
    result = tuple([slots[id(y)] if id(y) in slots else slot(y) for y in outputs])
    return Trace(Program("", ops, result, {}), elements)


def _times_one(f: Function, spec: Spec, live: set[int], names: Mapping[int, str]) -> Variable | None:
    """The input that ``f`` hands back unchanged, where ``f`` multiplies it by a constant 1.0 (the
    seed of ones of a scalar's gradient, in a graph of derivatives): a float64 value of the
    output's shape, whose product with one is itself in every element (-0.0, inf and NaN
    included), at every point the Program runs at. None otherwise."""
    if spec.name != "mul":
        return None
    a, b = f.inputs
    for x, one in ((a, b), (b, a)):
        d = one.data
        kind = type(d)
        if not (kind is np.float64 or kind is np.ndarray and d.size == 1 and d.dtype == np.float64):
            continue
        if d.reshape(-1)[0] != 1.0 or id(one) in names or one.creator is not None and id(one.creator) in live:
            continue  # (a value of the inputs is 1.0 here, not at other rows)
        xd = x.data
        kind = type(xd)
        if not (kind is np.float64 or kind is np.ndarray) or xd.dtype != np.float64 or d.ndim > xd.ndim:
            continue
        out = f.outputs[0]()
        if out is not None and xd.shape == out.data.shape:
            return x
    return None


_generation = operator.attrgetter("generation")


def _size(x: Any) -> int:
    shape = x if type(x) is tuple else x.shape if hasattr(x, "shape") else np.shape(x)
    return math.prod(shape)  # not np.size, which would compute a Dask array


def _functions(
    outputs: Sequence[Variable], inputs: Mapping[str, Variable]
) -> list[tuple[Function, Spec, dict[str, Any]]] | None:
    """Every function of the graph that depends on ``inputs``, each with its entry (in the registry,
    or one of the engine's own of :data:`gradcli.batching.INTERNAL`) and its options, inputs
    before the functions that read them; None if one has no entry. A function that depends on
    no input is a constant, whatever it is. No recursion: a stack."""
    reached: set[Function] = set()
    todo = [y.creator for y in outputs if y.creator is not None]
    while todo:
        f = todo.pop()
        if f in reached:
            continue
        reached.add(f)
        for x in f.inputs:
            c = x.creator
            if c is not None and c not in reached:
                todo.append(c)
    leaves = {id(v) for v in inputs.values()}
    live: set[Function] = set()
    found = []
    # A function's generation is above those of its inputs' creators: in increasing generation,
    # each comes after what it reads.
    for f in sorted(reached, key=_generation):
        for x in f.inputs:
            if id(x) in leaves or x.creator in live:
                break
        else:
            continue
        entry = _registered(f)
        if entry is None:
            return None
        live.add(f)
        found.append((f, *entry))
    return found


def _registered(f: Function) -> tuple[Spec, dict[str, Any]] | None:
    """The entry of ``f``'s class and the options ``f`` was made with, or None. A table row keeps
    its options in ``params``; a class keeps each as the attribute of its name (the parameters
    of its ``__init__``, which the registry lists)."""
    name = getattr(type(f), "registry_name", None)
    if name is None:  # maybe a class of a module of functions not imported yet (engine's MatMul)
        load_all()
        name = getattr(type(f), "registry_name", None)
    spec = REGISTRY.get(name) if name is not None else None
    if spec is None or spec.cls is not type(f):
        spec = INTERNAL.get(type(f))
    if spec is None:
        return None
    if isinstance(f, Primitive):
        return spec, dict(f.params)
    if spec.param_names and not type(f).__module__.startswith("gradcli."):
        # A plugin's class may keep its options under other names, or changed (self.k = 2 * k):
        # read back they could be wrong, so a graph with one is not traced.
        return None
    params = {}
    for name in spec.param_names:
        if not hasattr(f, name):
            return None
        params[name] = getattr(f, name)
    return spec, params
