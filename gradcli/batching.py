"""A batch axis through the Program: many independent evaluations as one (JAX's ``vmap`` idea).

Some inputs carry a leading batch axis of length B: row b of each is one evaluation. Running the
Program once on them gives outputs whose row b is what a run on row b alone would give, because
each instruction is applied by its function's *batching rule*: the same function called so that
rows never mix (reductions skip the batch axis, broadcasting lines up behind it, indexing keeps
it). Backward then needs nothing new: the graph built this way is an ordinary graph, and since
rows are independent, the gradient of the sum over rows gives each row its own gradient.

One mechanism serves ``--batch`` (runs of lines with the same shapes as one chunk), Hessians and
Jacobians (a batch of basis seeds, see :mod:`gradcli.calculus`), derivatives of higher order,
numerical checks (a batch of perturbed points), plots (a batch of sample points) and Dask (one
graph instead of a loop).

Rules are one table keyed by registry name (:data:`RULES`, as JAX keeps ``primitive_batchers``
beside its tables of derivative rules): a kind of rule, or a function. Elementwise functions need
no entry. The kinds:

- ``"elementwise"``: ranks are lined up behind the batch axis, then the function is called as is;
- ``"reduce"``: the ``axis`` option is moved past the batch axis (``None``: every axis of a row);
- ``"axis"``: the same for functions where ``axis=None`` has no meaning of its own, with inputs
  without a batch axis broadcast to one (concat, stack, split, softmax);
- ``"leading"``: the function already maps over leading axes (matrix functions on the last two);
- ``"lines"``: row by row, then stacked: correct for anything, and what plugins get;
- a callable ``rule(args, batched, params, size) -> outputs`` for the rest (reshape, matmul, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import backend
from .backend import as_array
from .engine import BroadcastTo, GetItemGrad, SumTo, Variable, broadcast_to, data_of, grad, scatter, sum_to
from .functions.registry import REGISTRY, Spec

Rule = Callable[[list[Any], list[bool], dict[str, Any], int], Any]


class BatchError(ValueError):
    """A batched evaluation that cannot be done as asked (e.g. mismatched batch sizes)."""


def ndim_of(x: Any, batched: bool) -> int:
    """The number of axes of one row."""
    data = x.data if isinstance(x, Variable) else x
    ndim = data.ndim if hasattr(data, "ndim") else np.ndim(data)
    return int(ndim) - (1 if batched else 0)


def _per_row_shape(x: Any, batched: bool) -> tuple[int, ...]:
    shape = tuple(np.shape(data_of(x)))
    return shape[1:] if batched else shape


def _lift(x: Any, rank: int) -> Any:
    """A batched ``x`` with axes of length 1 inserted after the batch axis, up to ``rank`` row axes:
    NumPy broadcasts from the right, so rows then line up with unbatched operands."""
    shape = tuple(np.shape(data_of(x)))
    missing = rank - (len(shape) - 1)
    if missing <= 0:
        return x
    return x.reshape((shape[0],) + (1,) * missing + shape[1:])


def _expand(x: Any, size: int) -> Any:
    """An unbatched ``x`` given a batch axis of ``size`` rows, each a copy (for functions whose
    inputs must all have one, such as concat)."""
    shape = tuple(np.shape(data_of(x)))
    return broadcast_to(x.reshape((1, *shape)), (size, *shape))


def _shift_axis(axis: Any, rank: int, none_means_all: bool) -> Any:
    """``axis`` of a row as an axis of the batched array (rank: axes of one row)."""
    if axis is None:
        return tuple(range(1, rank + 1)) if none_means_all else None
    if isinstance(axis, (tuple, list)):
        return tuple(_shift_axis(a, rank, none_means_all) for a in axis)
    a = int(axis)
    return a + 1 if a >= 0 else a


# --- the kinds of rule ---------------------------------------------------------------------------


def _elementwise(spec: Spec) -> Rule:
    def rule(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
        rank = max(ndim_of(a, b) for a, b in zip(args, batched))
        lifted = [_lift(a, rank) if b else a for a, b in zip(args, batched)]
        return spec(*lifted, **params)

    return rule


def _reduce(spec: Spec, none_means_all: bool = True, expand: bool = False) -> Rule:
    def rule(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
        if expand:
            args = [a if b else _expand(a, size) for a, b in zip(args, batched)]
        rank = ndim_of(args[0], True)
        default = dict(spec.params).get("axis")
        axis = params.get("axis", default)
        moved = dict(params)
        moved["axis"] = _shift_axis(axis, rank, none_means_all)
        return spec(*args, **moved)

    return rule


def _leading(spec: Spec) -> Rule:
    def rule(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
        return spec(*args, **params)

    return rule


def _lines(spec: Spec) -> Rule:
    """Row by row: each row of the batched inputs (unbatched ones as they are), then stacked."""

    def rule(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
        stack = REGISTRY["stack"]
        results = [spec(*[a[i] if b else a for a, b in zip(args, batched)], **params) for i in range(size)]
        if isinstance(results[0], tuple):
            return tuple(stack(*[r[k] for r in results]) for k in range(len(results[0])))
        return stack(*results)

    return rule


_KINDS: dict[str, Callable[[Spec], Rule]] = {
    "elementwise": _elementwise,
    "reduce": _reduce,
    "axis": lambda spec: _reduce(spec, none_means_all=False, expand=True),
    "leading": _leading,
    "lines": _lines,
}


#: The rule made for each entry so far, by the entry's id (with the entry, which keeps it alive).
_MADE: dict[int, tuple[Spec, Rule]] = {}


def rule_for(spec: Spec) -> Rule:
    """The batching rule of a registered function: its entry in :data:`RULES`, else elementwise
    for an elementwise function, else row by row (plugins)."""
    made = _MADE.get(id(spec))
    if made is None or made[0] is not spec:
        made = _MADE[id(spec)] = (spec, _made_rule(spec))
    return made[1]


def _made_rule(spec: Spec) -> Rule:
    kind = RULES.get(spec.name)
    if callable(kind):
        return kind
    if kind is None:
        kind = "elementwise" if spec.elementwise else "lines"
    return _KINDS[kind](spec)


def apply(
    spec: Spec, args: Sequence[Any], batched: Sequence[bool], params: Mapping[str, Any], size: int
) -> Any:
    """``spec`` applied to inputs of which those flagged carry a batch axis of ``size`` rows: every
    output carries one. Without a batched input it is an ordinary call."""
    forward_of = spec  # (on arrays no Function runs: gradcli.fpe names a warning's function by this)
    if True not in batched:
        return forward_of(*args, **params)
    return rule_for(spec)(list(args), list(batched), dict(params), size)


# --- rules of their own: structural functions -------------------------------------------------------


def _reshape(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    shape = params["shape"]
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    return REGISTRY["reshape"](args[0], shape=(size, *shape))


def _transpose(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    rank = ndim_of(args[0], True)
    axes = params.get("axes")
    moved = tuple(range(rank, 0, -1)) if axes is None else tuple(int(a) % max(rank, 1) + 1 for a in axes)
    return REGISTRY["transpose"](args[0], axes=(0, *moved))


def _getitem(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    index = params["index"]
    parts = index if isinstance(index, tuple) else (index,)
    if sum(isinstance(p, (list, np.ndarray)) for p in parts) > 1:
        # Several integer arrays move their axis in front of the batch axis (NumPy's rule for
        # advanced indices that are not side by side): row by row instead.
        return _lines(REGISTRY["getitem"])(args, batched, params, size)
    return REGISTRY["getitem"](args[0], index=(slice(None), *parts))


def _vector_to_matrix(x: Any, batched: bool, side: int) -> tuple[Any, bool]:
    """A batched 1-D operand of matmul as a stack of 1-row (side 0) or 1-column (side 1)
    matrices, so that NumPy does not take the batch axis for a matrix axis."""
    if not batched or ndim_of(x, True) != 1:
        return x, False
    shape = tuple(np.shape(data_of(x)))
    return x.reshape((shape[0], 1, shape[1]) if side == 0 else (shape[0], shape[1], 1)), True


def _matmul_batched(a: Any, b: Any, batched: list[bool]) -> Any:
    ranks = (ndim_of(a, batched[0]), ndim_of(b, batched[1]))
    if ranks == (1, 1) and _per_row_shape(a, batched[0]) == _per_row_shape(b, batched[1]):
        # Two vectors, one of them a batch of them: each row's dot product, as dot's rule takes it.
        return REGISTRY["sum"](REGISTRY["mul"](a, b), axis=-1)
    if batched[0] != batched[1] and sorted(ranks) == [1, 2] and ranks[0 if batched[0] else 1] == 1:
        # A batch of vectors and one matrix: the rows of one 2-D product (a single gemm, where a
        # stack of 1-row matrices is a loop of small products over the batch axis, 2x slower).
        return REGISTRY["matmul"](a, b) if batched[0] else REGISTRY["matmul"](b, REGISTRY["transpose"](a))
    a2, a_vec = _vector_to_matrix(a, batched[0], 0)
    b2, b_vec = _vector_to_matrix(b, batched[1], 1)
    if batched[0] and not a_vec and batched[1] and not b_vec:
        rank = max(ndim_of(a, True), ndim_of(b, True))
        a2, b2 = _lift(a, rank), _lift(b, rank)
    elif batched[0] != batched[1]:
        # One side has the batch axis: an unbatched matrix broadcasts over it, an unbatched
        # stack of matrices needs the batch axis in front of its own leading axes.
        x, bx = (a2, 0) if batched[0] else (b2, 1)
        other = b2 if bx == 0 else a2
        if np.ndim(data_of(other)) > 2:
            x = _lift(x, np.ndim(data_of(other)))
            a2, b2 = (x, b2) if bx == 0 else (a2, x)
    y = REGISTRY["matmul"](a2, b2)
    if a_vec:
        y = REGISTRY["squeeze"](y, axis=-2) if "squeeze" in REGISTRY else _drop_axis(y, -2)
    if b_vec:
        y = REGISTRY["squeeze"](y, axis=-1) if "squeeze" in REGISTRY else _drop_axis(y, -1)
    return y


def _drop_axis(y: Any, axis: int) -> Any:
    shape = list(np.shape(data_of(y)))
    del shape[axis]
    return y.reshape(tuple(shape))


def _matmul(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    return _matmul_batched(args[0], args[1], batched)


def _dot(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    shapes = [_per_row_shape(x, flag) for x, flag in zip(args, batched)]
    if any(len(s) != 1 for s in shapes):
        raise ValueError(
            f"dot takes two vectors (1-D); got shapes {shapes[0]} and {shapes[1]}: use matmul or @"
        )
    return REGISTRY["sum"](REGISTRY["mul"](*args), axis=-1)


def _linear(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    y = _matmul_batched(args[0], args[1], batched[:2])
    if len(args) == 2:
        return y
    return _elementwise(REGISTRY["add"])([y, args[2]], [True, batched[2]], {}, size)


def _mse(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    d = _elementwise(REGISTRY["sub"])(args, batched, {}, size)
    rank = ndim_of(d, True)
    return REGISTRY["mean"](REGISTRY["mul"](d, d), axis=tuple(range(1, rank + 1)))


def _loss(name: str, line_up: bool) -> Rule:
    """A loss with PyTorch's ``reduction``: the per-element (or per-sample) losses of every row
    at once, then each row reduced on its own. ``line_up``: the inputs broadcast elementwise."""

    def rule(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
        spec = REGISTRY[name]
        args = [a if b else _expand(a, size) for a, b in zip(args, batched)]
        if line_up:
            rank = max(ndim_of(a, True) for a in args)
            args = [_lift(a, rank) for a in args]
        options = {**dict(spec.params), **params}
        reduction = options.pop("reduction", "mean")
        if "axis" in options:
            options["axis"] = _shift_axis(options["axis"], ndim_of(args[0], True), False)
        losses = spec(*args, **options, reduction="none")
        if reduction == "none":
            return losses
        axes = tuple(range(1, ndim_of(losses, True) + 1))
        return REGISTRY["mean" if reduction == "mean" else "sum"](losses, axis=axes)

    return rule


def _flat_rows(x: Any) -> Any:
    """Each row flattened: what ``axis=None`` means for cumsum, roll and repeat."""
    return x.reshape((int(np.shape(data_of(x))[0]), -1))


def _flattening(name: str) -> Rule:
    """A function whose ``axis=None`` works on the flattened array (cumsum, cumprod, repeat)."""

    def rule(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
        spec = REGISTRY[name]
        options = {**dict(spec.params), **params}
        if options.get("axis") is None:
            return spec(_flat_rows(args[0]), **{**options, "axis": 1})
        options["axis"] = _shift_axis(options["axis"], ndim_of(args[0], True), False)
        return spec(args[0], **options)

    return rule


def _roll(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    options = {**dict(REGISTRY["roll"].params), **params}
    if options.get("axis") is None:
        shape = np.shape(data_of(args[0]))
        return REGISTRY["roll"](_flat_rows(args[0]), shift=options["shift"], axis=1).reshape(shape)
    options["axis"] = _shift_axis(options["axis"], ndim_of(args[0], True), False)
    return REGISTRY["roll"](args[0], **options)


def _squeeze(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    axis = params.get("axis")
    if axis is None:  # every axis of length 1 of a row, never the batch axis (B may be 1)
        row = _per_row_shape(args[0], True)
        axis = tuple(i for i, n in enumerate(row) if n == 1)
    return REGISTRY["squeeze"](args[0], axis=_shift_axis(axis, ndim_of(args[0], True), False))


def _ravel(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    return _flat_rows(args[0])


def _moved(name: str, *options: str) -> Rule:
    """A function whose options name axes of a row (swapaxes, moveaxis, trace)."""

    def rule(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
        spec = REGISTRY[name]
        given = {**dict(spec.params), **params}
        rank = ndim_of(args[0], True)
        for o in options:
            given[o] = _shift_axis(given[o], rank, False)
        return spec(args[0], **given)

    return rule


def _tile(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    reps = params.get("reps")
    reps = tuple(reps) if isinstance(reps, (tuple, list)) else (reps,)
    x = args[0]
    rank = ndim_of(x, True)
    if len(reps) > rank:  # NumPy puts new axes in front: behind the batch axis here
        x, rank = _lift(x, len(reps)), len(reps)
    reps = (1,) * (rank - len(reps)) + reps
    return REGISTRY["tile"](x, reps=(1, *reps))


def _outer(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    a, b = args
    a = a.reshape((size, -1, 1)) if batched[0] else a.reshape((-1, 1))
    b = b.reshape((size, 1, -1)) if batched[1] else b.reshape((1, -1))
    return REGISTRY["mul"](a, b)


def _inner(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    if all(ndim_of(a, b) == 1 for a, b in zip(args, batched)):
        return REGISTRY["sum"](REGISTRY["mul"](*args), axis=-1)
    return _lines(REGISTRY["inner"])(args, batched, params, size)


def _solve(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    a, b = args
    if batched[1] and ndim_of(b, True) == 1:  # a batch of vectors, as columns
        x = REGISTRY["solve"](a, b.reshape((*np.shape(data_of(b)), 1)))
        return _drop_axis(x, -1)
    if batched[0] and not batched[1] and np.ndim(data_of(b)) == 2:
        b = b.reshape((1, *np.shape(data_of(b))))
    return REGISTRY["solve"](a, b)


def _cross(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    rank = max(ndim_of(a, b) for a, b in zip(args, batched))
    lifted = [_lift(a, rank) if b else a for a, b in zip(args, batched)]
    axis = params.get("axis", -1)
    return REGISTRY["cross"](*lifted, axis=axis + 1 if axis >= 0 else axis)


def _einsum(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    subscripts = params.get("subscripts", "").replace(" ", "")
    inputs, arrow, output = subscripts.partition("->")
    terms = inputs.split(",")
    if not arrow:  # implicit output: the letters used once, in order, after any '...'
        letters = [c for c in inputs if c.isalpha()]
        output = ("..." if "..." in inputs else "") + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1)
        )
    free = next(c for c in "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA" if c not in subscripts)
    terms = [free + t if b else t for t, b in zip(terms, batched)]
    return REGISTRY["einsum"](*args, subscripts=f"{','.join(terms)}->{free}{output}")


# --- the engine's own functions in graphs of derivatives -------------------------------------------


def _sum_to(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    shape = tuple(params["shape"])
    x = args[0]
    lead = ndim_of(x, True) - len(shape)
    if lead > 0:  # the leading axes of a row that broadcasting added, then its axes of length 1
        x = REGISTRY["sum"](x, axis=tuple(range(1, lead + 1)))
    return sum_to(x, (size, *shape))


def _broadcast_to(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    shape = tuple(params["shape"])
    return broadcast_to(_lift(args[0], len(shape)), (size, *shape))


def _getitem_grad(args: list[Any], batched: list[bool], params: dict[str, Any], size: int) -> Any:
    index = params["index"]
    parts = index if isinstance(index, tuple) else (index,)
    if sum(isinstance(p, (list, np.ndarray)) for p in parts) > 1:  # as getitem's rule: row by row
        return _lines(INTERNAL[GetItemGrad])(args, batched, params, size)
    return scatter(args[0], (slice(None), *parts), (size, *params["shape"]))


#: The engine's own functions that rules put into graphs of derivatives (undoing broadcasting,
#: the adjoint of indexing): not functions of expressions, so not in the registry, but a graph
#: of derivatives run on a batch axis (:mod:`gradcli.tracing`) holds them. Their names are no
#: identifiers, so that no registered function can take them.
INTERNAL: dict[type, Spec] = {
    cls: Spec(name, cls, ("x",), 0, params, doc=doc, rule="")
    for cls, name, params, doc in [
        (SumTo, "engine.sum_to", (("shape", ()),), "a gradient summed to the shape of its input"),
        (BroadcastTo, "engine.broadcast_to", (("shape", ()),), "a gradient spread over a shape"),
        (GetItemGrad, "engine.getitem_grad", (("index", None), ("shape", ())), "the adjoint of indexing"),
    ]
}


#: The batching rule of each function that is not elementwise.
RULES: dict[str, str | Rule] = {
    "sum": "reduce",
    "mean": "reduce",
    "max": "reduce",
    "min": "reduce",
    "norm": "reduce",
    "logsumexp": "reduce",
    "softmax": "axis",
    "log_softmax": "axis",
    "split": "axis",
    "concat": "axis",
    "stack": "axis",
    "sincos": "elementwise",
    "reshape": _reshape,
    "transpose": _transpose,
    "getitem": _getitem,
    "matmul": _matmul,
    "dot": _dot,
    "linear": _linear,
    "mse": _mse,
    "prod": "reduce",
    "var": "reduce",
    "std": "reduce",
    "flip": "reduce",
    "expand_dims": "axis",
    "cross": _cross,
    "det": "leading",
    "slogdet": "leading",
    "inv": "leading",
    "cholesky": "leading",
    "eigh": "leading",
    "tril": "leading",
    "triu": "leading",
    "cumsum": _flattening("cumsum"),
    "cumprod": _flattening("cumprod"),
    "repeat": _flattening("repeat"),
    "roll": _roll,
    "squeeze": _squeeze,
    "ravel": _ravel,
    "swapaxes": _moved("swapaxes", "axis1", "axis2"),
    "moveaxis": _moved("moveaxis", "source", "destination"),
    "trace": _moved("trace", "axis1", "axis2"),
    "tile": _tile,
    "outer": _outer,
    "inner": _inner,
    "solve": _solve,
    "einsum": _einsum,
    "diag": "lines",
    "kron": "lines",
    "huber": _loss("huber", line_up=True),
    "binary_cross_entropy": _loss("binary_cross_entropy", line_up=True),
    "cross_entropy": _loss("cross_entropy", line_up=False),
    "engine.sum_to": _sum_to,
    "engine.broadcast_to": _broadcast_to,
    "engine.getitem_grad": _getitem_grad,
}


# --- running a Program ------------------------------------------------------------------------------


def batch_size(values: Mapping[str, Any], batched: Sequence[str]) -> int:
    sizes = {}
    for n in batched:
        shape = np.shape(data_of(values[n]))
        sizes[n] = int(shape[0]) if shape else -1
    bad = [n for n, s in sizes.items() if s < 0]
    if bad:
        raise BatchError(f"{bad[0]!r} has no batch axis (a batched input needs at least one axis)")
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{n}: {s}" for n, s in sizes.items())
        raise BatchError(f"batched inputs have different numbers of rows ({shown})")
    return next(iter(sizes.values()), 1)


def run(
    program: Any,
    variables: Mapping[str, Variable],
    batched: Sequence[str],
    seen: Callable[[Any], None] | None = None,
) -> list[Any]:
    """Run ``program`` with the inputs named in ``batched`` carrying a batch axis (row b is one
    evaluation). Returns the outputs, each with a batch axis (an output that depends on no batched
    input is broadcast to one, so every output has its rows). ``seen``, if given, is called with
    every value the run computes. Inputs that are arrays, none of them a Variable, give arrays:
    each function computes on arrays alone and no graph is made (except in a program with
    ``grad()`` inside, whose inner derivatives need the graph: it runs on Variables)."""
    from .program import CALL, CONST, GRAD, INPUT, UNPACK, constant_in

    size = batch_size(variables, batched)
    wanted = set(batched)
    inside = getattr(program, "differentiates_inside", False)
    # Arrays in (inputs, none of them a Variable): arrays out, each function computing on arrays
    # alone, with no node of a graph made (a Hessian's rows, which nothing differentiates).
    raw = bool(variables) and not inside and not any(isinstance(v, Variable) for v in variables.values())
    xp = backend.common_namespace(variables.values()) if raw else np
    ops = program.ops
    slots: list[Any] = [None] * len(ops)
    flags = [False] * len(ops)

    def execute(i: int, slots: Any) -> Any:
        op = ops[i]
        kind = op.kind
        if kind == CALL:
            args = [slots[j] for j in op.args]
            these = [flags[j] for j in op.args]
            flags[i] = True in these
            out = apply(op.spec, args, these, op.params, size)
        elif kind == INPUT:
            out = variables[op.value]
            flags[i] = op.value in wanted
            if not flags[i] and inside:
                # grad(EXPR, x) inside must see each row's own x, not one x shared by all rows.
                out, flags[i] = _expand(out, size), True
        elif kind == CONST:
            if raw:  # (in the inputs' array library, as constant_in moves it)
                return backend.moved(op.value.data, xp)
            out = constant_in(op.value, variables) if op.value.ndim else op.value
        elif kind == UNPACK:
            index, _count = op.value
            out = slots[op.args[0]][index]
            flags[i] = flags[op.args[0]]
        elif kind == GRAD:
            y, x = slots[op.args[0]], slots[op.args[1]]
            # Rows are independent, so d(sum over rows)/dx gives each row its own derivative.
            out = grad([y], [x], create_graph=True)[0]
            flags[i] = flags[op.args[1]]
        else:
            raise BatchError(f"cannot batch the instruction {kind!r}")
        if raw:
            if kind == CALL:  # float64, a number as a NumPy scalar: what a Variable would hold
                out = tuple([as_array(o) for o in out]) if type(out) is tuple else as_array(out)
            return out
        if getattr(op, "leaf", False) and not out.requires_grad:
            # A name assigned a constant that a grad(EXPR, NAME) differentiates by: a leaf, one per row.
            out = Variable(data_of(out))
            if not flags[i]:
                out, flags[i] = _expand(out, size), True
        return out

    quiet: frozenset[int] = getattr(program, "quiet", frozenset())
    guards: dict[int, tuple[int, ...]] = getattr(program, "guards", {})
    # Each slot goes after its last reader, as in Program.run: a run without a graph (no_grad)
    # then holds only the arrays still to be read, each of them a batch of rows.
    frees: Sequence[tuple[int, ...]] = getattr(program, "frees", ())
    for i in range(len(ops)):
        if i in quiet:  # a where's branch: see Program.warn_where_taken
            with np.errstate(all="ignore"):
                slots[i] = execute(i, slots)
        else:
            slots[i] = execute(i, slots)
        if i in guards:
            program.warn_where_taken(i, slots, execute)
        if seen is not None:
            seen(slots[i])
        for j in frees[i] if frees else ():
            slots[j] = None
    outs = []
    for j in program.outputs:
        out = slots[j]
        outs.append(out if flags[j] else _expand(out, size))
    return outs


def elements_per_run(program: Any, variables: Mapping[str, Variable]) -> int:
    """How many numbers one (unbatched) run of ``program`` computes in all: what each row of a
    batch costs in memory, to size chunks by."""
    total = 0

    def count(value: Any) -> None:
        nonlocal total
        for v in value if isinstance(value, tuple) else (value,):
            total += int(np.prod(np.shape(data_of(v))))  # np.size would compute a Dask array

    run(program, variables, (), count)
    return total
