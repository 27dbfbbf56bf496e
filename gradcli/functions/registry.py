"""The registry: one table from a name to a Function, with what the language, the CLI, the docs
and the tests need to know about it.

Most functions are one row: a forward and one derivative rule per input (HIPS autograd's
``defvjp``, JAX's ``defjvp`` tables)::

    sin = unary("sin", np.sin, lambda gy, x: gy * cos(x), "cos(x)", doc="sine")
    exp = unary("exp", np.exp, lambda gy, out: gy * out, "exp(x)", doc="e**x")

A rule's parameter names say what it reads: ``gy`` (the gradient of the output), the inputs
(``x``, ``y``, ...), ``out`` (the output, for rules that reuse it) and the function's options.
The text after the rule is the local derivative as an expression of the inputs, shown by
``gradcli functions`` and ``gradcli explain``, and checked against the rule by the tests.
Functions with several outputs, or whose rules need state from forward, are classes decorated
with ``@register(...)``; plugins are too. Either way the function then parses, lists (``gradcli
functions``), and is exercised by the registry-driven tests, with nothing else to edit.

Calling a registered function dispatches on its inputs: with a Variable among them it records a
graph node; with arrays only it computes on arrays. Rules therefore run in both modes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, overload

import numpy as np

from ..backend import as_array
from ..engine import Function, Primitive, Variable, primitive_maker


class RegistryError(ValueError):
    """A name that is unknown, or registered twice."""


class Spec:
    """What is known about one registered function.

    ``inputs`` are the differentiable arguments (those with a default are optional), ``params``
    the constant keyword arguments with their defaults, e.g. ``axis``. ``rule`` is the
    derivative written for people; ``partials`` (elementwise functions) the derivative with
    respect to each input as an expression in gradcli's syntax. ``group`` is the kind of
    function (``gradcli functions`` lists them by it). The ``sample_*`` fields tell the
    registry-driven tests where the function is smooth and which shapes it accepts.
    """

    def __init__(
        self,
        name: str,
        cls: type[Function] | None,
        inputs: tuple[str, ...],
        optional: int,
        params: tuple[tuple[str, Any], ...],
        doc: str,
        rule: str,
        n_outputs: int = 1,
        group: str = "other",
        partials: tuple[str | None, ...] = (),
        sample_domain: tuple[float, float] = (-2.0, 2.0),
        sample_shapes: tuple[tuple[int, ...], ...] | None = None,
        sample_params: dict[str, Any] | None = None,
        elementwise: bool = False,
        smooth: bool = True,
        variadic: bool = False,
        make: Callable[[], type[Function]] | None = None,
        apply: Callable[..., Any] | None = None,
    ) -> None:
        """``cls``, or ``make`` to make it when it is first read, and then ``apply``: how the
        function computes on arrays alone."""
        self.name, self.inputs, self.optional, self.params = name, inputs, optional, params
        if cls is not None:
            self.cls = cls
        self._make = make
        self.variadic = variadic
        # Two inputs and no options: what an operator calls (the parser's fast path).
        self.binary = not variadic and optional == 0 and len(inputs) == 2 and not params
        self.doc, self.rule, self.n_outputs, self.group, self.partials = doc, rule, n_outputs, group, partials
        self.sample_domain, self.sample_shapes = sample_domain, sample_shapes
        self.sample_params = sample_params or {}
        self.elementwise, self.smooth = elementwise, smooth
        self._apply = apply if apply is not None else _array_call(self.cls)
        self._bounds = self.arity  # (checked at every call)

    def __getattr__(self, attr: str) -> Any:
        """``cls`` of a table row, made the first time it is read (see ``define``)."""
        make = self.__dict__.get("_make")
        if attr != "cls" or make is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")
        cls = self.cls = make()
        cls.registry_name = self.name
        return cls

    def __repr__(self) -> str:
        return f"<Spec {self.signature()}>"

    @property
    def arity(self) -> tuple[int, int | None]:
        """(least, most) number of differentiable inputs; most is None for a variadic function
        (``concat(*xs)``), whose last input name stands for any number of them (at least one)."""
        if self.variadic:
            return len(self.inputs), None
        return len(self.inputs) - self.optional, len(self.inputs)

    def arg_names(self, n: int) -> tuple[str, ...]:
        """Names for the inputs of a call with ``n`` of them (``xs0``, ``xs1``... past the named
        ones of a variadic function)."""
        if not self.variadic:
            return self.inputs[:n]
        fixed, rest = self.inputs[:-1], self.inputs[-1]
        return fixed[:n] + tuple(f"{rest}{i}" for i in range(max(0, n - len(fixed))))

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.params)

    def __call__(self, *inputs: Any, **params: Any) -> Any:
        """Variables in, Variables out (a node of the graph); arrays in, arrays out."""
        least, most = self._bounds
        if len(inputs) < least or most is not None and len(inputs) > most:
            raise TypeError(self._arity_error(len(inputs)))
        for x in inputs:
            if isinstance(x, Variable):
                return self.cls(**params)(*inputs)
        try:
            return self._apply(*inputs, **params)
        except (TypeError, ValueError):
            # A list of Variables as the one input of concat, stack, ...: np.concatenate's and
            # torch.cat's way, taken as the inputs themselves (an array it cannot be).
            listed = len(inputs) == 1 and isinstance(inputs[0], (list, tuple))
            if self.variadic and listed and any(isinstance(x, Variable) for x in inputs[0]):
                return self(*inputs[0], **params)
            raise

    def takes(self, given: int) -> str:
        """``"name() takes N inputs, got M"``: the words for a call with ``given`` inputs, in
        an expression as in Python."""
        least, most = self._bounds
        count = f"at least {least}" if most is None else least if least == most else f"{least} to {most}"
        return f"{self.name}() takes {count} input{'' if (most or least) == 1 else 's'}, got {given}"

    def _arity_error(self, given: int) -> str:
        """What a call with ``given`` inputs does wrong. (One too many went to NumPy's ``out=``:
        ``log(x, b)`` wrote the natural log of x into b.)"""
        said = self.takes(given)
        if self.params and given > self._bounds[0]:
            said += f"; options go by name: {self.name}(..., {self.params[0][0]}=...)"
        return f"{said} (the signature: {self.signature()})"

    def signature(self) -> str:
        if self.variadic:
            args = [*self.inputs[:-1], f"*{self.inputs[-1]}"]
        else:
            args = [n if i < self.arity[0] else f"{n}=None" for i, n in enumerate(self.inputs)]
        args += [f"{p}={d!r}" for p, d in self.params]
        return f"{self.name}({', '.join(args)})"


def _array_call(cls: type[Function]) -> Callable[..., Any]:
    """How a function computes on arrays alone (no graph): its forward, directly."""
    if issubclass(cls, Primitive):
        return _forward_call(cls._forward, cls.param_defaults)

    def call_class(*xs: Any, **params: Any) -> Any:
        return cls(**params).forward(*[x if isinstance(x, np.ndarray) else as_array(x) for x in xs])

    return call_class


def _forward_call(
    forward: Callable[..., Any], param_defaults: tuple[tuple[str, Any], ...]
) -> Callable[..., Any]:
    """A table row's forward on arrays, its options' defaults filled in."""
    defaults = dict(param_defaults)
    if not defaults:
        return forward

    def call(*xs: Any, **params: Any) -> Any:
        return forward(*xs, **{**defaults, **params})

    return call


# The modules of the library's own functions, imported as their names are first looked up, in
# this order (the most used first): a start-up loads only what its expression calls. The
# operators (``arithmetic``) come first, imported by the package itself. Anything that lists or
# counts the registry, and every registration from outside (a plugin), loads them all first.
_MODULES = ["arithmetic", "elementwise", "reductions", "logic", "shape", "linalg", "losses", "special"]
_LIBRARY = tuple(f"gradcli.functions.{m}" for m in _MODULES)
_importing = 0  # > 0 while one of them is being imported: it registers, it looks nothing up


def _library_importing() -> bool:
    """Whether one of the library's modules is being imported (by ``_load_next``, or directly:
    ``import gradcli.functions.linalg``); the others it imports must not be loaded from inside
    it, before the names they import from it exist."""
    if _importing:
        return True
    for name in _LIBRARY:
        spec = getattr(sys.modules.get(name), "__spec__", None)
        if getattr(spec, "_initializing", False):  # importlib's mark of a module mid-import
            return True
    return False


def _load_next() -> bool:
    """Import the next module of functions not yet imported; False when all are."""
    global _importing
    if not _MODULES:
        return False
    import importlib

    _importing += 1
    try:
        importlib.import_module(f"gradcli.functions.{_MODULES[0]}")
    finally:
        _importing -= 1
    _MODULES.pop(0)
    return True


def _load_until(name: str) -> None:
    """Import modules of functions until one has registered ``name`` (or an alias of that name)."""
    if dict.__contains__(REGISTRY, name) or name in ALIASES or _library_importing():
        return
    while _load_next() and not dict.__contains__(REGISTRY, name) and name not in ALIASES:
        pass


def load_all() -> None:
    """Import every module of the library's own functions."""
    if not _library_importing():
        while _load_next():
            pass


class _Registry(dict[str, "Spec"]):
    """The table of every function by name: a dict that imports the modules of the library's
    functions as names are looked up (``REGISTRY[name]``, ``name in REGISTRY``, ``get``), and all
    of them before it is listed or counted."""

    def __missing__(self, name: str) -> Spec:
        _load_until(name)
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        if dict.__contains__(self, name):
            return True
        if isinstance(name, str):
            _load_until(name)
        return dict.__contains__(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default

    def __iter__(self) -> Any:
        load_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        load_all()
        return dict.__len__(self)

    def keys(self) -> Any:
        load_all()
        return dict.keys(self)

    def values(self) -> Any:
        load_all()
        return dict.values(self)

    def items(self) -> Any:
        load_all()
        return dict.items(self)

    def copy(self) -> dict[str, Spec]:
        load_all()
        return dict(dict.items(self))


REGISTRY: dict[str, Spec] = _Registry()


def _arguments(func: Callable[..., Any]) -> tuple[list[str], tuple[Any, ...]]:
    """Positional parameter names after ``self``, and their defaults (no ``inspect``: it is slow
    to import, and startup time is a feature)."""
    code = func.__code__
    return list(code.co_varnames[1 : code.co_argcount]), func.__defaults__ or ()


_VARARGS = 0x04  # CO_VARARGS: the function takes *args


def _inputs_of(cls: type[Function]) -> tuple[tuple[str, ...], int, bool]:
    """Input names, how many are optional, and whether the last stands for any number."""
    if issubclass(cls, Primitive):
        return cls.input_names, 0, False
    names, defaults = _arguments(cls.forward)
    code = cls.forward.__code__
    if code.co_flags & _VARARGS:
        return (*names, code.co_varnames[code.co_argcount]), 0, True
    return tuple(names), len(defaults), False


def _params_of(cls: type[Function]) -> tuple[tuple[str, Any], ...]:
    if issubclass(cls, Primitive):
        return cls.param_defaults
    if cls.__init__ is object.__init__:
        return ()
    names, defaults = _arguments(cls.__init__)
    padded = (None,) * (len(names) - len(defaults)) + tuple(defaults)
    return tuple(zip(names, padded))


@overload
def register(
    name: type[Function], doc: str | None = None, rule: str = "", **options: Any
) -> type[Function]: ...
@overload
def register(
    name: str | None = None, doc: str | None = None, rule: str = "", **options: Any
) -> Callable[[type[Function]], type[Function]]: ...
def register(name: Any = None, doc: str | None = None, rule: str = "", **options: Any) -> Any:
    """Class decorator: make a Function callable by ``name`` in expressions and list it.

    Without a name (``@register`` or ``@register()``) the name is the class's, in lower case
    (``class Line`` is ``line``). ``doc`` defaults to the first line of the class docstring.
    Registering a name twice is an error (two plugins must not silently shadow each other).
    """
    if isinstance(name, type):  # @register without the parentheses: the class itself
        return register(None, doc, rule, **options)(name)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"register takes the function's name (text), got {name!r}")

    def deco(cls: type[Function]) -> type[Function]:
        called = name if name is not None else getattr(cls, "__name__", "").lower()
        if not (isinstance(cls, type) and issubclass(cls, Function)):
            raise RegistryError(f"register({called!r}) expects a gradcli.Function subclass, got {cls!r}")
        text = doc if doc is not None else (cls.__doc__ or "").strip().split("\n")[0]
        inputs, optional, variadic = _inputs_of(cls)
        fields = {"inputs": inputs, "optional": optional, "variadic": variadic, "params": _params_of(cls)}
        _enter(called, text, rule, cls, **fields, **options)
        cls.registry_name = called  # type: ignore[attr-defined]
        return cls

    return deco


def _enter(name: str, doc: str, rule: str, cls: type[Function] | None, **fields: Any) -> Spec:
    """Put ``name``'s Spec in the table, once: registering a name twice is an error."""
    if not name.isidentifier():
        raise RegistryError(f"function name {name!r} is not an identifier")
    load_all()  # a plugin's name is checked against every function of the library
    if dict.__contains__(REGISTRY, name):
        owner = dict.__getitem__(REGISTRY, name).cls.__module__
        if owner.partition(".")[0] == "gradcli":  # (a table row's class is made in gradcli.engine)
            owner = "gradcli itself"
        elif owner.startswith("gradcli_plugin_"):  # (a plugin file's private module name)
            import sys

            owner = f"the plugin {getattr(sys.modules.get(owner), '__file__', None) or owner}"
        raise RegistryError(f"function {name!r} is already registered (by {owner})")
    spec = REGISTRY[name] = Spec(name=name, cls=cls, doc=doc, rule=rule, **fields)
    return spec


def define(
    name: str,
    forward: Callable[..., Any],
    rules: Sequence[Callable[..., Any] | None],
    partials: Sequence[str | None],
    *,
    doc: str,
    inputs: Sequence[str],
    params: dict[str, Any] | None = None,
    rule: str | None = None,
    group: str = "elementwise",
    elementwise: bool = True,
    masks_gradient: bool = False,
    **options: Any,
) -> Spec:
    """Register a function given by one table row; return its Spec (callable by the rules of
    other rows). ``partials`` are the local derivatives as text, one per input (None where a
    rule is not an elementwise derivative); ``rule`` defaults to them written out. The row is
    checked now; its class is made when first read (``Spec.cls``)."""
    make = primitive_maker(name, forward, rules, inputs, params, elementwise, masks_gradient)
    defaults = tuple((params or {}).items())
    if rule is None:
        rule = _rule_text(name, tuple(inputs), tuple(partials))
    return _enter(
        name,
        doc,
        rule,
        None,
        make=make,
        apply=_forward_call(forward, defaults),
        inputs=tuple(inputs),
        optional=0,
        variadic=False,
        params=defaults,
        group=group,
        partials=tuple(partials),
        elementwise=elementwise,
        **options,
    )


def _rule_text(name: str, inputs: tuple[str, ...], partials: tuple[str | None, ...]) -> str:
    if len(inputs) == 1:
        return f"d/d{inputs[0]} {name}({inputs[0]}) = {partials[0]}"
    return ", ".join(f"d/d{x} = {p if p is not None else 'none'}" for x, p in zip(inputs, partials))


def unary(
    name: str, forward: Callable[..., Any], rule: Callable[..., Any] | None, partial: str, **options: Any
) -> Spec:
    """One elementwise function of ``x``: ``unary("sin", np.sin, lambda gy, x: gy * cos(x), "cos(x)")``."""
    return define(name, forward, [rule], [partial], inputs=options.pop("inputs", ("x",)), **options)


def binary(
    name: str,
    forward: Callable[..., Any],
    rules: tuple[Callable[..., Any] | None, Callable[..., Any] | None],
    partials: tuple[str | None, str | None],
    **options: Any,
) -> Spec:
    """One elementwise function of ``x`` and ``y`` (broadcasting), one rule per input."""
    return define(name, forward, rules, partials, inputs=options.pop("inputs", ("x", "y")), **options)


#: The options of the library's functions that take whole numbers (an axis, a count, a shape:
#: one number or a list of them), by function: the parser refuses any other number there
#: (``sum(x, axis=1.5)``), before anything is evaluated.
WHOLE_NUMBER_OPTIONS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        [
            "concat", "cross", "cross_entropy", "cumprod", "cumsum", "expand_dims", "flip",
            "log_softmax", "logsumexp", "max", "mean", "min", "norm", "prod", "softmax",
            "squeeze", "stack", "std", "sum", "var",
        ],
        ("axis",),
    ),
    "diag": ("k",),
    "tril": ("k",),
    "triu": ("k",),
    "moveaxis": ("source", "destination"),
    "polygamma": ("n",),
    "spherical_jn": ("n",),
    "repeat": ("repeats", "axis"),
    "reshape": ("shape",),
    "roll": ("shift", "axis"),
    "round": ("decimals",),
    "split": ("sections", "axis"),
    "swapaxes": ("axis1", "axis2"),
    "tile": ("reps",),
    "trace": ("offset", "axis1", "axis2"),
    "transpose": ("axes",),
}  # fmt: skip


#: Other names users type for a registered function (``ln`` for ``log``, NumPy's ``arcsin``).
ALIASES: dict[str, str] = {}


def alias(name: str, target: str) -> None:
    """Let ``name`` stand for the registered function ``target`` in expressions."""
    load_all()
    if dict.__contains__(REGISTRY, name) or name in ALIASES:
        raise RegistryError(f"function {name!r} is already registered")
    if not dict.__contains__(REGISTRY, target):
        raise RegistryError(f"alias {name!r}: no function {target!r} to stand for")
    ALIASES[name] = target


def lookup(name: str) -> Spec:
    """The Spec for ``name`` (or an alias of it), or a RegistryError that suggests what the user
    may have meant: a name of the same meaning (``mod`` -> ``%``, ``arctan`` -> ``atan``), else
    the closest spellings."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name in ALIASES:  # the lookup above loaded the module that made the alias, if any
        return REGISTRY[ALIASES[name]]
    from .meanings import suggestion

    hint = suggestion(name, {*REGISTRY, *ALIASES})
    raise RegistryError(f"unknown function {name!r}{hint} (`gradcli functions` lists them all)")


def call(name: str, *inputs: Variable, **params: Any) -> Any:
    return lookup(name)(*inputs, **params)
