"""Reverse-mode automatic differentiation: Variable, Function, backward, no_grad.

The vocabulary is DeZero's (Variable, Function, generations, ``create_graph``), with its known
mistakes fixed: gradients accumulate instead of being overwritten, backward runs in generation
order from a heap (so shared nodes see every contribution before they pass theirs on), nothing
recurses, and the grad-mode switch is per thread and per async context (a ``ContextVar``).

The core operators that ``Variable`` itself exposes (``+ - * / ** @``, indexing, ``sum``,
``reshape``, ``T``) live here beside it; everything else is in :mod:`gradcli.functions`.
This module imports nothing else of gradcli.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import itertools
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np

from .backend import as_array

_grad_enabled: ContextVar[bool] = ContextVar("gradcli_grad_enabled", default=True)
# The most Functions one differentiable backward pass may visit (None: no limit). Each order of
# derivative can multiply the graph (tanh's doubles), so without a bound a request can run for
# hours; the CLI sets it from --max-nodes.
_node_limit: ContextVar[int | None] = ContextVar("gradcli_node_limit", default=None)


class GraphTooLarge(RuntimeError):  # noqa: N818 - reads as the condition, like MemoryError
    """A backward pass with ``create_graph`` visited more Functions than :func:`limited_nodes` allows."""

    def __init__(self, visited: int, limit: int) -> None:
        super().__init__(f"a differentiable backward pass visited more than {limit:,} functions")
        self.visited, self.limit = visited, limit


@contextlib.contextmanager
def limited_nodes(n: int | None) -> Iterator[None]:
    """Inside the block (this thread/context only), a ``backward(..., create_graph=True)`` that
    visits more than ``n`` Functions raises :class:`GraphTooLarge`; ``None`` lifts the limit."""
    token = _node_limit.set(n)
    try:
        yield
    finally:
        _node_limit.reset(token)


@contextlib.contextmanager
def using_grad(enabled: bool) -> Iterator[None]:
    """Turn graph recording on or off inside the block (for this thread/context only)."""
    token = _grad_enabled.set(enabled)
    try:
        yield
    finally:
        _grad_enabled.reset(token)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a graph is built or walked in bulk.

    A graph of n nodes is n long-lived objects, and each full collection rescans them all: on a
    100,000-operation chain that was half the forward time. A first-order graph has no cycles
    (outputs are held weakly), so nothing is lost; reference counting still frees everything.
    Nesting and threads are safe: only the entry that found the collector on turns it back on.
    """
    was_on = gc.isenabled()
    if was_on:
        gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Evaluate without recording a graph: no backward is possible, and memory is freed early."""
    return using_grad(False)


def is_grad_enabled() -> bool:
    return _grad_enabled.get()


class Variable:
    """A value in the graph: ``data`` (a float64 array), ``grad`` (a Variable or None).

    ``requires_grad`` is False for constants (numbers written into an expression, NumPy values
    mixed into arithmetic): no gradient is computed or stored for them.
    """

    __slots__ = ("data", "name", "grad", "creator", "generation", "requires_grad", "__weakref__")
    # Make NumPy hand binary operators with a Variable on the right back to the Variable.
    __array_ufunc__ = None
    # Identity, not value: Variables key backward's gradient table. (So there is no elementwise
    # ==; compare .data instead.)
    __hash__ = object.__hash__

    def __init__(self, data: Any, name: str | None = None, requires_grad: bool = True) -> None:
        if isinstance(data, Variable):
            data = data.data
        self.data = as_array(data)
        self.name = name
        self.grad: Variable | None = None
        self.creator: Function | None = None
        self.generation = 0
        self.requires_grad = requires_grad

    # -- array-like attributes ------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(np.asarray(self.data), prefix="Variable(")
        name = f", name={self.name!r}" if self.name else ""
        return f"Variable({body}{name})"

    # -- autodiff -------------------------------------------------------------------------
    def cleargrad(self) -> None:
        self.grad = None

    def backward(self, retain_grad: bool = False, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``grad``.

        A non-scalar ``self`` is seeded with ones: the gradient of the sum of its elements.
        Intermediate gradients are freed unless ``retain_grad``; with ``create_graph`` the
        gradients are themselves differentiable Variables (for higher-order derivatives).
        """
        backward([self], None, retain_grad=retain_grad, create_graph=create_graph)

    # -- operators ------------------------------------------------------------------------
    def __neg__(self) -> Variable:
        return Neg()(self)

    def __pos__(self) -> Variable:
        return self

    def __add__(self, other: Any) -> Variable:
        return Add()(self, other)

    def __radd__(self, other: Any) -> Variable:
        return Add()(other, self)

    def __sub__(self, other: Any) -> Variable:
        return Sub()(self, other)

    def __rsub__(self, other: Any) -> Variable:
        return Sub()(other, self)

    def __mul__(self, other: Any) -> Variable:
        return Mul()(self, other)

    def __rmul__(self, other: Any) -> Variable:
        return Mul()(other, self)

    def __truediv__(self, other: Any) -> Variable:
        return Div()(self, other)

    def __rtruediv__(self, other: Any) -> Variable:
        return Div()(other, self)

    def __pow__(self, other: Any) -> Variable:
        return Pow()(self, other)

    def __rpow__(self, other: Any) -> Variable:
        return Pow()(other, self)

    def __matmul__(self, other: Any) -> Variable:
        return MatMul()(self, other)

    def __rmatmul__(self, other: Any) -> Variable:
        return MatMul()(other, self)

    def __getitem__(self, index: Any) -> Variable:
        return GetItem(index)(self)

    # -- shape methods --------------------------------------------------------------------
    def sum(self, axis: Any = None, keepdims: bool = False) -> Variable:
        return Sum(axis, keepdims)(self)

    def reshape(self, *shape: Any) -> Variable:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape(shape)(self)

    def transpose(self, *axes: int) -> Variable:
        return Transpose(axes or None)(self)

    @property
    def T(self) -> Variable:  # noqa: N802 - NumPy's name
        return Transpose()(self)


def _new_variable(data: Any, requires_grad: bool) -> Variable:
    """A function's output: like ``Variable(data)`` without re-checking what forward returned."""
    v = Variable.__new__(Variable)
    v.data = data if type(data) is np.ndarray and data.dtype == np.float64 else as_array(data)
    v.name = None
    v.grad = None
    v.creator = None
    v.generation = 0
    v.requires_grad = requires_grad
    return v


def as_variable(x: Any) -> Variable:
    """``x`` itself if it is a Variable, else a constant (no gradient) holding it."""
    return x if isinstance(x, Variable) else Variable(x, requires_grad=False)


class Function:
    """One operation in the graph. Subclass it and write ``forward`` and ``backward``.

    ``forward(*arrays)`` gets the inputs' arrays and returns an array or a tuple of arrays.
    ``backward(*gys)`` gets one gradient (Variable) per output and returns one per input
    (a Variable, an array, or None for "no gradient"). Write backward with Variables and the
    functions of :mod:`gradcli.functions` so that it is itself differentiable.

    Inside backward: ``self.inputs`` (Variables), ``self.outputs`` (weak references),
    ``self.saved_tensors`` (what forward passed to ``save_for_backward``, as Variables: an
    input's array comes back as that input Variable, so higher derivatives flow through it),
    and ``self.needs_input_grad`` (one bool per input: skip work for constants).
    """

    inputs: tuple[Variable, ...]
    outputs: tuple[weakref.ref[Variable], ...]
    generation: int = 0
    _saved: tuple[Any, ...] = ()

    def __call__(self, *inputs: Any) -> Any:
        # The hot path of every operation: plain loops, no generators (they cost here).
        ins = tuple([x if isinstance(x, Variable) else Variable(x, requires_grad=False) for x in inputs])
        self.inputs = ins
        ys = self.forward(*[x.data for x in ins])
        if not isinstance(ys, tuple):
            ys = (ys,)
        record = False
        if _grad_enabled.get():
            gen = -1
            for x in ins:
                if x.requires_grad:
                    record = True
                if x.generation > gen:
                    gen = x.generation
        outs = tuple([_new_variable(y, record) for y in ys])
        if record:
            if "outputs" in self.__dict__:
                raise RuntimeError(
                    f"this {type(self).__name__} object is already a node of a graph: "
                    f"call a new one for each use ({type(self).__name__}()(...))"
                )
            self.generation = gen
            for o in outs:
                o.creator = self
                o.generation = gen + 1
            self.outputs = tuple([weakref.ref(o) for o in outs])
            self._out_shapes = tuple([o.data.shape for o in outs])
            if self._saved:
                self._saved_outputs = {id(y): i for i, y in enumerate(ys)}
        else:
            self._saved = ()
            del self.inputs
        return outs if len(outs) > 1 else outs[0]

    def forward(self, *xs: Any) -> Any:
        raise NotImplementedError

    def backward(self, *gys: Variable) -> Any:
        raise NotImplementedError

    # -- helpers for backward -------------------------------------------------------------
    def save_for_backward(self, *arrays: Any) -> None:
        """Keep values that backward needs (call it from forward; PyTorch's ctx idiom)."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple[Variable, ...]:
        by_id: dict[int, Variable] = {id(x.data): x for x in self.inputs}
        for id_, i in getattr(self, "_saved_outputs", {}).items():
            out = self.outputs[i]()
            if out is not None:
                by_id.setdefault(id_, out)
        return tuple(a if isinstance(a, Variable) else _saved(by_id.get(id(a)), a) for a in self._saved)

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        return tuple(x.requires_grad for x in self.inputs)

    def output(self, i: int = 0) -> Variable | None:
        """The i-th output Variable if it is still alive."""
        return self.outputs[i]()

    @property
    def name(self) -> str:
        return getattr(self, "registry_name", type(self).__name__.lower())


def _saved(var: Variable | None, array: Any) -> Variable:
    """A saved array as a Variable: the graph's own Variable if it was one, else a constant."""
    return var if var is not None else Variable(array, requires_grad=False)


def backward(
    outputs: Sequence[Variable],
    grad_outputs: Sequence[Any] | None = None,
    retain_grad: bool = False,
    create_graph: bool = False,
    inputs: Sequence[Variable] | None = None,
    trace: Callable[[Function, list[Variable], tuple[Any, ...]], None] | None = None,
) -> list[Variable] | None:
    """Backpropagate from ``outputs`` (seeded with ``grad_outputs``, default ones).

    Functions are taken from a heap in decreasing generation, so each runs once, after all the
    gradient for its outputs has arrived. Gradients accumulate in a table private to this call:

    - without ``inputs`` (``Variable.backward``): at the end each leaf's gradient is added to its
      ``.grad`` (and every intermediate's too with ``retain_grad``);
    - with ``inputs`` (like ``torch.autograd.grad``): no ``.grad`` is touched; the gradients of
      ``inputs`` are returned, zeros for an input that does not reach the outputs.

    ``trace(function, gys, gxs)``, if given, is called for each step (``gradcli explain``).
    """
    # Variables and Functions hash by identity, so they key these tables directly (and keying
    # by the object keeps it alive while its gradient is pending).
    heap: list[tuple[int, int, Function]] = []
    seen: set[Function] = set()
    tie = itertools.count()
    grads: dict[Variable, Variable] = {}
    wanted = frozenset() if inputs is None else frozenset(inputs)
    kept: dict[Variable, Variable] = {}
    push = heapq.heappush
    limit = _node_limit.get() if create_graph else None
    visited = 0

    with using_grad(create_graph), paused_gc():
        for i, y in enumerate(outputs):
            g = None if grad_outputs is None else grad_outputs[i]
            g = Variable(np.ones_like(y.data), requires_grad=False) if g is None else as_variable(g)
            grads[y] = grads[y] + g if y in grads else g
            f = y.creator
            if f is not None and f not in seen:
                seen.add(f)
                push(heap, (-f.generation, next(tie), f))

        while heap:
            f = heapq.heappop(heap)[2]
            if limit is not None:
                visited += 1
                if visited > limit:
                    raise GraphTooLarge(visited, limit)
            gys = []
            for ref, shape in zip(f.outputs, f._out_shapes):
                o = ref()
                g = grads.pop(o, None) if o is not None else None
                if g is None:
                    g = Variable(np.zeros_like(f.inputs[0].data, shape=shape), requires_grad=False)
                elif retain_grad or o in wanted:
                    kept[o] = g
                gys.append(g)
            gxs = f.backward(*gys)
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            if trace is not None:
                trace(f, gys, gxs)
            for x, gx in zip(f.inputs, gxs):
                if gx is None or not x.requires_grad:
                    continue
                if not isinstance(gx, Variable):
                    gx = Variable(gx, requires_grad=False)
                grads[x] = grads[x] + gx if x in grads else gx
                c = x.creator
                if c is not None and c not in seen:
                    seen.add(c)
                    push(heap, (-c.generation, next(tie), c))

    # What is left in ``grads`` belongs to variables without a creator (leaves) or to outputs
    # that no function consumed.
    kept.update(grads)
    if inputs is not None:
        return [
            kept[x] if x in kept else Variable(np.zeros_like(x.data), requires_grad=False) for x in inputs
        ]
    for var, g in kept.items():
        if var.creator is None or retain_grad:
            var.grad = g if var.grad is None else var.grad + g
    return None


def grad(
    outputs: Variable | Sequence[Variable],
    inputs: Sequence[Variable],
    grad_outputs: Sequence[Any] | None = None,
    create_graph: bool = False,
) -> list[Variable]:
    """d(sum of outputs)/d(input) for each input, leaving every ``.grad`` untouched."""
    outs = [outputs] if isinstance(outputs, Variable) else list(outputs)
    result = backward(outs, grad_outputs, create_graph=create_graph, inputs=inputs)
    assert result is not None
    return result


# --------------------------------------------------------------------------------------------
# Core operators. Each forward sits beside its backward; backward is written with Variables so
# that it can be differentiated again.
# --------------------------------------------------------------------------------------------


def sum_to(x: Variable, shape: tuple[int, ...]) -> Variable:
    """Sum ``x`` down to ``shape``: undoes NumPy broadcasting in backward."""
    if x.shape == tuple(shape):
        return x
    return SumTo(shape)(x)


def broadcast_to(x: Variable, shape: tuple[int, ...]) -> Variable:
    if x.shape == tuple(shape):
        return x
    return BroadcastTo(shape)(x)


def _sum_to_array(x: Any, shape: tuple[int, ...]) -> Any:
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1)
    y = x.sum(axis=axes, keepdims=True)
    if lead:
        y = y.reshape(y.shape[lead:])
    return y


class SumTo(Function):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return _sum_to_array(x, self.shape)

    def backward(self, gy: Variable) -> Variable:
        return broadcast_to(gy, self.x_shape)


class BroadcastTo(Function):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return np.broadcast_to(x, self.shape).copy()

    def backward(self, gy: Variable) -> Variable:
        return sum_to(gy, self.x_shape)


class Neg(Function):
    def forward(self, x: Any) -> Any:
        return -x

    def backward(self, gy: Variable) -> Variable:
        return -gy


class Add(Function):
    def forward(self, x: Any, y: Any) -> Any:
        return x + y

    def backward(self, gy: Variable) -> tuple[Variable, Variable]:
        x0, x1 = self.inputs
        return sum_to(gy, x0.shape), sum_to(gy, x1.shape)


class Sub(Function):
    def forward(self, x: Any, y: Any) -> Any:
        return x - y

    def backward(self, gy: Variable) -> tuple[Variable, Variable]:
        x0, x1 = self.inputs
        return sum_to(gy, x0.shape), sum_to(-gy, x1.shape)


class Mul(Function):
    def forward(self, x: Any, y: Any) -> Any:
        return x * y

    def backward(self, gy: Variable) -> tuple[Variable | None, Variable | None]:
        x0, x1 = self.inputs
        g0 = sum_to(gy * x1, x0.shape) if x0.requires_grad else None
        g1 = sum_to(gy * x0, x1.shape) if x1.requires_grad else None
        return g0, g1


class Div(Function):
    def forward(self, x: Any, y: Any) -> Any:
        return x / y

    def backward(self, gy: Variable) -> tuple[Variable | None, Variable | None]:
        x0, x1 = self.inputs
        g0 = sum_to(gy / x1, x0.shape) if x0.requires_grad else None
        g1 = sum_to(-gy * x0 / (x1 * x1), x1.shape) if x1.requires_grad else None
        return g0, g1


class Pow(Function):
    """x ** y. At 0 ** y with y >= 0 the derivative in y is 0 (PyTorch's choice, not NaN)."""

    def forward(self, x: Any, y: Any) -> Any:
        return x**y

    def backward(self, gy: Variable) -> tuple[Variable | None, Variable | None]:
        x, y = self.inputs
        gx = gexp = None
        if x.requires_grad:
            gx = sum_to(gy * _power_rule(x, y), x.shape)
        if y.requires_grad:
            out = self.output()
            if out is None:
                out = x**y
            zero = (x.data == 0) & (y.data >= 0)
            # log(x) where it is used; at the masked points log(1) = 0 gives the 0 above.
            base = x + Variable(zero * 1.0, requires_grad=False) if zero.any() else x
            gexp = sum_to(gy * out * Log()(base), y.shape)
        return gx, gexp


def _power_rule(x: Variable, y: Variable) -> Variable:
    """d/dx x**y = y * x**(y-1), which is 0 wherever y == 0 (x**0 is constant, even at x = 0).

    A constant scalar exponent (``x**2``, the common case) is worked out once, in fewer passes
    over the data.
    """
    if not y.requires_grad and y.ndim == 0:
        c = float(y.data)
        if c == 0.0:
            return Variable(np.zeros_like(x.data), requires_grad=False)
        if c == 1.0:
            return Variable(np.ones_like(x.data), requires_grad=False)
        return x * 2.0 if c == 2.0 else c * x ** (c - 1.0)
    zero = y.data == 0
    if not zero.any():
        return y * x ** (y - 1.0)
    # Where y == 0 use the exponent 0 instead of -1: y * x**0 = 0, where 0 * 0**-1 would be NaN.
    return y * x ** (y - 1.0 + Variable(zero * 1.0, requires_grad=False))


class Log(Function):
    def forward(self, x: Any) -> Any:
        return np.log(x)

    def backward(self, gy: Variable) -> Variable:
        return gy / self.inputs[0]


class MatMul(Function):
    def forward(self, a: Any, b: Any) -> Any:
        return a @ b

    def backward(self, gy: Variable) -> tuple[Variable | None, Variable | None]:
        return matmul_backward(*self.inputs, gy)


def matmul_backward(a: Variable, b: Variable, gy: Variable) -> tuple[Variable | None, Variable | None]:
    """Gradients of ``a @ b`` (NumPy's 1-D promotion and batch broadcasting undone)."""
    a2 = a if a.ndim > 1 else a.reshape(1, -1)
    b2 = b if b.ndim > 1 else b.reshape(-1, 1)
    out_shape = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
    gy2 = gy.reshape(out_shape)
    ga = gb = None
    if a.requires_grad:
        ga = sum_to(gy2 @ _swap_last(b2), a2.shape).reshape(a.shape)
    if b.requires_grad:
        gb = sum_to(_swap_last(a2) @ gy2, b2.shape).reshape(b.shape)
    return ga, gb


def _swap_last(x: Variable) -> Variable:
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return Transpose(tuple(axes))(x)


class Sum(Function):
    def __init__(self, axis: Any = None, keepdims: bool = False) -> None:
        self.axis = tuple(axis) if isinstance(axis, list) else axis
        self.keepdims = keepdims

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy: Variable) -> Variable:
        return unreduce(gy, self.x_shape, self.axis, self.keepdims)


def keepdims_shape(x_shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    """The shape a reduction of ``x_shape`` over ``axis`` has with ``keepdims=True``."""
    ndim = len(x_shape)
    if axis is None or ndim == 0:  # NumPy accepts axis 0 / -1 on a 0-d array
        return (1,) * ndim
    axes = {a % ndim for a in (axis if isinstance(axis, tuple) else (axis,))}
    return tuple(1 if i in axes else n for i, n in enumerate(x_shape))


def unreduce(gy: Variable, x_shape: tuple[int, ...], axis: Any, keepdims: bool = False) -> Variable:
    """The gradient of a reduction of an ``x_shape`` array over ``axis``, spread back over the
    input: the reduced axes put back (unless kept), then broadcast to ``x_shape``."""
    if not keepdims:
        gy = gy.reshape(keepdims_shape(x_shape, axis))
    return broadcast_to(gy, x_shape)


class Reshape(Function):
    def __init__(self, shape: Any) -> None:
        self.shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy: Variable) -> Variable:
        return gy.reshape(self.x_shape)


class Transpose(Function):
    def __init__(self, axes: Any = None) -> None:
        self.axes = tuple(axes) if axes is not None else None

    def forward(self, x: Any) -> Any:
        return x.transpose(self.axes)

    def backward(self, gy: Variable) -> Variable:
        if self.axes is None:
            return Transpose()(gy)
        inverse = tuple(int(i) for i in np.argsort([a % len(self.axes) for a in self.axes]))
        return Transpose(inverse)(gy)


class GetItem(Function):
    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return np.array(x[self.index], dtype=np.float64)

    def backward(self, gy: Variable) -> Variable:
        return GetItemGrad(self.index, self.x_shape)(gy)


class GetItemGrad(Function):
    """Scatter a gradient back into the shape indexing came from (repeated indices add up)."""

    def __init__(self, index: Any, shape: tuple[int, ...]) -> None:
        self.index = index
        self.shape = shape

    def forward(self, gy: Any) -> Any:
        gx = np.zeros_like(gy, shape=self.shape)
        np.add.at(gx, self.index, gy)
        return gx

    def backward(self, ggx: Variable) -> Variable:
        return GetItem(self.index)(ggx)
