"""The registry: one table from a name to a Function, with what the language, the CLI, the docs
and the tests need to know about it.

Adding a function is one ``@register(...)`` on its class: it then parses, lists (``gradcli
functions``), and is exercised by the registry-driven tests, with nothing else to edit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..engine import Function, Variable


class RegistryError(ValueError):
    """A name that is unknown, or registered twice."""


class Spec:
    """What is known about one registered function.

    ``inputs`` are the differentiable arguments (from ``forward``'s signature; those with a
    default are optional), ``params`` the constant keyword arguments (from ``__init__``), e.g.
    ``axis``. ``rule`` is the derivative written for people. The ``sample_*`` fields tell the
    registry-driven tests where the function is smooth and which shapes it accepts.
    """

    def __init__(
        self,
        name: str,
        cls: type[Function],
        inputs: tuple[str, ...],
        optional: int,
        params: tuple[tuple[str, Any], ...],
        doc: str,
        rule: str,
        n_outputs: int = 1,
        sample_domain: tuple[float, float] = (-2.0, 2.0),
        sample_shapes: tuple[tuple[int, ...], ...] | None = None,
        sample_params: dict[str, Any] | None = None,
        elementwise: bool = False,
        smooth: bool = True,
    ) -> None:
        self.name, self.cls, self.inputs, self.optional, self.params = name, cls, inputs, optional, params
        self.doc, self.rule, self.n_outputs = doc, rule, n_outputs
        self.sample_domain, self.sample_shapes = sample_domain, sample_shapes
        self.sample_params = sample_params or {}
        self.elementwise, self.smooth = elementwise, smooth

    def __repr__(self) -> str:
        return f"<Spec {self.signature()}>"

    @property
    def arity(self) -> tuple[int, int]:
        """(least, most) number of differentiable inputs."""
        return len(self.inputs) - self.optional, len(self.inputs)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.params)

    def __call__(self, *inputs: Any, **params: Any) -> Any:
        return self.cls(**params)(*inputs)

    def signature(self) -> str:
        args = [n if i < self.arity[0] else f"{n}=None" for i, n in enumerate(self.inputs)]
        args += [f"{p}={d!r}" for p, d in self.params]
        return f"{self.name}({', '.join(args)})"


REGISTRY: dict[str, Spec] = {}


def _arguments(func: Callable[..., Any]) -> tuple[list[str], tuple[Any, ...]]:
    """Positional parameter names after ``self``, and their defaults (no ``inspect``: it is slow
    to import, and startup time is a feature)."""
    code = func.__code__
    return list(code.co_varnames[1 : code.co_argcount]), func.__defaults__ or ()


def _inputs_of(cls: type[Function]) -> tuple[tuple[str, ...], int]:
    names, defaults = _arguments(cls.forward)
    return tuple(names), len(defaults)


def _params_of(cls: type[Function]) -> tuple[tuple[str, Any], ...]:
    if cls.__init__ is object.__init__:
        return ()
    names, defaults = _arguments(cls.__init__)
    padded = (None,) * (len(names) - len(defaults)) + tuple(defaults)
    return tuple(zip(names, padded))


def register(
    name: str,
    doc: str | None = None,
    rule: str = "",
    **options: Any,
) -> Callable[[type[Function]], type[Function]]:
    """Class decorator: make a Function callable by ``name`` in expressions and list it.

    ``doc`` defaults to the first line of the class docstring. Registering a name twice is an
    error (two plugins must not silently shadow each other).
    """

    def deco(cls: type[Function]) -> type[Function]:
        if not (isinstance(cls, type) and issubclass(cls, Function)):
            raise RegistryError(f"register({name!r}) expects a gradcli.Function subclass, got {cls!r}")
        if not name.isidentifier():
            raise RegistryError(f"function name {name!r} is not an identifier")
        if name in REGISTRY:
            raise RegistryError(
                f"function {name!r} is already registered (by {REGISTRY[name].cls.__module__})"
            )
        text = doc if doc is not None else (cls.__doc__ or "").strip().split("\n")[0]
        inputs, optional = _inputs_of(cls)
        REGISTRY[name] = Spec(
            name=name,
            cls=cls,
            inputs=inputs,
            optional=optional,
            params=_params_of(cls),
            doc=text,
            rule=rule,
            **options,
        )
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return deco


def lookup(name: str) -> Spec:
    """The Spec for ``name``, or a RegistryError that suggests the closest names."""
    try:
        return REGISTRY[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, REGISTRY, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise RegistryError(f"unknown function {name!r}{hint}") from None


def call(name: str, *inputs: Variable, **params: Any) -> Any:
    return lookup(name)(*inputs, **params)
