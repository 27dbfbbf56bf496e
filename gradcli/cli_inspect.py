"""``gradcli graph`` and ``gradcli explain``: the graph and the backward pass, for a person
learning backpropagation. Loaded only when one of them is invoked (see ``LAZY_COMMANDS``)."""

from __future__ import annotations

from typing import Any

import click

from . import budget, caps
from .cli import (
    ExpressionCommand,
    collect_values,
    emit,
    expression_options,
    fail,
    fp_warnings,
    load_program,
    translate_errors,
)

DOT_MISSING = (
    "the 'dot' program (Graphviz) is not installed, so --format {fmt} cannot be rendered: "
    "apt-get install graphviz / brew install graphviz / conda install graphviz "
    "(or use --format dot and render elsewhere)"
)
# How long Graphviz may take before we give up (a huge graph can make dot's layout crawl).
DOT_TIMEOUT_S = 300


def _values_all_or_none(program: Any, args: list[str], vars_text: str | None) -> dict[str, Any] | None:
    """Values for every variable, or None when none were given (draw the structure only); some
    but not all is a usage error, since a half-evaluated graph cannot be drawn."""
    values = collect_values(program, args, vars_text, required=False)
    if not values and program.inputs:
        return None
    missing = [n for n in program.inputs if n not in values]
    if missing:
        fail(
            f"missing value for {', '.join('--' + n for n in missing)}: give values for every variable "
            f"({', '.join(program.inputs)}) or for none (the structure only)",
            2,
        )
    return values


def _write(data: str | bytes, output: str | None) -> None:
    if output is None:
        click.echo(data, nl=isinstance(data, str) and not data.endswith("\n"))
        return
    try:
        if isinstance(data, bytes):
            with open(output, "wb") as fh:
                fh.write(data)
        else:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(data if data.endswith("\n") else data + "\n")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", 1)


def render_with_dot(dot_program: str, dot_text: str, fmt: str) -> bytes:
    """``dot_text`` rendered by Graphviz's ``dot`` (run directly, no shell) as ``fmt``, within
    what is left of the memory budget."""
    import subprocess

    left = budget.room()
    try:
        proc = subprocess.run(
            [dot_program, f"-T{fmt}"],
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=DOT_TIMEOUT_S,
            check=False,
            preexec_fn=budget.child_preexec(),
        )
    except subprocess.TimeoutExpired:
        fail(f"dot did not finish within {DOT_TIMEOUT_S} s (the graph is too large to lay out)", 1)
    except OSError as exc:
        fail(f"cannot run {dot_program}: {exc.strerror or exc}", 1)
    if left is not None and (proc.returncode < 0 or b"out of memory" in proc.stderr):
        fail(
            f"out of memory: dot needed more than the {budget.format_size(left)} left in the memory budget "
            "to lay out this graph: use --format dot or text, or raise --max-memory",
            1,
        )
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        fail(f"dot failed (exit status {proc.returncode}): {message[0] if message else 'no message'}", 1)
    return proc.stdout


@click.command("graph", cls=ExpressionCommand)
@expression_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dot", "text", "svg", "png"]),
    default="dot",
    show_default=True,
    help="dot: Graphviz source; text: an indented tree; svg/png: rendered by Graphviz's dot.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@click.option(
    "--max-render-nodes",
    type=click.IntRange(1),
    default=caps.MAX_RENDER_NODES,
    show_default=True,
    help="Refuse to lay out (svg, png) a graph of more nodes: Graphviz takes minutes and gigabytes.",
)
@click.pass_context
@translate_errors
def graph_command(
    ctx: click.Context,
    expr: str | None,
    expr_file: Any,
    vars_text: str | None,
    plugins: tuple[str, ...],
    fmt: str,
    output: str | None,
    max_render_nodes: int,
) -> None:
    """Draw the computational graph of EXPR.

    Variables are ellipses (inputs filled, constants dashed, outputs doubled), functions are
    boxes, and edges go the way data flows. With values for the variables, each variable shows
    its shape, value and gradient; without values, the structure only. Node ids come from the
    position in the expression, so they are the same on every run.

    \b
      gradcli graph "add(square(x), square(y))" --x 2 --y 3 | dot -Tsvg > g.svg
      gradcli graph "x*x + x" --format text
      gradcli graph "sum(x * w)" --x "[1, 2]" --w "[3, 4]" --format png -o g.png
    """
    import shutil

    from .graph import evaluate, structure, to_dot, to_text

    program = load_program(expr, expr_file, plugins)
    values = _values_all_or_none(program, ctx.args, vars_text)
    dot_program = None
    if fmt in ("svg", "png"):
        dot_program = shutil.which("dot")
        if dot_program is None:
            fail(DOT_MISSING.format(fmt=fmt), 1)
        if fmt == "png" and output is None:
            fail("--format png writes a binary image: give -o FILE", 2)
        caps.guard_render(program, fmt, max_render_nodes)
    if values is None:
        graph = structure(program)
    else:
        with fp_warnings():
            graph = evaluate(program, values)
    if fmt == "text":
        _write(to_text(graph), output)
        return
    text = to_dot(graph)
    if dot_program is None:
        _write(text, output)
        return
    _write(render_with_dot(dot_program, text, fmt), output)


@click.command("explain", cls=ExpressionCommand)
@expression_options
@click.pass_context
@translate_errors
def explain_command(
    ctx: click.Context, expr: str | None, expr_file: Any, vars_text: str | None, plugins: tuple[str, ...]
) -> None:
    """Narrate the forward and backward passes of EXPR at the given values.

    The forward pass one instruction per line, then the backward pass in the order the engine
    really runs it (highest generation first): for each function, the gradient arriving at its
    outputs and the gradient it sends to each input, with "+=" where a variable receives
    gradient a second time. Backward is seeded with ones at each output: with a non-scalar
    output or several outputs, the gradients are those of the sum of all their elements.

    \b
      gradcli explain "add(square(x), square(y))" --x 2 --y 3
      gradcli explain "t = x0 + x1; x0 + t" --x0 1 --x1 2
    """
    from .explain import explain
    from .graph import evaluate

    program = load_program(expr, expr_file, plugins)
    values = collect_values(program, ctx.args, vars_text)
    with fp_warnings():
        graph = evaluate(program, values)
    emit(explain(graph))
