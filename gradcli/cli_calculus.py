"""``gradcli hessian``, ``gradcli jacobian`` and ``gradcli check``: derivatives beyond one
gradient, and the numerical check of them. Loaded only when one of them is invoked.

Like ``gradcli eval``, each takes an expression and one option per variable; the work is done
by :mod:`gradcli.calculus` and the text by :mod:`gradcli.render`.
"""

from __future__ import annotations

from typing import Any

import click
import numpy as np

from . import caps
from .cli import (
    ExpressionCommand,
    collect_values,
    emit,
    expression_options,
    fp_warnings,
    guard_count,
    load_program,
    parse_wrt,
    translate_errors,
)
from .inputs import finite_range

SCALAR_NOTE = (
    "EXPR must have one scalar output: wrap a vector in sum(...), or use `gradcli jacobian` "
    "for the derivatives of every element."
)

_WRT_HELP = "Differentiate only with respect to these variables (the others are held constant)."


@click.command("hessian", cls=ExpressionCommand, epilog=SCALAR_NOTE)
@expression_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One line of JSON: {"value": .., "grad": {"x": ..}, "hessian": {"x": {"x": .., "y": ..}, ..}}.',
)
@click.option("--wrt", metavar="X,Y", help=_WRT_HELP)
@click.pass_context
@translate_errors
def hessian_command(
    ctx: click.Context,
    expr: str | None,
    expr_file: Any,
    vars_text: str | None,
    plugins: tuple[str, ...],
    as_json: bool,
    wrt: str | None,
) -> None:
    """The value, gradient and full Hessian of a scalar EXPR.

    \b
      gradcli hessian "x**2*y + sin(x*y)" --x 1 --y 2
      gradcli hessian "sum(x * x) * y" --x "[1, 2]" --y 3 --json

    With scalar variables the Hessian prints as a matrix labelled by variable names; with an
    array variable, as one block per pair of variables. In JSON, hessian.x.y has the shape
    x.shape + y.shape. Every block is computed on its own, so a symmetric result is a check.
    """
    from . import calculus, render

    program = load_program(expr, expr_file, plugins)
    values = collect_values(program, ctx.args, vars_text)
    chosen = parse_wrt(wrt, program.inputs)
    # The Hessian has (sum of sizes)**2 numbers: refuse an impossible one before computing it.
    size = sum(np.size(values[n]) for n in (chosen or program.inputs))
    guard_count(size * size)
    with fp_warnings():
        result = calculus.hessian(program, values, wrt=chosen)
    if as_json:
        data = render.eval_json(result.value, result.grad)
        data["hessian"] = {
            a: {b: render.to_jsonable(block) for b, block in row.items()} for a, row in result.hessian.items()
        }
        emit(render.dumps(data))
    else:
        emit(render.hessian_text(result.value, result.grad, result.hessian))


@click.command("jacobian", cls=ExpressionCommand)
@expression_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One line of JSON: {"value": .., "jacobian": {"x": ..}}; with several outputs, '
    '"value" is a list and "jacobian" a list of objects, one per output.',
)
@click.option("--wrt", metavar="X,Y", help=_WRT_HELP)
@click.pass_context
@translate_errors
def jacobian_command(
    ctx: click.Context,
    expr: str | None,
    expr_file: Any,
    vars_text: str | None,
    plugins: tuple[str, ...],
    as_json: bool,
    wrt: str | None,
) -> None:
    """The value and full Jacobian of EXPR (a vector output, or several outputs: EXPR1, EXPR2).

    \b
      gradcli jacobian "x * [1, 2, 3] + y" --x 2 --y 1
      gradcli jacobian "x*y, x+y" --x 2 --y 3 --json

    The block for output OUT and variable x has the shape OUT.shape + x.shape (one backward
    pass per output element). With scalar variables and outputs that are at most vectors it
    prints as one matrix: a row per output element, a column per variable.
    """
    from . import calculus, render

    program = load_program(expr, expr_file, plugins)
    values = collect_values(program, ctx.args, vars_text)
    chosen = parse_wrt(wrt, program.inputs)
    with fp_warnings():
        guard_count(caps.jacobian_numbers(program, values, chosen))
        result = calculus.jacobian(program, values, wrt=chosen)
    if not as_json:
        emit(render.jacobian_text(result.value, result.jacobian))
        return
    several = isinstance(result.jacobian, list)
    if several:
        data: dict[str, Any] = {
            "value": [render.to_jsonable(v) for v in result.value],
            "jacobian": [{n: render.to_jsonable(b) for n, b in block.items()} for block in result.jacobian],
        }
    else:
        data = {
            "value": render.to_jsonable(result.value),
            "jacobian": {n: render.to_jsonable(b) for n, b in result.jacobian.items()},
        }
    emit(render.dumps(data))


@click.command("check", cls=ExpressionCommand)
@expression_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One line of JSON: {"ok": true|false, "failures": N, "rows": [{"derivative": "d/dx[0]", '
    '"analytic": .., "numeric": .., "abs_error": .., "rel_error": .., "ok": ..}, ..], ..}.',
)
@click.option("--wrt", metavar="X,Y", help="Check only the derivatives with respect to these variables.")
@click.option(
    "--order",
    type=click.IntRange(1, 2),
    default=1,
    show_default=True,
    help="2: also compare the Hessian with central differences of the gradient (scalar output).",
)
@click.option(
    "--rtol",
    type=finite_range(min=0),
    default=1e-5,
    show_default=True,
    help="Relative tolerance.",
)
@click.option(
    "--atol",
    type=finite_range(min=0),
    default=1e-7,
    show_default=True,
    help="Absolute tolerance.",
)
@click.option(
    "--eps",
    type=finite_range(min=0, min_open=True),
    default=None,
    help="Step of the central differences [default: cbrt(float64 eps) * max(1, |x|), about 6e-6].",
)
@click.pass_context
@translate_errors
def check_command(
    ctx: click.Context,
    expr: str | None,
    expr_file: Any,
    vars_text: str | None,
    plugins: tuple[str, ...],
    as_json: bool,
    wrt: str | None,
    order: int,
    rtol: float,
    atol: float,
    eps: float | None,
) -> None:
    """Compare every analytic derivative of EXPR with central differences.

    \b
      gradcli check "x**2*y + sin(x*y)" --x 1 --y 2
      gradcli check "sum(line(w, x, b))" --plugin examples/line.py --w "[1, 2]" --x "[3, 4]" --b 0
      gradcli check "x**3 * y" --x 2 --y 3 --order 2

    One row per element of every gradient (of every output; a non-scalar output's gradient is
    that of the sum of its elements), and with --order 2 per entry of the Hessian. An entry
    agrees when |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|).

    Exit status 0 when every entry agrees, 1 when one does not: this is how to validate the
    backward of a custom function loaded with --plugin.
    """
    from . import calculus, render

    program = load_program(expr, expr_file, plugins)
    values = collect_values(program, ctx.args, vars_text)
    chosen = parse_wrt(wrt, program.inputs)
    guard_count(caps.check_numbers(program, values, chosen, order))
    with fp_warnings():
        report = calculus.check(program, values, order=order, rtol=rtol, atol=atol, wrt=chosen, eps=eps)
    emit(render.dumps(render.check_json(report)) if as_json else calculus.format_table(report))
    if not report.ok:
        ctx.exit(1)
