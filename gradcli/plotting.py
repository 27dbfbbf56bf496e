"""See how a function bends: sample it and its derivatives over a range, then draw or write them.

    >>> from gradcli.plotting import sample, to_csv
    >>> s = sample("x**2", {}, {"x": (-1.0, 1.0)}, points=3)
    >>> print(to_csv(s), end="")
    x,f,df/dx
    -1.0,1.0,-2.0
    0.0,0.0,0.0
    1.0,1.0,2.0

One input gives a curve: f and its derivatives up to ``order``. Two inputs give a surface: f on a
grid and its gradient. Other inputs are held at their values. Drawing is matplotlib's (files) or
uniplot's (the terminal), each imported only when it draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any, NamedTuple

import numpy as np

from . import batching, calculus
from .calculus import CalculusError, checked_number, checked_whole
from .engine import Variable, using_grad
from .engine import grad as engine_grad
from .program import sizing

__all__ = [
    "FORMATS",
    "Samples",
    "draw",
    "draw_text",
    "evaluate_points",
    "label",
    "nonfinite",
    "path_ranges",
    "sample",
    "to_csv",
]

FORMATS = ("png", "svg", "pdf")  # what matplotlib writes here; csv and text are written without it
DEFAULT_POINTS = {1: 400, 2: 100}  # per axis: a curve, a surface
MAX_SAMPLES = 1_000_000  # points in all: the csv alone is some 50 MB


class Samples(NamedTuple):
    """f sampled over one input (a curve) or two (a surface, axis 0 along the second input).

    ``derivatives[name][k-1]`` is the k-th pure partial derivative with respect to ``name``,
    of the shape of ``value``.
    """

    names: tuple[str, ...]
    axes: list[np.ndarray]
    value: np.ndarray
    derivatives: dict[str, list[np.ndarray]]


def sample(
    f: Any,
    values: Mapping[str, Any],
    ranges: Mapping[str, tuple[float, float]],
    points: int | None = None,
    order: int = 1,
) -> Samples:
    """f and its derivatives up to ``order`` at ``points`` evenly spaced points of each range
    (one or two inputs; default 400 for one, 100 per axis for two), the other inputs at
    ``values``. Where f is not defined the samples are NaN (no warnings: :func:`nonfinite`
    says where)."""
    if isinstance(f, str):
        from .language import parse

        f = parse(f)
    if not isinstance(values, Mapping):
        raise TypeError(f"values map each other input's name to its value, e.g. {{'y': 1.0}}; got {values!r}")
    if not isinstance(ranges, Mapping):
        raise TypeError(f"ranges map an input's name to (low, high), e.g. {{'x': (-1, 1)}}; got {ranges!r}")
    names = tuple(ranges)
    if len(names) not in (1, 2):
        raise CalculusError(f"a plot is over one or two inputs, not {len(names)}")
    order = checked_whole("order", order, 0)
    if len(names) == 2 and order != 1:
        raise CalculusError("derivatives of higher order are drawn for one input; two draw the gradient")
    points = DEFAULT_POINTS[len(names)] if points is None else checked_whole("points", points, 2, MAX_SAMPLES)
    if points ** len(names) > MAX_SAMPLES:
        raise CalculusError(
            f"{points} points per axis over {len(names)} inputs is {points ** len(names):,} samples, "
            f"more than {MAX_SAMPLES:,}"
        )
    ranges = {n: _range(n, r) for n, r in ranges.items()}
    axes = [_samples(lo, hi, points) for lo, hi in ranges.values()]
    grids = np.meshgrid(*axes) if len(axes) == 2 else axes
    fixed = {n: v for n, v in values.items() if n not in names}
    with np.errstate(all="ignore"):
        # One evaluation at a single point reports bad inputs in calculus's words, and the shape.
        first = calculus.evaluate(f, {**fixed, **{n: g.flat[0] for n, g in zip(names, grids)}}, wrt=())
        if len(first.value) != 1 or np.size(first.value[0]) != 1:
            raise CalculusError("a plot needs one scalar output: wrap a vector in sum(...)")
        value, derivs = evaluate_points(f, fixed, {n: g.reshape(-1) for n, g in zip(names, grids)}, order)
    shape = grids[0].shape
    return Samples(
        names,
        axes,
        value.reshape(shape),
        {n: [d.reshape(shape) for d in ds] for n, ds in derivs.items()},
    )


def _range(name: str, pair: Any) -> tuple[float, float]:
    if not isinstance(pair, (tuple, list, np.ndarray)) or len(pair) != 2:
        raise TypeError(f"the range of {name!r} is a pair (low, high), got {pair!r}")
    lo, hi = (checked_number(f"each end of the range of {name!r}", end, None) for end in pair)
    if not lo < hi:
        raise CalculusError(f"the range of {name!r} must go from a finite low end to a higher one")
    return lo, hi


def _samples(lo: float, hi: float, points: int) -> np.ndarray:
    """``points`` evenly spaced from ``lo`` to ``hi``; where ``hi - lo`` is past the largest float
    (-1e308:1e308), the halves' points doubled (exact: both ends are kept), not NaN and inf."""
    with np.errstate(over="ignore"):  # (gradcli's own arithmetic: no warning of the user's)
        wide = not np.isfinite(hi - lo)
    if not wide:
        return np.linspace(lo, hi, points)
    return np.linspace(lo / 2, hi / 2, points) * 2


def evaluate_points(
    f: Any, fixed: Mapping[str, Any], points: Mapping[str, np.ndarray], order: int
) -> tuple[np.ndarray, dict[str, list[np.ndarray]]]:
    """f and its pure derivatives up to ``order`` with respect to each input of ``points`` (1-D
    arrays of one length), at each point. A parsed expression runs all the points at once on a
    batch axis (:mod:`gradcli.batching`: row i is point i), in chunks of at most
    :data:`gradcli.calculus.CHUNK_ELEMENTS` numbers; a Python callable runs point by point."""
    names = tuple(points)
    n = len(points[names[0]])
    if not hasattr(f, "ops"):
        rows = [
            _derivatives_at(f, {**fixed, **{k: p[i] for k, p in points.items()}}, names, order)
            for i in range(n)
        ]
        value = np.array([float(np.reshape(v, ())) for v, _ in rows])
        derivs = {
            k: [np.array([float(np.reshape(d[k][j], ())) for _, d in rows]) for j in range(order)]
            for k in names
        }
        return value, derivs
    one = {**fixed, **{k: p[0] for k, p in points.items()}}
    with sizing(f):
        per_point = batching.elements_per_run(
            f, {k: Variable(np.asarray(v, dtype=np.float64)) for k, v in one.items()}
        )
    step = max(1, calculus.CHUNK_ELEMENTS // max(per_point, 1))
    parts = [
        _derivatives_at(
            f, {**fixed, **{k: p[i : i + step] for k, p in points.items()}}, names, order, batched=True
        )
        for i in range(0, n, step)
    ]
    value = np.concatenate([np.reshape(v, -1) for v, _ in parts])
    if value.size != n:
        raise CalculusError("a plot needs one scalar output at each point: wrap a vector in sum(...)")
    derivs = {k: [np.concatenate([d[k][j] for _, d in parts]) for j in range(order)] for k in names}
    return value, derivs


def _derivatives_at(
    f: Any, values: Mapping[str, Any], names: tuple[str, ...], order: int, batched: bool = False
) -> tuple[np.ndarray, dict[str, list[np.ndarray]]]:
    """f and d^k f / d name^k, k = 1..order, by repeated backward passes from the sum of the
    previous derivative: exact at one point, and at a batch of points (``batched``: the inputs in
    ``names`` carry a batch axis), whose rows never mix."""
    inner = getattr(f, "differentiates_inside", True)
    leaves = {
        n: Variable(np.asarray(v, dtype=np.float64), name=n, requires_grad=inner or n in names)
        for n, v in values.items()
    }
    with using_grad(True):
        y = batching.run(f, leaves, names)[0] if batched else calculus.as_model(f)[1](leaves)[0]
        derivs: dict[str, list[np.ndarray]] = {}
        for n in names:
            g, orders = y, []
            for k in range(order):
                g = engine_grad(g, [leaves[n]], create_graph=k + 1 < order)[0]
                orders.append(np.array(g.data, dtype=np.float64))
            derivs[n] = orders
    return y.data, derivs


def label(name: str, k: int) -> str:
    """The column and legend name of the k-th derivative: f, df/dx, d2f/dx2, ..."""
    if k == 0:
        return "f"
    return f"df/d{name}" if k == 1 else f"d{k}f/d{name}{k}"


def nonfinite(s: Samples) -> np.ndarray:
    """Where f or its first derivatives are not finite (NaN or infinite)."""
    bad = ~np.isfinite(s.value)
    for ds in s.derivatives.values():
        bad |= ~np.isfinite(ds[0])
    return bad


def _columns(s: Samples) -> list[tuple[str, np.ndarray]]:
    grids = np.meshgrid(*s.axes) if len(s.axes) == 2 else s.axes
    cols = [(n, g) for n, g in zip(s.names, grids)] + [("f", s.value)]
    for n, ds in s.derivatives.items():
        cols += [(label(n, k), d) for k, d in enumerate(ds, start=1)]
    return cols


def to_csv(s: Samples) -> str:
    """One row per sample: the inputs, f, then the derivatives; numbers as Python writes them
    (shortest text that reads back exactly; ``nan``, ``inf``)."""
    cols = _columns(s)
    flat = np.column_stack([c.reshape(-1) for _, c in cols])
    lines = [",".join(name for name, _ in cols)]
    lines += [",".join(map(repr, row)) for row in flat.tolist()]
    return "\n".join(lines) + "\n"


def path_ranges(points: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """A range for each input that holds every point of a path, with a margin around it."""
    out = {}
    for n in names:
        xs = np.array([float(np.reshape(p[n], ())) for p in points])
        xs = xs[np.isfinite(xs)]
        lo, hi = (float(xs.min()), float(xs.max())) if xs.size else (-1.0, 1.0)
        pad = 0.25 * (hi - lo) if hi > lo else max(1.0, abs(lo))
        out[n] = (lo - pad, hi + pad)
    return out


def _intervals(x: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    """The runs of ``mask`` along the sample positions ``x``, each widened by half a step."""
    half = (x[1] - x[0]) / 2
    runs, start = [], None
    for i, bad in enumerate([*mask.tolist(), False]):
        if bad and start is None:
            start = i
        elif not bad and start is not None:
            runs.append((float(x[start] - half), float(x[i - 1] + half)))
            start = None
    return runs


# The widest axis each drawing library can scale: uniplot squares an axis's width to place its
# labels (an OverflowError past about 1.3e154), matplotlib fails near the largest float.
WIDEST_AXIS = {"the terminal plot": 1e150, "a plot in a file": 1e307}


def _refuse_too_wide(s: Samples, drawing: str) -> None:
    """A CalculusError, in words, where an axis of the plot is wider than ``drawing`` can scale
    (the libraries' own words were "(34, 'Numerical result out of range')" and "Axis limits
    cannot be NaN or Inf")."""
    widest = WIDEST_AXIS[drawing]
    spans = [(s.names[0], float(s.axes[0][-1]) - float(s.axes[0][0]))]
    with np.errstate(over="ignore", invalid="ignore"):  # (gradcli's own arithmetic: no warning)
        if len(s.names) == 2:
            spans.append((s.names[1], float(s.axes[1][-1]) - float(s.axes[1][0])))
        else:
            limits = _limits([s.value, *s.derivatives[s.names[0]]])
            if limits is not None:
                what = "f and its derivatives" if s.derivatives[s.names[0]] else "f"
                spans.append((what, float(limits[1] - limits[0])))
    for what, span in spans:
        if not span <= widest:
            where = (
                f"{what} spans {span:.3g}"
                if np.isfinite(span)
                else f"{what} spans more than the largest float"
            )
            hint = "write the numbers with --format csv"
            if drawing == "the terminal plot":
                hint += ", or draw into a file (-o plot.png)"
            raise CalculusError(
                f"{drawing} cannot scale an axis that wide ({where}, at most {widest:.0e}): {hint}"
            )


def _limits(arrays: Sequence[np.ndarray]) -> tuple[float, float] | None:
    """Vertical limits that show the body of the curves, not a spike to 1e16 (tan near pi/2)."""
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays] or [np.empty(0)])
    if not finite.size:
        return None
    lo, hi = np.percentile(finite, [10, 90])
    span = hi - lo
    lo, hi = max(float(finite.min()), lo - span), min(float(finite.max()), hi + span)
    pad = 0.05 * (hi - lo) if hi > lo else max(1.0, abs(lo))
    return lo - pad, hi + pad


def _levels(value: np.ndarray, n: int) -> np.ndarray:
    """Contour levels where the values are (quantiles), so a deep narrow valley shows."""
    finite = value[np.isfinite(value)]
    return np.unique(np.quantile(finite, np.linspace(0.02, 0.98, n))) if finite.size else np.array([])


def _nonfinite_note(s: Samples) -> str:
    bad = nonfinite(s)
    if not bad.any():
        return ""
    if len(s.names) == 1:
        spans = ", ".join(f"[{lo:.4g}, {hi:.4g}]" for lo, hi in _intervals(s.axes[0], bad))
        return f"f or its derivative is not finite where {s.names[0]} is in {spans}"
    return f"f or its gradient is not finite at {int(bad.sum())} of {bad.size} points"


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------


def draw(
    s: Samples,
    target: str | IO[bytes],
    fmt: str,
    title: str = "",
    path: Sequence[tuple[Mapping[str, Any], float]] = (),
) -> None:
    """Draw with matplotlib into ``target`` (a file name or a binary file) as ``fmt``.

    A curve: f and each derivative, the ranges where they are not finite shaded. A surface:
    contour lines of f and arrows of unit length along the gradient. ``path`` is a list of
    ``({name: value}, f)``, the iterates of a minimisation, drawn on top.
    """
    from .optional import need

    _refuse_too_wide(s, "a plot in a file")
    figure = need("matplotlib.figure", "drawing a plot into a file")
    # (Floating-point events while matplotlib lays out and renders NaN and infinite samples are
    # its own, not the user's: f's were said as it was sampled. They were "warning: numpy:
    # invalid value" for a surface that is nowhere finite.)
    with np.errstate(all="ignore"):
        fig = figure.Figure(figsize=(8, 5), dpi=100)
        ax = fig.add_subplot()
        if len(s.names) == 1:
            _draw_curve(ax, s, path)
        else:
            _draw_surface(ax, s, path)
        ax.set_title(title[:80] + ("..." if len(title) > 80 else ""))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        fig.savefig(target, format=fmt)


def _draw_curve(ax: Any, s: Samples, path: Sequence[tuple[Mapping[str, Any], float]]) -> None:
    name, x = s.names[0], s.axes[0]
    curves = [s.value, *s.derivatives[name]]
    for k, c in enumerate(curves):
        ax.plot(x, c, label=label(name, k))
    for i, (lo, hi) in enumerate(_intervals(x, nonfinite(s))):
        ax.axvspan(lo, hi, color="tab:red", alpha=0.15, label="not finite" if i == 0 else None)
    limits = _limits(curves)
    if limits is not None:
        ax.set_ylim(*limits)
    if path:
        ax.plot(*_path_xy(path, [name]), "o-", color="black", markersize=3, linewidth=1, label="iterates")
    ax.set_xlabel(name)
    ax.axhline(0, color="gray", linewidth=0.5)
    ax.grid(alpha=0.3)


def _draw_surface(ax: Any, s: Samples, path: Sequence[tuple[Mapping[str, Any], float]]) -> None:
    (a, b), (xa, xb) = s.names, s.axes
    grid_a, grid_b = np.meshgrid(xa, xb)
    levels = _levels(s.value, 14)
    if levels.size >= 2:
        lines = ax.contour(grid_a, grid_b, np.ma.masked_invalid(s.value), levels=levels, cmap="viridis")
        ax.clabel(lines, fontsize=7, fmt="%.3g")
    every = max(1, len(xa) // 20)
    ga, gb = s.derivatives[a][0][::every, ::every], s.derivatives[b][0][::every, ::every]
    length = np.hypot(ga, gb)
    with np.errstate(all="ignore"):
        ua, ub = np.where(length > 0, ga / length, 0.0), np.where(length > 0, gb / length, 0.0)
    ax.quiver(
        grid_a[::every, ::every], grid_b[::every, ::every], ua, ub, angles="xy", pivot="mid", color="gray"
    )
    bad = nonfinite(s)
    if bad.any():
        ax.plot(grid_a[bad], grid_b[bad], "x", color="tab:red", markersize=2, label="not finite")
    if path:
        pa, pb = _path_xy(path, [a, b])
        ax.plot(pa, pb, "o-", color="tab:red", markersize=3, linewidth=1, label="iterates")
    ax.set_xlim(xa[0], xa[-1])
    ax.set_ylim(xb[0], xb[-1])
    ax.set_xlabel(a)
    ax.set_ylabel(b)


def _path_xy(path: Sequence[tuple[Mapping[str, Any], float]], names: Sequence[str]) -> list[list[float]]:
    """The coordinates of a path's points: one list per name, then the values if one name."""
    coords = [[float(np.reshape(point[n], ())) for point, _ in path] for n in names]
    return coords + [[float(value) for _, value in path]] if len(names) == 1 else coords


def draw_text(
    s: Samples,
    width: int = 72,
    height: int = 17,
    color: bool = False,
    title: str = "",
    path: Sequence[tuple[Mapping[str, Any], float]] = (),
) -> str:
    """The plot as text for a terminal (uniplot). A surface is drawn as its contour lines: the
    points where f crosses each level between neighbouring samples. Gradient arrows need a file
    (:func:`draw`). Ends with a line saying where f is not finite, if it is anywhere."""
    from .optional import need

    width, height = checked_whole("width", width, 1), checked_whole("height", height, 1)
    _refuse_too_wide(s, "the terminal plot")
    uniplot = need("uniplot", "drawing a plot in the terminal")
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    labels: list[str] = []
    if len(s.names) == 1:
        name = s.names[0]
        for k, c in enumerate([s.value, *s.derivatives[name]]):
            finite = np.isfinite(c)
            if finite.any():  # (a curve nowhere finite has nothing to draw: the note says where)
                xs.append(s.axes[0])
                ys.append(np.where(finite, c, np.nan))
                labels.append(label(name, k))
        limits = _limits(ys)
        if limits is not None:
            # uniplot draws a segment pixel by pixel, off the screen too: one to exp(200), far
            # above the view, was billions of pixels (out of memory). Clipped 100 heights away,
            # what shows of it is the same.
            far = 100 * (limits[1] - limits[0])
            ys = [np.clip(y, limits[0] - far, limits[1] + far) for y in ys]
        if path:
            px, pf = _path_xy(path, [name])
            xs.append(np.array(px))
            ys.append(np.array(pf))
            labels.append("iterates")
    else:
        for level in _levels(s.value, 7):
            cx, cy = _crossings(s, level)
            if cx.size:
                xs.append(cx)
                ys.append(cy)
                labels.append(f"f = {level:.3g}")
        limits = (float(s.axes[1][0]), float(s.axes[1][-1]))
        if path:
            pa, pb = _path_xy(path, s.names)
            xs.append(np.array(pa))
            ys.append(np.array(pb))
            labels.append("iterates")
    lines = [len(s.names) == 1 or label == "iterates" for label in labels]
    options: dict[str, Any] = {"x_min": float(s.axes[0][0]), "x_max": float(s.axes[0][-1])}
    if limits is not None:
        options.update(y_min=limits[0], y_max=limits[1])
    if title:  # (uniplot writes a title of None as the word "None")
        options["title"] = title[: width + 2]
    if any(np.isfinite(y).any() for y in ys):
        with np.errstate(all="ignore"):  # (uniplot's arithmetic, as matplotlib's in draw: not the user's)
            text = uniplot.plot_to_string(
                ys=ys,
                xs=xs,
                lines=lines,
                legend_labels=labels,
                width=width,
                height=height,
                color=color,
                **options,
            )
    else:  # (uniplot fails on a plot without a finite point: NumPy's words, once)
        why = (
            "f and its derivatives are nowhere finite on the range"
            if len(s.names) == 1
            else "f has no contour line on the range (it is constant, or nowhere finite)"
        )
        text = "\n".join(part for part in (title[: width + 2], f"nothing to draw: {why}") if part)
    axes = f"horizontal: {s.names[0]}" + (f", vertical: {s.names[1]}" if len(s.names) == 2 else "")
    note = _nonfinite_note(s)
    return "\n".join(part for part in (text.rstrip("\n"), axes, note) if part)


def _crossings(s: Samples, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Where f crosses ``level`` between horizontally or vertically neighbouring samples,
    placed by linear interpolation."""
    (xa, xb), v = s.axes, s.value - level
    out_a, out_b = [], []
    for axis in (1, 0):
        lo = v[:, :-1] if axis == 1 else v[:-1, :]
        hi = v[:, 1:] if axis == 1 else v[1:, :]
        with np.errstate(all="ignore"):
            hit = (lo * hi <= 0) & (lo != hi) & np.isfinite(lo) & np.isfinite(hi)
            t = lo / (lo - hi)
        rows, cols = np.nonzero(hit)
        frac = t[rows, cols]
        if axis == 1:
            out_a.append(xa[cols] + frac * (xa[1] - xa[0]))
            out_b.append(xb[rows])
        else:
            out_a.append(xa[cols])
            out_b.append(xb[rows] + frac * (xb[1] - xb[0]))
    return np.concatenate(out_a), np.concatenate(out_b)
