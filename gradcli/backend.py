"""The one seam between the engine and array libraries.

Everything the engine does to data goes through NumPy functions, which dispatch on the array's
type (``__array_ufunc__`` / ``__array_function__``, NEP 13 and 18), and it creates new arrays only
as ``*_like`` of an existing one (``np.zeros_like(x, shape=...)``), which dispatch too. A CuPy or
Dask array therefore flows through unchanged; only plain Python values and NumPy arrays are
converted to float64 here.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_foreign_array(x: Any) -> bool:
    """True for array types of other libraries that implement NumPy's dispatch protocols."""
    return (
        not isinstance(x, (np.ndarray, np.generic))
        and hasattr(x, "__array_function__")
        and hasattr(x, "shape")
    )


def as_array(x: Any) -> Any:
    """Return ``x`` as a float64 array: NumPy for Python values, unchanged for foreign arrays."""
    kind = type(x)
    if kind is np.ndarray and x.dtype == np.float64:
        return x
    if kind is float or kind is np.float64 or kind is int:
        return np.asarray(x, dtype=np.float64)
    if is_foreign_array(x):
        return x
    if isinstance(x, (str, bytes)):
        raise TypeError(f"expected a number or an array of numbers, got {x!r}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"expected real numbers, got an array of {arr.dtype}")
    return arr.astype(np.float64, copy=False)
