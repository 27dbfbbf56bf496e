"""Packages that only some commands use (SciPy, matplotlib, uniplot), imported when those run.

``gradcli eval`` never imports them: startup time is a feature, and a test pins it. A package
that is missing, or fails to import, is one clear error that says how to install it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .calculus import CalculusError

# The command that installs each optional package the way gradcli declares it (pyproject.toml).
INSTALL = {
    "scipy": "pip install scipy",
    "matplotlib": 'pip install "gradcli[plot]"',
    "uniplot": 'pip install "gradcli[plot]"',
}


class MissingPackageError(CalculusError):
    """An optional package is needed for what was asked and cannot be imported."""

    exit_code = 1


def need(module: str, what: str) -> ModuleType:
    """Import ``module`` (e.g. ``scipy.optimize``), or raise :class:`MissingPackageError` naming
    what needed it and the command that installs it."""
    from .budget import loading

    try:
        with loading():  # (SciPy's OpenBLAS allocates as it loads: see gradcli.budget)
            return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise MissingPackageError(
            f"{what} needs {package}, which cannot be imported: {INSTALL[package]}"
        ) from None
