"""gradcli: values and gradients of expressions, from the command line or from Python.

    >>> import gradcli
    >>> x = gradcli.Variable(2.0)
    >>> y = x**4 - 2 * x**2
    >>> y.backward()
    >>> float(x.grad.data)
    24.0
    >>> gradcli.grad("x**2 * y", {"x": 3.0, "y": 2.0})["x"]
    array(12.)

Expressions (text) and Python callables of Variables are accepted alike by ``grad``,
``hessian``, ``jacobian``, ``derivatives``, ``evaluate`` and ``check``.
"""

from __future__ import annotations

from typing import Any

from . import functions
from .engine import Function, Variable, backward, is_grad_enabled, no_grad, using_grad
from .functions.registry import register

__version__ = "0.1.0"

# The calculus API imports more than the engine needs; it is loaded on first use.
_CALCULUS = ("grad", "hessian", "jacobian", "derivatives", "evaluate", "check", "numerical_grad")

__all__ = [
    "Function",
    "Variable",
    "__version__",
    "backward",
    "functions",
    "is_grad_enabled",
    "no_grad",
    "parse",
    "register",
    "using_grad",
    *_CALCULUS,
]


def parse(text: str) -> Any:
    """Parse an expression into a Program (see :mod:`gradcli.language`)."""
    from .language import parse as _parse

    return _parse(text)


def __getattr__(name: str) -> Any:
    if name in _CALCULUS:
        from . import calculus

        func = getattr(calculus, name)

        def accepting_text(f: Any, *args: Any, **kwargs: Any) -> Any:
            return func(parse(f) if isinstance(f, str) else f, *args, **kwargs)

        accepting_text.__name__ = name
        accepting_text.__doc__ = func.__doc__
        globals()[name] = accepting_text
        return accepting_text
    raise AttributeError(f"module 'gradcli' has no attribute {name!r}")
