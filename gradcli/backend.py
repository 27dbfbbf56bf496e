"""The one seam between the engine and array libraries.

Everything the engine does to data goes through operators, array methods and NumPy functions,
which dispatch on the array's type (``__array_ufunc__`` / ``__array_function__``, NEP 13 and
18), and it creates new arrays only as ``*_like`` of an existing one (``np.zeros_like(x,
shape=...)``), which dispatch too. So a Dask or CuPy array flows through in its own library: a
Dask graph stays lazy, a CuPy array stays on its device. The rules that keep it so:

- no Python decision on array values (``if mask.any():``): that computes a Dask graph and
  synchronises a GPU. Masks are applied by arithmetic or ``np.where`` instead;
- no constant as a NumPy array (CuPy refuses to mix them, cupy#1694; Python and NumPy scalars
  mix with everything); arrays that must be made from nothing come from the input's
  :func:`namespace` (``namespace(x).eye(...)``);
- a function that only accepts NumPy arrays (some of SciPy's) runs through :func:`via_numpy`.

Only what libraries do differently lives here: Dask's scatter and reshape, lazy checks.
Nothing here imports Dask: a Dask array brings its module along.
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Callable
from typing import Any

import numpy as np


def _is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask.")


def namespace(x: Any) -> Any:
    """The array module of ``x``: ``numpy`` for NumPy arrays and numbers, ``dask.array`` for Dask
    arrays, else what ``x.__array_namespace__()`` says (the Array API standard: CuPy's)."""
    kind = type(x)
    if kind is np.ndarray or kind is np.float64 or kind is float or kind is int:
        return np
    if _is_dask(x):
        import dask.array

        return dask.array
    get = getattr(kind, "__array_namespace__", None)
    return np if get is None else get(x)


def common_namespace(values: Any) -> Any:
    """The array module a computation on ``values`` runs in: the first that is not NumPy's (NumPy
    arrays and numbers mix with Dask's), else ``numpy``."""
    for v in values:
        xp = namespace(v)
        if xp is not np:
            return xp
    return np


def moved(x: Any, xp: Any) -> Any:
    """``x`` in the array module ``xp``: a NumPy array copied over (``xp.asarray``); numbers and
    arrays of other modules as they are (a number mixes with every library)."""
    return xp.asarray(x) if xp is not np and type(x) is np.ndarray else x


def is_foreign_array(x: Any) -> bool:
    """True for arrays of other libraries (Dask, CuPy, any with an array namespace of its own),
    which the engine keeps in their own library."""
    if isinstance(x, (np.ndarray, np.generic)):
        return namespace(x) is not np
    return hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__array_function__")


def maybe_any(mask: Any) -> bool:
    """Whether any element of ``mask`` is true, for a choice between a path that is right for
    every value and a faster one that is right only when none is: True when that cannot be known
    without computing (a lazy array), so that the general path is taken."""
    return True if _is_dask(mask) else bool(mask.any())


def is_lazy(x: Any) -> bool:
    """True for arrays whose values are computed only when asked for (Dask's)."""
    return _is_dask(x)


def as_array(x: Any) -> Any:
    """Return ``x`` as float64: a NumPy float64 scalar for a single number, a float64 array for
    anything with axes, and a foreign array as a float64 array of its own library.

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
        if x.dtype == np.float64:
            return x
        _check_real(x.dtype)
        return x.astype(np.float64)
    if isinstance(x, (str, bytes)):
        raise TypeError(f"expected a number or an array of numbers, got {x!r}")
    try:
        arr = np.asarray(x)
    except ValueError as e:
        if "inhomogeneous" not in str(e):
            raise
        raise ValueError("expected an array of numbers, got nested lists of different lengths") from None
    try:
        _check_real(arr.dtype)
    except TypeError:
        if arr.ndim or arr.dtype != object:
            raise
        if not isinstance(x, numbers.Real):  # None, a dict, a complex number
            raise TypeError(f"expected a number or an array of numbers, got {x!r:.80}") from None
        return np.float64(float(x))  # a real number NumPy does not know (Fraction, SymPy's Float)
    arr = arr.astype(np.float64, copy=False)
    return arr if arr.ndim else arr[()]


def _check_real(dtype: Any) -> None:
    if np.dtype(dtype).kind not in "biuf":
        raise TypeError(f"expected real numbers, got an array of {dtype}")


def diagonal_mask(xp: Any, rows: int, cols: int, k: int = 0) -> Any:
    """A rows x cols boolean array of the module ``xp``, true on diagonal ``k`` (where
    ``np.eye(rows, cols, k)`` has its ones). Made by comparing positions: Dask's ``eye`` loses
    blocks when there are more columns than rows."""
    return xp.arange(rows)[:, None] + k == xp.arange(cols)[None, :]


def eye(xp: Any, rows: int, cols: int, k: int = 0) -> Any:
    """``np.eye(rows, cols, k)`` in the module ``xp``: NumPy's own (one call, where the mask
    takes five), else from :func:`diagonal_mask`."""
    if xp is np:
        return np.eye(rows, cols, k)
    return diagonal_mask(xp, rows, cols, k) * 1.0


def to_numpy(x: Any) -> Any:
    """``x`` as a NumPy array in this process: computed if lazy, copied from a device (CuPy's
    ``.get()``). Only for results that are asked for; the engine itself never calls it."""
    if isinstance(x, np.ndarray) and namespace(x) is np or isinstance(x, (float, int, np.generic)):
        return np.asarray(x)
    if _is_dask(x):
        x = x.compute()
    get = getattr(x, "get", None)
    return np.asarray(get() if callable(get) else x)


def computed(tree: Any) -> Any:
    """``tree`` (lists, tuples and dicts of arrays) with its Dask arrays computed, all in one
    computation (work they share is done once); other values as they are."""
    if "dask" not in sys.modules:  # then there is no Dask array to compute
        return tree
    import dask

    return dask.compute(tree)[0]


def via_numpy(function: Callable[[Any], Any], x: Any) -> Any:
    """``function(x)`` for an elementwise ``function`` that accepts only NumPy arrays: called
    directly on NumPy, block by block on Dask (lazily), and through host memory otherwise."""
    if namespace(x) is np:
        return function(x)
    if _is_dask(x):
        return x.map_blocks(lambda block: via_numpy(function, block), dtype=np.float64)
    return namespace(x).asarray(function(to_numpy(x)))


def checked(x: Any, bad: Callable[[Any], Any], message: str) -> Any:
    """``x``, after making sure that no element is ``bad`` (``bad(x)`` gives a boolean mask),
    else ``ValueError(message)``. On Dask the check runs with the computation (when the result
    is asked for), and the error comes from there."""
    if not _is_dask(x):
        if bad(x).any():
            raise ValueError(message)
        return x

    def check(block: Any) -> Any:
        if bad(block).any():
            raise ValueError(message)
        return block

    return x.map_blocks(check, dtype=x.dtype)


def reshape(x: Any, shape: tuple[int, ...]) -> Any:
    """``x.reshape(shape)``. Dask reshapes only by merging or splitting axes; any other reshape
    goes there through the flat array, which is always one of those."""
    try:
        return x.reshape(shape)
    except NotImplementedError:
        if not _is_dask(x):
            raise
        return x.reshape(-1).reshape(shape)


def take(x: Any, index: Any) -> Any:
    """``x[index]``. Dask takes one index array at a time; several are taken there point by point
    (``vindex``), which is NumPy's meaning when the index holds nothing but arrays."""
    try:
        return x[index]
    except IndexError:
        if isinstance(x, np.generic):  # a number: its own error names nothing of the index
            return np.asarray(x)[index]  # ("invalid index to scalar variable"); a 0-d array's does
        raise
    except NotImplementedError:
        if not _is_dask(x):
            raise
        parts = index if isinstance(index, tuple) else (index,)
        if not all(isinstance(p, (list, np.ndarray)) for p in parts):
            raise IndexError("on Dask arrays, index arrays go with no slices beside them") from None
        return x.vindex[index]


def gufunc(function: Callable[..., Any], signature: str, *arrays: Any, outputs: int = 1) -> Any:
    """``function(*arrays)`` for a NumPy function of the last axes that maps over the leading
    ones, as ``numpy.linalg``'s do (a generalized ufunc of ``signature``, e.g. ``"(n,n)->()"``):
    called as it is (it dispatches: CuPy has its own), and on Dask once per block, the core axes
    of each block whole."""
    if not any(_is_dask(a) for a in arrays):
        return function(*arrays)
    import dask.array as da

    dtypes = (np.float64,) * outputs if outputs > 1 else np.float64
    return da.apply_gufunc(function, signature, *arrays, output_dtypes=dtypes, allow_rechunk=True)


def _is_basic(index: Any) -> bool:
    """An index of whole numbers, slices, None and Ellipsis only: it picks each element at most
    once."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) for p in parts)


# The most axes NumPy's ufunc.at takes without crashing (NPY_MAXARGS of NumPy 1, which it still
# assumes there; arrays themselves may have 64).
_UFUNC_AT_AXES = 32


def scatter_add(g: Any, index: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` (``g``'s library) with ``g`` added in at ``index``: the adjoint of
    ``x[index]``. Repeated indices add up."""
    gx = np.zeros_like(g, shape=shape)
    if not _is_dask(g):
        if _is_basic(index):
            gx[index] += g  # each element picked at most once: add.at's sums, in one pass
        elif max(len(shape), np.ndim(g)) > _UFUNC_AT_AXES:
            # NumPy's ufunc.at crashes the process past 32 axes (NumPy 2.4): the same sums, in
            # the same order, over flat positions
            xp = namespace(g)
            flat = reshape(xp.arange(gx.size), shape)[index]
            g = xp.broadcast_to(g, flat.shape)
            np.add.at(reshape(gx, (-1,)), reshape(flat, (-1,)), reshape(g, (-1,)))
        else:
            np.add.at(gx, index, g)  # dispatches: CuPy and NumPy-like arrays have ufunc.at
        return gx
    if _is_basic(index):
        gx[index] = g  # Dask assigns lazily; basic indices do not repeat
        return gx
    import dask.array as da

    size = int(np.prod(shape))
    weights = g.reshape(-1)
    targets = take(reshape(da.arange(size), shape), index).reshape(-1).rechunk(weights.chunks)
    return da.bincount(targets, weights=weights, minlength=size).reshape(shape)
