"""From results to strings: JSON for programs, aligned text for people. Pure functions.

The JSON shapes are the public contract of ../shared/design.md::

    {"value": 13.0, "grad": {"x": 4.0, "y": 6.0}}                    one output
    {"value": [v0, v1], "grad": [{"x": ..}, {"x": ..}]}              several outputs

Arrays are nested lists, a scalar is a number, non-finite numbers are the strings "NaN",
"Infinity" and "-Infinity" (strict JSON that Python's ``float()`` reads back). A gradient given
as None (no gradient) is ``null`` in JSON and ``none`` in text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .engine import Variable

__all__ = [
    "check_json",
    "derivatives_text",
    "dumps",
    "eval_json",
    "eval_text",
    "format_array",
    "format_number",
    "hessian_text",
    "jacobian_text",
    "to_jsonable",
]

_NON_FINITE_NAMES = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
# Fixed rather than NumPy's global print options, so that output is the same whatever a
# plugin or a Python caller set: summarise past 1000 elements, 8 significant digits in arrays.
_ARRAY_OPTIONS: dict[str, Any] = {
    "precision": 8,
    "threshold": 1000,
    "edgeitems": 3,
    "max_line_width": 80,
    "floatmode": "maxprec",
    "suppress_small": False,
    "sign": "-",
}
# Up to here every integer-valued float64 is an exact integer, so it may print without ".".
_EXACT_INT = 2.0**53


def as_float_array(a: Any) -> np.ndarray:
    """A Variable's data, or any value, as a float64 NumPy array."""
    if isinstance(a, Variable):
        a = a.data
    return np.asarray(a, dtype=np.float64)


def _finite_or_name(x: float) -> float | str:
    x = float(x)
    return x if math.isfinite(x) else _NON_FINITE_NAMES[repr(x)]


def to_jsonable(a: Any) -> Any:
    """A number, array or Variable as JSON data: a float, nested lists of floats, or strings for
    non-finite numbers. Conversion is done by NumPy (``tolist``), never by a Python recursion."""
    if a is None:
        return None
    arr = as_float_array(a)
    if arr.ndim == 0:
        return _finite_or_name(float(arr))
    finite = np.isfinite(arr)
    if finite.all():
        return arr.tolist()
    out = arr.astype(object)
    out[np.isnan(arr)] = "NaN"
    out[arr == np.inf] = "Infinity"
    out[arr == -np.inf] = "-Infinity"
    return out.tolist()


def _default(o: Any) -> Any:
    if isinstance(o, (np.ndarray, np.generic, Variable)):
        return to_jsonable(o)
    raise TypeError(f"cannot write {type(o).__name__} as JSON")


def _sanitize(obj: Any) -> Any:
    """Copy ``obj`` with non-finite floats replaced by their names, walking with a stack."""
    root: list[Any] = [obj]
    stack: list[tuple[Any, Any]] = [(root, 0)]  # (container, key) whose value is to be fixed
    while stack:
        parent, key = stack.pop()
        value = parent[key]
        if isinstance(value, float):
            parent[key] = _finite_or_name(value)
        elif isinstance(value, (np.ndarray, np.generic, Variable)):
            parent[key] = to_jsonable(value)
        elif isinstance(value, Mapping):
            parent[key] = copy = dict(value)
            stack.extend((copy, k) for k in copy)
        elif isinstance(value, (list, tuple)):
            parent[key] = copy = list(value)
            stack.extend((copy, i) for i in range(len(copy)))
    return root[0]


def dumps(obj: Any) -> str:
    """``obj`` as one line of strict JSON; arrays and Variables inside it are converted."""
    import json  # here, not at the top: text output, the default, does not need it

    try:
        return json.dumps(obj, allow_nan=False, separators=(", ", ": "), default=_default)
    except ValueError:
        # A bare NaN/inf float somewhere (rare: to_jsonable output never has one); take the
        # slow path that rewrites them rather than emit non-standard JSON.
        return json.dumps(_sanitize(obj), allow_nan=False, separators=(", ", ": "), default=_default)


def _several(grad: Any) -> bool:
    return isinstance(grad, (list, tuple))


def eval_json(value: Any, grad: Any) -> dict[str, Any]:
    """The result of ``gradcli eval`` as JSON data.

    One output: ``value`` is an array and ``grad`` a mapping name -> array. Several outputs:
    ``value`` is a sequence of arrays and ``grad`` a sequence of such mappings, one per output.
    Callers may add keys to the returned dict.
    """
    if _several(grad):
        return {
            "value": [to_jsonable(v) for v in value],
            "grad": [{name: to_jsonable(g) for name, g in row.items()} for row in grad],
        }
    return {"value": to_jsonable(value), "grad": {name: to_jsonable(g) for name, g in grad.items()}}


def format_number(x: float) -> str:
    """The shortest text that reads back as ``x``, without a useless ".0": 13.0 -> "13",
    0.1 -> "0.1", 1e20 -> "1e+20", nan -> "nan", inf -> "inf". Negative zero prints as "0",
    as it does inside integer arrays (JSON keeps its sign)."""
    text = repr(float(x) + 0.0)  # + 0.0 turns -0.0 into 0.0
    return text[:-2] if text.endswith(".0") else text


def format_array(a: Any, indent: int = 0, **options: Any) -> str:
    """A value for people: a scalar by :func:`format_number`, an array by ``np.array2string``
    (integers without a trailing ".", long arrays summarised with "..."). Lines after the first
    are indented by ``indent`` spaces, so the array stays aligned after a label that wide.
    ``options`` override the fixed print options (e.g. a smaller ``threshold`` for graph labels)."""
    if a is None:
        return "none"
    arr = as_float_array(a)
    if arr.ndim == 0:
        return format_number(float(arr))
    shown = arr
    integral = arr.size and np.isfinite(arr).all() and (arr == np.round(arr)).all()
    if integral and np.abs(arr).max() < _EXACT_INT:
        shown = arr.astype(np.int64)
    return np.array2string(shown, prefix=" " * indent, **{**_ARRAY_OPTIONS, **options})


def _text_rows(value: Any, grad: Any) -> list[tuple[str, Any]]:
    if not _several(grad):
        return [("value", value), *((f"grad {name}", g) for name, g in grad.items())]
    rows: list[tuple[str, Any]] = []
    for i, (v, row) in enumerate(zip(value, grad, strict=True)):
        rows.append((f"value[{i}]", v))
        rows.extend((f"grad[{i}] {name}", g) for name, g in row.items())
    return rows


def eval_text(value: Any, grad: Any) -> str:
    """The result of ``gradcli eval`` for a person: one labelled row per value and gradient,
    the numbers starting in one column::

        value  13
        grad x 4
        grad y 6

    Several outputs (``value`` a sequence, ``grad`` a sequence of mappings) are grouped by
    output, each value followed by its gradients: ``value[0]``, ``grad[0] x``, ``value[1]``,
    ``grad[1] x`` ... Multi-line arrays continue under the column where they started. The text
    shows arrays to 8 significant digits; use ``--json`` for every digit.
    """
    return _aligned(_text_rows(value, grad))


def _aligned(rows: list[tuple[str, Any]]) -> str:
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(f"{label:<{width}}{format_array(a, width)}" for label, a in rows)


def derivatives_text(derivs: Mapping[str, Sequence[Any]]) -> str:
    """Pure partial derivatives for a person, ``derivs[x][k-1]`` being d^k f / dx^k::

        d/dx   4
        d2/dx2 2

    grouped by variable, in increasing order, aligned as in :func:`eval_text`."""
    rows = [
        (f"d/d{name}" if k == 1 else f"d{k}/d{name}{k}", a)
        for name, orders in derivs.items()
        for k, a in enumerate(orders, start=1)
    ]
    return _aligned(rows) if rows else ""


# --- Hessians, Jacobians and checks -----------------------------------------------------------


def _cell(x: float) -> str:
    # 8 significant digits, as inside arrays; format_number then drops what is not needed.
    return format_number(float(f"{float(x):.8g}"))


def _matrix(corner: str, rows: Sequence[str], columns: Sequence[str], cells: Any) -> list[str]:
    """A labelled matrix: ``corner`` above the row labels, numbers right-aligned under their
    column headers."""
    texts = [[_cell(x) for x in row] for row in np.asarray(cells, dtype=np.float64)]
    lw = max(len(corner), *map(len, rows))
    widths = [max(len(c), *(len(t[j]) for t in texts)) for j, c in enumerate(columns)]
    head = " ".join([f"{corner:<{lw}}", *(f"{c:>{w}}" for c, w in zip(columns, widths))])
    body = [
        " ".join([f"{label:<{lw}}", *(f"{t:>{w}}" for t, w in zip(row, widths))])
        for label, row in zip(rows, texts)
    ]
    return [head.rstrip(), *body]


def hessian_text(value: Any, grad: Mapping[str, Any], hessian: Mapping[str, Mapping[str, Any]]) -> str:
    """Value, gradient and Hessian for a person.

    With scalar variables the Hessian is a square matrix labelled by the variable names::

        value  13
        grad x 4
        grad y 6
        hessian x y
        x       2 0
        y       0 2

    With an array variable, one labelled block per pair, ``hessian x y`` of shape
    ``x.shape + y.shape``, aligned as in :func:`eval_text`. Numbers show 8 significant digits.
    """
    names = list(hessian)
    if all(as_float_array(g).ndim == 0 for g in grad.values()):
        cells = [[float(as_float_array(hessian[a][b])) for b in names] for a in names]
        lines = [eval_text(value, grad), *(_matrix("hessian", names, names, cells) if names else [])]
        return "\n".join(lines)
    rows = _text_rows(value, grad)
    rows += [(f"hessian {a} {b}", hessian[a][b]) for a in names for b in names]
    return _aligned(rows)


def _element_labels(prefix: str, shape: tuple[int, ...]) -> list[str]:
    return [prefix + (f"[{','.join(map(str, i))}]" if i else "") for i in np.ndindex(shape)]


def jacobian_text(value: Any, jacobian: Any) -> str:
    """Values and Jacobian for a person; one output gives a value and a mapping name -> block,
    several give sequences of those (as :func:`eval_text`).

    When every variable is a scalar and every output at most a vector, it is one matrix: a row
    per output element (``out[i]``; ``out0``, ``out1[i]`` with several outputs), a column per
    variable. Otherwise one labelled block per output and variable, of shape
    ``output.shape + x.shape``. Numbers show 8 significant digits.
    """
    several = _several(jacobian)
    values = list(value) if several else [value]
    blocks: list[Mapping[str, Any]] = list(jacobian) if several else [jacobian]
    names = list(blocks[0]) if blocks else []
    value_rows = [(f"value[{k}]" if several else "value", v) for k, v in enumerate(values)]
    shapes = [as_float_array(v).shape for v in values]
    if all(len(s) <= 1 for s in shapes) and all(
        as_float_array(b[n]).ndim == len(s) for b, s in zip(blocks, shapes) for n in names
    ):
        labels: list[str] = []
        cells: list[list[float]] = []
        for k, (block, shape) in enumerate(zip(blocks, shapes)):
            labels += _element_labels(f"out{k}" if several else "out", shape)
            columns = [as_float_array(block[n]).reshape(-1) for n in names]
            cells += [[float(c[i]) for c in columns] for i in range(int(np.prod(shape)))]
        table = _matrix("jacobian", labels, names, cells) if names else []
        return "\n".join([_aligned(value_rows), *table])
    rows = list(value_rows)
    for k, block in enumerate(blocks):
        rows += [(f"jacobian[{k}] {n}" if several else f"jacobian {n}", b) for n, b in block.items()]
    return _aligned(rows)


def check_json(report: Any) -> dict[str, Any]:
    """A numerical check (``gradcli.calculus.CheckReport``) as JSON data::

        {"ok": true, "order": 1, "rtol": 1e-05, "atol": 1e-07, "failures": 0,
         "rows": [{"output": 0, "order": 1, "derivative": "d/dx", "variable": "x", "index": [],
                   "other": null, "other_index": [], "analytic": 4.0, "numeric": 4.0000000001,
                   "abs_error": 1e-10, "rel_error": 2.5e-11, "ok": true}, ...]}

    ``other``/``other_index`` name the second variable of a Hessian entry (order 2 rows).
    """
    return {
        "ok": bool(report.ok),
        "order": report.order,
        "rtol": report.rtol,
        "atol": report.atol,
        "failures": len(report.failures),
        "rows": [
            {
                "output": r.output,
                "order": r.order,
                "derivative": r.label,
                "variable": r.variable,
                "index": list(r.index),
                "other": r.other,
                "other_index": list(r.other_index),
                "analytic": r.analytic,
                "numeric": r.numeric,
                "abs_error": r.abs_error,
                "rel_error": r.rel_error,
                "ok": r.ok,
            }
            for r in report.rows
        ],
    }
