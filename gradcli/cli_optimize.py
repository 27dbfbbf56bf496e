"""``gradcli minimize``, ``gradcli root`` and ``gradcli plot``: use the derivatives. Loaded only
when one of them is invoked; SciPy, matplotlib and uniplot only when what was asked needs them.

The work is done by :mod:`gradcli.optimize` and :mod:`gradcli.plotting`; here options are parsed
and results written. ``minimize`` and ``root`` are expression commands like ``eval``
(:func:`gradcli.command.expression_command`); ``plot``, which reads ranges where other commands
read values, builds on the same pieces.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from .command import (
    ExpressionCommand,
    Request,
    WholeNumber,
    collect_values,
    common_options,
    current_settings,
    expression_command,
    fail,
    file_name,
    file_or_dash,
    fp_warnings,
    load_program,
    missing_value,
    no_variable,
    read_expression,
    translate_errors,
    variable_texts,
)
from .inputs import finite_range
from .optimize import MINIMIZE_METHODS, ROOT_METHODS, Solution
from .plotting import FORMATS, MAX_SAMPLES
from .render import Output, Style

_TRACE_HELP = "Also every iteration: its point, value and norm (a table; one JSON line each with --json)."
_MAX_ITER_HELP = "Stop after this many iterations [default: 1000 for gd and newton, SciPy's for the others]."
_TOL_HELP = (
    "Tolerance [default: 1e-10 on the largest entry of the gradient (residuals) for gd and newton; "
    "SciPy's for the others, to which it is passed]."
)


def _interval(text: str, what: str, open_ends: bool) -> tuple[float | None, float | None]:
    """``LO:HI`` as two numbers; with ``open_ends`` an empty end (or inf) is no bound."""
    lo_text, colon, hi_text = text.partition(":")
    if not colon:
        fail(f"{what}: expected LOW:HIGH, e.g. -3:3, not {text!r}", 2)
    ends: list[float | None] = []
    for part, side in ((lo_text, "low"), (hi_text, "high")):
        part = part.strip()
        if not part and open_ends:
            ends.append(None)
            continue
        try:
            number = float(part)
        except ValueError:
            fail(f"{what}: the {side} end {part!r} is not a number (LOW:HIGH, e.g. -3:3)", 2)
        if math.isnan(number) or (not open_ends and math.isinf(number)):
            fail(f"{what}: the {side} end must be a finite number, not {part}", 2)
        ends.append(None if math.isinf(number) else number)
    lo, hi = ends
    if lo is not None and hi is not None and not lo < hi:
        fail(f"{what}: the low end {lo:g} must be below the high end {hi:g}", 2)
    return lo, hi


def _bounds(texts: Sequence[str], names: tuple[str, ...]) -> dict[str, tuple[float | None, float | None]]:
    """``--bounds x=0:1`` (repeatable, or comma-separated: ``x=0:1,y=:2``)."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for text in texts:
        if not text.replace(",", "").strip():  # (an unset shell variable: no bound was surely not meant)
            fail(f"--bounds {text!r}: expected NAME=LOW:HIGH, e.g. x=0:1 (an end may be empty)", 2)
        for item in filter(None, (t.strip() for t in text.split(","))):
            name, eq, interval = item.partition("=")
            name = name.strip()
            if not eq:
                fail(f"--bounds {item}: expected NAME=LOW:HIGH, e.g. x=0:1 (an end may be empty)", 2)
            if name not in names:
                fail(f"--bounds {item}: {no_variable(name, names)}", 2)
            if name in out:
                fail(f"--bounds: {name!r} is bounded twice", 2)
            out[name] = _interval(interval, f"--bounds {item}", open_ends=True)
    return out


def _refuse_a_start_not_finite(req: Request) -> None:
    """The unknowns start from finite numbers: from nan or inf, SciPy iterates on nan (and one
    method said "precision loss")."""
    import numpy as np

    for name in req.variables:
        value = np.asarray(req.values[name])
        if not np.isfinite(value).all():
            bad = value[~np.isfinite(value)].flat[0]
            command = click.get_current_context().info_name
            fail(f"--{name}: the start holds {bad}; {command} starts from finite numbers", 2)


def _guard_hessian(method: str, req: Request) -> None:
    """Refuse a method that solves with the full Hessian when it would not fit, before computing
    it (the cap of the hessian command: --max-output numbers)."""
    import numpy as np

    n = sum(int(np.size(req.values[name])) for name in req.variables)
    limit = req.settings.max_output
    if n * n > limit:
        fail(
            f"--method {method} needs the Hessian of {n:,} unknowns, {n * n:,} numbers, more than "
            f"--max-output {limit:,}: choose bfgs, l-bfgs-b, cg or newton-cg, or raise the limit",
            2,
        )


# --- rendering a solution ------------------------------------------------------------------------


def _aligned(rows: Sequence[tuple[str, Any]]) -> str:
    from . import render

    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(
        f"{label:<{width}}{a if isinstance(a, str) else render.format_array(a, width)}" for label, a in rows
    )


def _solution_text(sol: Solution) -> str:
    from . import render

    rows: list[tuple[str, Any]] = [(f"point {n}", a) for n, a in sol.point.items()]
    rows += render.text_rows(sol.value, sol.grad)
    rows += [
        ("iterations", str(sol.iterations)),
        ("converged", "yes" if sol.converged else "no"),
        ("method", sol.method),
    ]
    return _aligned(rows)


def _solution_json(sol: Solution) -> dict[str, Any]:
    from . import render

    data: dict[str, Any] = {"point": {n: render.to_jsonable(a) for n, a in sol.point.items()}}
    data.update(render.eval_json(sol.value, sol.grad))
    data.update(iterations=sol.iterations, converged=sol.converged, method=sol.method)
    return data


def _trace_text(sol: Solution, norm: str) -> str:
    import numpy as np

    first = sol.trace[0].point if sol.trace else {}
    # One column per element of the unknowns, while that stays readable.
    labels = [
        n + (f"[{','.join(map(str, i))}]" if a.ndim else "")
        for n, a in first.items()
        for i in np.ndindex(a.shape)
    ]
    show_point = len(labels) <= 8
    head = ["iter", *(labels if show_point else []), "value", norm]
    table = [head]
    for step in sol.trace:
        cells = [str(step.iteration)]
        if show_point:
            cells += [f"{v:.8g}" for a in step.point.values() for v in a.reshape(-1).tolist()]
        values = step.value if isinstance(step.value, list) else [step.value]
        size = sum(np.size(v) for v in values)
        cells += [f"{float(np.reshape(values[0], ())):.8g}" if size == 1 else f"[{size} values]"]
        cells += [f"{step.norm:.3g}"]
        table.append(cells)
    widths = [max(len(row[j]) for row in table) for j in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)).rstrip() for row in table)


def _trace_json(sol: Solution, norm: str) -> list[dict[str, Any]]:
    # render.dumps writes the arrays inside (and lists of them) as nested lists.
    return [{"iteration": s.iteration, "point": s.point, "value": s.value, norm: s.norm} for s in sol.trace]


class SolutionOutput(Output):
    """A solution in every shape: the trace if asked, then the point, value and derivatives;
    an error (exit status 1, the result still shown) when it did not converge."""

    def __init__(self, sol: Solution, trace: bool, norm: str) -> None:
        import numpy as np

        self.sol, self.trace, self.norm = sol, trace, norm
        arrays = [*sol.point.values(), sol.value, sol.grad, *(s.point for s in sol.trace if trace)]
        self.count = sum(int(np.size(a)) for a in _leaves(arrays))
        for text in sol.warnings:
            click.echo(f"warning: {sol.method}: {text}", err=True)
        if not sol.converged:
            counted = f"{sol.iterations} iteration{'s' if sol.iterations != 1 else ''}"
            self.error = f"did not converge ({sol.method}, {counted}): {sol.message}"

    def text(self, style: Style) -> str:
        solution = _solution_text(self.sol)
        if not self.trace:
            return solution
        return (
            _trace_text(self.sol, "|grad|" if self.norm == "grad_norm" else "|residuals|") + "\n" + solution
        )

    def data(self) -> dict[str, Any]:
        return _solution_json(self.sol)

    def json_lines(self) -> list[dict[str, Any]]:
        return [*(_trace_json(self.sol, self.norm) if self.trace else []), self.data()]

    def numbers(self) -> int:
        return self.count


def _leaves(items: list[Any]) -> list[Any]:
    """The arrays in ``items`` and in the lists and dicts among them (a stack, no recursion)."""
    found, stack = [], list(items)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif item is not None:
            found.append(item)
    return found


# --- commands ------------------------------------------------------------------------------------


def _method_option(table: Mapping[str, Any], default: str, help: str) -> Any:
    return click.option(
        "--method",
        type=click.Choice(list(table), case_sensitive=False),
        default=default,
        show_default=True,
        help=help,
    )


@expression_command("minimize", batch=False, output=False)
@_method_option(
    MINIMIZE_METHODS,
    "bfgs",
    "SciPy's gradient methods, given gradcli's gradient (and Hessian, or Hessian-vector products, "
    "where they use them); gd: x - lr * grad; newton: x - f'/f'' (the Hessian solve for several).",
)
@click.option(
    "--lr",
    type=finite_range(min=0, min_open=True),
    default=None,
    help="Learning rate of gd [default: 0.001].",
)
@click.option("--max-iter", type=WholeNumber(0), default=None, help=_MAX_ITER_HELP)
@click.option("--tol", type=finite_range(min=0, min_open=True), default=None, help=_TOL_HELP)
@click.option(
    "--bounds",
    "bounds_texts",
    multiple=True,
    metavar="NAME=LOW:HIGH",
    help="Keep a variable (every element) in a range: x=0:1, x=0: (repeatable). For l-bfgs-b, tnc, "
    "slsqp and trust-constr; the start is clipped into it.",
)
@click.option("--trace", is_flag=True, help=_TRACE_HELP)
@click.option(
    "--plot",
    "plot_file",
    metavar="FILE",
    callback=file_name,
    help="Also draw the iterates on the contours of f (one variable: on its curve) into FILE "
    "(.png .svg .pdf).",
)
def minimize_command(
    req: Request,
    method: str,
    lr: float | None,
    max_iter: int | None,
    tol: float | None,
    bounds_texts: tuple[str, ...],
    trace: bool,
    plot_file: str | None,
) -> Output:
    """Minimise a scalar EXPR over its variables, starting from the values given.

    \b
      gradcli minimize "100*(y - x**2)**2 + (1 - x)**2" --x -1.2 --y 1
      gradcli minimize "x**4 - 2*x**2" --x 2 --method newton --trace
      gradcli minimize "100*(y - x**2)**2 + (1 - x)**2" --x 0 --y 2 --method gd --lr 0.001 --max-iter 1000
      gradcli minimize "(x - 2)**2" --x 0 --bounds x=-1:1 --method l-bfgs-b

    Prints the point, the value and gradient there, the number of iterations, whether it
    converged and the method. Exit status 1 when it did not converge (the result is still
    printed). JSON (--json): {"point": {"x": ..}, "value": .., "grad": {"x": ..}, "iterations":
    N, "converged": true, "method": "bfgs"}, after one line per iteration with --trace.
    """
    from . import optimize

    program, values, chosen = req.program, req.values, req.wrt
    _refuse_a_start_not_finite(req)
    bounds = _bounds(bounds_texts, program.inputs)
    if lr is not None and method != "gd":
        fail(f"--lr is the learning rate of --method gd, not of {method}", 2)
    if plot_file is not None:
        _check_path_plot(plot_file, req.variables, values)
    if MINIMIZE_METHODS[method].hessian == "hess":
        _guard_hessian(method, req)
    sol = optimize.minimize(
        program,
        values,
        wrt=chosen,
        method=method,
        lr=lr,
        max_iter=max_iter,
        tol=tol,
        bounds=bounds,
        trace=trace or plot_file is not None,
    )
    if plot_file is not None:
        _plot_path(program, values, sol, plot_file)
    return SolutionOutput(sol, trace, "grad_norm")


def _check_path_plot(plot_file: str, names: Sequence[str], values: Mapping[str, Any]) -> None:
    """Refuse an impossible --plot before minimising (and find a missing matplotlib then too)."""
    import numpy as np

    from .optional import need

    _image_format(plot_file, "--plot")
    if len(names) not in (1, 2) or any(np.size(values[n]) != 1 for n in names):
        fail(
            f"--plot draws one or two scalar variables; this minimises over {', '.join(names)}"
            + (" (choose with --wrt)" if len(names) > 2 else ""),
            2,
        )
    need("matplotlib.figure", "--plot")


def _plot_path(program: Any, values: Mapping[str, Any], sol: Solution, plot_file: str) -> None:
    from . import plotting

    path = [(s.point, float(s.value)) for s in sol.trace]
    ranges = plotting.path_ranges([p for p, _ in path], list(sol.point))
    samples = plotting.sample(program, values, ranges)
    _write(
        lambda target: plotting.draw(samples, target, _image_format(plot_file, "--plot"), program.text, path),
        plot_file,
        "--plot",
    )


def _image_format(file: str, what: str) -> str:
    suffix = file.rpartition(".")[2].lower() if "." in file else ""
    if suffix not in FORMATS:
        fail(f"{what} {file}: the file name must end in {', '.join('.' + f for f in FORMATS)}", 2)
    return suffix


def _write(write: Callable[[Any], None], file: str, what: str) -> None:
    """Call ``write(target)`` with the file, or binary stdout for ``-``; a file that cannot be
    written is one line."""
    try:
        write(sys.stdout.buffer if file == "-" else file)
    except BrokenPipeError:
        raise  # a closed pipe (| head) ends quietly, as everywhere
    except OSError as exc:
        fail(f"{what} {file}: {exc.strerror or exc}", 2)


@expression_command("root", batch=False, output=False)
@_method_option(
    ROOT_METHODS,
    "hybr",
    "SciPy's root methods (hybr and lm are given gradcli's Jacobian); newton: x - J^-1 f.",
)
@click.option("--max-iter", type=WholeNumber(0), default=None, help=_MAX_ITER_HELP)
@click.option("--tol", type=finite_range(min=0, min_open=True), default=None, help=_TOL_HELP)
@click.option("--trace", is_flag=True, help=_TRACE_HELP)
def root_command(req: Request, method: str, max_iter: int | None, tol: float | None, trace: bool) -> Output:
    """Solve EXPR = 0 (several equations: "EXPR1, EXPR2"), starting from the values given.

    \b
      gradcli root "x**3 - 2*x - 5" --x 2
      gradcli root "x**2 + y**2 - 4, x - y" --x 1 --y 0.5 --json
      gradcli root "x**2 - a" --x 1 --a 2 --wrt x --method newton

    The equations have as many elements in all as the unknowns. hybr and lm (MINPACK) report no
    iterations of their own: they count evaluations of the equations, and --trace lists each.
    Exit status 1 when it did not converge (the result is still printed). --wrt names the
    unknowns (the other variables are parameters held constant). JSON (--json) as minimize's:
    "value" holds the residuals, "grad" the Jacobian.
    """
    import numpy as np

    from . import optimize

    # The result holds the Jacobian at the solution: refuse one too large before solving.
    _refuse_a_start_not_finite(req)
    n = sum(int(np.size(req.values[name])) for name in req.variables)
    req.refuse_more_numbers(n * n)
    sol = optimize.root(
        req.program, req.values, wrt=req.wrt, method=method, max_iter=max_iter, tol=tol, trace=trace
    )
    return SolutionOutput(sol, trace, "residual_norm")


@click.command("plot", cls=ExpressionCommand)
@common_options(wrt=False, json=False, output=False, batch=False, precision=False)
@click.option(
    "--order",
    type=WholeNumber(1, 16),
    default=1,
    show_default=True,
    help="Draw the derivatives up to this order (one input).",
)
@click.option(
    "--points",
    type=WholeNumber(2, MAX_SAMPLES),
    default=None,
    help="Samples along each input [default: 400 for one input, 100 per axis for two].",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    callback=file_or_dash,
    help="Write to FILE: .png, .svg, .pdf, .csv (- for stdout).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*FORMATS, "csv", "text"]),
    default=None,
    help="csv: the sampled values (x, f, df/dx, ...); text: drawn in characters [default: from -o's "
    "suffix, else text].",
)
@translate_errors
def plot_command(
    expr: str | None,
    expr_file: str | None,
    vars_text: str | None,
    plugins: tuple[str, ...],
    order: int,
    points: int | None,
    output: str | None,
    fmt: str | None,
) -> None:
    """Draw EXPR over one input (f and its derivatives) or two (contours and gradient arrows).

    \b
      gradcli plot "x**4 - 2*x**2" --x -2:2 --order 2
      gradcli plot "sin(a*x)" --x -3:3 --a 2 -o sin.png
      gradcli plot "100*(y - x**2)**2 + (1 - x)**2" --x -2:2 --y -1:3 -o rosenbrock.svg
      gradcli plot "log(x)" --x 0:2 --points 5 --format csv

    Ranges are --NAME LOW:HIGH (the first is the horizontal axis); other variables are held at
    their values. Where f or its derivative is not finite is shaded (text: said below the plot).
    With no -o the plot is drawn in the terminal; arrows need a file.
    """
    from . import plotting

    settings = current_settings()
    program = load_program(read_expression(expr, expr_file, settings.max_expression), plugins, settings)
    ranges: dict[str, tuple[float, float]] = {}
    rest: dict[str, str] = {}
    for name, text in variable_texts(click.get_current_context(), program.inputs).items():
        if ":" in text and not text.startswith("@"):
            lo, hi = _interval(text, f"--{name} {text}", open_ends=False)
            assert lo is not None and hi is not None
            ranges[name] = (lo, hi)
        else:
            rest[name] = text
    values = collect_values(program, rest, vars_text)
    from ._entry import started

    started()  # (as every expression command does once its inputs are read: gradcli._entry)
    if len(ranges) not in (1, 2):
        fail(f"plot draws one or two variables over a range (--x -3:3); got {len(ranges)} ranges", 2)
    missing = [n for n in program.inputs if n not in values and n not in ranges]
    if missing:
        fail(f"{missing_value(missing, program.inputs)}: give a value, or a range (--{missing[0]} -3:3)", 2)
    if len(ranges) == 2 and order != 1:
        fail("--order is for one variable; over two, plot draws the gradient", 2)
    kind = _plot_format(output, fmt)
    with fp_warnings():
        samples = plotting.sample(program, values, ranges, points, order)
        if kind == "csv":
            text = plotting.to_csv(samples)
        elif kind == "text":
            text = _terminal_plot(samples, program.text, to_terminal=output is None) + "\n"
        else:
            assert output is not None
            _write(lambda target: plotting.draw(samples, target, kind, program.text), output, "-o")
            return
    if output is None or output == "-":
        click.echo(text, nl=False)
    else:
        _write(lambda target: _save_text(target, text), output, "-o")


def _save_text(target: str, text: str) -> None:
    with open(target, "w", encoding="utf-8") as out:
        out.write(text)


def _plot_format(output: str | None, fmt: str | None) -> str:
    """What to write: --format, else -o's suffix, else text."""
    suffix = output.rpartition(".")[2].lower() if output and "." in output else ""
    known = (*FORMATS, "csv")
    if fmt is None:
        if output is None:
            return "text"
        if suffix not in known:
            fail(
                f"-o {output}: name a file ending in {', '.join('.' + k for k in known)}, or give --format", 2
            )
        return suffix
    if suffix in known and suffix != fmt:
        fail(f"-o {output} ends in .{suffix}, but --format is {fmt}", 2)
    if fmt in FORMATS and output is None:
        fail(f"--format {fmt} is written to a file: add -o FILE (- for stdout)", 2)
    return fmt


def _terminal_plot(samples: Any, title: str, to_terminal: bool) -> str:
    import os
    import shutil

    from . import plotting

    columns, lines = shutil.get_terminal_size((80, 24))
    color = to_terminal and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    return plotting.draw_text(
        samples, width=max(20, columns - 12), height=max(6, min(20, lines - 8)), color=color, title=title
    )
