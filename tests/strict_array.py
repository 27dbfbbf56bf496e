"""A NumPy array that mixes with NumPy the way CuPy does: a stand-in for a GPU array in the tests.

CuPy refuses every implicit mix with NumPy arrays (cupy#1694): an operation between a CuPy array
and a NumPy ndarray, 0-d arrays included, raises ``TypeError``; Python numbers and NumPy scalars
(``np.float64(2.0)``) are accepted, and so are NumPy integer arrays as indices (it copies them
over). Reductions and indexing give 0-d CuPy arrays, not NumPy scalars. :class:`StrictArray`
follows the same rules on the CPU, so code that builds a constant or a buffer with NumPy instead
of in the input's namespace fails here as it would on a GPU.

    x = strict(np.arange(3.0))
    x * 2.0                 # StrictArray
    x * np.float64(2.0)     # StrictArray
    x * np.ones(3)          # TypeError
    x.sum()                 # 0-d StrictArray
"""

from __future__ import annotations

from typing import Any

import numpy as np


class MixingError(TypeError):
    """A plain NumPy array met a StrictArray."""


def _plain(value: Any) -> bool:
    return isinstance(value, np.ndarray) and not isinstance(value, StrictArray)


def _refuse(where: str, value: Any) -> None:
    raise MixingError(
        f"{where}: a NumPy array of shape {value.shape} mixed with a StrictArray "
        "(CuPy refuses this; make the constant in the input's array namespace)"
    )


def _unwrap(value: Any, where: str) -> Any:
    if isinstance(value, StrictArray):
        return value.view(np.ndarray)
    if _plain(value):
        _refuse(where, value)
    if isinstance(value, (tuple, list)):
        return type(value)(_unwrap(v, where) for v in value)
    return value


def _wrap(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.view(StrictArray)
    if isinstance(value, np.generic) and value.dtype.kind in "biufc":
        return np.asarray(value).view(StrictArray)  # CuPy keeps 0-d results on the device
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class StrictArray(np.ndarray):
    """An ndarray that refuses to mix with plain ndarrays (see the module's docstring)."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        where = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        args = [x if method == "at" and k == 1 else _unwrap(x, where) for k, x in enumerate(inputs)]
        if "out" in kwargs:
            kwargs["out"] = tuple(_unwrap(o, where) for o in kwargs["out"])
        if "where" in kwargs:
            kwargs["where"] = _unwrap(kwargs["where"], where)
        result = getattr(ufunc, method)(*args, **kwargs)
        return None if method == "at" else _wrap(result)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        where = f"np.{func.__name__}"
        plain = [t for t in types if issubclass(t, np.ndarray) and not issubclass(t, StrictArray)]
        if plain:
            raise MixingError(f"{where}: a NumPy array mixed with a StrictArray (CuPy refuses this)")
        result = func(*_unwrap(list(args), where), **{k: _unwrap(v, where) for k, v in kwargs.items()})
        return _wrap(result)

    def __array_namespace__(self, api_version: str | None = None) -> Namespace:
        return NAMESPACE

    def get(self) -> np.ndarray:
        """A NumPy copy (CuPy's device-to-host copy)."""
        return np.array(self.view(np.ndarray))

    def __getitem__(self, index: Any) -> Any:
        return _wrap(np.ndarray.__getitem__(self.view(np.ndarray), index))

    def __setitem__(self, index: Any, value: Any) -> None:
        np.ndarray.__setitem__(self.view(np.ndarray), index, _unwrap(value, "__setitem__"))


class Namespace:
    """The array namespace of StrictArrays (what the ``cupy`` module is to CuPy arrays): NumPy's
    functions, giving StrictArrays; ``asarray`` takes NumPy arrays in (CuPy's host-to-device)."""

    def asarray(self, values: Any, dtype: Any = None) -> StrictArray:
        return np.array(values, dtype=dtype).view(StrictArray)

    def __getattr__(self, name: str) -> Any:
        function = getattr(np, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            where = f"namespace.{name}"
            options = {k: _unwrap(v, where) for k, v in kwargs.items()}
            return _wrap(function(*_unwrap(list(args), where), **options))

        return call


NAMESPACE = Namespace()


def strict(values: Any) -> StrictArray:
    """``values`` as a float64 StrictArray (a copy)."""
    return np.array(values, dtype=np.float64).view(StrictArray)
