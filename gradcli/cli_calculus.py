"""``gradcli hessian``, ``gradcli jacobian`` and ``gradcli check``: derivatives beyond one
gradient, and the numerical check of them. Loaded only when one of them is invoked.

Like ``gradcli eval``, each is one function over :mod:`gradcli.command`: the work is done by
:mod:`gradcli.calculus`, the shapes of the answer by :mod:`gradcli.render`.
"""

from __future__ import annotations

import click
import numpy as np

from . import calculus, caps
from .command import Request, WholeNumber, expression_command
from .inputs import finite_range
from .render import CheckOutput, HessianOutput, JacobianOutput

SCALAR_NOTE = (
    "EXPR must have one scalar output: wrap a vector in sum(...), or use `gradcli jacobian` "
    "for the derivatives of every element."
)


@expression_command("hessian", dask=True, epilog=SCALAR_NOTE)
def hessian_command(req: Request) -> HessianOutput:
    """The value, gradient and full Hessian of a scalar EXPR.

    \b
      gradcli hessian "x**2*y + sin(x*y)" --x 1 --y 2
      gradcli hessian "sum(x * x) * y" --x "[1, 2]" --y 3 --json

    With scalar variables the Hessian prints as a matrix labelled by variable names; with an
    array variable, as one block per pair of variables. JSON: {"value": .., "grad": {"x": ..},
    "hessian": {"x": {"x": .., "y": ..}, ..}}, where hessian.x.y has the shape x.shape +
    y.shape. Every block is computed on its own, so a symmetric result is a check.
    """
    # The Hessian has (sum of sizes)**2 numbers: refuse an impossible one before computing it.
    size = sum(int(np.size(req.values[n])) for n in req.variables)
    req.refuse_more_numbers(size * size)
    result = calculus.hessian(req.program, req.values, wrt=req.wrt)
    return HessianOutput(result.value, result.grad, result.hessian)


@expression_command("jacobian", dask=True)
def jacobian_command(req: Request) -> JacobianOutput:
    """The value and full Jacobian of EXPR (a vector output, or several outputs: EXPR1, EXPR2).

    \b
      gradcli jacobian "x * [1, 2, 3] + y" --x 2 --y 1
      gradcli jacobian "x*y, x+y" --x 2 --y 3 --json

    The block for output OUT and variable x has the shape OUT.shape + x.shape (one backward
    pass per output element). With scalar variables and outputs that are at most vectors it
    prints as one matrix: a row per output element, a column per variable. JSON: {"value": ..,
    "jacobian": {"x": ..}}; with several outputs, "value" is a list and "jacobian" a list of
    objects, one per output.
    """
    req.refuse_more_numbers(caps.jacobian_numbers(req.program, req.values, req.wrt))
    result = calculus.jacobian(req.program, req.values, wrt=req.wrt)
    return JacobianOutput(result.value, result.jacobian)


@expression_command("check", quiet=True, dask=True, arrays=False)
@click.option(
    "--order",
    type=WholeNumber(1, 2),
    default=1,
    show_default=True,
    help="2: also compare the Hessian with central differences of the gradient (scalar output).",
)
@click.option("--rtol", type=finite_range(min=0), default=1e-5, show_default=True, help="Relative tolerance.")
@click.option("--atol", type=finite_range(min=0), default=1e-7, show_default=True, help="Absolute tolerance.")
@click.option(
    "--eps",
    type=finite_range(min=0, min_open=True),
    default=None,
    help="Step of the central differences [default: cbrt(float64 eps) * max(1, |x|), about 6e-6].",
)
def check_command(req: Request, order: int, rtol: float, atol: float, eps: float | None) -> CheckOutput:
    """Compare every analytic derivative of EXPR with central differences.

    \b
      gradcli check "x**2*y + sin(x*y)" --x 1 --y 2
      gradcli check "sum(line(w, x, b))" --plugin examples/line.py --w "[1, 2]" --x "[3, 4]" --b 0
      gradcli check "x**3 * y" --x 2 --y 3 --order 2

    One row per element of every gradient (of every output; a non-scalar output's gradient is
    that of the sum of its elements), and with --order 2 per entry of the Hessian. An entry
    agrees when |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|). JSON:
    {"ok": true|false, "failures": N, "rows": [{"derivative": "d/dx[0]", "analytic": ..,
    "numeric": .., "abs_error": .., "rel_error": .., "ok": ..}, ..], ..}.

    Exit status 0 when every entry agrees, 1 when one does not (in batch mode: when one line
    does not): this is how to validate the backward of a custom function loaded with --plugin.
    """
    req.refuse_more_numbers(caps.check_numbers(req.program, req.values, req.wrt, order))
    report = calculus.check(req.program, req.values, order=order, rtol=rtol, atol=atol, wrt=req.wrt, eps=eps)
    return CheckOutput(report)
