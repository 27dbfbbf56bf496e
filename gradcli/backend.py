"""The one seam between the engine and array libraries.

Everything the engine does to data goes through NumPy functions, which dispatch on the array's
type (``__array_ufunc__`` / ``__array_function__``, NEP 13 and 18), and it creates new arrays only
as ``*_like`` of an existing one (``np.zeros_like(x, shape=...)``), which dispatch too. A CuPy or
Dask array therefore flows through unchanged; only plain Python values and NumPy arrays are
converted to float64 here (a single number to a NumPy float64 scalar).
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
    """Return ``x`` as float64: a NumPy float64 scalar for a single number, a float64 array for
    anything with axes, and foreign arrays unchanged.

    Scalars stay NumPy scalars rather than 0-d arrays: arithmetic on them is several times
    faster, and they keep NumPy's floating-point semantics (1/0 is inf with a warning).
    """
    kind = type(x)
    if kind is np.float64:
        return x
    if kind is np.ndarray and x.dtype == np.float64:
        return x if x.ndim else x[()]
    if kind is float or kind is int:
        return np.float64(x)
    if is_foreign_array(x):
        return x
    if isinstance(x, (str, bytes)):
        raise TypeError(f"expected a number or an array of numbers, got {x!r}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"expected real numbers, got an array of {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    return arr if arr.ndim else arr[()]
