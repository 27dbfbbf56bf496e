"""gradcli: values and gradients of expressions, from the command line or from Python.

    >>> import gradcli
    >>> x = gradcli.Variable(2.0)
    >>> y = x**4 - 2 * x**2
    >>> y.backward()
    >>> float(x.grad.data)
    24.0
    >>> gradcli.grad("x**2 * y", {"x": 3.0, "y": 2.0})["x"]
    np.float64(12.0)

Expressions (text) and Python callables of Variables are accepted alike by ``grad``,
``hessian``, ``jacobian``, ``derivatives``, ``evaluate``, ``check``, ``minimize`` and ``root``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Everything is imported on first use, so that `import gradcli` (and the command line's first
# milliseconds, when Ctrl-C must still end quietly) does not pay for NumPy before it needs it.
_FROM = {
    "Function": "engine",
    "Variable": "engine",
    "backward": "engine",
    "is_grad_enabled": "engine",
    "no_grad": "engine",
    "using_grad": "engine",
    "register": "functions.registry",
}
# The calculus API and the solvers on it, which also accept expression text, by module.
_ACCEPTING_TEXT = {
    **dict.fromkeys(
        ("grad", "hessian", "jacobian", "derivatives", "evaluate", "check", "numerical_grad"), "calculus"
    ),
    **dict.fromkeys(("minimize", "root"), "optimize"),
}

__all__ = [
    "Function",
    "Variable",
    "__version__",
    "backward",
    "check",
    "derivatives",
    "evaluate",
    "functions",
    "grad",
    "hessian",
    "is_grad_enabled",
    "jacobian",
    "minimize",
    "no_grad",
    "numerical_grad",
    "parse",
    "register",
    "root",
    "using_grad",
]

if TYPE_CHECKING:
    from . import functions
    from .engine import Function, Variable, backward, is_grad_enabled, no_grad, using_grad
    from .functions.registry import register


def parse(text: str) -> Any:
    """Parse an expression into a Program (see :mod:`gradcli.language`)."""
    from .language import parse as _parse

    return _parse(text)


def __getattr__(name: str) -> Any:
    if name in _FROM:
        value = getattr(importlib.import_module(f".{_FROM[name]}", __name__), name)
    elif name == "functions":
        value = importlib.import_module(".functions", __name__)
    elif name in _ACCEPTING_TEXT:
        value = _accepting_text(name)
    else:
        raise AttributeError(f"module 'gradcli' has no attribute {name!r}")
    globals()[name] = value
    return value


def _accepting_text(name: str) -> Any:
    func = getattr(importlib.import_module(f".{_ACCEPTING_TEXT[name]}", __name__), name)

    def accepting_text(f: Any, *args: Any, **kwargs: Any) -> Any:
        return func(parse(f) if isinstance(f, str) else f, *args, **kwargs)

    accepting_text.__name__ = name
    accepting_text.__doc__ = func.__doc__
    return accepting_text


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
