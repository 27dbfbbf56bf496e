"""The function library: every registered function, callable by its lower-case name.

    from gradcli.functions import sin, add
    y = add(sin(x), x)           # == Add()(Sin()(x), x)
    s = gradcli.functions.sum(x, axis=0)

Importing this package registers the operators; the other modules of functions are imported
as their names are first looked up (see :mod:`gradcli.functions.registry`).
"""

from __future__ import annotations

from typing import Any

from .registry import REGISTRY as REGISTRY
from .registry import RegistryError as RegistryError
from .registry import Spec as Spec
from .registry import _load_next
from .registry import lookup as lookup
from .registry import register as register

_load_next()  # the operators (arithmetic): every expression has them

_API = ["REGISTRY", "RegistryError", "Spec", "lookup", "register"]


def __getattr__(name: str) -> Any:
    if name == "__all__":  # every function's name: all of them loaded
        return [*_API, *REGISTRY]
    if name in REGISTRY:
        return REGISTRY[name]
    raise AttributeError(f"module 'gradcli.functions' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(REGISTRY))
