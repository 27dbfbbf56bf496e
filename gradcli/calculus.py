"""Derivatives of models: gradients, higher orders, Hessians, Jacobians and numerical checks.

A *model* is anything that maps named input Variables to a list of output Variables. Two kinds are
accepted everywhere here (see :func:`as_model`):

- a Python callable of Variables, ``f(x, y)``, whose parameter names name the inputs;
- an object with ``inputs`` (a tuple of names) and ``run_variables(variables) -> list[Variable]``,
  such as a parsed expression's Program.

Every function builds fresh Variables from ``values`` (float64 arrays), so no state survives on
Variables between calls. Only the variables named in ``wrt`` (default: all inputs, in input order)
are differentiated; the others are held constant. All results are keyed by variable name in input
order, and an input that does not reach an output gets a zero gradient of its shape, never None.
"""

from __future__ import annotations

import itertools
import math
import numbers
import operator
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import backend, tape
from .backend import as_array
from .engine import (
    Function,
    GraphTooLarge,
    Variable,
    as_variable,
    data_of,
    node_limit,
    pass_sizes,
    using_grad,
)
from .engine import grad as _engine_grad
from .functions.registry import Spec
from .program import sizing

__all__ = [
    "CalculusError",
    "CheckReport",
    "CheckRow",
    "Evaluation",
    "Rows",
    "HessianResult",
    "JacobianResult",
    "as_model",
    "check",
    "derivatives",
    "evaluate",
    "evaluate_rows",
    "format_table",
    "grad",
    "hessian",
    "jacobian",
    "numerical_grad",
    "numerical_jacobian",
]

Model = Callable[[dict[str, Variable]], list[Variable]]

# The step that balances truncation error (~h**2) against round-off (~eps/h) in a central
# difference: cbrt(eps) ~ 6e-6 for float64, scaled by the magnitude of the point.
_CENTRAL_STEP = float(np.cbrt(np.finfo(np.float64).eps))

# Hessians, Jacobians, higher derivatives and numerical checks run many copies of the problem at
# once on a batch axis; at most this many numbers in all the arrays of one such run (64 MB), so
# that a large problem is split into several runs rather than exhaust memory.
CHUNK_ELEMENTS = 1 << 23


class CalculusError(ValueError):
    """A request that cannot be answered as asked; the message says how to fix it."""


def is_real_number(value: Any) -> bool:
    """Whether ``value`` is a real number (int, float, NumPy's, Fraction...), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def checked_number(name: str, value: Any, minimum: float | None = 0.0, above: bool = False) -> float:
    """``value`` as a float, if it is a finite real number >= ``minimum`` (> with ``above``; None:
    any); else a TypeError (not a number: text, None, a bool, an array) or a CalculusError."""
    if not is_real_number(value):
        raise TypeError(f"{name} must be a number, got {value!r}")
    x = float(value)
    if minimum is None:
        if not math.isfinite(x):
            raise CalculusError(f"{name} must be a finite number, got {value!r}")
    elif not math.isfinite(x) or x < minimum or (above and x == minimum):
        bound = f"> {minimum:g}" if above else f">= {minimum:g}"
        raise CalculusError(f"{name} must be a finite number {bound}, got {value!r}")
    return x


def checked_whole(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int, if it is a whole number (``2`` or ``2.0``) in minimum..maximum; else a
    TypeError (not a number) or a CalculusError (a fraction, or out of range)."""
    if not is_real_number(value):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, numbers.Integral):
        n = operator.index(value)
    elif float(value).is_integer():
        n = int(float(value))
    else:
        raise CalculusError(f"{name} must be a whole number, got {value!r}")
    if n < minimum or (maximum is not None and n > maximum):
        bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise CalculusError(f"{name} must be a whole number {bound}, got {value!r}")
    return n


def _checked_eps(eps: Any) -> float | None:
    return None if eps is None else checked_number("eps", eps, above=True)


# --------------------------------------------------------------------------------------------
# Models and inputs
# --------------------------------------------------------------------------------------------


def as_model(f: Any) -> tuple[tuple[str, ...], Model]:
    """Return ``(input names, call)`` for ``f``, where ``call(variables)`` gives the outputs.

    ``f`` is an object with ``inputs`` and ``run_variables`` (a parsed Program), a registry
    Spec (``gradcli.functions.sin``), or a Python callable whose positional parameters name
    its inputs. A callable may return one Variable, a number, or a tuple/list of them.
    """
    if hasattr(f, "run_variables") and hasattr(f, "inputs"):
        return tuple(f.inputs), lambda variables: _as_outputs(f.run_variables(variables))
    if isinstance(f, Spec):
        names = f.inputs[: f.arity[0]]
        return names, lambda variables: _as_outputs(f(*(variables[n] for n in names)))
    if not callable(f):
        raise CalculusError(f"expected a function of Variables or a parsed expression, got {f!r}")
    if isinstance(f, Function) or (isinstance(f, type) and issubclass(f, Function)):
        name = f.__name__ if isinstance(f, type) else type(f).__name__
        raise CalculusError(
            f"a Function ({name}) is one operation of a graph, not a model: pass a function of Variables "
            f"that calls it, e.g. lambda x: {name}()(x)"
        )
    names = _parameter_names(f)
    return names, lambda variables: _as_outputs(f(*(variables[n] for n in names)))


def _parameter_names(f: Callable[..., Any]) -> tuple[str, ...]:
    plain = _plain_parameter_names(f)
    if plain is not None:
        return plain
    import inspect  # only Python callables need it; kept off the CLI's import path

    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        raise CalculusError(f"cannot read the input names of {f!r}; wrap it: lambda x, y: f(x, y)") from None
    names = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise CalculusError(
                f"cannot take input names from *{p.name} of {f!r}; wrap it: lambda x, y: f(x, y)"
            )
        if p.kind == p.KEYWORD_ONLY:
            if p.default is p.empty:
                raise CalculusError(f"keyword-only parameter {p.name!r} has no default; give it one")
            continue
        names.append(p.name)
    return tuple(names)


_STARRED = 0x04 | 0x08  # CO_VARARGS | CO_VARKEYWORDS: *args or **kwargs


def _plain_parameter_names(f: Callable[..., Any]) -> tuple[str, ...] | None:
    """The input names of a plain function (no wrapper, no ``*args``, every keyword-only
    parameter with a default) read off its code, as ``inspect.signature`` would give them, at a
    fraction of its cost (a Hessian of 100 variables takes a fraction of a millisecond); None for
    anything else."""
    if type(f) is not types.FunctionType or hasattr(f, "__wrapped__") or hasattr(f, "__signature__"):
        return None
    code = f.__code__
    keyword_only = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
    if code.co_flags & _STARRED or not set(keyword_only) <= set(f.__kwdefaults__ or ()):
        return None
    return tuple(code.co_varnames[: code.co_argcount])


def _as_outputs(result: Any) -> list[Variable]:
    items = list(result) if isinstance(result, (tuple, list)) else [result]
    if not items:
        raise CalculusError("the function returned no outputs; return at least one Variable")
    return [y if isinstance(y, Variable) else _constant_output(y, k, len(items)) for k, y in enumerate(items)]


def _constant_output(y: Any, k: int, count: int) -> Variable:
    what = "the function returned" if count == 1 else f"output {k} of the function is"
    if y is None:
        raise CalculusError(f"{what} None: return the result (a Variable), e.g. return x * 2")
    try:
        return as_variable(y)
    except (TypeError, ValueError) as e:
        raise CalculusError(f"{what} a {type(y).__name__}, not a Variable or a number ({e})") from None


class _Problem:
    """One request: the model, its input arrays and what to differentiate.

    The arrays are the caller's own, not copies: numerical differences copy what they perturb.
    """

    def __init__(
        self,
        names: tuple[str, ...],
        call: Model,
        arrays: dict[str, Any],
        wrt: tuple[str, ...],
        inner_grad: bool = True,
        program: Any = None,
    ) -> None:
        self.names, self.call, self.arrays, self.wrt = names, call, arrays, wrt
        self.inner_grad = inner_grad
        # The array library the problem runs in: copies, seeds and results are made there.
        self.xp = backend.common_namespace(arrays.values())
        # A parsed Program can run many points at once on a batch axis; a Python callable
        # cannot (its reductions would mix the points), so it is run point by point.
        self.program = program
        self.per_row: int | None = None  # numbers one run computes (for batches), once known

    def leaves(self) -> dict[str, Variable]:
        # Inputs outside ``wrt`` are constants, so no gradient is computed for them, unless the
        # model may differentiate inside itself (``grad(f, y)`` in an expression, or any Python
        # callable): then every input must be a variable it can differentiate with respect to.
        live = set(self.names) if self.inner_grad else set(self.wrt)
        return {n: Variable(a, name=n, requires_grad=n in live) for n, a in self.arrays.items()}

    def forward(self, leaves: dict[str, Variable]) -> list[Variable]:
        # The graph is needed even if the caller sits inside no_grad().
        with using_grad(True):
            return self.call(leaves)

    def run_values(self) -> list[Any]:
        """Output arrays at the current ``arrays`` (copies: an output may alias an input).

        Not under no_grad(): a model that differentiates inside itself needs the graph.
        """
        return [y.data.copy() for y in self.forward(self.leaves())]

    def run_rows(self, rows: Mapping[str, Any]) -> tuple[dict[str, Variable], list[Variable]]:
        """Leaves and outputs of one batched run: the inputs in ``rows`` carry a batch axis (row
        b is one point), the others are as in :meth:`leaves`."""
        leaves = self.leaves()
        for n, a in rows.items():
            leaves[n] = Variable(a, name=n, requires_grad=leaves[n].requires_grad or n in self.wrt)
        with using_grad(True):
            return leaves, _batching().run(self.program, leaves, list(rows))

    def traced(self, leaves: dict[str, Variable], outs: list[Variable]) -> bool:
        """Whether the problem runs on a batch axis, where every row is this point: a model
        without a Program (a Python callable) gets the one its run on ``leaves`` recorded, when
        it has one (:mod:`gradcli.tracing`), and then runs as an expression does."""
        if self.program is None:
            from . import tracing  # only Python callables are traced

            trace = tracing.program_of(outs, leaves)
            if trace is not None:
                self.program, self.per_row = trace.program, trace.elements
        return self.program is not None

    def rows_per_chunk(self, count: int) -> int:
        """How many copies of the problem one batched run may hold (see :func:`_rows_per_chunk`)."""
        if self.per_row is None:
            with sizing(self.program):
                self.per_row = _batching().elements_per_run(self.program, self.leaves())
        return _rows_per_chunk(count, self.per_row)

    def elements(self) -> int:
        """How many numbers the ``wrt`` inputs hold together: the rows of a Hessian."""
        return sum(math.prod(np.shape(self.arrays[n])) for n in self.wrt)


def _rows_per_chunk(count: int, per_row: int) -> int:
    """``count`` rows at most, and no more than keep every array of a batched run within
    :data:`CHUNK_ELEMENTS` numbers, when one row computes ``per_row`` numbers in all."""
    return max(1, min(count, CHUNK_ELEMENTS // max(per_row, 1)))


def _batching() -> Any:
    """:mod:`gradcli.batching`, imported on first use: a plain evaluation has no batch axis."""
    from . import batching

    return batching


def _problem(f: Any, values: Mapping[str, Any], wrt: Sequence[str] | str | None) -> _Problem:
    names, call = as_model(f)
    if not isinstance(values, Mapping):
        raise TypeError(f"values map each input's name to its value, e.g. {{'x': 1.0}}; got {values!r}")
    for n in values:
        if not isinstance(n, str):
            raise TypeError(f"values map each input's name (text) to its value; got the key {n!r}")
    missing = [n for n in names if n not in values]
    if missing:
        raise CalculusError(f"missing value for {_quoted(missing)} (variables: {', '.join(names) or 'none'})")
    known = set(names)  # a set: a tuple scan per name is quadratic with 40,000 variables
    unknown = [n for n in values if n not in known]
    if unknown:
        raise CalculusError(_no_variable(unknown[0], names))
    arrays = {n: _input_array(n, values[n]) for n in names}
    inner_grad = getattr(f, "differentiates_inside", True)
    program = f if hasattr(f, "ops") and hasattr(f, "run_variables") else None
    return _Problem(names, call, arrays, _resolve_wrt(names, wrt), inner_grad, program)


def _input_array(name: str, value: Any) -> Any:
    if isinstance(value, Variable):
        value = value.data
    try:
        # Not copied: nothing writes into inputs but _central_differences, which copies first.
        return as_array(value)
    except (TypeError, ValueError) as e:
        raise CalculusError(f"value of {name!r}: {e}") from None


def _resolve_wrt(names: tuple[str, ...], wrt: Sequence[str] | str | None) -> tuple[str, ...]:
    if wrt is None:
        return names
    wanted = {wrt} if isinstance(wrt, str) else set(_names_in(wrt))
    for n in sorted(wanted - set(names)):
        raise CalculusError(f"wrt: {_no_variable(n, names)}")
    return tuple(n for n in names if n in wanted)


def _names_in(wrt: Any) -> list[str]:
    items = list(wrt) if isinstance(wrt, Iterable) else None
    if items is None or not all(isinstance(n, str) for n in items):
        raise TypeError(f"wrt is an input's name or a list of names, got {wrt!r}")
    return items


def _no_variable(name: str, names: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"no variable {name!r}{hint} (variables: {', '.join(names) or 'none'})"


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


# --------------------------------------------------------------------------------------------
# One backward pass
# --------------------------------------------------------------------------------------------


def _backward_from(
    leaves: dict[str, Variable],
    wrt: tuple[str, ...],
    target: Variable,
    seed: Variable | None = None,
    create_graph: bool = False,
) -> dict[str, Variable]:
    """d(sum of target * seed)/d(leaf) for each leaf in ``wrt`` (zeros where unreached).

    The engine's ``grad`` accumulates in a table of its own, so no ``.grad`` is touched and
    one graph can be differentiated many times over.
    """
    if not wrt:
        return {}
    gs = _engine_grad(target, [leaves[n] for n in wrt], None if seed is None else [seed], create_graph)
    return dict(zip(wrt, gs, strict=True))


def _one_hot(shape: tuple[int, ...], index: tuple[int, ...]) -> Variable:
    seed = np.zeros(shape)
    seed[index] = 1.0
    return Variable(seed, requires_grad=False)


def _copies(a: Any, count: int, xp: Any) -> Any:
    """``count`` copies of ``a`` along a new leading axis, in the array library ``xp``: a
    read-only view that repeats ``a`` (nothing writes into inputs), no memory of its own."""
    a = xp.asarray(a)
    return xp.broadcast_to(a[None, ...], (count, *a.shape))


def _basis(offset: int, count: int, shape: tuple[int, ...], xp: Any) -> Any:
    """``count`` seeds shaped like one variable (``shape``), in the array library ``xp``: seed r
    is the unit vector of its element ``offset + r``, or all zeros where that lies outside the
    variable (a chunk of rows of an identity matrix, the columns of one variable)."""
    return backend.reshape(backend.eye(xp, count, math.prod(shape), offset), (count, *shape))


def _joined(pieces: list[Any], shape: tuple[int, ...], xp: Any, axis: int = 0) -> Any:
    """The pieces of a result computed chunk by chunk, joined along ``axis`` and given ``shape``:
    a new array in the array library ``xp`` (Dask's stays one lazy graph); zeros when there are
    none (an empty variable)."""
    if not pieces:
        return xp.zeros(shape)
    joined = backend.reshape(xp.concatenate(pieces, axis=axis), shape)
    # (A number as a NumPy float64 scalar, as every result of gradcli's is: a 0-d array is no JSON.)
    return joined[()] if not shape and type(joined) is np.ndarray else joined


def _chunks(total: int, per_chunk: int) -> list[tuple[int, int]]:
    return [(start, min(per_chunk, total - start)) for start in range(0, total, per_chunk)]


def _single_scalar(outs: list[Variable], what: str) -> Variable:
    if len(outs) != 1:
        raise CalculusError(
            f"{len(outs)} outputs: {what} needs a single scalar output; keep one expression, "
            "or use `gradcli jacobian`"
        )
    y = outs[0]
    if y.size != 1:
        raise CalculusError(
            f"output has shape {y.shape}: {what} needs a scalar; "
            "wrap it in sum(...) or use `gradcli jacobian`"
        )
    return y


# --------------------------------------------------------------------------------------------
# First derivatives
# --------------------------------------------------------------------------------------------


class Evaluation:
    """Values and first derivatives of every output.

    ``value[k]`` is output k; ``grad[k]`` maps each differentiated input to the gradient of the
    sum of output k's elements (so for scalar outputs, ``grad`` holds the rows of the Jacobian).
    ``outputs`` and ``variables`` are the Variables of the graph that was built.
    """

    __slots__ = ("value", "grad", "wrt", "outputs", "variables")

    def __init__(
        self,
        value: list[Any],
        grad: list[dict[str, Any]],
        wrt: tuple[str, ...],
        outputs: list[Variable],
        variables: dict[str, Variable],
    ) -> None:
        self.value, self.grad, self.wrt = value, grad, wrt
        self.outputs, self.variables = outputs, variables

    def __repr__(self) -> str:
        return f"Evaluation(value={self.value!r}, grad={self.grad!r})"


def evaluate(f: Any, values: Mapping[str, Any], wrt: Sequence[str] | None = None) -> Evaluation:
    """Run ``f`` on ``values`` and backpropagate from each output in turn.

    A non-scalar output's gradient is that of the sum of its elements (DeZero seeds backward
    with ones). One backward pass per output; gradients are keyed by the ``wrt`` names (default:
    all inputs) in input order. An expression runs on a tape (:mod:`gradcli.tape`) when it can:
    ``outputs`` and ``variables`` then hold the values without a graph behind them.
    """
    p = _problem(f, values, wrt)
    if p.program is not None and tape.runs_on_tape(p.program):
        # A tape over the instructions: the same rules, on arrays, without building a graph.
        values_out, grads = tape.first_order(p.program, p.arrays, p.wrt)
        values_out = _unshared(values_out, p.arrays)
        outputs = [Variable(v, requires_grad=False) for v in values_out]
        leaves = {n: Variable(a, name=n, requires_grad=False) for n, a in p.arrays.items()}
        return Evaluation(values_out, grads, p.wrt, outputs, leaves)
    leaves = p.leaves()
    outs = p.forward(leaves)
    grads = []
    for y in outs:
        grads.append({n: g.data for n, g in _backward_from(leaves, p.wrt, y).items()})
    return Evaluation(_unshared([y.data for y in outs], p.arrays), grads, p.wrt, outs, leaves)


def _unshared(values: list[Any], inputs: Mapping[str, Any]) -> list[Any]:
    """``values``, each that is (a view of) one of the caller's ``inputs`` copied: ``x`` itself,
    or ``reshape(x, ...)``, was the caller's array, and a write into the result wrote into it."""
    arrays = [a for a in inputs.values() if type(a) is np.ndarray]
    return [
        v.copy()
        if type(v) is np.ndarray
        and (v.base is not None or any(v is a for a in arrays))
        and any(np.may_share_memory(v, a) for a in arrays)
        else v
        for v in values
    ]


class Rows(NamedTuple):
    """Values and gradients at many points (:func:`evaluate_rows`): ``value[k]`` is output k
    with a leading axis over the points, ``grad[k][x]`` its gradient with respect to x, likewise."""

    value: list[Any]
    grad: list[dict[str, Any]]


def evaluate_rows(f: Any, rows: Mapping[str, Any], wrt: Sequence[str] | None = None) -> Rows:
    """:func:`evaluate` at many points at once: ``rows[x]`` holds the values of input x at every
    point, along a leading axis (the same length for every input).

    An expression runs once on a batch axis (:mod:`gradcli.batching`): each point's outputs and
    gradients are those of a run on that point alone (up to rounding in the last bit, where NumPy's
    kernels for many numbers differ from those for one). A Python callable runs point by point.
    """
    if not isinstance(rows, Mapping):
        raise TypeError(f"rows map each input's name to its values at every point; got {rows!r}")
    arrays = {n: _input_array(n, v) for n, v in rows.items()}
    counts = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in arrays.values()}
    if len(counts) != 1 or -1 in counts:
        raise CalculusError("evaluate_rows: every input needs a leading axis of the same length")
    count = counts.pop()
    if not count:
        return _no_rows(f, arrays, wrt)
    p = _problem(f, {n: a[0] for n, a in arrays.items()}, wrt)
    if p.program is None:
        each = [evaluate(f, {n: a[i] for n, a in arrays.items()}, wrt) for i in range(count)]
        return Rows(
            [np.stack([e.value[k] for e in each]) for k in range(len(each[0].value))],
            [{n: np.stack([e.grad[k][n] for e in each]) for n in p.wrt} for k in range(len(each[0].value))],
        )
    leaves, outs = p.run_rows(arrays)
    grads = [{n: g.data for n, g in _backward_from(leaves, p.wrt, y).items()} for y in outs]
    return Rows([y.data for y in outs], grads)


def _no_rows(f: Any, arrays: dict[str, Any], wrt: Sequence[str] | None) -> Rows:
    """The results at no points: empty along the leading axis, in the shapes of one point's,
    which a run at a point of zeros tells (its numbers are not used)."""
    with np.errstate(all="ignore"):
        one = evaluate(f, {n: np.zeros(np.shape(a)[1:]) for n, a in arrays.items()}, wrt)
    return Rows(
        [np.empty((0, *np.shape(v))) for v in one.value],
        [{n: np.empty((0, *np.shape(g))) for n, g in gk.items()} for gk in one.grad],
    )


def grad(f: Any, values: Mapping[str, Any], wrt: Sequence[str] | None = None) -> dict[str, Any]:
    """The gradient of a scalar-valued ``f`` at ``values``, keyed by input name.

    As in PyTorch and JAX, the output must be a single scalar: a vector output raises
    :class:`CalculusError` (sum it, or use :func:`jacobian`).
    """
    p = _problem(f, values, wrt)
    leaves = p.leaves()
    y = _single_scalar(p.forward(leaves), "grad")
    return {n: g.data for n, g in _backward_from(leaves, p.wrt, y).items()}


class JacobianResult(NamedTuple):
    """For one output: its value and ``{name: block}``; for several: lists of those.

    Each block has shape ``output.shape + x.shape`` (the convention of ``gradcli eval``'s JSON:
    one output is a value and a dict, several are lists).
    """

    value: Any
    jacobian: Any


def jacobian(f: Any, values: Mapping[str, Any], wrt: Sequence[str] | None = None) -> JacobianResult:
    """The full Jacobian of every output.

    For an expression, one backward pass over a batch of basis seeds: row i of the batch is a
    copy of the problem seeded with the i-th unit vector of the output, so its gradient is row i
    of the Jacobian (in chunks, for large outputs); for a Python callable, over the Program its
    graph records (:mod:`gradcli.tracing`), or, for one whose graph holds functions outside the
    registry, one backward pass per output element.
    """
    p = _problem(f, values, wrt)
    leaves = p.leaves()
    outs = p.forward(leaves)
    batched = p.traced(leaves, outs)
    blocks = []
    for k, y in enumerate(outs):
        if batched and p.wrt:
            blocks.append(_batched_jacobian(p, k, y.shape))
            continue
        block = {n: np.zeros(y.shape + leaves[n].shape) for n in p.wrt}
        for idx in np.ndindex(y.shape):
            for n, g in _backward_from(leaves, p.wrt, y, _one_hot(y.shape, idx)).items():
                block[n][idx] = g.data
        blocks.append(block)
    values_out = _unshared([y.data for y in outs], p.arrays)
    if len(outs) == 1:
        return JacobianResult(values_out[0], blocks[0])
    return JacobianResult(values_out, blocks)


def _batched_jacobian(p: _Problem, k: int, out_shape: tuple[int, ...]) -> dict[str, Any]:
    size = int(np.prod(out_shape))
    rows: dict[str, list[Any]] = {n: [] for n in p.wrt}
    for start, count in _chunks(size, p.rows_per_chunk(size)):
        leaves, outs = p.run_rows({n: _copies(p.arrays[n], count, p.xp) for n in p.wrt})
        seeds = Variable(_basis(start, count, out_shape, p.xp), requires_grad=False)
        gs = _backward_from(leaves, p.wrt, outs[k], seeds)
        for n in p.wrt:
            rows[n].append(gs[n].data)
    return {n: _joined(rows[n], out_shape + np.shape(p.arrays[n]), p.xp) for n in p.wrt}


# --------------------------------------------------------------------------------------------
# Higher derivatives
# --------------------------------------------------------------------------------------------


def derivatives(
    f: Any, values: Mapping[str, Any], order: int, wrt: Sequence[str] | None = None
) -> dict[str, list[Any]]:
    """Pure partial derivatives of orders 1..``order`` of a scalar ``f``, for each variable.

    ``result[x][k-1]`` is d^k f / dx^k, of the shape of ``x``. For an array variable it is taken
    element by element: entry i is d^k f / dx_i^k, the diagonal of the k-th derivative tensor
    (not the k-th derivative of the sum of the gradient, which would mix partials). It is exact:
    a chain of ``order - 1`` differentiable backward passes (DeZero's repeated
    ``backward(create_graph=True)``) seeded with the one-hot vector of the element. For an
    expression the elements of a variable are rows of one batch, so the chain runs once per
    variable; so for a Python callable, through the Program its graph records
    (:mod:`gradcli.tracing`), or else once per element.
    """
    order = checked_whole("order", order, 1)
    p = _problem(f, values, wrt)
    leaves = p.leaves()
    y = _single_scalar(p.forward(leaves), "a derivative of higher order (--order)")
    batched = order > 1 and p.traced(leaves, [y])
    first = _backward_from(leaves, p.wrt, y, create_graph=order > 1 and not batched)
    result: dict[str, list[Any]] = {}
    for n in p.wrt:
        x = leaves[n]
        if p.program is not None:
            result[n] = [first[n].data, *_batched_pure_partials(p, n, order)]
            continue
        orders = [first[n].data] + [np.zeros_like(x.data) for _ in range(1, order)]
        result[n] = orders
        if order == 1:
            continue
        for idx in np.ndindex(x.shape):
            seed = _one_hot(x.shape, idx)
            g: Variable = first[n]
            for k in range(1, order):
                g = _backward_from(leaves, (n,), g, seed, create_graph=True)[n]
                orders[k][idx] = g.data[idx]
    return result


def _batched_pure_partials(p: _Problem, name: str, order: int) -> list[Any]:
    """Orders 2..``order`` of the pure partials of ``name``, element by element: row r of a batch
    seeded with unit vector r, of which each order keeps element r (a diagonal)."""
    x = p.arrays[name]
    shape = np.shape(x)
    size = int(np.prod(shape))
    pieces: list[list[Any]] = [[] for _ in range(1, order)]
    for start, count in _chunks(size, p.rows_per_chunk(size)):
        leaves, outs = p.run_rows({name: _copies(x, count, p.xp)})
        y = outs[0]  # one scalar per row: checked on the unbatched run
        seeds = Variable(_basis(start, count, shape, p.xp), requires_grad=False)
        with pass_sizes() as sizes:
            g = _backward_from(leaves, (name,), y, create_graph=True)[name]
            for k in range(1, order):
                _refuse_growth(sizes, order - k)
                g = _backward_from(leaves, (name,), g, seeds, create_graph=k < order - 1)[name]
                pieces[k - 1].append(np.diagonal(backend.reshape(g.data, (count, size)), offset=start))
    return [_joined(chunks, shape, p.xp) for chunks in pieces]


def _refuse_growth(sizes: list[int], passes_left: int) -> None:
    """Refuse, before the work, a chain of differentiable passes whose graphs grow so fast that
    one still to come would pass the node limit (``tanh(x)`` triples per order: order 64 would
    need 10^30 functions). The growth is the mean over the last two passes, once four have run
    (the first ones are too small to tell); ``passes_left`` more will follow."""
    limit = node_limit()
    if limit is None or len(sizes) < 4 or sizes[-3] == 0:
        return
    growth = (sizes[-1] / sizes[-3]) ** 0.5
    if growth <= 1.0:
        return
    predicted = sizes[-1] * growth ** min(passes_left, 200)
    if predicted > limit:
        raise GraphTooLarge(int(min(predicted, 1e300)), limit, predicted=True)


class HessianResult(NamedTuple):
    """Value, gradient ``{x: array}`` and Hessian ``{x: {y: block of shape x.shape + y.shape}}``."""

    value: Any
    grad: dict[str, Any]
    hessian: dict[str, dict[str, Any]]


def hessian(f: Any, values: Mapping[str, Any], wrt: Sequence[str] | None = None) -> HessianResult:
    """Value, gradient and full Hessian of a scalar ``f``.

    One differentiable backward pass gives the gradient as a graph; its vector-Jacobian products
    with the unit vectors give the rows of the Hessian, all at once: the backward pass through
    the gradient's graph, recorded once, is traced into a Program of its seed
    (:mod:`gradcli.tracing`) and run with every unit seed on the batch axis (in chunks, when
    large). Where that pass holds what a Program cannot (a strong zero's mask, after a
    ``where``), an expression, or a callable through the Program its own graph records, runs
    one batched forward and two batched backward passes instead (row i: a copy of the problem
    whose gradient is seeded with the i-th unit vector); where neither can be traced, one
    backward pass per row. Blocks are computed independently, so their symmetry (``H[x][y]``
    against ``H[y][x]`` transposed) is a check, not an assumption.
    """
    p = _problem(f, values, wrt)
    leaves = p.leaves()
    y = _single_scalar(p.forward(leaves), "the Hessian")
    g = _backward_from(leaves, p.wrt, y, create_graph=True)
    grads = {n: gn.data for n, gn in g.items()}
    batched = _vjp_rows(p, leaves, g)
    if batched is None and p.traced(leaves, [y]):
        batched = p.rows_per_chunk(p.elements()), _copied_rows(p)
    if batched is not None:
        return HessianResult(y.data, grads, _hessian_blocks(p, *batched))
    hess = {a: {b: np.zeros(leaves[a].shape + leaves[b].shape) for b in p.wrt} for a in p.wrt}
    for a in p.wrt:
        for idx in np.ndindex(g[a].shape):
            for b, gb in _backward_from(leaves, p.wrt, g[a], _one_hot(g[a].shape, idx)).items():
                hess[a][b][idx] = gb.data
    return HessianResult(y.data, grads, hess)


#: Rows of a Hessian: ``rows(seeds)`` takes, for each ``wrt`` input, a batch of seeds shaped like
#: it (row r of each together: one unit vector of all the inputs' elements) and gives, for each,
#: the vector-Jacobian products of the gradient with them, one row per seed.
HessianRows = Callable[[dict[str, Any]], dict[str, Any]]


def _vjp_rows(
    p: _Problem, leaves: dict[str, Variable], g: dict[str, Variable]
) -> tuple[int, HessianRows] | None:
    """How many rows one run may take, and the rows as the trace of one backward pass through the
    gradient's graph ``g``, a Program of its seeds run on the batch axis; None where the pass
    cannot be traced."""
    from . import tracing  # only Hessians trace graphs of derivatives

    # The pass is recorded with zeros for seeds: a rule that looks at the values of its seed (a
    # strong zero, after a where) then masks wherever any seed could need it, and the trace,
    # finding the mask, refuses. What the trace keeps depends on no seed's values.
    seeds = {n: Variable(p.xp.zeros(np.shape(p.arrays[n])), name=n) for n in p.wrt}
    hv = _engine_grad([g[n] for n in p.wrt], [leaves[n] for n in p.wrt], list(seeds.values()), True)
    trace = tracing.program_of(hv, seeds)
    if trace is None:
        return None
    program = trace.program

    def rows(batch: dict[str, Any]) -> dict[str, Any]:
        # Arrays in, arrays out: nothing differentiates the rows, so no graph is made.
        with using_grad(False):
            outs = _batching().run(program, batch, list(p.wrt))
        return {n: data_of(o) for n, o in zip(p.wrt, outs, strict=True)}

    return _rows_per_chunk(p.elements(), trace.elements), rows


def _copied_rows(p: _Problem) -> HessianRows:
    """The rows from copies of the problem on the batch axis, row r seeded with seed r: one
    batched forward, a differentiable backward pass, and one from every gradient at once, each
    with its part of the seeds."""

    def rows(batch: dict[str, Any]) -> dict[str, Any]:
        count = len(next(iter(batch.values())))
        leaves, outs = p.run_rows({n: _copies(p.arrays[n], count, p.xp) for n in p.wrt})
        g = _backward_from(leaves, p.wrt, outs[0], create_graph=True)  # one scalar per row
        seeded = _engine_grad([g[n] for n in p.wrt], [leaves[n] for n in p.wrt], [batch[n] for n in p.wrt])
        return {n: r.data for n, r in zip(p.wrt, seeded, strict=True)}

    return rows


def _hessian_blocks(p: _Problem, per_chunk: int, rows: HessianRows) -> dict[str, dict[str, Any]]:
    """The Hessian's blocks from its rows, ``per_chunk`` rows to a run."""
    shapes = {n: np.shape(p.arrays[n]) for n in p.wrt}
    sizes = {n: math.prod(shapes[n]) for n in p.wrt}
    total = sum(sizes.values())
    offsets = dict(zip(p.wrt, itertools.accumulate(sizes.values(), initial=0)))
    pieces: dict[str, dict[str, list[Any]]] = {a: {b: [] for b in p.wrt} for a in p.wrt}
    for start, count in _chunks(total, per_chunk):
        # Row r of the chunk is seeded with unit vector start + r of all wrt elements together.
        got = rows({n: _basis(start - offsets[n], count, shapes[n], p.xp) for n in p.wrt})
        for a in p.wrt:
            lo, hi = max(start, offsets[a]), min(start + count, offsets[a] + sizes[a])
            if lo >= hi:
                continue
            for b in p.wrt:
                block = backend.reshape(got[b], (count, sizes[b]))
                pieces[a][b].append(block[lo - start : hi - start])
    return {a: {b: _joined(pieces[a][b], shapes[a] + shapes[b], p.xp) for b in p.wrt} for a in p.wrt}


# --------------------------------------------------------------------------------------------
# Numerical differentiation
# --------------------------------------------------------------------------------------------


def _central_steps(x: Any, eps: float | None) -> Any:
    return np.full_like(x, eps) if eps is not None else _CENTRAL_STEP * np.maximum(1.0, np.abs(x))


RowResults = Callable[[dict[str, Any]], list[Any]]


def _central_differences(p: _Problem, results: RowResults, eps: float | None) -> list[dict[str, Any]]:
    """For each of the results r and each x in ``p.wrt``: dr/dx, of shape r.shape + x.shape.

    ``results(rows)`` takes every ``wrt`` input with a batch axis (row i a copy of the point,
    perturbed in one element) and returns each result with a batch axis. Each element of x gets
    two rows, x0 + h and x0 - h; for an expression they are all evaluated in one batched run (in
    chunks when large). The caller's arrays are never written to.
    """
    fpe_name = "central differences"  # (names a warning of the differences: inf - inf)  # noqa: F841
    shapes = [np.shape(r)[1:] for r in results({m: _copies(p.arrays[m], 1, p.xp) for m in p.wrt})]
    out: list[dict[str, Any]] = [{} for _ in shapes]
    for n in p.wrt:
        xp = p.xp
        x = backend.reshape(xp.asarray(p.arrays[n]), (-1,))
        size = x.shape[0]
        per_chunk = max(1, p.rows_per_chunk(2 * size) // 2) if p.program is not None else max(size, 1)
        pieces: list[list[Any]] = [[] for _ in shapes]
        for start, count in _chunks(size, per_chunk):
            x0 = x[start : start + count]
            h = _central_steps(x0, eps)
            # Rows 2i and 2i+1: the point with its element start + i moved to x0 + h and x0 - h.
            moved = xp.repeat(backend.diagonal_mask(xp, count, size, start), 2, axis=0)
            steps = xp.stack([x0 + h, x0 - h], axis=1).reshape(2 * count, 1)
            perturbed = backend.reshape(xp.where(moved, steps, x), (2 * count, *np.shape(p.arrays[n])))
            rows = {m: perturbed if m == n else _copies(p.arrays[m], 2 * count, p.xp) for m in p.wrt}
            # The step actually taken, after rounding x0 +- h to float64.
            width = (x0 + h) - (x0 - h)
            for k, r in enumerate(results(rows)):
                d = (r[0::2] - r[1::2]) / width.reshape((count,) + (1,) * (r.ndim - 1))
                pieces[k].append(np.moveaxis(d, 0, -1))
        for k, shape in enumerate(shapes):
            out[k][n] = _joined(pieces[k], shape + np.shape(p.arrays[n]), xp, axis=-1)
    return out


def _row_by_row(p: _Problem, one: Callable[[], list[Any]]) -> RowResults:
    """Results of a model that cannot run on a batch axis (a Python callable): one run per row."""

    def results(rows: dict[str, Any]) -> list[Any]:
        count = len(next(iter(rows.values())))
        saved = dict(p.arrays)
        per_row = []
        try:
            for i in range(count):
                p.arrays.update({m: rows[m][i] for m in rows})
                per_row.append(one())
        finally:
            p.arrays.clear()
            p.arrays.update(saved)
        return [np.stack([r[k] for r in per_row]) for k in range(len(per_row[0]))]

    return results


def _output_rows(p: _Problem, summed: bool = False) -> RowResults:
    """The outputs (or each output's sum) at every row."""
    if p.program is None:
        if summed:
            return _row_by_row(p, lambda: [np.sum(r) for r in p.run_values()])
        return _row_by_row(p, p.run_values)

    def results(rows: dict[str, Any]) -> list[Any]:
        outs = [o.data for o in p.run_rows(rows)[1]]
        return [o.reshape(o.shape[0], -1).sum(axis=1) for o in outs] if summed else outs

    return results


def _gradient_rows(p: _Problem) -> RowResults:
    """The gradient of the single scalar output with respect to each ``wrt`` input, at every row."""
    if p.program is None:
        model = _ProblemModel(p)

        def one() -> list[Any]:
            g = grad(model, p.arrays, p.wrt)
            return [g[n] for n in p.wrt]

        return _row_by_row(p, one)

    def results(rows: dict[str, Any]) -> list[Any]:
        leaves, outs = p.run_rows(rows)
        gs = _backward_from(leaves, p.wrt, outs[0])
        return [gs[n].data for n in p.wrt]

    return results


def numerical_jacobian(
    f: Any, values: Mapping[str, Any], wrt: Sequence[str] | None = None, eps: float | None = None
) -> list[dict[str, Any]]:
    """Central-difference Jacobian of every output: blocks of shape ``output.shape + x.shape``.

    The step for element x is ``eps`` if given, else cbrt(float64 eps) * max(1, |x|) (about
    6e-6 relative). Only forward passes (recording a graph, which a model that calls ``grad``
    inside itself needs, and which is dropped at once).
    """
    eps = _checked_eps(eps)
    p = _problem(f, values, wrt)
    return _central_differences(p, _output_rows(p), eps)


def numerical_grad(
    f: Any, values: Mapping[str, Any], wrt: Sequence[str] | None = None, eps: float | None = None
) -> dict[str, Any]:
    """Central-difference gradient of the sum of the elements of ``f``'s single output.

    Step as in :func:`numerical_jacobian`; only forward passes.
    """
    eps = _checked_eps(eps)
    p = _problem(f, values, wrt)
    blocks = _central_differences(p, _output_rows(p, summed=True), eps)
    if len(blocks) != 1:
        raise CalculusError(f"{len(blocks)} outputs: numerical_grad needs one; use numerical_jacobian")
    return blocks[0]


# --------------------------------------------------------------------------------------------
# Checking analytic derivatives against numerical ones
# --------------------------------------------------------------------------------------------


class CheckRow(NamedTuple):
    """One derivative compared: d(output)/d variable[index] (order 1), or the Hessian entry
    d2(output)/d variable[index] d other[other_index] (order 2)."""

    variable: str
    index: tuple[int, ...]  # type: ignore[assignment]  # the element compared (shadows tuple.index)
    analytic: float
    numeric: float
    abs_error: float
    rel_error: float
    ok: bool
    output: int = 0
    order: int = 1
    other: str | None = None
    other_index: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        first = self.variable + _index_text(self.index)
        if self.order == 1:
            return f"d/d{first}"
        return f"d2/d{first} d{self.other}{_index_text(self.other_index)}"


def _index_text(index: tuple[int, ...]) -> str:
    return f"[{','.join(str(i) for i in index)}]" if index else ""


class CheckReport:
    """Every analytic derivative beside its central-difference estimate."""

    def __init__(
        self, rows: list[CheckRow], rtol: float, atol: float, order: int, n_outputs: int = 1
    ) -> None:
        self.rows, self.rtol, self.atol, self.order, self.n_outputs = rows, rtol, atol, order, n_outputs

    def __repr__(self) -> str:
        return f"CheckReport(ok={self.ok}, rows={len(self.rows)}, failures={len(self.failures)})"

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[CheckRow]:
        return [r for r in self.rows if not r.ok]


def _compare(analytic: float, numeric: float, rtol: float, atol: float, **where: Any) -> CheckRow:
    err = abs(analytic - numeric)
    scale = max(abs(analytic), abs(numeric))
    if analytic == numeric:  # also equal infinities, whose difference is NaN
        err, rel, ok = 0.0, 0.0, True
    else:
        rel = err / scale if scale > 0 else float("inf")
        ok = bool(err <= atol + rtol * scale)  # False for NaN
    return CheckRow(analytic=analytic, numeric=numeric, abs_error=err, rel_error=rel, ok=ok, **where)


def check(
    f: Any,
    values: Mapping[str, Any],
    order: int = 1,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    wrt: Sequence[str] | None = None,
    eps: float | None = None,
) -> CheckReport:
    """Compare every element of every analytic gradient with central differences of ``f``.

    An entry passes when ``|analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|)``.
    With ``order=2`` the Hessian (scalar output only) is also compared, entry by entry, with
    central differences of the analytic gradient. Steps as in :func:`numerical_jacobian`.
    """
    order = checked_whole("order", order, 1, 2)
    rtol, atol, eps = checked_number("rtol", rtol), checked_number("atol", atol), _checked_eps(eps)
    p = _problem(f, values, wrt)
    ev = evaluate(p.program or _ProblemModel(p), p.arrays, p.wrt)
    numeric = _central_differences(p, _output_rows(p, summed=True), eps)
    # Every number at once (one Dask computation, one copy from a device), then entry by entry.
    analytic, numeric = backend.computed((ev.grad, numeric))
    rows = []
    for k, (analytic_k, numeric_k) in enumerate(zip(analytic, numeric, strict=True)):
        for n in p.wrt:
            for idx in np.ndindex(p.arrays[n].shape):
                a, b = float(analytic_k[n][idx]), float(numeric_k[n][idx])
                rows.append(_compare(a, b, rtol, atol, variable=n, index=idx, output=k))
    if order == 2:
        rows += _check_hessian(p, rtol, atol, eps)
    return CheckReport(rows, rtol, atol, order, len(ev.value))


class _ProblemModel:
    """A _Problem seen as a model again, so the public functions can be reused on it."""

    def __init__(self, p: _Problem) -> None:
        self.inputs = p.names
        self.run_variables = p.call


def _check_hessian(p: _Problem, rtol: float, atol: float, eps: float | None) -> list[CheckRow]:
    analytic = hessian(p.program or _ProblemModel(p), p.arrays, p.wrt).hessian
    # numeric[i][b] = d grad_i / d b, of shape a_i.shape + b.shape: the Hessian block (a_i, b).
    numeric = _central_differences(p, _gradient_rows(p), eps)
    analytic, numeric = backend.computed((analytic, numeric))
    rows = []
    for a, numeric_a in zip(p.wrt, numeric, strict=True):
        for b in p.wrt:
            for idx in np.ndindex(analytic[a][b].shape):
                i, j = idx[: p.arrays[a].ndim], idx[p.arrays[a].ndim :]
                x, y = float(analytic[a][b][idx]), float(numeric_a[b][idx])
                rows.append(_compare(x, y, rtol, atol, variable=a, index=i, order=2, other=b, other_index=j))
    return rows


def format_table(report: CheckReport, width: int = 80) -> str:
    """The report as a table that fits ``width`` columns, with a one-line verdict at the end."""
    numbers = 14 + 1 + 14 + 1 + 9 + 1 + 9 + 1 + 4
    label_width = max(10, width - numbers - 1)

    def label(r: CheckRow) -> str:
        text = (f"out{r.output} " if report.n_outputs > 1 else "") + r.label
        return text if len(text) <= label_width else text[: label_width - 2] + ".."

    labels = [label(r) for r in report.rows]
    lw = max([len("derivative"), *map(len, labels)])
    lines = [f"{'derivative':<{lw}} {'analytic':>14} {'numeric':>14} {'abs err':>9} {'rel err':>9} ok"]
    for text, r in zip(labels, report.rows, strict=True):
        lines.append(
            f"{text:<{lw}} {r.analytic:>14.8g} {r.numeric:>14.8g} {r.abs_error:>9.2e} {r.rel_error:>9.2e} "
            + ("ok" if r.ok else "FAIL")
        )
    bad = len(report.failures)
    tol = f"rtol {report.rtol:g}, atol {report.atol:g}"
    if bad:
        lines.append(f"{bad} of {len(report.rows)} derivatives differ from central differences ({tol})")
    else:
        lines.append(f"all {len(report.rows)} derivatives agree with central differences ({tol})")
    return "\n".join(lines)
