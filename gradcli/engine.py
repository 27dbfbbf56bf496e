"""Reverse-mode automatic differentiation: Variable, Function, backward, no_grad.

The vocabulary is DeZero's (Variable, Function, generations, ``create_graph``), with its known
mistakes fixed: gradients accumulate instead of being overwritten, backward runs in generation
order (so shared nodes see every contribution before they pass theirs on), nothing
recurses, and the grad-mode switch is per thread and per async context (a ``ContextVar``).

One derivative rule per function serves every mode. A rule is written with operators and the
library's functions, which dispatch on what they receive: given Variables they build a graph
(``create_graph``, derivatives of any order), given arrays they compute on arrays. A first-order
backward therefore runs the very same rules on plain arrays, building no Variables, and adds
gradients in place into buffers the pass owns. Broadcasting is undone here, once: every gradient
a rule returns is summed to its input's shape, so no rule (and no plugin) has to.

The core operators that ``Variable`` itself exposes (``+ - * / ** @``, indexing, ``sum``,
``reshape``, ``T``) live here beside it; everything else is in :mod:`gradcli.functions`.
This module imports nothing else of gradcli.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import gc
import inspect
import operator
import sys
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar, Token
from typing import Any, overload

import numpy as np

from . import backend
from .backend import as_array

_grad_enabled: ContextVar[bool] = ContextVar("gradcli_grad_enabled", default=True)
_node_limit: ContextVar[int | None] = ContextVar("gradcli_node_limit", default=None)
_pass_sizes: ContextVar[list[int] | None] = ContextVar("gradcli_pass_sizes", default=None)


class _Setting(contextlib.ContextDecorator, contextlib.AbstractContextManager[None]):
    """A block with a context variable set to a value (for this thread/context only): a class
    rather than a generator, because every backward pass and every run enters a few (a
    generator's block costs twice as much). Like a generator's, it also decorates a function
    (``@no_grad()``), each call in a block of its own.

    One object may be entered again inside its own block, or from several threads or tasks at
    once: each entry keeps its own token, and an exit resets the latest one of its own context
    (a token of another context cannot be reset there, and within one context blocks nest)."""

    __slots__ = ("value", "tokens")
    var: ContextVar[Any]

    def __init__(self, value: Any) -> None:
        self.value = value
        self.tokens: list[Token[Any]] = []

    def _recreate_cm(self) -> _Setting:
        return type(self)(self.value)

    def __call__(self, function: Callable[..., Any]) -> Any:
        # A generator's or a coroutine's body runs after the call returns, a step at a time:
        # the block is around each step, not around the call (and not around the caller's code
        # between steps), as torch.no_grad does for generators.
        if inspect.isasyncgenfunction(function):
            return _async_generator_in(self._recreate_cm, function)
        if inspect.isgeneratorfunction(function):
            return _generator_in(self._recreate_cm, function)
        if inspect.iscoroutinefunction(function):
            return _coroutine_in(self._recreate_cm, function)
        return super().__call__(function)

    def __enter__(self) -> None:
        self.tokens.append(self.var.set(self.value))

    def __exit__(self, *exc: object) -> None:
        tokens = self.tokens
        token = tokens[-1]
        try:
            self.var.reset(token)
        except ValueError:  # the latest entry is another thread's or task's: find this one's
            token = self._reset_own(tokens)
        tokens.remove(token)

    def _reset_own(self, tokens: list[Token[Any]]) -> Token[Any]:
        for token in tokens[::-1]:  # a copy: other threads add and remove theirs meanwhile
            try:
                self.var.reset(token)
            except ValueError:
                continue
            return token
        raise RuntimeError(f"{type(self).__name__}: exited in a context that did not enter it")


def _generator_in(block: Callable[[], _Setting], function: Callable[..., Any]) -> Any:
    @functools.wraps(function)
    def stepped(*args: Any, **kwargs: Any) -> Any:
        gen = function(*args, **kwargs)
        try:
            with block():
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with block():
                        gen.close()
                    raise
                except BaseException as e:  # thrown in by the caller: passed on
                    with block():
                        response = gen.throw(e)
                else:
                    with block():
                        response = gen.send(request)
        except StopIteration as stop:
            return stop.value

    return stepped


def _async_generator_in(block: Callable[[], _Setting], function: Callable[..., Any]) -> Any:
    @functools.wraps(function)
    async def stepped(*args: Any, **kwargs: Any) -> Any:
        gen = function(*args, **kwargs)
        try:
            with block():
                response = await gen.asend(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with block():
                        await gen.aclose()
                    raise
                except BaseException as e:  # thrown in by the caller: passed on
                    with block():
                        response = await gen.athrow(e)
                else:
                    with block():
                        response = await gen.asend(request)
        except StopAsyncIteration:
            return

    return stepped


def _coroutine_in(block: Callable[[], _Setting], function: Callable[..., Any]) -> Any:
    @functools.wraps(function)
    async def run(*args: Any, **kwargs: Any) -> Any:
        with block():  # the setting is the task's own (a context variable) while it waits
            return await function(*args, **kwargs)

    return run


class using_grad(_Setting):  # noqa: N801 (a function to its callers, as torch.set_grad_enabled is)
    """Turn graph recording on or off inside the block (for this thread/context only)."""

    __slots__ = ()
    var = _grad_enabled

    def __init__(self, enabled: bool) -> None:
        if enabled is not True and enabled is not False:
            if not isinstance(enabled, np.bool_):  # a truthy "no" or None would be taken as it reads
                raise TypeError(f"using_grad takes True or False, got {enabled!r}")
            enabled = bool(enabled)
        self.value, self.tokens = enabled, []


class paused_gc(contextlib.ContextDecorator, contextlib.AbstractContextManager[None]):  # noqa: N801
    """Pause Python's cyclic garbage collector while a graph is built or walked in bulk.

    A graph of n nodes is n long-lived objects, and each full collection rescans them all: on a
    100,000-operation chain that was half the forward time. A first-order graph has no cycles
    (outputs are held weakly), so nothing is lost; reference counting still frees everything.
    Nesting (of one object too) and threads are safe: only an entry that found the collector on
    turns it back on.
    """

    __slots__ = ("was_on",)

    def __init__(self) -> None:
        self.was_on: list[bool] = []

    def _recreate_cm(self) -> paused_gc:
        return paused_gc()

    def __enter__(self) -> None:
        on = gc.isenabled()
        self.was_on.append(on)
        if on:
            gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.was_on.pop():
            gc.enable()


@overload
def no_grad() -> using_grad: ...
@overload
def no_grad(function: Callable[..., Any]) -> Callable[..., Any]: ...
def no_grad(function: Callable[..., Any] | None = None) -> Any:
    """Evaluate without recording a graph: no backward is possible, and memory is freed early.

    A block (``with no_grad():``), or a decorator, with or without the parentheses (``@no_grad``,
    ``@no_grad()``, as torch takes both)."""
    if function is not None:
        if not callable(function):
            raise TypeError(f"no_grad takes no arguments, or a function to decorate; got {function!r}")
        return using_grad(False)(function)
    return using_grad(False)


def is_grad_enabled() -> bool:
    return _grad_enabled.get()


class GraphTooLarge(RuntimeError):  # noqa: N818 - a limit reached, named as such
    """A differentiable backward pass grew past the node limit (see :func:`limited_nodes`), or
    would, by the growth of the passes before it (``predicted``)."""

    def __init__(self, visited: int, limit: int, predicted: bool = False) -> None:
        if predicted:
            text = (
                f"a differentiable backward pass would visit about {visited:,} functions, more than "
                f"{limit:,} (the graph of each derivative is several times larger than the last)"
            )
        else:
            text = (
                f"a differentiable backward pass visited more than {limit:,} functions "
                f"(the graph of each derivative is larger than the last)"
            )
        super().__init__(text)
        self.visited, self.limit, self.predicted = visited, limit, predicted


def node_limit() -> int | None:
    """The limit of :func:`limited_nodes` in force here (None: none)."""
    return _node_limit.get()


@contextlib.contextmanager
def pass_sizes() -> Iterator[list[int]]:
    """Inside the block, the number of Functions each differentiable backward pass visits is
    appended to the list yielded: how the graph of each order of derivatives grows."""
    sizes: list[int] = []
    token = _pass_sizes.set(sizes)
    try:
        yield sizes
    finally:
        _pass_sizes.reset(token)


@contextlib.contextmanager
def limited_nodes(limit: int | None) -> Iterator[None]:
    """Inside the block, a ``backward(..., create_graph=True)`` that visits more than ``limit``
    Functions raises :class:`GraphTooLarge` (None: no limit).

    Each order of differentiation builds a graph from the last one, often twice its size: the
    limit stops exponential work early instead of after minutes. First-order passes, which
    build nothing, are not counted.
    """
    token = _node_limit.set(limit)
    try:
        yield
    finally:
        _node_limit.reset(token)


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

    data: Any

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
        return self.data.shape  # type: ignore[no-any-return]

    @property
    def ndim(self) -> int:
        return self.data.ndim  # type: ignore[no-any-return]

    @property
    def size(self) -> int:
        return self.data.size  # type: ignore[no-any-return]

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    def __len__(self) -> int:
        if not self.data.ndim:
            raise TypeError("len() of a Variable of no axes (a scalar), as of a 0-d NumPy array")
        return len(self.data)

    def __iter__(self) -> Iterator[Variable]:
        # Without it, iteration went by __getitem__ until IndexError: a scalar gave no elements.
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        """As NumPy's: the truth of the only element; ambiguous for more (or none)."""
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a Variable of {self.data.size} elements is ambiguous: "
                "use .data.any() or .data.all()"
            )
        return bool(self.data)

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
        return Neg()(self)  # type: ignore[no-any-return]

    def __pos__(self) -> Variable:
        return self

    def __add__(self, other: Any) -> Variable:
        return Add()(self, other)  # type: ignore[no-any-return]

    def __radd__(self, other: Any) -> Variable:
        return Add()(other, self)  # type: ignore[no-any-return]

    def __sub__(self, other: Any) -> Variable:
        return Sub()(self, other)  # type: ignore[no-any-return]

    def __rsub__(self, other: Any) -> Variable:
        return Sub()(other, self)  # type: ignore[no-any-return]

    def __mul__(self, other: Any) -> Variable:
        return Mul()(self, other)  # type: ignore[no-any-return]

    def __rmul__(self, other: Any) -> Variable:
        return Mul()(other, self)  # type: ignore[no-any-return]

    def __truediv__(self, other: Any) -> Variable:
        return Div()(self, other)  # type: ignore[no-any-return]

    def __rtruediv__(self, other: Any) -> Variable:
        return Div()(other, self)  # type: ignore[no-any-return]

    def __pow__(self, other: Any) -> Variable:
        return Pow()(self, other)  # type: ignore[no-any-return]

    def __rpow__(self, other: Any) -> Variable:
        return Pow()(other, self)  # type: ignore[no-any-return]

    def __matmul__(self, other: Any) -> Variable:
        return MatMul()(self, other)  # type: ignore[no-any-return]

    def __rmatmul__(self, other: Any) -> Variable:
        return MatMul()(other, self)  # type: ignore[no-any-return]

    def __getitem__(self, index: Any) -> Variable:
        return GetItem(index)(self)  # type: ignore[no-any-return]

    # -- shape methods (the same names as ndarray's, so rules read alike on both) ----------
    def sum(self, axis: Any = None, keepdims: bool = False) -> Variable:
        return Sum(axis, keepdims)(self)  # type: ignore[no-any-return]

    def reshape(self, *shape: Any) -> Variable:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape(shape)(self)  # type: ignore[no-any-return]

    def transpose(self, *axes: Any) -> Variable:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = tuple(axes[0] or ())  # as NumPy's: x.transpose((1, 0)), x.transpose(None)
        return Transpose(axes or None)(self)  # type: ignore[no-any-return]

    @property
    def T(self) -> Variable:  # noqa: N802 - NumPy's name
        return Transpose()(self)  # type: ignore[no-any-return]


_new_instance = object.__new__
_FLOAT64 = np.dtype(np.float64)


def _new_variable(data: Any, requires_grad: bool) -> Variable:
    """A function's output: like ``Variable(data)`` without re-checking what forward returned."""
    v = Variable.__new__(Variable)
    kind = type(data)
    if not (kind is np.float64 or kind is np.ndarray and data.ndim and data.dtype == np.float64):
        data = as_array(data)
    v.data = data
    v.name = None
    v.grad = None
    v.creator = None
    v.generation = 0
    v.requires_grad = requires_grad
    return v


_CONSTANTS: dict[Any, Variable] = {}


def _constant(x: Any) -> Variable:
    """A number or array mixed into an operation, as a constant Variable. The Python numbers of a
    program's loop (``y * 0.999`` a million times) share one: a constant holds nothing that
    changes, and the garbage collector then has one object less per operation to scan."""
    kind = type(x)
    if (kind is float or kind is int) and x == x and x != 0:  # no NaN, and 0.0 is not -0.0
        known = _CONSTANTS.get(x)
        if known is None:
            if len(_CONSTANTS) >= 4096:
                _CONSTANTS.clear()
            known = _CONSTANTS[x] = _new_variable(x, False)
        return known
    return _new_variable(x, False)


def as_variable(x: Any) -> Variable:
    """``x`` itself if it is a Variable, else a constant (no gradient) holding it."""
    return x if isinstance(x, Variable) else Variable(x, requires_grad=False)


def data_of(x: Any) -> Any:
    """The array behind ``x``: a Variable's ``data``, or ``x`` itself. For masks and shapes in a
    rule, which must not be differentiated whichever mode the rule runs in."""
    return x.data if isinstance(x, Variable) else x


class Function:
    """One operation in the graph. Subclass it and write ``forward`` and ``backward``.

    ``forward(*arrays)`` gets the inputs' arrays and returns an array or a tuple of arrays.
    ``backward(*gys)`` gets one gradient (Variable) per output and returns one per input
    (a Variable, an array, or None for "no gradient"). Write backward with Variables and the
    functions of :mod:`gradcli.functions` so that it is itself differentiable. A gradient may
    have the broadcast shape of the output: the engine sums it to its input's shape.

    Inside backward: ``self.inputs`` (Variables), ``self.outputs`` (weak references),
    ``self.saved_tensors`` (what forward passed to ``save_for_backward``, as Variables: an
    input's array comes back as that input Variable, so higher derivatives flow through it),
    and ``self.needs_input_grad`` (one bool per input: skip work for constants).

    The library's own functions implement :meth:`vjp` instead, which receives the inputs and
    outputs explicitly, so that it runs on arrays as well as on Variables (``raw_vjp``).
    """

    # Slots for what every node of a graph holds: one object less per operation for the garbage
    # collector to scan (a dict appears only for attributes of a subclass's own).
    __slots__ = ("inputs", "_outputs", "generation", "__dict__", "__weakref__")
    inputs: tuple[Variable, ...]
    # One weak reference, or a tuple of them for several outputs (one object less per node).
    _outputs: weakref.ref[Variable] | tuple[weakref.ref[Variable], ...]
    generation: int
    _saved: tuple[Any, ...] = ()
    _out_shapes: tuple[tuple[int, ...], ...] = ()
    #: ``vjp`` accepts arrays as well as Variables: a first-order backward runs it on arrays.
    raw_vjp: bool = False
    #: ``vjp`` reads the outputs (its ``ys``); when False the engine does not collect them.
    uses_outputs: bool = True
    #: Each output element depends only on the same element of each (broadcast) input.
    elementwise: bool = False
    #: Some gradients this function passes back are exact zeros that stand for "not taken"
    #: (``where``): from here on, elementwise rules keep a zero gradient zero even where their
    #: local derivative is infinite or NaN (the untaken branch of a ``where``).
    masks_gradient: bool = False
    #: The NumPy ufunc that ``forward`` is, where it is one that maps float64 inputs to a float64
    #: output and the function has no options: a tape may have it write into a buffer (``out=``).
    ufunc: np.ufunc | None = None

    def __call__(self, *inputs: Any) -> Any:
        # The hot path of every operation: plain code for one and two inputs (no comprehensions,
        # no calls that are not needed; each costs here), the general loop for the rest.
        n = len(inputs)
        record = False
        if n == 2:
            a, b = inputs
            if type(a) is not Variable and not isinstance(a, Variable):
                a = _constant(a)
                inputs = (a, b)
            if type(b) is not Variable and not isinstance(b, Variable):
                b = _constant(b)
                inputs = (a, b)
            self.inputs = inputs
            ys = self.forward(a.data, b.data) if self.raw_vjp else self._hand_forward(inputs)
            if _grad_enabled.get():
                record = a.requires_grad or b.requires_grad
                gen = a.generation if a.generation > b.generation else b.generation
        elif n == 1:
            a = inputs[0]
            if type(a) is not Variable and not isinstance(a, Variable):
                a = _constant(a)
                inputs = (a,)
            self.inputs = inputs
            ys = self.forward(a.data) if self.raw_vjp else self._hand_forward(inputs)
            if _grad_enabled.get():
                record = a.requires_grad
                gen = a.generation
        else:
            ins = tuple([x if isinstance(x, Variable) else _constant(x) for x in inputs])
            self.inputs = ins
            ys = self.forward(*[x.data for x in ins]) if self.raw_vjp else self._hand_forward(ins)
            if _grad_enabled.get():
                gen = -1
                for x in ins:
                    if x.requires_grad:
                        record = True
                    if x.generation > gen:
                        gen = x.generation
        if type(ys) is not tuple:
            # _new_variable, inline
            out = _new_instance(Variable)
            kind = type(ys)
            given = ys  # (what forward returned, which it may have saved)
            if not (kind is np.float64 or kind is np.ndarray and ys.ndim and ys.dtype == _FLOAT64):
                if kind is Variable or ys is None:
                    raise _not_an_array(self, ys)
                ys = as_array(ys)
            out.data = ys
            out.name = None
            out.grad = None
            out.requires_grad = record
            if record:
                if hasattr(self, "_outputs"):
                    raise _reused(self)
                self.generation = gen
                out.creator = self
                out.generation = gen + 1
                self._outputs = weakref.ref(out)
                if self._saved:
                    self._saved_outputs = {id(ys): 0, id(given): 0}
            else:
                out.creator = None
                out.generation = 0
                self._saved = ()
                del self.inputs
            return out
        try:
            outs = tuple([_new_variable(y, record) for y in ys])
        except TypeError:
            for y in ys:
                if y is None or isinstance(y, Variable):
                    raise _not_an_array(self, y) from None
            raise
        if record:
            if hasattr(self, "_outputs"):
                raise _reused(self)
            self.generation = gen
            for o in outs:
                o.creator = self
                o.generation = gen + 1
            self._outputs = tuple([weakref.ref(o) for o in outs])
            # A single output is alive whenever backward reaches its function; one of several
            # may have been dropped, and then its gradient is zeros of its shape.
            self._out_shapes = tuple([o.data.shape for o in outs])
            if self._saved:
                self._saved_outputs = {id(y): i for i, y in enumerate(ys)}
        else:
            self._saved = ()
            del self.inputs
        return outs if len(outs) > 1 else outs[0]

    @property
    def outputs(self) -> tuple[weakref.ref[Variable], ...]:
        """Weak references to the outputs (a graph holds its nodes through inputs only)."""
        refs = self._outputs
        return refs if type(refs) is tuple else (refs,)  # type: ignore[return-value]

    def forward(self, *xs: Any) -> Any:
        raise NotImplementedError(f"{self.name} has no forward")

    def backward(self, *gys: Any) -> Any:
        raise NotImplementedError(f"{self.name} has no backward")

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        """The inputs' gradients from the outputs' (``gys``), given the inputs ``xs`` and the
        outputs ``ys``: Variables, or arrays in a first-order pass when ``raw_vjp`` is set.

        The default hands over to :meth:`backward` (DeZero's and PyTorch's form).
        """
        return self.backward(*gys)

    # -- helpers for backward -------------------------------------------------------------
    def _hand_forward(self, inputs: tuple[Variable, ...]) -> Any:
        """``forward`` written by hand (a plugin's), on its inputs' arrays, a number as a 0-d
        array: ``np.asarray(x)`` of it is then ``x`` itself, which ``saved_tensors`` knows for
        that input (of a NumPy scalar it was a new array, a constant to backward, and second
        derivatives through it were 0)."""
        given = [np.asarray(x.data) if type(x.data) is np.float64 else x.data for x in inputs]
        ys = self.forward(*given)
        if self._saved:
            self._given = {id(g): k for k, g in enumerate(given)}
        return ys

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep values that backward needs (call it from forward; PyTorch's ctx idiom)."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple[Variable, ...]:
        by_id: dict[int, Variable] = {id(x.data): x for x in self.inputs}
        for id_, k in getattr(self, "_given", {}).items():
            by_id.setdefault(id_, self.inputs[k])
        for id_, i in getattr(self, "_saved_outputs", {}).items():
            out = self.outputs[i]()
            if out is not None:
                by_id.setdefault(id_, out)
        return tuple(a if isinstance(a, Variable) else _saved(by_id.get(id(a)), a) for a in self._saved)

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        return tuple(x.requires_grad for x in self.inputs)

    def output(self, i: int = 0) -> Variable:
        """The i-th output Variable (a backward only runs while its outputs are alive)."""
        out = self.outputs[i]()
        if out is None:
            raise RuntimeError(f"output {i} of {self.name} was freed before backward")
        return out

    @property
    def name(self) -> str:
        return getattr(self, "registry_name", type(self).__name__.lower())


def _not_an_array(f: Function, y: Any) -> TypeError:
    what = "None" if y is None else "a Variable"
    return TypeError(
        f"{type(f).__name__}.forward returned {what}: forward computes on arrays and returns arrays "
        "(the engine makes the output Variables; of a Variable v, return v.data)"
    )


def _reused(f: Function) -> RuntimeError:
    name = type(f).__name__
    return RuntimeError(
        f"this {name} object is already a node of a graph: call a new one for each use ({name}()(...))"
    )


def _saved(var: Variable | None, array: Any) -> Variable:
    """A saved array as a Variable: the graph's own Variable if it was one, else a constant."""
    return var if var is not None else Variable(array, requires_grad=False)


# --------------------------------------------------------------------------------------------
# Functions given by a table row: a forward and one rule per input
# --------------------------------------------------------------------------------------------


class Primitive(Function):
    """A function defined by its forward and one derivative rule per input (see :func:`primitive`).

    Each rule is a function whose parameter names say what it needs: ``gy`` (the output's
    gradient), the input names, ``out`` (the output; rules that reuse it, such as exp's), and
    the function's parameter names. ``None`` as a rule means no gradient flows to that input.
    """

    raw_vjp = True
    input_names: tuple[str, ...] = ()
    param_defaults: tuple[tuple[str, Any], ...] = ()
    params: dict[str, Any] = {}  # read only: a function with options gets its own
    rules: tuple[Callable[..., Any] | None, ...] = ()
    # For each rule, where its arguments come from in (gy, *inputs, out, *params), and a getter
    # that takes them out of that tuple as a tuple.
    _rule_args: tuple[tuple[int, ...], ...] = ()
    _pickers: tuple[Callable[[tuple[Any, ...]], tuple[Any, ...]], ...] = ()
    _forward: Callable[..., Any]

    def forward(self, *xs: Any) -> Any:
        return type(self)._forward(*xs, **self.params)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> tuple[Any, ...]:
        out = ys[0] if ys else None
        if out is None and self.uses_outputs and self.reads_output():
            out = self.forward(*[data_of(x) for x in xs])
        params = self.params
        values = (gys[0], *xs, out, *params.values()) if params else (gys[0], *xs, out)
        rules, inputs = self.rules, self.inputs
        if len(rules) == 2:  # the operators: the same, without a loop
            r0, r1 = rules
            p0, p1 = self._pickers
            return (
                None if r0 is None or not inputs[0].requires_grad else r0(*p0(values)),
                None if r1 is None or not inputs[1].requires_grad else r1(*p1(values)),
            )
        gxs: list[Any] = []
        for rule, pick, x in zip(rules, self._pickers, inputs):
            if rule is None or not x.requires_grad:
                gxs.append(None)
            else:
                gxs.append(rule(*pick(values)))
        return tuple(gxs)

    def reads_output(self) -> bool:
        """Whether a rule that will run (for an input that needs a gradient) reads ``out``."""
        return self.reads(tuple([x.requires_grad for x in self.inputs]))[1]

    @classmethod
    def reads(cls, needs: tuple[bool, ...]) -> tuple[tuple[int, ...], bool]:
        """The positions of the inputs, and whether the output, that the rules read when the
        inputs flagged in ``needs`` want gradients (their rules run). Worked out once per class
        and pattern."""
        cache = cls.__dict__.get("_reads")
        if cache is None:
            cache = {}
            cls._reads = cache  # type: ignore[attr-defined]
        found = cache.get(needs)
        if found is None:
            n = len(cls.input_names)
            running = [args for args, need in zip(cls._rule_args, needs) if need]
            inputs = tuple(sorted({a - 1 for args in running for a in args if 0 < a <= n}))
            found = cache[needs] = (inputs, any(n + 1 in args for args in running))
        return found

    def backward(self, gy: Any) -> Any:
        gxs = self.vjp((gy,), self.inputs, (self.outputs[0](),))
        return gxs if len(gxs) > 1 else gxs[0]


def primitive(
    name: str,
    forward: Callable[..., Any],
    rules: Sequence[Callable[..., Any] | None],
    inputs: Sequence[str] = ("x",),
    params: Mapping[str, Any] | None = None,
    elementwise: bool = True,
    masks_gradient: bool = False,
) -> type[Primitive]:
    """A Function class from a table row: ``forward(*inputs, **params)`` and one rule per input.

    Sin = primitive("sin", np.sin, [lambda gy, x: gy * cos(x)])
    Exp = primitive("exp", np.exp, [lambda gy, out: gy * out])
    """
    return primitive_maker(name, forward, rules, inputs, params, elementwise, masks_gradient)()


def primitive_maker(
    name: str,
    forward: Callable[..., Any],
    rules: Sequence[Callable[..., Any] | None],
    inputs: Sequence[str] = ("x",),
    params: Mapping[str, Any] | None = None,
    elementwise: bool = True,
    masks_gradient: bool = False,
) -> Callable[[], type[Primitive]]:
    """``primitive``'s row checked now (a rule that takes what no rule can is an error here),
    and a function that makes its class, the costly part, when it is first needed: the function
    table registers about 50 rows at start-up and an expression calls a few of them."""
    inputs = tuple(inputs)
    if len(rules) != len(inputs):
        raise ValueError(f"{name}: {len(inputs)} inputs need {len(inputs)} rules, got {len(rules)}")
    defaults = tuple((params or {}).items())
    sources = ("gy", *inputs, "out", *(p for p, _ in defaults))
    rule_args: list[tuple[int, ...]] = []
    for rule in rules:
        if rule is None:
            rule_args.append(())
            continue
        code = rule.__code__
        wanted = code.co_varnames[: code.co_argcount]
        bad = [w for w in wanted if w not in sources]
        if bad:
            raise ValueError(f"{name}: a rule takes {bad[0]!r}; rules take {', '.join(sources)}")
        rule_args.append(tuple(sources.index(w) for w in wanted))
    rules = tuple(rules)

    def make() -> type[Primitive]:
        out_index = len(inputs) + 1
        attrs: dict[str, Any] = {
            "_forward": staticmethod(forward),
            "input_names": inputs,
            "param_defaults": defaults,
            "rules": rules,
            "_rule_args": tuple(rule_args),
            "_pickers": tuple(_picker(a) for a in rule_args),
            "uses_outputs": any(out_index in a for a in rule_args),
            "elementwise": elementwise,
            "masks_gradient": masks_gradient,
            "registry_name": name,
            "__doc__": f"{name}: a function given by its forward and derivative rules",
        }
        if defaults:
            attrs["__init__"] = _init_options
        else:
            # No __init__ (object's, in C), and forward called directly, without a wrapper: the
            # hot path of every operator.
            attrs["forward"] = staticmethod(forward)
            attrs["ufunc"] = _float_ufunc(forward, len(inputs))
        class_name = "".join(part.capitalize() for part in name.split("_")) or name
        return type(class_name, (Primitive,), attrs)

    return make


def _init_options(self: Primitive, **params: Any) -> None:
    """``__init__`` of a function with options: each option's value, its default where not given."""
    unknown = set(params) - {p for p, _ in self.param_defaults}
    if unknown:
        raise TypeError(f"{self.name}() has no option {sorted(unknown)[0]!r}")
    self.params = {p: params.get(p, d) for p, d in self.param_defaults}


# The operators that, on arrays, are a ufunc call (ndarray's operators call these ufuncs).
_OPERATOR_UFUNCS: dict[Any, np.ufunc] = {
    operator.neg: np.negative,
    operator.add: np.add,
    operator.sub: np.subtract,
    operator.mul: np.multiply,
    operator.truediv: np.divide,
}


def _float_ufunc(forward: Callable[..., Any], n_inputs: int) -> np.ufunc | None:
    """``forward`` as a ufunc of ``n_inputs`` float64 arrays with one float64 output, or None."""
    ufunc = _OPERATOR_UFUNCS.get(forward, forward)
    if not isinstance(ufunc, np.ufunc) or ufunc.nin != n_inputs or ufunc.nout != 1:
        return None
    try:
        dtypes = ufunc.resolve_dtypes((_FLOAT64,) * n_inputs + (None,))
    except (TypeError, ValueError):  # no float64 loop
        return None
    return ufunc if dtypes[-1] == _FLOAT64 else None


def _picker(indices: tuple[int, ...]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A getter of ``indices`` out of a tuple, as a tuple (a slice when they are consecutive)."""
    if indices and indices == tuple(range(indices[0], indices[0] + len(indices))):
        return operator.itemgetter(slice(indices[0], indices[0] + len(indices)))
    if len(indices) == 1:
        return operator.itemgetter(slice(indices[0], indices[0] + 1))
    return operator.itemgetter(*indices) if indices else (lambda values: ())


# --------------------------------------------------------------------------------------------
# Backward
# --------------------------------------------------------------------------------------------


class GenerationQueue:
    """Functions in decreasing generation, first come first served within a generation: the
    order of a heap of (-generation, arrival), in constant time. A function only ever adds
    functions of lower generations than its own (its inputs' creators), so the highest
    generation with work left only moves down."""

    __slots__ = ("buckets", "top")

    def __init__(self) -> None:
        self.buckets: dict[int, collections.deque[Any]] = {}
        self.top = -1

    def push(self, generation: int, item: Any) -> None:
        bucket = self.buckets.get(generation)
        if bucket is None:
            bucket = self.buckets[generation] = collections.deque()
        bucket.append(item)
        if generation > self.top:
            self.top = generation

    def pop(self) -> Any:
        """The next item, or None when there is none left."""
        buckets, top = self.buckets, self.top
        while top >= 0:
            bucket = buckets.get(top)
            if bucket is not None:
                item = bucket.popleft()
                if not bucket:  # a generation done: its bucket goes (a chain has a million)
                    del buckets[top]
                self.top = top
                return item
            top -= 1
        self.top = top
        return None


def backward(
    outputs: Variable | Sequence[Variable],
    grad_outputs: Any = None,
    retain_grad: bool = False,
    create_graph: bool = False,
    inputs: Variable | Sequence[Variable] | None = None,
    trace: Callable[[Function, list[Any], tuple[Any, ...]], None] | None = None,
) -> list[Variable] | None:
    """Backpropagate from ``outputs`` (seeded with ``grad_outputs``, default ones).

    Functions are taken in decreasing generation (:class:`GenerationQueue`), so each runs once, after all the
    gradient for its outputs has arrived. Gradients accumulate in a table private to this call:

    - without ``inputs`` (``Variable.backward``): at the end each leaf's gradient is added to its
      ``.grad`` (and every intermediate's too with ``retain_grad``);
    - with ``inputs`` (like ``torch.autograd.grad``): no ``.grad`` is touched; the gradients of
      ``inputs`` are returned, zeros for an input that does not reach the outputs.

    Without ``create_graph`` the rules run on arrays (no Variables are built until the end);
    with it, on Variables, recording the graph of the derivative. Without it (and without
    ``trace``), the value of an intermediate of 256 KiB or more that no rule reads and that
    nothing but the graph holds is let go as the pass goes (PyTorch keeps no more than backward
    reads): its ``data`` becomes NaN of its shape, which is all a later pass reads of it.

    ``trace(function, gys, gxs)``, if given, is called for each step (``gradcli explain``), with
    each input's gradient already summed to that input's shape.
    """
    outputs, grad_outputs, inputs = _listed(outputs, grad_outputs, inputs)
    raw = not create_graph
    # Variables and Functions hash by identity, so they key these tables directly (and keying
    # by the object keeps it alive while its gradient is pending).
    queue = GenerationQueue()
    seen: set[Function] = set()
    # A gradient is added into in place where nothing but this table holds it (:func:`sole`): a
    # rule's new result or a sum, never a value a rule handed back (an input, a saved value, the
    # seed), which its owner still holds.
    grads: dict[Variable, Any] = {}
    wanted = frozenset() if inputs is None else frozenset(inputs)
    kept: dict[Variable, Any] = {}
    # A first-order pass lets go of the big values of the graph that no rule reads and nothing
    # else holds (_let_go): how often the functions it ran take each as an input, which they read.
    holds: dict[Variable, int] | None = {} if raw and trace is None else None
    read: set[Variable] = set()
    push = queue.push
    limit = _node_limit.get() if create_graph else None
    sizes = _pass_sizes.get() if create_graph else None
    visited = 0
    strong_zeros = False

    # A first-order pass over big arrays gives the results of elementwise rules the buffers it
    # has let go of (:class:`Spare`).
    spare = Spare() if holds is not None else None
    with using_grad(bool(create_graph)), paused_gc(), lending(spare):
        for i, y in enumerate(outputs):
            g = None if grad_outputs is None else grad_outputs[i]
            if raw:
                g = seed_like(y.data, 1.0) if g is None else as_array(data_of(g))
            else:
                g = Variable(np.ones_like(y.data), requires_grad=False) if g is None else as_variable(g)
            if y not in grads:
                grads[y] = g
            else:  # the same output twice
                alone = raw and sole(grads[y], 1)  # (before the call: its arguments would hold it)
                grads[y] = gradient_sum(grads[y], g, alone)
            f = y.creator
            if f is not None and f not in seen:
                seen.add(f)
                push(f.generation, f)

        pop = queue.pop
        while (f := pop()) is not None:
            if create_graph:
                visited += 1
                if limit is not None and visited > limit:
                    raise GraphTooLarge(visited, limit)
            refs = f._outputs
            if type(refs) is not tuple:  # one output, alive whenever backward reaches its function
                o = refs()
                g = grads.pop(o)
                if retain_grad or o in wanted:
                    kept[o] = g
                if trace is not None:
                    gys = [g]
                if raw and not strong_zeros and f.raw_vjp:
                    # _vjp and apply_rule, inline: the hot path of a first-order pass
                    ins = f.inputs
                    if len(ins) == 2:
                        xs: tuple[Any, ...] = (ins[0].data, ins[1].data)
                    elif len(ins) == 1:
                        xs = (ins[0].data,)
                    else:
                        xs = tuple([x.data for x in ins])
                    ys = (o.data,) if f.uses_outputs else ()
                    o = None  # (not held here: _let_go counts who holds each value)
                    if spare is not None and spare.buffers and Spare.lends_to(f):
                        gxs = spare.run(f, (g,), xs, ys)
                    else:
                        gxs = f.vjp((g,), xs, ys)
                    xs = ys = ()
                    if type(gxs) is not tuple:
                        gxs = as_tuple(gxs)
                else:
                    o = None
                    gxs = _vjp(f, [g], raw, strong_zeros)
            else:
                gys = []
                for k, ref in enumerate(refs):
                    o = ref()
                    g = grads.pop(o, None) if o is not None else None
                    if g is None:
                        g = seed_like(f.inputs[0].data, 0.0, f._out_shapes[k])
                        if not raw:
                            g = Variable(g, requires_grad=False)
                    else:
                        assert o is not None  # a gradient is only ever kept for a live output
                        if retain_grad or o in wanted:
                            kept[o] = g
                    gys.append(g)
                o = None  # (not held here: _let_go counts who holds each value)
                gxs = _vjp(f, gys, raw, strong_zeros)
            if f.masks_gradient:
                strong_zeros = True
            fitted: list[Any] | None = [] if trace is not None else None
            for x, gx in zip(f.inputs, gxs):
                if holds is not None and type(x.data) is np.ndarray and x.creator is not None:
                    _held(f, x, holds, read)
                if gx is None or not x.requires_grad:
                    if fitted is not None:
                        fitted.append(None)
                    continue
                if raw:
                    held = type(gx)
                    if held is not np.float64 and held is not np.ndarray or gx.shape != x.data.shape:
                        gx = fit_array(gx, x.data.shape)
                    if x not in grads:
                        grads[x] = gx
                    else:
                        # (Not in place under a trace, which keeps each step's gradients as they were.)
                        alone = fitted is None and sole(grads[x], 1)
                        grads[x] = gradient_sum(grads[x], gx, alone)
                else:
                    if not isinstance(gx, Variable):
                        gx = Variable(gx, requires_grad=False)
                    if gx.shape != x.shape:
                        gx = fit_to(gx, x.shape)
                    grads[x] = grads[x] + gx if x in grads else gx
                if fitted is not None:
                    fitted.append(gx)
                c = x.creator
                if c is not None and c not in seen:
                    seen.add(c)
                    push(c.generation, c)
            if holds:
                x = None
                _let_go(f, holds, read, grads, spare)
            if trace is not None:
                trace(f, gys, tuple(fitted or ()))
            if spare is not None and type(g) is np.ndarray:
                gx = None
                spare.give(g, 1)  # the gradient its rule has used, where nothing else holds it
        gys, gxs, gx, g = [], (), None, None  # the last step's, let go: own() counts who holds each

    if sizes is not None:
        sizes.append(visited)
    # What is left in ``grads`` belongs to variables without a creator (leaves) or to outputs
    # that no function consumed.
    kept.update(grads)
    grads.clear()  # (kept alone holds them now: own() counts who does)
    if raw:
        kept = {v: Variable(_owned(kept, v), requires_grad=False) for v in kept}
    if inputs is not None:
        return [
            kept[x] if x in kept else Variable(np.zeros_like(x.data), requires_grad=False) for x in inputs
        ]
    for var, g in kept.items():
        if var.creator is None or retain_grad:
            var.grad = g if var.grad is None else var.grad + g
    return None


# The least size of a value of the graph a first-order pass lets go of once nothing needs it:
# below it, freeing early saves less than the bookkeeping costs (NumPy's own size for reusing
# temporaries).
_LET_GO_BYTES = 1 << 18


def _listed(
    outputs: Any, seeds: Any, inputs: Any
) -> tuple[list[Variable], list[Any] | None, list[Variable] | None]:
    """``backward``'s arguments as lists, a single Variable (or a seed array) as a list of one (a
    Variable is itself a sequence of its elements: iterated, it gave getitem nodes outside the
    graph, and gradients of zeros), and each seed of its output's shape (one that broadcast to
    it gave another sum: a (3, 1) seed of ones for a (3,) output, three times the gradient)."""
    outputs = _variables("outputs", outputs)
    if inputs is not None:
        inputs = _variables("inputs", inputs)
    if seeds is None:
        return outputs, None, inputs
    if isinstance(seeds, (Variable, np.ndarray, np.generic, float, int)) or backend.is_foreign_array(seeds):
        seeds = [seeds]
    seeds = list(seeds)
    if len(seeds) != len(outputs):
        raise ValueError(f"{len(seeds)} seeds (grad_outputs) for {len(outputs)} outputs: give one per output")
    for k, (y, g) in enumerate(zip(outputs, seeds)):
        shape = None if g is None else tuple(np.shape(data_of(g)))
        if shape is not None and shape != y.shape:
            raise ValueError(
                f"grad_outputs[{k}] has shape {shape}, its output {y.shape}: a seed has its output's shape"
            )
    return outputs, seeds, inputs


def _variables(what: str, xs: Any) -> list[Variable]:
    """A Variable, or a sequence of them, as a list; else a TypeError naming ``what``."""
    if isinstance(xs, Variable):
        return [xs]
    items = list(xs) if isinstance(xs, (list, tuple)) else None
    if items is None or not all(isinstance(x, Variable) for x in items):
        raise TypeError(f"{what} must be a Variable or a list of Variables, got {xs!r}")
    return items


def _held(f: Function, x: Variable, holds: dict[Variable, int], read: set[Variable]) -> None:
    """Note that ``f`` holds ``x`` (once more) as an input, and whether its rules read it."""
    if x.data.nbytes < _LET_GO_BYTES:
        return
    holds[x] = holds.get(x, 0) + 1
    if isinstance(f, Primitive):
        needs = tuple([v.requires_grad for v in f.inputs])
        inputs = f.reads(needs)[0]
        if any(f.inputs[k] is x for k in inputs):
            read.add(x)
    else:  # a rule of its own reads what it likes
        read.add(x)


def _let_go(
    f: Function, holds: dict[Variable, int], read: set[Variable], grads: dict[Any, Any], spare: Spare | None
) -> None:
    """After ``f``'s rule has run and its inputs' gradients are in ``grads``: let go of the value of
    each input that no rule reads, whose own function's rule does not read its outputs, and that
    nothing holds but functions already reached (no name, no other branch of the graph), as
    PyTorch keeps no more than backward reads: ``-(y**2)`` as ``exp``'s input, before ``neg`` is
    reached, so that its buffer serves the rules still to run. Its data becomes a read-only
    broadcast of NaN of its shape: a later pass over the graph reads only the shape of a value no
    rule reads."""
    for x in f.inputs:
        if x in holds and x not in read:
            c = x.creator
            # held by this local, as sole()'s parameter is; by each function that takes it, as a
            # key of ``holds`` and, where it has a gradient waiting, of ``grads``
            held = holds[x] + 1 + (x in grads)
            if c is not None and not _reads_its_outputs(c) and sys.getrefcount(x) - _UNHELD <= held:
                del holds[x]  # (once: ``x + x`` takes it twice)
                _release(x, spare)


def _reads_its_outputs(f: Function) -> bool:
    return f.uses_outputs and (not isinstance(f, Primitive) or f.reads_output())


def _release(v: Variable, spare: Spare | None) -> None:
    """``v``'s data becomes a read-only broadcast of NaN of its shape; its buffer goes to ``spare``."""
    data = v.data
    v.data = np.broadcast_to(np.float64(np.nan), data.shape)
    if spare is not None:
        spare.give(data, 1)


def seed_like(like: Any, value: float = 1.0, shape: tuple[int, ...] | None = None) -> Any:
    """An array of ``value`` shaped like ``like`` (or ``shape``), in its array library. For NumPy a
    read-only broadcast of one number: a seed costs no memory and no pass over it, and a seed of
    ones (:class:`_Ones`) none either where a rule multiplies by it."""
    shape = like.shape if shape is None else shape
    if type(like) is np.ndarray or type(like) is np.float64:
        if not shape:
            return np.float64(value)
        seed = np.broadcast_to(np.float64(value), shape)
        return seed.view(_Ones) if value == 1.0 else seed
    return np.full_like(like, value, shape=shape)


class Spare:
    """Buffers a first-order pass has let go of (big float64 arrays that nothing else holds: a
    gradient once its rule has run, a value once the last rule that reads it has), for the
    results of the elementwise rules still to run (:class:`_Lending`).

    A new result of 76 MB costs about 8 ms more than one written into a buffer (the kernel maps
    and zeroes its pages), as much as the pass over it: on big arrays, the buffers a pass makes
    decide its time. NumPy's own reuse of temporaries (``gy * cos(x)`` lands in ``cos(x)``'s
    buffer) stays as it was; what it cannot reuse (``1.0 + x``, ``-gy``, ``gy * out``, a rule's
    arguments) comes from here where a buffer of its shape is free. Same ufuncs, same numbers.
    """

    __slots__ = ("buffers",)

    #: How many buffers it keeps at most (each as big as an input): the pass's peak memory does
    #: not grow by more than the buffers a rule would have made anyway.
    KEEP = 4

    def __init__(self) -> None:
        self.buffers: list[Any] = []

    def give(self, a: Any, held: int) -> None:
        """Keep ``a`` if it is a big float64 array of its own that nothing holds but ``held``
        references of the caller's (:func:`sole`)."""
        if (
            type(a) is np.ndarray
            and a.dtype == _FLOAT64
            and a.nbytes >= _LET_GO_BYTES
            and len(self.buffers) < Spare.KEEP
            and a.flags.c_contiguous
            and sole(a, held + 1)  # (and this call's parameter)
        ):
            self.buffers.append(a)

    def take(self, shape: tuple[int, ...]) -> Any:
        """A buffer of ``shape`` (taken out of the pool), or None."""
        buffers = self.buffers
        for k in range(len(buffers) - 1, -1, -1):
            if buffers[k].shape == shape:
                return buffers.pop(k)
        return None

    @staticmethod
    def lends_to(f: Function) -> bool:
        """Whether :meth:`run` serves ``f``'s rule: an elementwise table row, whose arithmetic
        is ufuncs of arrays of the result's shape."""
        return f.elementwise and isinstance(f, Primitive)

    def run(
        self,
        f: Function,
        gys: tuple[Any, ...],
        xs: tuple[Any, ...],
        ys: tuple[Any, ...],
        strong_zeros: bool = False,
    ) -> tuple[Any, ...]:
        """``f``'s rule on arrays (:func:`apply_rule`), its inputs and outputs lent as
        :class:`_Lending` views (not ``gys``: ``gy * cos(x)`` keeps landing in ``cos(x)``'s
        temporary), its gradients plain arrays again: an argument handed back as it is (``y`` of
        a product with the seed) is the argument itself."""
        lent: dict[int, Any] = {}  # each view, by id, to the array it is a view of
        args = []
        for a in (*xs, *ys):
            if type(a) is np.ndarray and a.dtype == _FLOAT64 and a.nbytes >= _LET_GO_BYTES:
                view = a.view(_Lending)
                lent[id(view)] = a
                args.append(view)
            else:
                args.append(a)
        n = len(xs)
        gxs = apply_rule(f, gys, tuple(args[:n]), tuple(args[n:]), strong_zeros)
        # (while the views are alive: they are known by id)
        return tuple([_plain(g, lent) if isinstance(g, _Lending) else g for g in gxs])


def _plain(g: Any, lent: dict[int, Any]) -> Any:
    original = lent.get(id(g))
    return original if original is not None else g.view(np.ndarray)


_lender: ContextVar[Spare | None] = ContextVar("gradcli_spare", default=None)


class lending(_Setting):  # noqa: N801
    """Inside the block, the ufuncs of :class:`_Lending` views take their results' buffers from
    ``spare`` (a first-order pass's), where it has one of their shape."""

    __slots__ = ()
    var = _lender

    def __init__(self, spare: Spare | None) -> None:
        self.value, self.tokens = spare, []


# Ufuncs with a loop from float64 inputs to one float64 output (not comparisons, not isfinite).
_FLOAT_LOOPS: dict[Any, bool] = {}


class _Lending(np.ndarray):
    """A rule's argument in a first-order pass over big arrays: the result of a float64 ufunc
    on it goes into a buffer the pass has let go of (:class:`Spare`), where one of its shape is
    free; anything else runs on the plain arrays, as it would have."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        plain = tuple([x.view(np.ndarray) if isinstance(x, _Lending) else x for x in inputs])
        if method == "__call__" and not kwargs and ufunc.nout == 1:
            spare = _lender.get()
            if spare is not None and spare.buffers and _float_loop(ufunc, plain):
                buffer = spare.take(np.broadcast_shapes(*[np.shape(x) for x in plain]))
                if buffer is not None:
                    return ufunc(*plain, out=buffer)
        if "out" in kwargs:
            outs = kwargs["out"]
            kwargs["out"] = tuple([x.view(np.ndarray) if isinstance(x, _Lending) else x for x in outs])
        return getattr(ufunc, method)(*plain, **kwargs)


def _float_loop(ufunc: Any, inputs: tuple[Any, ...]) -> bool:
    """Whether ``ufunc`` of ``inputs`` (float64 arrays and Python or NumPy numbers) is its float64
    loop, whose result a float64 buffer holds exactly."""
    loop = _FLOAT_LOOPS.get(ufunc)
    if loop is None:
        loop = _FLOAT_LOOPS[ufunc] = "d" * ufunc.nin + "->d" in ufunc.types
    if not loop:
        return False
    for x in inputs:
        kind = type(x)
        if kind is np.ndarray:
            if x.dtype != _FLOAT64:
                return False
        elif kind is not float and kind is not int and kind is not np.float64:
            return False
    return True


class _Ones(np.ndarray):
    """A read-only broadcast of 1.0: the seed of a backward pass. ``gy * v`` by it is ``v`` itself
    (1.0 * v is v, bit for bit), so a rule's product with the seed makes no pass over the data and
    no new buffer; every other operation sees a plain broadcast of ones. Any view of it (its
    reshapes, transposes, slices) is all ones too; a copy (writeable) is not taken for one."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if ufunc is np.multiply and method == "__call__" and not kwargs and len(inputs) == 2:
            a, b = inputs
            other = b if a is self else a
            if (
                (type(other) is np.ndarray or type(other) is _Lending)
                and other.dtype == np.float64
                and not self.flags.writeable
                and other.shape == np.broadcast_shapes(self.shape, other.shape)
            ):
                return other
        plain = tuple([x.view(np.ndarray) if isinstance(x, _Ones) else x for x in inputs])
        out = kwargs.get("out")
        if out is not None:  # an in-place operation on an array of this class (zeros like a seed)
            kwargs["out"] = tuple([o.view(np.ndarray) if isinstance(o, _Ones) else o for o in out])
        return getattr(ufunc, method)(*plain, **kwargs)


def sole(a: Any, held: int) -> bool:
    """Whether ``a`` is a NumPy array with memory of its own (no view), writeable, that nothing
    holds but ``held`` references of the caller's. NumPy's own test for reusing a temporary is
    the same count of references."""
    return (
        type(a) is np.ndarray
        and a.base is None
        and a.flags.writeable
        and sys.getrefcount(a) - _UNHELD <= held
    )


def _unheld(a: Any, held: int) -> int:
    return sys.getrefcount(a)


# What sys.getrefcount counts inside sole() for an array passed straight to it that no one else
# holds: measured by a function of the same shape, called the same way, as interpreters differ.
_UNHELD = _unheld(np.empty(0), 0)


def own(g: Any, owned: bool = False) -> Any:
    """A gradient handed to the caller as an array of its own: as it is where nothing else holds
    it (``owned``), else, for NumPy, copied (it may be the seed, or a value a rule handed back: an
    input, an output, a value kept for backward)."""
    if not owned and (type(g) is np.ndarray or type(g) is _Ones):
        return np.array(g)
    return g


def apply_rule(
    f: Function, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...], strong_zeros: bool
) -> tuple[Any, ...]:
    """``f``'s rule on arrays (``raw_vjp``), as a first-order pass runs it: after a masking
    function (``strong_zeros``), an elementwise rule keeps a zero incoming gradient zero."""
    if strong_zeros and f.elementwise:
        with np.errstate(divide="ignore", invalid="ignore"):
            gxs = as_tuple(f.vjp(gys, xs, ys))
        return tuple([None if gx is None else _strong_zero(gx, gys[0]) for gx in gxs])
    return as_tuple(f.vjp(gys, xs, ys))


def fit_array(g: Any, shape: tuple[int, ...]) -> Any:
    """A gradient on arrays with the shape of its input (what broadcasting added, summed away)."""
    if type(g) is Variable:
        g = g.data
    try:
        return g if g.shape == shape else _fit_array(g, shape)
    except AttributeError:  # a rule gave a plain number
        return _fit_array(as_array(g), shape)


def _owned(gradients: dict[Variable, Any], v: Variable) -> Any:
    """``gradients[v]`` as an array of its own (:func:`own`), where only ``gradients`` holds it."""
    alone = sole(gradients[v], 1)
    return own(gradients[v], alone)


def gradient_sum(total: Any, g: Any, in_place: bool) -> Any:
    """``total + g``, added into ``total`` itself where the pass may write into it (``in_place``:
    nothing else holds it, :func:`sole`)."""
    if in_place and type(total) is np.ndarray and total.shape == np.shape(g):
        np.add(total, g, out=total)
        return total
    return total + g


def _vjp(f: Function, gys: list[Any], raw: bool, strong_zeros: bool) -> tuple[Any, ...]:
    """Run ``f``'s rule in the pass's mode; gradients as a tuple, one per input."""
    if not raw:
        ys = tuple([r() for r in f.outputs]) if f.uses_outputs else ()
        xs: tuple[Any, ...] = f.inputs
    elif f.raw_vjp:
        ys = (
            tuple([None if o is None else o.data for o in (r() for r in f.outputs)]) if f.uses_outputs else ()
        )
        xs = tuple([x.data for x in f.inputs])
    else:
        # A backward written with Variables (a plugin's): give it Variables, without a graph.
        gys = [Variable(g, requires_grad=False) for g in gys]
        ys = tuple([r() for r in f.outputs])
        xs = f.inputs
    gxs = apply_rule(f, tuple(gys), xs, ys, strong_zeros)
    if not f.raw_vjp:
        _check_gradients(f, gxs, gys)
    return gxs


def _check_gradients(f: Function, gxs: tuple[Any, ...], gys: Sequence[Any]) -> None:
    """A backward written by hand (a plugin's) gives one gradient per input, each of its input's
    shape or of a shape the input was broadcast to in forward (at most the outputs'); anything
    else was once taken silently (a (7, 7) gradient of a number summed to 49, a third gradient
    for two inputs dropped, a missing one read as zero)."""
    inputs = f.inputs
    if len(gxs) != len(inputs):
        said = f"{len(gxs)} gradient{'' if len(gxs) == 1 else 's'}"
        raise ValueError(
            f"{f.name}'s backward returned {said} for {len(inputs)} input{'' if len(inputs) == 1 else 's'}"
        )
    try:
        out = np.broadcast_shapes(*[np.shape(data_of(g)) for g in gys])
    except ValueError:  # outputs of unrelated shapes: any broadcast of its input may be right
        out = None
    for k, (x, gx) in enumerate(zip(inputs, gxs)):
        if gx is None:
            continue
        data = data_of(gx)
        if not (isinstance(data, (int, float, np.number, list)) or hasattr(data, "shape")):
            short = isinstance(data, (str, bytes)) and len(data) <= 40
            what = repr(data) if short else f"a {type(data).__name__}"
            raise ValueError(
                f"{f.name}'s backward returned {what} for input {k + 1}, not a number or an array of numbers"
            )
        shape, want = np.shape(data), x.shape
        try:  # its input's shape (a sum, a product of matrices: whatever the output's), or a broadcast
            wider = np.broadcast_shapes(shape, want) == shape
            fits = shape == want or wider and (out is None or np.broadcast_shapes(shape, out) == out)
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"{f.name}'s backward returned a gradient of shape {shape} for input {k + 1}, of shape {want}"
            )


def as_tuple(gxs: Any) -> tuple[Any, ...]:
    return gxs if isinstance(gxs, tuple) else tuple(gxs) if isinstance(gxs, list) else (gxs,)


def _strong_zero(gx: Any, gy: Any) -> Any:
    """``gx`` with 0 wherever ``gy`` is exactly 0 and ``gx`` is not finite: a zero gradient stays
    zero through an infinite or undefined local derivative (0 * inf is 0 here, not NaN)."""
    g = data_of(gx)
    bad = ~np.isfinite(g)
    if not backend.maybe_any(bad):
        return gx
    drop = bad & (data_of(gy) == 0)
    if not backend.maybe_any(drop):
        return gx
    if isinstance(gx, Variable):
        return _Masked(~drop)(gx)
    return np.where(drop, 0.0, g)


class _Masked(Function):
    """x where ``keep``, else 0 (``keep`` a constant mask): how a strong zero enters a graph."""

    raw_vjp = True
    uses_outputs = False
    masks_gradient = True

    def __init__(self, keep: Any) -> None:
        self.keep = keep

    def forward(self, x: Any) -> Any:
        return np.where(self.keep, x, 0.0)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,) = gys
        return _Masked(self.keep)(gy) if isinstance(gy, Variable) else np.where(self.keep, gy, 0.0)


def grad(
    outputs: Variable | Sequence[Variable],
    inputs: Variable | Sequence[Variable],
    grad_outputs: Any = None,
    create_graph: bool = False,
) -> list[Variable]:
    """d(sum of outputs)/d(input) for each input, leaving every ``.grad`` untouched. A single
    Variable stands for a list of one, as in ``torch.autograd.grad(y, x)``."""
    result = backward(outputs, grad_outputs, create_graph=create_graph, inputs=inputs)
    assert result is not None
    return result


# --------------------------------------------------------------------------------------------
# Shapes: operations that rules use on Variables and arrays alike
# --------------------------------------------------------------------------------------------


def _sum_to_array(x: Any, shape: tuple[int, ...]) -> Any:
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and x.shape[i + lead] != 1
    )
    y = x.sum(axis=axes, keepdims=True) if axes else x
    if lead:
        y = y.reshape(y.shape[lead:])
    return y


def _fit_array(g: Any, shape: tuple[int, ...]) -> Any:
    """``g`` summed over the axes broadcasting added (and broadcast up, if it is smaller)."""
    g = np.asarray(g) if not hasattr(g, "ndim") else g
    if g.ndim >= len(shape):
        g = _sum_to_array(g, shape)
    if g.shape != shape:
        g = np.broadcast_to(g, shape)
    return g


def fit_to(g: Variable, shape: tuple[int, ...]) -> Variable:
    """A gradient summed to the shape of its input: what the engine does after every rule."""
    shape = tuple(shape)
    if g.ndim >= len(shape):
        g = sum_to(g, shape)
    return broadcast_to(g, shape)  # type: ignore[no-any-return]


def sum_to(x: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``x`` down to ``shape``: undoes NumPy broadcasting.

    The engine already does this for every gradient a rule returns; plugins need not call it.
    """
    if x.shape == tuple(shape):
        return x
    if isinstance(x, Variable):
        return SumTo(shape)(x)
    return _sum_to_array(x, tuple(shape))


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    if x.shape == tuple(shape):
        return x
    if isinstance(x, Variable):
        return BroadcastTo(shape)(x)
    return np.broadcast_to(x, shape)


def transpose(x: Any, axes: tuple[int, ...] | None = None) -> Any:
    if isinstance(x, Variable):
        return Transpose(axes)(x)
    return x.transpose() if axes is None else x.transpose(axes)  # Dask takes no None


def keepdims_shape(x_shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    """The shape a reduction of ``x_shape`` over ``axis`` has with ``keepdims=True``."""
    ndim = len(x_shape)
    if axis is None or ndim == 0:  # NumPy accepts axis 0 / -1 on a 0-d array
        return (1,) * ndim
    axes = {a % ndim for a in (axis if isinstance(axis, tuple) else (axis,))}
    return tuple(1 if i in axes else n for i, n in enumerate(x_shape))


def unreduce(gy: Any, x_shape: tuple[int, ...], axis: Any, keepdims: bool = False) -> Any:
    """The gradient of a reduction of an ``x_shape`` array over ``axis``, spread back over the
    input: the reduced axes put back (unless kept), then broadcast to ``x_shape``."""
    if not keepdims:
        gy = gy.reshape(keepdims_shape(x_shape, axis))
    return broadcast_to(gy, x_shape)


class _Shape(Function):
    """Shape operations: their rules are other shape operations, on arrays or Variables."""

    raw_vjp = True
    uses_outputs = False


class SumTo(_Shape):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return _sum_to_array(x, self.shape)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        return broadcast_to(gys[0], self.x_shape)


class BroadcastTo(_Shape):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return np.broadcast_to(x, self.shape).copy()

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        return sum_to(gys[0], self.x_shape)


class Sum(_Shape):
    def __init__(self, axis: Any = None, keepdims: bool = False) -> None:
        self.axis = tuple(axis) if isinstance(axis, list) else axis
        self.keepdims = keepdims

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        return unreduce(gys[0], self.x_shape, self.axis, self.keepdims)


class Reshape(_Shape):
    def __init__(self, shape: Any) -> None:
        self.shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return backend.reshape(x, self.shape)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,) = gys
        return Reshape(self.x_shape)(gy) if isinstance(gy, Variable) else backend.reshape(gy, self.x_shape)


class Transpose(_Shape):
    def __init__(self, axes: Any = None) -> None:
        self.axes = tuple(axes) if axes is not None else None

    def forward(self, x: Any) -> Any:
        return transpose(x, self.axes)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        if self.axes is None:
            return transpose(gys[0])
        inverse = tuple(int(i) for i in np.argsort([a % len(self.axes) for a in self.axes]))
        return transpose(gys[0], inverse)


class GetItem(_Shape):
    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        # A copy, not a view: the output must not change with its input.
        return backend.take(x, self.index).copy()

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        return scatter(gys[0], self.index, self.x_shape)


def take(x: Any, index: Any) -> Any:
    """``x[index]`` on arrays or Variables (a graph node for a Variable), for every array library."""
    return GetItem(index)(x) if isinstance(x, Variable) else backend.take(x, index)


def scatter(g: Any, index: Any, shape: tuple[int, ...]) -> Any:
    """The adjoint of ``x[index]`` for an ``x`` of ``shape``: ``g`` added into zeros at ``index``
    (repeated indices add up), on arrays or Variables."""
    if isinstance(g, Variable):
        return GetItemGrad(index, shape)(g)
    if type(g) is _Ones:  # (the gradient, zeros like g, is then a plain array, not of g's class)
        g = g.view(np.ndarray)
    return backend.scatter_add(g, index, shape)


class GetItemGrad(_Shape):
    """Scatter a gradient back into the shape indexing came from (repeated indices add up)."""

    def __init__(self, index: Any, shape: tuple[int, ...]) -> None:
        self.index = index
        self.shape = shape

    def forward(self, gy: Any) -> Any:
        return scatter(gy, self.index, self.shape)  # (gy an array here)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (ggx,) = gys
        if isinstance(ggx, Variable):
            return GetItem(self.index)(ggx)
        return backend.take(ggx, self.index).copy()


# --------------------------------------------------------------------------------------------
# Core operators, as table rows. Each rule is written with operators, so it runs on arrays and
# on Variables alike, and can be differentiated again.
# --------------------------------------------------------------------------------------------


def _log(x: Any) -> Any:
    return Log()(x) if isinstance(x, Variable) else np.log(x)


# Operators rather than ufunc calls: the same NumPy operation on arrays, and on NumPy scalars a
# fraction of the cost of a ufunc call.
Neg = primitive("neg", operator.neg, [lambda gy: -gy])
Add = primitive("add", operator.add, [lambda gy: gy, lambda gy: gy], inputs=("x", "y"))
Sub = primitive("sub", operator.sub, [lambda gy: gy, lambda gy: -gy], inputs=("x", "y"))
Mul = primitive("mul", operator.mul, [lambda gy, y: gy * y, lambda gy, x: gy * x], inputs=("x", "y"))
Div = primitive(
    "div", operator.truediv, [lambda gy, y: gy / y, lambda gy, x, y: -gy * x / (y * y)], inputs=("x", "y")
)
Log = primitive("log", np.log, [lambda gy, x: gy / x])


def _power_rule(x: Any, y: Any) -> Any:
    """d/dx x**y = y * x**(y-1), which is 0 wherever y == 0 (x**0 is constant, even at x = 0).

    A constant scalar exponent (``x**2``, the common case) is worked out once, in fewer passes
    over the data.
    """
    yv = data_of(y)
    if not (isinstance(y, Variable) and y.requires_grad) and isinstance(yv, (float, np.generic)):
        c = float(yv)
        if c == 0.0:
            return np.zeros_like(data_of(x))
        if c == 1.0:
            return np.ones_like(data_of(x))
        return x * 2.0 if c == 2.0 else c * x ** (c - 1.0)
    zero = yv == 0
    if not backend.maybe_any(zero):
        return y * x ** (y - 1.0)
    # Where y == 0 use the exponent 0 instead of -1: y * x**0 = 0, where 0 * 0**-1 would be NaN.
    return y * x ** (y - 1.0 + zero * 1.0)


def _exponent_rule(gy: Any, x: Any, out: Any) -> Any:
    """d/dy x**y = log(x) * x**y, taken as 0 at 0**y with y >= 0 (PyTorch's choice, not NaN)."""
    zero = data_of(x) == 0
    # log(x) where it is used; at the masked points log(1) = 0 gives the 0 above.
    base = x + zero * 1.0 if backend.maybe_any(zero) else x
    return gy * out * _log(base)


Pow = primitive("pow", np.power, [lambda gy, x, y: gy * _power_rule(x, y), _exponent_rule], inputs=("x", "y"))


class MatMul(Function):
    raw_vjp = True
    uses_outputs = False

    def forward(self, a: Any, b: Any) -> Any:
        if not (a.ndim and b.ndim):  # (NumPy's words name its scalar types: "for @: 'numpy.float64'")
            raise ValueError(
                "@ multiplies vectors and matrices; a number has no axis to multiply along (use *)"
            )
        inner = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != inner:  # (NumPy's words are its gufunc's: "core dimension 0, (n?,k),(k,m?)")
            which = "only" if b.ndim == 1 else "second-to-last"
            raise ValueError(
                f"shapes {a.shape} and {b.shape} do not match for @: the first's last axis has "
                f"{a.shape[-1]} elements, the second's {which} axis {inner}"
            )
        return a @ b

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        a, b = xs
        return matmul_backward(a, b, gys[0], *self.needs_input_grad)


def matmul_backward(a: Any, b: Any, gy: Any, need_a: bool = True, need_b: bool = True) -> tuple[Any, Any]:
    """Gradients of ``a @ b`` (NumPy's 1-D promotion and batch broadcasting undone)."""
    if a.ndim + b.ndim <= 3 and 1 in (a.ndim, b.ndim):
        return _vector_matmul_backward(a, b, gy, need_a, need_b)
    a2 = a if a.ndim > 1 else a.reshape(1, -1)
    b2 = b if b.ndim > 1 else b.reshape(-1, 1)
    out_shape = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
    gy2 = _reshaped(gy, out_shape)
    ga = gb = None
    if need_a:
        ga = _reshaped(sum_to(gy2 @ _swap_last(b2), a2.shape), a.shape)
    if need_b:
        gb = _reshaped(sum_to(_swap_last(a2) @ gy2, b2.shape), b.shape)
    return ga, gb


def _vector_matmul_backward(a: Any, b: Any, gy: Any, need_a: bool, need_b: bool) -> tuple[Any, Any]:
    """Gradients of ``a @ b`` where one side is a vector and the other a vector or a matrix:
    the products of the general rule with the axes of length 1 left out (the same numbers, a
    third of the nodes in a graph of derivatives)."""
    if a.ndim == 1 and b.ndim == 1:  # a dot product: gy is a scalar
        return (gy * b if need_a else None), (gy * a if need_b else None)
    if a.ndim == 1:  # vector @ matrix
        return (gy @ _swap_last(b) if need_a else None), (a.reshape(-1, 1) * gy if need_b else None)
    return (gy.reshape(-1, 1) * b if need_a else None), (_swap_last(a) @ gy if need_b else None)


def _reshaped(x: Any, shape: tuple[int, ...]) -> Any:
    """``x.reshape(shape)``, or ``x`` itself when it has that shape: no node in a graph for it."""
    return x if x.shape == shape else x.reshape(shape)


def _swap_last(x: Any) -> Any:
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, tuple(axes))
