"""From results to strings: JSON for programs, aligned text for people, named arrays for files.
Every shape a command's answer can take is here (graph.py and explain.py draw the graph and
narrate the backward pass).

The JSON shapes are the public contract of ../shared/design.md::

    {"value": 13.0, "grad": {"x": 4.0, "y": 6.0}}                    one output
    {"value": [v0, v1], "grad": [{"x": ..}, {"x": ..}]}              several outputs

Arrays are nested lists, a scalar is a number, non-finite numbers are the strings "NaN",
"Infinity" and "-Infinity" (strict JSON that Python's ``float()`` reads back). A gradient given
as None (no gradient) is ``null`` in JSON and ``none`` in text.

Numbers in text follow one rule: the shortest text that reads back as the same float64 (``13``,
``0.1``, ``0.30000000000000004``, ``1e-05``), or, with a :class:`Style` of ``precision`` N, the
shortest text of the number rounded to N significant digits. Text fits the style's ``width``:
arrays wrap, matrices too wide are printed in blocks of columns, and an array too large to show
whole is summarised with ``...`` and says how many elements it left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .backend import is_lazy
from .engine import Variable

__all__ = [
    "PLAIN",
    "CheckOutput",
    "EvalOutput",
    "HessianOutput",
    "JacobianOutput",
    "Output",
    "Style",
    "TextOutput",
    "aligned",
    "as_float_array",
    "check_json",
    "check_text",
    "check_verdict",
    "derivatives_text",
    "dumps",
    "eval_json",
    "eval_text",
    "format_array",
    "format_number",
    "hessian_text",
    "jacobian_text",
    "matrix_text",
    "to_jsonable",
]

_NON_FINITE_NAMES = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
# Arrays with more elements than this are summarised in text (gradcli eval --json has every one).
SUMMARY_THRESHOLD = 1000
EDGE_ITEMS = 3


class Style:
    """How text shows numbers: ``precision`` significant digits (None: every digit needed to read
    the number back exactly) within ``width`` columns."""

    __slots__ = ("precision", "width")

    def __init__(self, precision: int | None = None, width: int = 80) -> None:
        self.precision, self.width = precision, width

    def __repr__(self) -> str:
        return f"Style(precision={self.precision}, width={self.width})"


PLAIN = Style()


def as_float_array(a: Any) -> np.ndarray:
    """A Variable's data, or any value, as a float64 NumPy array (a Dask array stays one)."""
    if isinstance(a, Variable):
        a = a.data
    if is_lazy(a):  # computed where it is written (a Zarr store), not here
        return a.astype(np.float64)  # type: ignore[no-any-return]
    return np.asarray(a, dtype=np.float64)


# --- JSON -----------------------------------------------------------------------------------------


def _finite_or_name(x: float) -> float | str:
    x = float(x)
    return x if math.isfinite(x) else _NON_FINITE_NAMES[repr(x)]


def to_jsonable(a: Any) -> Any:
    """A number, array or Variable as JSON data: a float, nested lists of floats, or strings for
    non-finite numbers. Conversion is done by NumPy (``tolist``), never by a Python recursion."""
    if a is None:
        return None
    if type(a) is np.float64 or type(a) is float:  # the common case, without making an array
        return a if math.isfinite(a) else _NON_FINITE_NAMES[repr(float(a))]
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
            parent[key] = mapping = dict(value)
            stack.extend((mapping, k) for k in mapping)
        elif isinstance(value, (list, tuple)):
            parent[key] = items = list(value)
            stack.extend((items, i) for i in range(len(items)))
    return root[0]


def dumps(obj: Any) -> str:
    """``obj`` as one line of strict JSON; arrays and Variables inside it are converted."""
    encoder = _encoder()
    try:
        text: str = encoder.encode(obj)
    except ValueError:
        # A bare NaN/inf float somewhere (rare: to_jsonable output never has one); take the
        # slow path that rewrites them rather than emit non-standard JSON.
        text = encoder.encode(_sanitize(obj))
    return text


_ENCODER: Any = None


def _encoder() -> Any:
    """One encoder for every line (``json.dumps`` with options builds a new one per call)."""
    global _ENCODER
    if _ENCODER is None:
        import json  # here, not at the top: text output, the default, does not need it

        _ENCODER = json.JSONEncoder(allow_nan=False, separators=(", ", ": "), default=_default)
    return _ENCODER


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


# --- numbers and arrays as text ----------------------------------------------------------------


def format_number(x: float, precision: int | None = None) -> str:
    """The shortest text that reads back as ``x`` (rounded first to ``precision`` significant
    digits, if given), without a useless ".0": 13.0 -> "13", 0.1 -> "0.1", 1e20 -> "1e+20",
    nan -> "nan", inf -> "inf". Negative zero prints as "0" (JSON keeps its sign)."""
    x = float(x)
    if precision is not None and math.isfinite(x):
        rounded = f"{x:.{precision}g}"
        x = float(rounded)
        if math.isinf(x):  # rounded past the largest float (1.7e308 to one digit): the text itself
            return rounded
    text = repr(x + 0.0)  # + 0.0 turns -0.0 into 0.0
    return text[:-2] if text.endswith(".0") else text


def _shown_part(arr: np.ndarray, edgeitems: int) -> np.ndarray:
    """The elements a summary shows: along each long axis, the first and last ``edgeitems``."""
    for axis, n in enumerate(arr.shape):
        if n > 2 * edgeitems:
            keep = np.r_[0:edgeitems, n - edgeitems : n]
            arr = np.take(arr, keep, axis=axis)
    return arr


def format_array(
    a: Any,
    indent: int = 0,
    style: Style = PLAIN,
    *,
    threshold: int = SUMMARY_THRESHOLD,
    edgeitems: int = EDGE_ITEMS,
    width: int | None = None,
) -> str:
    """A value for people: a scalar by :func:`format_number`, an array with every element by
    the same rule, right-aligned in columns, wrapped to ``width`` (default: the style's).

    Lines after the first are indented by ``indent`` spaces, so the array stays aligned after a
    label that wide. An array of more than ``threshold`` elements shows ``edgeitems`` at each
    end of each axis and ends with how many elements it left out. NumPy's global print options
    play no part, so output is the same whatever a plugin or a Python caller set.
    """
    if a is None:
        return "none"
    arr = as_float_array(a)
    if arr.ndim == 0:
        return format_number(float(arr), style.precision)
    summarised = arr.size > threshold
    shown = _shown_part(arr, edgeitems) if summarised else arr
    digits = style.precision
    cell = max((len(format_number(v, digits)) for v in shown.ravel().tolist()), default=0)
    line_width = width if width is not None else style.width
    formatter: Any = {"float_kind": lambda v: format_number(v, digits).rjust(cell)}
    text = np.array2string(
        arr,
        max_line_width=max(line_width, indent + cell + 4),
        prefix=" " * indent,
        separator=" ",
        threshold=threshold,
        edgeitems=edgeitems,
        formatter=formatter,
    )
    if not summarised:
        return text
    note = f"({arr.size - shown.size:,} of {arr.size:,} elements not shown)"
    last = text.rsplit("\n", 1)[-1]
    if (
        len(last) + (0 if "\n" in text else indent) + 1 + len(note) <= line_width
    ):  # (a first line's indent is its label)
        return f"{text} {note}"
    return f"{text}\n{' ' * indent}{note}"


def text_rows(value: Any, grad: Any) -> list[tuple[str, Any]]:
    """The labelled rows of a value and its gradients (several outputs: grouped by output), for
    :func:`aligned`."""
    if not _several(grad):
        return [("value", value), *((f"grad {name}", g) for name, g in grad.items())]
    rows: list[tuple[str, Any]] = []
    for i, (v, row) in enumerate(zip(value, grad, strict=True)):
        rows.append((f"value[{i}]", v))
        rows.extend((f"grad[{i}] {name}", g) for name, g in row.items())
    return rows


def eval_text(value: Any, grad: Any, style: Style = PLAIN) -> str:
    """The result of ``gradcli eval`` for a person: one labelled row per value and gradient,
    the numbers starting in one column::

        value  13
        grad x 4
        grad y 6

    Several outputs (``value`` a sequence, ``grad`` a sequence of mappings) are grouped by
    output, each value followed by its gradients: ``value[0]``, ``grad[0] x``, ``value[1]``,
    ``grad[1] x`` ... Multi-line arrays continue under the column where they started.
    """
    return aligned(text_rows(value, grad), style)


def aligned(rows: Sequence[tuple[str, Any]], style: Style = PLAIN) -> str:
    """Labelled values, the values starting in one column after the longest label."""
    if not rows:
        return ""
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(f"{label:<{width}}{format_array(a, width, style)}" for label, a in rows)


def derivatives_text(derivs: Mapping[str, Sequence[Any]], style: Style = PLAIN) -> str:
    """Pure partial derivatives for a person, ``derivs[x][k-1]`` being d^k f / dx^k::

        d/dx   4
        d2/dx2 2

    grouped by variable, in increasing order, aligned as in :func:`eval_text`."""
    rows = [
        (f"d/d{name}" if k == 1 else f"d{k}/d{name}{k}", a)
        for name, orders in derivs.items()
        for k, a in enumerate(orders, start=1)
    ]
    return aligned(rows, style)


# --- matrices: Hessians, Jacobians and checks ----------------------------------------------------


def _table(
    corner: str, rows: Sequence[str], columns: Sequence[str], cells: Sequence[Sequence[str]]
) -> list[str]:
    """Rows of text cells under column headers, labels left-aligned and cells right-aligned."""
    lw = max(len(corner), *map(len, rows)) if rows else len(corner)
    widths = [max(len(c), *(len(t[j]) for t in cells)) if cells else len(c) for j, c in enumerate(columns)]
    head = " ".join([f"{corner:<{lw}}", *(f"{c:>{w}}" for c, w in zip(columns, widths))])
    body = [
        " ".join([f"{label:<{lw}}", *(f"{t:>{w}}" for t, w in zip(row, widths))])
        for label, row in zip(rows, cells)
    ]
    return [head.rstrip(), *body]


def matrix_text(
    corner: str, rows: Sequence[str], columns: Sequence[str], numbers: Any, style: Style = PLAIN
) -> list[str]:
    """A labelled matrix of numbers: ``corner`` above the row labels, numbers right-aligned under
    their column headers. When it is wider than the style's width, it is printed as several
    blocks of whole columns, each under its own header (as R prints a wide matrix)."""
    texts = [
        [format_number(x, style.precision) for x in row] for row in np.asarray(numbers, dtype=np.float64)
    ]
    lw = max(len(corner), *map(len, rows)) if rows else len(corner)
    widths = [max(len(c), *(len(t[j]) for t in texts)) for j, c in enumerate(columns)]
    blocks: list[list[int]] = [[]]
    used = lw
    for j, w in enumerate(widths):
        if blocks[-1] and used + 1 + w > style.width:
            blocks.append([])
            used = lw
        blocks[-1].append(j)
        used += 1 + w
    lines: list[str] = []
    for block in blocks:
        lines += _table(corner, rows, [columns[j] for j in block], [[t[j] for j in block] for t in texts])
    return lines


def hessian_text(
    value: Any, grad: Mapping[str, Any], hessian: Mapping[str, Mapping[str, Any]], style: Style = PLAIN
) -> str:
    """Value, gradient and Hessian for a person.

    With scalar variables the Hessian is a square matrix labelled by the variable names::

        value  13
        grad x 4
        grad y 6
        hessian x y
        x       2 0
        y       0 2

    With an array variable, one labelled block per pair, ``hessian x y`` of shape
    ``x.shape + y.shape``, aligned as in :func:`eval_text`.
    """
    names = list(hessian)
    if all(as_float_array(g).ndim == 0 for g in grad.values()):
        cells = [[float(as_float_array(hessian[a][b])) for b in names] for a in names]
        matrix = matrix_text("hessian", names, names, cells, style) if names else []
        return "\n".join([eval_text(value, grad, style), *matrix])
    rows = text_rows(value, grad)
    rows += [(f"hessian {a} {b}", hessian[a][b]) for a in names for b in names]
    return aligned(rows, style)


def _element_labels(prefix: str, shape: tuple[int, ...]) -> list[str]:
    return [prefix + (f"[{','.join(map(str, i))}]" if i else "") for i in np.ndindex(shape)]


def jacobian_text(value: Any, jacobian: Any, style: Style = PLAIN) -> str:
    """Values and Jacobian for a person; one output gives a value and a mapping name -> block,
    several give sequences of those (as :func:`eval_text`).

    When every variable is a scalar and every output at most a vector, it is one matrix: a row
    per output element (``out[i]``; ``out0``, ``out1[i]`` with several outputs), a column per
    variable. Otherwise one labelled block per output and variable, of shape
    ``output.shape + x.shape``.
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
        table = matrix_text("jacobian", labels, names, cells, style) if names else []
        return "\n".join([aligned(value_rows, style), *table])
    rows = list(value_rows)
    for k, block in enumerate(blocks):
        rows += [(f"jacobian[{k}] {n}" if several else f"jacobian {n}", b) for n, b in block.items()]
    return aligned(rows, style)


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


def check_verdict(report: Any) -> str:
    """One line: whether every derivative agrees with central differences, and the tolerances."""
    bad, total = len(report.failures), len(report.rows)
    tol = f"rtol {format_number(report.rtol)}, atol {format_number(report.atol)}"
    if bad:
        return f"{bad} of {total} derivatives differ from central differences ({tol})"
    return f"all {total} derivatives agree with central differences ({tol})"


# Errors are estimates of how far apart two numbers are: two significant digits say it.
_ERROR_DIGITS = 2


def check_text(report: Any, style: Style = PLAIN) -> str:
    """The check as a table, one row per derivative, and the verdict on the last line::

    derivative analytic numeric abs err rel err ok
    d/dx              4       4 1.4e-10 3.5e-11 ok
    """
    several = report.n_outputs > 1
    labels = [(f"out{r.output} " if several else "") + r.label for r in report.rows]
    cells = [
        [
            format_number(r.analytic, style.precision),
            format_number(r.numeric, style.precision),
            format_number(r.abs_error, _ERROR_DIGITS),
            format_number(r.rel_error, _ERROR_DIGITS),
            "ok" if r.ok else "FAIL",
        ]
        for r in report.rows
    ]
    table = _table("derivative", labels, ["analytic", "numeric", "abs err", "rel err", "ok"], cells)
    return "\n".join([*table, check_verdict(report)])


# --- one command's answer in every shape ----------------------------------------------------------


class Output:
    """What an expression command computed, ready to be shown in any of the shapes a user asks
    for: :meth:`text` for people, :meth:`data` for one line of JSON, :meth:`arrays` for a
    ``.npz`` file (names like ``value``, ``grad/x``) and, through :attr:`primary`, ``.npy``.

    ``failed`` says why the command did not pass although it ran (a check that found a wrong
    derivative: exit status 1, the output still shown); ``error`` is an error found in a result
    (``--strict``): reported after the output, and in batch mode in place of it.
    """

    #: The prefix of the arrays a ``.npy`` file may hold (when there is exactly one of them).
    primary = ""
    failed: str | None = None
    error: str | None = None

    def text(self, style: Style) -> str:
        raise NotImplementedError

    def data(self) -> dict[str, Any]:
        raise NotImplementedError

    def json_lines(self) -> list[dict[str, Any]]:
        """What ``--json`` writes, one line each: :meth:`data`, after any lines that lead to it
        (the iterations of ``minimize --trace``)."""
        return [self.data()]

    def arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def numbers(self) -> int:
        """How many numbers the JSON holds (for ``--max-output``)."""
        return sum(int(np.size(a)) for a in self.arrays().values())


def _value_and_blocks(several: bool, value: Any, blocks: Any, prefix: str) -> dict[str, np.ndarray]:
    """``value`` and ``{prefix}/x`` for one output; ``value/0``, ``{prefix}/0/x``, ... for several."""
    values, rows = (value, blocks) if several else ([value], [blocks])
    out: dict[str, np.ndarray] = {}
    for k, (v, row) in enumerate(zip(values, rows)):
        out[f"value/{k}" if several else "value"] = as_float_array(v)
        head = f"{prefix}/{k}/" if several else f"{prefix}/"
        out.update({head + n: as_float_array(a) for n, a in row.items()})
    return out


class EvalOutput(Output):
    """``gradcli eval``: values and gradients of every output; with ``derivs`` (``--order``) the
    pure partial derivatives of each order too."""

    primary = "grad"

    def __init__(self, value: Sequence[Any], grad: Sequence[Mapping[str, Any]], derivs: Any = None) -> None:
        self.several = len(value) > 1
        self.value: Any = list(value) if self.several else value[0]
        self.grad: Any = list(grad) if self.several else grad[0]
        self.derivs = derivs

    def text(self, style: Style) -> str:
        text = eval_text(self.value, self.grad, style)
        if self.derivs is not None:
            text += "\n" + derivatives_text(self.derivs, style)
        return text

    def data(self) -> dict[str, Any]:
        data = eval_json(self.value, self.grad)
        if self.derivs is not None:
            data["derivatives"] = {n: [to_jsonable(d) for d in ds] for n, ds in self.derivs.items()}
        return data

    def arrays(self) -> dict[str, np.ndarray]:
        out = _value_and_blocks(self.several, self.value, self.grad, "grad")
        for n, ds in (self.derivs or {}).items():
            out[f"derivatives/{n}"] = np.stack([as_float_array(d) for d in ds])
        return out


class EvalRows:
    """The answers of many ``gradcli eval --batch`` lines at once: ``value[k]`` (output k) and
    ``grad[k][x]`` with a leading axis over the lines. :meth:`lines` writes each line's JSON,
    the same text :class:`EvalOutput` gives for that line alone, or None for a line that fails
    ``--strict`` (:attr:`failure` says why)."""

    failure = "--strict: a value or gradient is NaN or infinite"

    def __init__(self, value: Sequence[Any], grad: Sequence[Mapping[str, Any]], strict: bool = False) -> None:
        self.value, self.grad, self.strict = list(value), list(grad), strict
        self.count = int(np.shape(self.value[0])[0])

    def numbers(self) -> int:
        """How many numbers one line's JSON holds (every line has as many)."""
        return sum(int(np.size(a)) // self.count for a in self._arrays())

    def _arrays(self) -> list[Any]:
        return [a for v, g in zip(self.value, self.grad) for a in (v, *g.values())]

    def lines(self) -> list[str | None]:
        arrays = [np.asarray(a, dtype=np.float64) for a in self._arrays()]
        finite = np.ones(self.count, dtype=bool)
        for a in arrays:
            finite &= np.isfinite(a.reshape(self.count, -1)).all(axis=1)
        if all(a.ndim == 1 for a in arrays) and finite.all():
            texts: list[str | None] = list(self._scalar_lines(arrays))
        else:
            texts = [self._line(r) for r in range(self.count)]
        if self.strict and not finite.all():
            texts = [t if ok else None for t, ok in zip(texts, finite.tolist())]
        return texts

    def _scalar_lines(self, arrays: list[np.ndarray]) -> list[str]:
        """Lines of finite scalars by one template: what :func:`dumps` writes, a number at a time
        (``float.__repr__``, as the json module does), without building a dict per line."""
        grads = ["{" + ", ".join(f"{dumps(n)}: %s" for n in g) + "}" for g in self.grad]
        columns = [a.tolist() for a in arrays]  # per output: its value, then its gradients
        if len(self.value) == 1:
            template = '{"value": %s, "grad": ' + grads[0] + "}"
        else:
            template = (
                '{"value": [' + ", ".join("%s" for _ in self.value) + '], "grad": [' + ", ".join(grads) + "]}"
            )
            starts = np.cumsum([0] + [1 + len(g) for g in self.grad[:-1]]).tolist()
            values = [columns[s] for s in starts]
            columns = values + [
                c for k, s in enumerate(starts) for c in columns[s + 1 : s + 1 + len(self.grad[k])]
            ]
        texts = [map(float.__repr__, column) for column in columns]
        return [template % row for row in zip(*texts)]

    def _line(self, r: int) -> str:
        several = len(self.value) > 1
        value = [v[r] for v in self.value]
        grad = [{n: g[r] for n, g in row.items()} for row in self.grad]
        return dumps(eval_json(value if several else value[0], grad if several else grad[0]))


class HessianOutput(Output):
    """``gradcli hessian``: value, gradient and Hessian blocks ``hessian[x][y]``."""

    primary = "hessian"

    def __init__(self, value: Any, grad: Mapping[str, Any], hessian: Mapping[str, Mapping[str, Any]]) -> None:
        self.value, self.grad, self.hessian = value, grad, hessian

    def text(self, style: Style) -> str:
        return hessian_text(self.value, self.grad, self.hessian, style)

    def data(self) -> dict[str, Any]:
        data = eval_json(self.value, self.grad)
        data["hessian"] = {a: {b: to_jsonable(h) for b, h in row.items()} for a, row in self.hessian.items()}
        return data

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"value": as_float_array(self.value)}
        out.update({f"grad/{n}": as_float_array(g) for n, g in self.grad.items()})
        out.update(
            {f"hessian/{a}/{b}": as_float_array(h) for a, row in self.hessian.items() for b, h in row.items()}
        )
        return out


class JacobianOutput(Output):
    """``gradcli jacobian``: values and Jacobian blocks of one output (a mapping) or several
    (a list of mappings)."""

    primary = "jacobian"

    def __init__(self, value: Any, jacobian: Any) -> None:
        self.value: Any = value
        self.jacobian: Any = jacobian
        self.several = _several(jacobian)

    def text(self, style: Style) -> str:
        return jacobian_text(self.value, self.jacobian, style)

    def data(self) -> dict[str, Any]:
        if self.several:
            return {
                "value": [to_jsonable(v) for v in self.value],
                "jacobian": [{n: to_jsonable(b) for n, b in block.items()} for block in self.jacobian],
            }
        return {
            "value": to_jsonable(self.value),
            "jacobian": {n: to_jsonable(b) for n, b in self.jacobian.items()},
        }

    def arrays(self) -> dict[str, np.ndarray]:
        return _value_and_blocks(self.several, self.value, self.jacobian, "jacobian")


class CheckOutput(Output):
    """``gradcli check``: every analytic derivative beside its central difference; failed when
    one of them does not agree."""

    def __init__(self, report: Any) -> None:
        self.report = report
        self.failed = None if report.ok else check_verdict(report)

    def text(self, style: Style) -> str:
        return check_text(self.report, style)

    def data(self) -> dict[str, Any]:
        return check_json(self.report)

    def numbers(self) -> int:
        return 4 * len(self.report.rows)


class TextOutput(Output):
    """An answer that is text for people and JSON data computed on demand (``explain``)."""

    def __init__(self, text: Callable[[Style], str], data: Callable[[], dict[str, Any]]) -> None:
        self._text, self._data = text, data

    def text(self, style: Style) -> str:
        return self._text(style)

    def data(self) -> dict[str, Any]:
        return self._data()

    def numbers(self) -> int:
        return 0
