"""From what a user types to float64 arrays: ``--x 2``, ``--x "[1, 2]"``, ``--x @data.npy``,
``--vars '{"x": 2}'`` and one line of batch input.

Every failure is an :class:`InputError` whose message is one line a person reads, naming the
variable (and the file, when there is one); the CLI turns it into exit status 2. Nothing here
evaluates text as code, and ``.npy``/``.npz`` files are loaded with pickles refused.
"""

from __future__ import annotations

import functools
import math
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
# ASCII digits only: Python's float() also reads other scripts' digits ("١٢" is 12).
_NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
# Our own JSON output writes non-finite numbers as "NaN", "Infinity", "-Infinity"; people write
# nan, inf, -inf. Both read back, in any case.
_NON_FINITE = r"(?i)[+-]?(?:nan|inf|infinity)"


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled when first used (each costs a fraction of a millisecond at every
    start, and most commands use none of them)."""
    return re.compile(pattern)


# More nesting than NumPy allows dimensions is certainly a mistake; stop before walking it.
_MAX_DIMS = 32
_FILE_KINDS = ".npy, .npz, .json, .csv or .zarr"
_JSON_NAMES = {None: "null", True: "true", False: "false"}
# A float64 holds at most about 1.8e308; an integer with more digits (and a sign) cannot be one.
_MAX_INT_DIGITS = 310


def parse_value(text: str, name: str) -> Any:
    """Read one variable's value: a number, ``nan``/``inf``, a JSON array, or ``@FILE``.

    ``@FILE`` is a ``.npy`` file, a ``.npz`` file (``@f.npz:KEY``, else the array called ``name``,
    else its only array), a ``.json`` file (a number or nested list) or a ``.csv`` file (a value,
    a row, a column or a matrix of numbers; a first line of column names is skipped). A Zarr
    store (``@d.zarr``, ``@d.zarr:NAME`` for an array of a group) gives a Dask array.
    """
    stripped = text.strip()
    if stripped.startswith("@"):
        return _load_file(stripped[1:], name)
    if stripped.startswith("["):
        what = f"variable {name!r}"
        try:
            obj = _loads(stripped, what)
        except _NotJSONError:
            obj = _typed_list(stripped, what)  # numbers as people type them: nan, inf, .5, 1.
            if obj is None:
                raise
        return _nested_to_array(obj, what)
    scalar = _scalar(stripped)
    if scalar is None:
        raise InputError(f"variable {name!r}: expected a number, an array like [1, 2] or @FILE, got {text!r}")
    if _overflowed(scalar, stripped):
        raise _too_large(f"variable {name!r}: ", stripped)
    return np.array(scalar)


def _typed_list(text: str, what: str) -> Any:
    """A list typed on the command line whose numbers are written as :func:`_scalar` reads them
    (``[nan, -inf, .5, 1.]``), read as JSON with those numbers in JSON's words; None where a
    part of it is not a number. A place in an error is that in ``text``."""
    import bisect
    import json

    parts: list[str] = []
    spans: list[tuple[int, int, int, int]] = []  # each number's (start, end) in the JSON, in text
    size = last = 0
    for match in _regex(r"[^\s\[\],]+").finditer(text):
        value = _scalar(match[0])
        if value is None:
            return None
        if _overflowed(value, match[0]):
            raise _too_large(f"{what}: ", match[0])
        word = "NaN" if math.isnan(value) else repr(value).replace("inf", "Infinity")
        parts += [text[last : match.start()], word]
        size += match.start() - last
        spans.append((size, size + len(word), match.start(), match.end()))
        size, last = size + len(word), match.end()
    parts.append(text[last:])
    try:
        return json.loads("".join(parts))
    except json.JSONDecodeError as e:
        i = bisect.bisect_right(spans, (e.pos, len(text) + 1)) - 1
        start, end, here, there = spans[i] if i >= 0 else (0, 0, 0, 0)
        pos = here if e.pos < end else there + e.pos - end
        line, column = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
        raise InputError(f"{what}: not valid JSON ({e.msg} at line {line}, column {column})") from None
    except RecursionError:
        raise InputError(f"{what}: JSON nested too deeply") from None


def _overflowed(value: float, text: str) -> bool:
    """Whether ``text``, read as ``value``, is a number too large for a float (read as
    infinity) rather than infinity written as such (``inf``, ``-Infinity``)."""
    return math.isinf(value) and not _regex(_NON_FINITE).fullmatch(text)


def _too_large(where: str, text: str) -> InputError:
    """A number written out that a 64-bit float cannot hold (it was read as infinity)."""
    shown = text if len(text) <= 24 else f"{text[:12]}... ({len(text):,} characters)"
    return InputError(f"{where}{shown} is too large for a 64-bit float (at most about 1.8e308)")


def parse_vars(text: str, stdin: TextIO | None = None) -> dict[str, np.ndarray]:
    """Read ``--vars``: a JSON object, ``@FILE.json``, ``@FILE.npz`` (all its arrays) or ``-``
    (a JSON object on ``stdin``, default ``sys.stdin``)."""
    stripped = text.strip()
    if stripped == "-":
        source = "--vars from stdin"
        stream = stdin if stdin is not None else sys.stdin
        if stream is None:  # (started with stdin closed: <&-)
            raise InputError("--vars -: standard input is closed")
        body = _read_data(stream, source)
    elif stripped.startswith("@"):
        if not stripped[1:].strip():
            raise InputError("--vars: '@' must be followed by a file name")
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
    if not body.strip():  # (JSON's words would be "Expecting value at line 1, column 1")
        raise InputError(f'{source} is empty: expected a JSON object like {{"x": 2, "y": [1, 2]}}')
    obj = _loads(body, source, unique=True)  # (a value given twice: as --x 1 --x 2, refused)
    if not isinstance(obj, dict):
        raise InputError(f'{source}: expected a JSON object like {{"x": 2, "y": [1, 2]}}')
    return values_from_json_object(obj)


# Every integer of smaller magnitude is exactly a float64.
_EXACT_INT = 2**53


def values_from_json_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a decoded JSON object ``{name: value}`` into arrays (``--vars`` and batch lines).

    A value is a number, a nested list of numbers, or one of the strings "NaN", "Infinity",
    "-Infinity" (any case, also "nan"/"inf"), so gradcli's own JSON output reads back. Other
    strings are refused: a batch line never names a file to open.
    """
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise InputError(f'expected a JSON object like {{"x": 2, "y": [1, 2]}}, got {_json_kind(obj)}')
    out: dict[str, Any] = {}
    for key, value in obj.items():
        kind = type(value)
        if kind is float or kind is int and -_EXACT_INT < value < _EXACT_INT:  # a plain number: at once
            out[str(key)] = np.float64(value)
        else:
            out[str(key)] = _nested_to_array(value, f"variable {key!r}")
    return out


def finite_range(**bounds: Any) -> Any:
    """A click type for a tolerance or a step: ``click.FloatRange(**bounds)`` that also refuses
    nan and infinities (nan compares false with every bound, so FloatRange lets it through)."""
    import click

    class FiniteRange(click.FloatRange):
        name = "number"  # "'abc' is not a valid number" (click's says "float range"), NUMBER in the help

        def convert(self, value: Any, param: Any, ctx: Any) -> Any:
            number = super().convert(value, param, ctx)
            if not math.isfinite(number):
                self.fail(f"{value!r} is not a finite number", param, ctx)
            return number

    return FiniteRange(**bounds)


# -- numbers and nested lists --------------------------------------------------------------------


def _scalar(text: str) -> float | None:
    if _regex(_NUMBER).fullmatch(text) or _regex(_NON_FINITE).fullmatch(text):
        return float(text)
    return None


def json_loads(text: str, what: str | None = None, unique: bool = False) -> Any:
    """``json.loads``, except that an integer too long for a float64 is an :class:`InputError`
    (Python itself refuses to convert more than 4,300 digits, with advice for programmers).
    ``unique``: a key given twice in an object is an :class:`InputError` too."""
    try:
        return (_unique_decoder() if unique else _decoder()).decode(text)
    except _DuplicateKeyError as exc:
        where = f"{what}: " if what else ""
        raise InputError(f"{where}{exc.key!r} is given twice") from None
    except _LongIntegerError as exc:
        where = f"{what}: " if what else ""
        raise InputError(
            f"{where}a number is too large for a 64-bit float (an integer of {exc.digits:,} digits)"
        ) from None
    except _LargeFloatError as exc:
        raise _too_large(f"{what}: " if what else "", exc.text) from None


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


@functools.cache
def _unique_decoder() -> Any:
    import json

    return json.JSONDecoder(parse_int=_integer, parse_float=_float, object_pairs_hook=_unique_keys)


class _LongIntegerError(Exception):
    def __init__(self, digits: int) -> None:
        self.digits = digits


class _LargeFloatError(Exception):
    def __init__(self, text: str) -> None:
        self.text = text


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # (JSON has no infinity: this was a finite number written out)
        raise _LargeFloatError(text)
    return value


def _integer(digits: str) -> int:
    if len(digits) > _MAX_INT_DIGITS:
        raise _LongIntegerError(len(digits))
    return int(digits)


_DECODER: Any = None


def _decoder() -> Any:
    """One decoder for every batch line (``json.loads`` with options builds one per call)."""
    global _DECODER
    if _DECODER is None:
        import json  # here, not at the top: plain numbers are the common case and need no JSON

        _DECODER = json.JSONDecoder(parse_int=_integer, parse_float=_float)
    return _DECODER


def _loads(text: str, what: str, unique: bool = False) -> Any:
    import json

    try:
        return json_loads(text, what, unique)
    except json.JSONDecodeError as e:
        raise _NotJSONError(
            f"{what}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    except RecursionError:
        raise InputError(f"{what}: JSON nested too deeply") from None


class _NotJSONError(InputError):
    """Text that is not JSON (which a list typed on the command line may still be)."""


def _leaf(value: Any, what: str) -> float:
    kind = type(value)
    if kind is float or kind is int:
        return value
    if isinstance(value, str) and _regex(_NON_FINITE).fullmatch(value.strip()):
        return float(value)
    if isinstance(value, str):
        found = '"' + shown(" ".join(value[:30].split())) + '"'
    else:
        found = _json_kind(value)  # (true, false, null, an object, ...)
    raise InputError(f"{what}: expected numbers, found {found}")


def _json_kind(value: Any) -> str:
    """What a JSON value is, in JSON's words (Python's are dict, list, str)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None or isinstance(value, bool):
        return _JSON_NAMES[value]
    return "a number" if isinstance(value, (int, float)) else type(value).__name__


def _nested_to_array(obj: Any, what: str) -> np.ndarray | np.float64:
    """A number or a rectangular nested list -> float64 array (a single float: a float64 scalar),
    walking one depth level at a time (no recursion, so a hostile depth only costs a loop)."""
    if type(obj) is float:
        return np.float64(obj)
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

# JSON and CSV are read whole, then parsed, and parsing JSON takes up to about 30 times its text in
# Python objects (measured: 28x for a list of one-element lists, 12x for short numbers, 2.4x for
# long ones). So text files may be at most 1/32 of the memory left in the budget: a file within
# that parses within the budget, and one beyond it is refused after reading no more than that.
TEXT_SHARE = 32
# NumPy refuses .npy headers longer than this (its max_header_size), so that a file made to
# exhaust the header parser cannot; a real header is about 128 bytes.
MAX_NPY_HEADER = 10_000
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive with members, an empty one
_PICKLE_PROTO = b"\x80"  # the first opcode of every pickle since protocol 2


def shown(text: str) -> str:
    """``text`` from a file or a path, safe to print: control characters escaped as in the
    expression excerpts, so an escape sequence in data cannot drive the terminal."""
    from .program import _visible

    return "".join(_visible(ch) for ch in text)


def read_capped(stream: TextIO, cap: int | None, source: str, too_long: str = "") -> str:
    """All of ``stream``, reading no more than ``cap`` characters + 1: past the cap it raises
    :class:`InputError` (``too_long``) without reading the rest (``-f /dev/zero`` ends at once)."""
    try:
        text = stream.read() if cap is None else stream.read(cap + 1)
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text") from None
    if cap is not None and len(text) > cap:
        raise InputError(too_long)
    return text


def text_cap() -> int | None:
    """The most characters of a JSON or CSV file read as text (see TEXT_SHARE)."""
    from .budget import physical_memory, room

    left = room()
    if left is None:
        left = physical_memory()
    return None if left is None else left // TEXT_SHARE


def _too_much_text(source: str, cap: int) -> str:
    from .budget import format_size

    return (
        f"{source}: more than {format_size(cap)} of text, 1/{TEXT_SHARE} of the memory budget left "
        "(parsing takes up to 30 times the text): save it as .npy, or raise --max-memory"
    )


def zarr_source(text: str) -> tuple[str, str | None] | None:
    """``@data.zarr``, ``@data.zarr:NAME`` or ``@data.zarr/NAME`` (a path or URL, e.g.
    ``s3://bucket/d.zarr:x``) as (store, array name or None); None for any other value."""
    m = _regex(_ZARR).fullmatch(text.strip())
    return (os.path.expanduser(m.group(1)), m.group(2)) if m else None


_ZARR = r"(?i)@(.+?\.zarr(?:[/\\][^:]*)?)(?::([^:]+))?"


def _load_file(spec: str, name: str) -> Any:
    if not spec:
        raise InputError(f"variable {name!r}: '@' must be followed by a file name")
    if spec.strip() == "-":
        there = f'give values there with --vars - ({{"{name}": ...}})'
        raise InputError(f"variable {name!r}: @- is not standard input; {there}")
    zarr = zarr_source("@" + spec)
    if zarr is not None:  # a Dask array, read when the result is computed
        from .scale import zarr_value

        return zarr_value(*zarr, name)
    path, key = _split_npz_key(spec)
    path = os.path.expanduser(path)
    source = f"variable {name!r} from {path!r}"
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".npy", ".npz"):
        return _load_numpy(path, key, name, source)
    if suffix == ".json":
        return _nested_to_array(_loads(_read_text(path, source), source), source)
    if suffix == ".csv":
        return _load_csv(_read_text(path, source), source)
    raise InputError(f"{source}: unknown kind of file; expected {_FILE_KINDS}")


def _split_npz_key(spec: str) -> tuple[str, str | None]:
    """``f.npz:KEY`` -> (``f.npz``, ``KEY``); any other text is a path as it stands. A key after
    a .npy file, or an empty one, is split off too: the error then says what is wrong with it."""
    if spec.lower().endswith((".npz", ".npy")):
        return spec, None
    m = re.fullmatch(r"(.+\.np[yz]):([^:/\\]*)", spec, re.IGNORECASE)
    return (m.group(1), m.group(2)) if m else (spec, None)


def _os_error(source: str, e: OSError) -> InputError:
    reason = e.strerror or type(e).__name__
    return InputError(f"{source}: cannot read the file: {reason}")


def _read_text(path: str, source: str) -> str:
    """A text file, at most :func:`text_cap` characters; a UTF-8 byte order mark is dropped."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return _read_data(f, source)
    except OSError as e:
        raise _os_error(source, e) from None


def _read_data(stream: TextIO, source: str) -> str:
    cap = text_cap()
    try:
        return read_capped(stream, cap, source, _too_much_text(source, cap) if cap is not None else "")
    except MemoryError:
        raise InputError(f"{source}: not enough memory to read it") from None


def _as_float64(arr: np.ndarray, source: str) -> np.ndarray:
    try:
        return arr.astype(np.float64, copy=False)
    except MemoryError:
        raise InputError(f"{source}: not enough memory for an array of shape {arr.shape}") from None


def _numpy_error(source: str, e: Exception) -> InputError:
    if isinstance(e, OSError) and not isinstance(e, EOFError):
        return _os_error(source, e)
    if isinstance(e, MemoryError):
        return InputError(f"{source}: not enough memory to load it")
    return InputError(f"{source}: not a valid NumPy file ({type(e).__name__})")


def _fits(need: int, shape: tuple[int, ...], source: str) -> None:
    """Refuse, before reading any data, an array that the memory budget cannot hold."""
    from .budget import format_size, room

    left = room()
    if left is not None and need > left:
        raise InputError(
            f"{source}: the array of shape {shape} needs {format_size(need)}, more than the "
            f"{format_size(left)} left in the memory budget: raise --max-memory"
        )


def _read_npy(fp: Any, source: str) -> np.ndarray:
    """One .npy array from a seekable binary stream at its start (a file, a zip member). The
    header is read first: pickles, other kinds of numbers and arrays larger than the memory
    budget are refused before any data is read (a 4 MB zip can declare a 4 GB array)."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(fp)
        size = fp.read(2 if version == (1, 0) else 4)
        length = int.from_bytes(size, "little")
        if length > MAX_NPY_HEADER:
            raise InputError(
                f"{source}: its .npy header is {length:,} bytes, more than the {MAX_NPY_HEADER:,} "
                "NumPy reads (a real one is about 128): the file is damaged or not made by NumPy"
            )
        fp.seek(0)
        npy.read_magic(fp)
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = read_header(fp)
        if dtype.hasobject:
            raise InputError(f"{source}: refusing pickled data (the file holds an object array)")
        if dtype.kind not in "biuf":
            raise InputError(f"{source}: expected an array of real numbers, found {dtype}")
        count = math.prod(shape)
        _fits(count * (dtype.itemsize + (0 if dtype == np.float64 else 8)), shape, source)
        fp.seek(0)
        arr = npy.read_array(fp, allow_pickle=False)
    except InputError:
        raise
    except Exception as e:
        # NumPy and zipfile raise a wide, version-dependent set of types for a damaged file.
        raise _numpy_error(source, e) from None
    return _as_float64(arr, source)


def _open_numpy(path: str, source: str) -> tuple[Any, bool]:
    """The file at ``path``, open at its start, and whether it is .npy (else .npz), as its first
    bytes say; anything else is refused without being read further (np.load would unpickle it)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
        head = f.read(6)
        f.seek(0)
    except OSError as e:
        raise _os_error(source, e) from None
    if head.startswith(_NPY_MAGIC) or head[:4] in _ZIP_MAGIC:
        return f, head.startswith(_NPY_MAGIC)
    f.close()
    if head.startswith(_PICKLE_PROTO):
        raise InputError(f"{source}: refusing pickled data (the file is not in NumPy's .npy/.npz format)")
    raise InputError(f"{source}: not a NumPy file (expected the .npy or .npz format)")


def _npz_members(f: Any, source: str) -> tuple[Any, dict[str, Any]]:
    """The archive and its arrays: key (member name without ``.npy``) -> ZipInfo."""
    import zipfile

    try:
        archive = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise _numpy_error(source, e) from None
    members = {i.filename.removesuffix(".npy"): i for i in archive.infolist() if i.filename.endswith(".npy")}
    return archive, members


def _read_member(archive: Any, info: Any, source: str) -> np.ndarray:
    try:
        member = archive.open(info)
    except Exception as e:
        raise _numpy_error(source, e) from None
    with member:
        return _read_npy(member, source)


def _load_numpy(path: str, key: str | None, name: str, source: str) -> np.ndarray:
    f, is_npy = _open_numpy(path, source)
    with f:
        if is_npy:
            if key is not None:
                raise InputError(f"{source}: ':{key}' only applies to .npz files")
            return _read_npy(f, source)
        archive, members = _npz_members(f, source)
        with archive:
            chosen = _pick_npz_array(list(members), key, name, path, source)
            return _read_member(archive, members[chosen], source)


def _pick_npz_array(keys: list[str], key: str | None, name: str, path: str, source: str) -> str:
    held = ", ".join(shown(k) for k in keys) or "no arrays"
    if key is None:
        if name in keys:
            key = name
        elif len(keys) == 1:
            key = keys[0]
        else:
            raise InputError(
                f"{source}: the file holds {held} and none is called {name!r}; choose one with @{path}:KEY"
            )
    if key == "":
        raise InputError(f"{source}: ':' must be followed by the name of an array (the file holds {held})")
    if key not in keys:
        raise InputError(f"{source}: no array {key!r} (the file holds {held})")
    return key


def _load_npz_all(path: str, source: str) -> dict[str, np.ndarray]:
    f, is_npy = _open_numpy(path, source)
    with f:
        if is_npy:
            raise InputError(f"{source}: the file holds one unnamed array; expected a .npz file")
        archive, members = _npz_members(f, source)
        with archive:
            return {k: _read_member(archive, info, f"{source}, array {k!r}") for k, info in members.items()}


def _load_csv(text: str, source: str) -> np.ndarray:
    """A value, a row, a column or a matrix of numbers, separated by commas, or by semicolons or
    tabs when the first line has them (so a European ``1;2`` file is not one field); a first
    line of names is skipped. A field may be quoted, as spreadsheets write them: ``"1.5"``."""
    import io

    first = text.split("\n", 1)[0]
    delimiter = next((d for d in (";", "\t") if d in first), ",")
    if '"' in text:
        # A quoted field is its text (one holding the delimiter stays as it is, and is refused).
        d = re.escape(delimiter)
        text = re.compile(rf'(^|{d})[ \t]*"([^"\n{d}]*)"[ \t]*(?=\r?$|{d})', re.MULTILINE).sub(r"\1\2", text)
        first = text.split("\n", 1)[0]
    fields = [s.strip() for s in first.split(delimiter)]
    header = bool(first.strip()) and all(s and _scalar(s) is None for s in fields)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported below instead
            arr = np.loadtxt(io.StringIO(text), delimiter=delimiter, dtype=np.float64, skiprows=int(header))
    except MemoryError:
        raise InputError(f"{source}: not enough memory to load it") from None
    except ValueError as e:
        # NumPy's message says where; drop its advice on usecols.
        reason = _file_line(str(e).split(";")[0].strip().rstrip("."), int(header))
        raise InputError(f"{source}: not a table of numbers ({shown(reason)})") from None
    if arr.size == 0:
        raise InputError(f"{source}: the file holds no numbers")
    if np.isinf(arr).any():  # 1e999 is read as inf: refused, as in every other way of giving it
        for line in text.splitlines():
            for field in (f.strip() for f in line.split(delimiter)):
                value = _scalar(field)
                if value is not None and _overflowed(value, field):
                    raise _too_large(f"{source}: ", field)
    return arr


def _file_line(reason: str, header: int) -> str:
    """NumPy's place of a bad field ("at row 1, column 2": the rows after the skipped header,
    from 0; "columns changed ... at row 2": from 1) as the line of the file, counted from 1."""
    bad_field = _regex(r"(could not convert .*) at row (\d+), column (\d+)").fullmatch(reason)
    if bad_field:
        return f"{bad_field[1]} on line {int(bad_field[2]) + 1 + header}, column {bad_field[3]}"
    ragged = _regex(r"(the number of columns changed .*) at row (\d+)").fullmatch(reason)
    if ragged:
        return f"{ragged[1]} on line {int(ragged[2]) + header}"
    return reason
