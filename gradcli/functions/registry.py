"""The registry: one table from a name to a Function, with what the language, the CLI, the docs
and the tests need to know about it.

Adding a function is one ``@register(...)`` on its class: it then parses, lists (``gradcli
functions``), and is exercised by the registry-driven tests, with nothing else to edit.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..engine import Function, Variable


class RegistryError(ValueError):
    """A name that is unknown, or registered twice."""


@dataclass(frozen=True)
class Spec:
    """What is known about one registered function.

    ``inputs`` are the differentiable arguments (from ``forward``'s signature; those with a
    default are optional), ``params`` the constant keyword arguments (from ``__init__``), e.g.
    ``axis``. ``rule`` is the derivative written for people. The ``sample_*`` fields tell the
    registry-driven tests where the function is smooth and which shapes it accepts.
    """

    name: str
    cls: type[Function]
    inputs: tuple[str, ...]
    optional: int
    params: tuple[tuple[str, Any], ...]
    doc: str
    rule: str
    n_outputs: int = 1
    sample_domain: tuple[float, float] = (-2.0, 2.0)
    sample_shapes: tuple[tuple[int, ...], ...] | None = None
    sample_params: dict[str, Any] = field(default_factory=dict)
    elementwise: bool = False
    smooth: bool = True

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


def _inputs_of(cls: type[Function]) -> tuple[tuple[str, ...], int]:
    sig = inspect.signature(cls.forward)
    ps = [p for p in sig.parameters.values() if p.name != "self"]
    return tuple(p.name for p in ps), sum(p.default is not inspect.Parameter.empty for p in ps)


def _params_of(cls: type[Function]) -> tuple[tuple[str, Any], ...]:
    if cls.__init__ is object.__init__:
        return ()
    sig = inspect.signature(cls.__init__)
    return tuple(
        (p.name, None if p.default is inspect.Parameter.empty else p.default)
        for p in sig.parameters.values()
        if p.name != "self"
    )


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
            raise RegistryError(f"function {name!r} is already registered (by {REGISTRY[name].cls.__module__})")
        text = doc if doc is not None else (inspect.getdoc(cls) or "").split("\n")[0]
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
        close = difflib.get_close_matches(name, REGISTRY, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise RegistryError(f"unknown function {name!r}{hint}") from None


def call(name: str, *inputs: Variable, **params: Any) -> Any:
    return lookup(name)(*inputs, **params)
