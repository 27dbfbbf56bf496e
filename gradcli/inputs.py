"""From what a user types to float64 arrays: ``--x 2``, ``--x "[1, 2]"``, ``--x @data.npy``,
``--vars '{"x": 2}'`` and one line of batch input.

Every failure is an :class:`InputError` whose message is one line a person reads, naming the
variable (and the file, when there is one); the CLI turns it into exit status 2. Nothing here
evaluates text as code, and ``.npy``/``.npz`` files are loaded with pickles refused.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Mapping
from typing import Any, TextIO

import numpy as np

__all__ = ["InputError", "parse_value", "parse_vars", "values_from_json_object"]


class InputError(ValueError):
    """A value the user gave cannot be read; the message is meant for the user."""


# A plain decimal number, as a person or a shell script writes it (no "1_000", no hex).
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# Our own JSON output writes non-finite numbers as "NaN", "Infinity", "-Infinity"; people write
# nan, inf, -inf. Both read back, in any case.
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
# More nesting than NumPy allows dimensions is certainly a mistake; stop before walking it.
_MAX_DIMS = 32
_FILE_KINDS = ".npy, .npz, .json or .csv"
_JSON_NAMES = {None: "null", True: "true", False: "false"}


def parse_value(text: str, name: str) -> np.ndarray:
    """Read one variable's value: a number, ``nan``/``inf``, a JSON array, or ``@FILE``.

    ``@FILE`` is a ``.npy`` file, a ``.npz`` file (``@f.npz:KEY``, else the array called ``name``,
    else its only array), a ``.json`` file (a number or nested list) or a ``.csv`` file (a value,
    a row, a column or a matrix of numbers; a first line of column names is skipped).
    """
    stripped = text.strip()
    if stripped.startswith("@"):
        return _load_file(stripped[1:], name)
    if stripped.startswith("["):
        return _nested_to_array(_loads(stripped, f"variable {name!r}"), f"variable {name!r}")
    scalar = _scalar(stripped)
    if scalar is None:
        raise InputError(f"variable {name!r}: expected a number, an array like [1, 2] or @FILE, got {text!r}")
    return np.array(scalar)


def parse_vars(text: str, stdin: TextIO | None = None) -> dict[str, np.ndarray]:
    """Read ``--vars``: a JSON object, ``@FILE.json``, ``@FILE.npz`` (all its arrays) or ``-``
    (a JSON object on ``stdin``, default ``sys.stdin``)."""
    stripped = text.strip()
    if stripped == "-":
        source = "--vars from stdin"
        body = (stdin if stdin is not None else sys.stdin).read()
    elif stripped.startswith("@"):
        path = os.path.expanduser(stripped[1:])
        source = f"--vars file {path!r}"
        suffix = os.path.splitext(path)[1].lower()
        if suffix == ".npz":
            return _load_npz_all(path, source)
        if suffix != ".json":
            raise InputError(f"{source}: expected a .json or .npz file")
        body = _read_text(path, source)
    else:
        source = "--vars"
        body = stripped
    obj = _loads(body, source)
    if not isinstance(obj, dict):
        raise InputError(f'{source}: expected a JSON object like {{"x": 2, "y": [1, 2]}}')
    return values_from_json_object(obj)


def values_from_json_object(obj: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Turn a decoded JSON object ``{name: value}`` into arrays (``--vars`` and batch lines).

    A value is a number, a nested list of numbers, or one of the strings "NaN", "Infinity",
    "-Infinity" (any case, also "nan"/"inf"), so gradcli's own JSON output reads back. Other
    strings are refused: a batch line never names a file to open.
    """
    if not isinstance(obj, Mapping):
        raise InputError(f'expected a JSON object like {{"x": 2, "y": [1, 2]}}, got {type(obj).__name__}')
    return {str(key): _nested_to_array(value, f"variable {key!r}") for key, value in obj.items()}


# -- numbers and nested lists --------------------------------------------------------------------


def _scalar(text: str) -> float | None:
    if _NUMBER.fullmatch(text) or _NON_FINITE.fullmatch(text):
        return float(text)
    return None


def _loads(text: str, what: str) -> Any:
    import json  # here, not at the top: plain numbers are the common case and need no JSON

    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{what}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise InputError(f"{what}: JSON nested too deeply") from None


def _leaf(value: Any, what: str) -> float:
    kind = type(value)
    if kind is float or kind is int:
        return value
    if isinstance(value, str) and _NON_FINITE.fullmatch(value.strip()):
        return float(value)
    if value is None or isinstance(value, bool):
        shown = _JSON_NAMES[value]
    elif isinstance(value, str):
        shown = '"' + " ".join(value[:30].split()) + '"'
    else:
        shown = type(value).__name__
    raise InputError(f"{what}: expected numbers, found {shown}")


def _nested_to_array(obj: Any, what: str) -> np.ndarray:
    """A number or a rectangular nested list -> float64 array, walking one depth level at a time
    (no recursion, so a hostile depth only costs a loop)."""
    level = [obj]
    shape: list[int] = []
    while isinstance(level[0], list):
        if len(shape) == _MAX_DIMS:
            raise InputError(f"{what}: more than {_MAX_DIMS} levels of nested lists")
        n = len(level[0])
        for item in level:
            if not isinstance(item, list) or len(item) != n:
                raise InputError(f"{what}: ragged nested list (rows of different lengths or depths)")
        shape.append(n)
        level = [x for item in level for x in item]
        if not level:
            break
    else:
        for item in level:
            if isinstance(item, list):
                raise InputError(f"{what}: ragged nested list (rows of different lengths or depths)")
    if not all(type(v) is float or type(v) is int for v in level):
        level = [_leaf(v, what) for v in level]
    try:
        return np.array(level, dtype=np.float64).reshape(shape)
    except OverflowError:
        raise InputError(f"{what}: a number is too large for a 64-bit float") from None


# -- files ----------------------------------------------------------------------------------------


def _load_file(spec: str, name: str) -> np.ndarray:
    if not spec:
        raise InputError(f"variable {name!r}: '@' must be followed by a file name")
    path, key = _split_npz_key(spec)
    path = os.path.expanduser(path)
    source = f"variable {name!r} from {path!r}"
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".npy", ".npz"):
        return _load_numpy(path, key, name, source)
    if suffix == ".json":
        return _nested_to_array(_loads(_read_text(path, source), source), source)
    if suffix == ".csv":
        return _load_csv(path, source)
    raise InputError(f"{source}: unknown kind of file; expected {_FILE_KINDS}")


def _split_npz_key(spec: str) -> tuple[str, str | None]:
    """``f.npz:KEY`` -> (``f.npz``, ``KEY``); any other text is a path as it stands."""
    if spec.lower().endswith(".npz"):
        return spec, None
    m = re.fullmatch(r"(.+\.npz):([^:/\\]+)", spec, re.IGNORECASE)
    return (m.group(1), m.group(2)) if m else (spec, None)


def _os_error(source: str, e: OSError) -> InputError:
    reason = e.strerror or type(e).__name__
    return InputError(f"{source}: cannot read the file: {reason}")


def _read_text(path: str, source: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise _os_error(source, e) from None
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text") from None


def _checked(arr: Any, source: str) -> np.ndarray:
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        kind = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise InputError(f"{source}: expected an array of real numbers, found {kind}")
    try:
        return arr.astype(np.float64)
    except MemoryError:
        raise InputError(f"{source}: not enough memory for an array of shape {arr.shape}") from None


def _numpy_error(source: str, e: Exception) -> InputError:
    if isinstance(e, OSError) and not isinstance(e, EOFError):
        return _os_error(source, e)
    if isinstance(e, MemoryError):
        return InputError(f"{source}: not enough memory to load it")
    text = str(e).lower()
    if "object arrays" in text:
        return InputError(f"{source}: refusing pickled data (the file holds an object array)")
    if "pickle" in text:
        # np.load treats anything that is neither .npy nor .npz as a pickle.
        return InputError(f"{source}: refusing pickled data (the file is not in NumPy's .npy/.npz format)")
    return InputError(f"{source}: not a valid NumPy file ({type(e).__name__})")


def _open_numpy(path: str, source: str) -> Any:
    """np.load with pickles refused: an ndarray for .npy, an NpzFile (to be closed) for .npz."""
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:
        # np.load and zipfile raise a wide, version-dependent set of types for a bad file.
        raise _numpy_error(source, e) from None


def _load_numpy(path: str, key: str | None, name: str, source: str) -> np.ndarray:
    loaded = _open_numpy(path, source)
    if isinstance(loaded, np.ndarray):
        if key is not None:
            raise InputError(f"{source}: ':{key}' only applies to .npz files")
        return _checked(loaded, source)
    with loaded:
        chosen = _pick_npz_array(loaded, key, name, path, source)
        try:
            return _checked(loaded[chosen], source)
        except InputError:
            raise
        except Exception as e:
            raise _numpy_error(source, e) from None


def _pick_npz_array(npz: Any, key: str | None, name: str, path: str, source: str) -> str:
    keys = list(npz.files)
    if key is None:
        if name in keys:
            key = name
        elif len(keys) == 1:
            key = keys[0]
        else:
            listed = ", ".join(keys) if keys else "no arrays"
            raise InputError(
                f"{source}: the file holds {listed} and none is called {name!r}; choose one with @{path}:KEY"
            )
    if key not in keys:
        raise InputError(f"{source}: no array {key!r} (the file holds {', '.join(keys) or 'no arrays'})")
    return key


def _load_npz_all(path: str, source: str) -> dict[str, np.ndarray]:
    loaded = _open_numpy(path, source)
    if isinstance(loaded, np.ndarray):
        raise InputError(f"{source}: the file holds one unnamed array; expected a .npz file")
    with loaded:
        try:
            return {k: _checked(loaded[k], f"{source}, array {k!r}") for k in loaded.files}
        except InputError:
            raise
        except Exception as e:
            raise _numpy_error(source, e) from None


def _load_csv(path: str, source: str) -> np.ndarray:
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
    except OSError as e:
        raise _os_error(source, e) from None
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text") from None
    fields = [s.strip() for s in first.split(",")]
    header = bool(first.strip()) and all(s and _scalar(s) is None for s in fields)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported below instead
            arr = np.loadtxt(path, delimiter=",", dtype=np.float64, skiprows=int(header), encoding="utf-8")
    except OSError as e:
        raise _os_error(source, e) from None
    except MemoryError:
        raise InputError(f"{source}: not enough memory to load it") from None
    except (ValueError, UnicodeDecodeError) as e:
        # NumPy's message says where ("... at row 2, column 1"); drop its advice on usecols.
        reason = str(e).split(";")[0].strip().rstrip(".")
        raise InputError(f"{source}: not a table of numbers ({reason})") from None
    if arr.size == 0:
        raise InputError(f"{source}: the file holds no numbers")
    return arr
