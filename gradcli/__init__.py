"""gradcli: values and gradients of expressions, from the command line or from Python.

>>> import gradcli
>>> x = gradcli.Variable(2.0)
>>> y = x**4 - 2 * x**2
>>> y.backward()
>>> float(x.grad.data)
24.0
"""

from __future__ import annotations

from . import functions
from .engine import Function, Variable, backward, is_grad_enabled, no_grad, using_grad
from .functions.registry import register

__version__ = "0.1.0"

__all__ = [
    "Function",
    "Variable",
    "__version__",
    "backward",
    "functions",
    "is_grad_enabled",
    "no_grad",
    "register",
    "using_grad",
]
