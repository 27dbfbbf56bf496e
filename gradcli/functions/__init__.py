"""The function library: every registered function, callable by its lower-case name.

    from gradcli.functions import sin, add
    y = add(sin(x), x)           # == Add()(Sin()(x), x)
    s = gradcli.functions.sum(x, axis=0)

Importing this package fills the registry (see :mod:`gradcli.functions.registry`).
"""

from __future__ import annotations

from . import arithmetic, elementwise, linalg, logic, losses, reductions, shape, special  # noqa: F401 - they register
from .registry import REGISTRY, RegistryError, Spec, lookup, register

__all__ = ["REGISTRY", "RegistryError", "Spec", "lookup", "register", *REGISTRY]


def __getattr__(name: str) -> Spec:
    if name in REGISTRY:
        return REGISTRY[name]
    raise AttributeError(f"module 'gradcli.functions' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(REGISTRY))
