"""``gradcli graph`` and ``gradcli explain``: the graph and the backward pass, for a person
learning backpropagation. Loaded only when one of them is invoked (see ``LAZY_COMMANDS``)."""

from __future__ import annotations

import click

from . import budget, caps
from .command import Request, Sink, WholeNumber, dash_is_stdout, expression_command, fail
from .render import Output, TextOutput

DOT_MISSING = (
    "the 'dot' program (Graphviz) is not installed, so --format {fmt} cannot be rendered: "
    "apt-get install graphviz / brew install graphviz / conda install graphviz "
    "(or use --format dot and render elsewhere)"
)
# How long Graphviz may take before we give up (a huge graph can make dot's layout crawl).
DOT_TIMEOUT_S = 300


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


# What a file's extension says it holds, for graph -o FILE.
_GRAPH_FORMATS = {".svg": "svg", ".png": "png", ".txt": "text", ".dot": "dot", ".gv": "dot"}
# Images graph does not draw: DOT text in one would open as a broken image.
_OTHER_IMAGES = (".pdf", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".eps", ".ps")


def _graph_format(fmt: str | None, output: str | None) -> str:
    """``--format`` as given, else the one ``-o``'s extension names, else dot. An image file
    named for one format never receives another (DOT text in g.png opens as a broken image)."""
    import os

    suffix = os.path.splitext(output or "")[1].lower()
    if suffix in _OTHER_IMAGES and fmt in (None, "svg", "png"):
        fail(f"-o {output}: graph draws .svg and .png images (--format dot or text writes into any file)", 2)
    named = _GRAPH_FORMATS.get(suffix)
    if fmt is None:
        return named or "dot"
    if output is not None and named in ("svg", "png") and fmt != named:
        article = "an" if named == "svg" else "a"
        fail(f"-o {output} names {article} {named.upper()} image, but --format is {fmt}: drop --format", 2)
    return fmt


@expression_command("graph", values="all_or_none", wrt=False, json=False, output=False, batch=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dot", "text", "svg", "png"]),
    default=None,
    help="dot: Graphviz source; text: an indented tree; svg/png: rendered by Graphviz's dot "
    "[default: -o's extension, .svg, .png or .txt, else dot].",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    callback=dash_is_stdout,
    help="Write to FILE instead of stdout (- for stdout).",
)
@click.option(
    "--max-render-nodes",
    type=WholeNumber(1),
    default=caps.MAX_RENDER_NODES,
    show_default=True,
    help="Refuse to lay out (svg, png) a graph of more nodes: Graphviz takes minutes and gigabytes.",
)
def graph_command(req: Request, fmt: str | None, output: str | None, max_render_nodes: int) -> None:
    """Draw the computational graph of EXPR.

    Variables are ellipses (inputs filled, constants dashed, outputs doubled), functions are
    boxes, and edges go the way data flows, labelled #1, #2, ... by argument position when a
    function has several. With values for the variables, each variable shows its shape, value
    and gradient; without values, the structure only. Node ids come from the position in the
    expression, so they are the same on every run.

    \b
      gradcli graph "add(square(x), square(y))" --x 2 --y 3
      gradcli graph "x*x + x" --format text
      gradcli graph "sum(x * w)" --x "[1, 2]" --w "[3, 4]" --format svg -o g.svg
    """
    import shutil

    from .graph import evaluate, structure, to_dot, to_text

    fmt = _graph_format(fmt, output)
    dot_program = None
    if fmt in ("svg", "png"):
        dot_program = shutil.which("dot")
        if dot_program is None:
            fail(DOT_MISSING.format(fmt=fmt), 1)
        if fmt == "png" and output is None:
            fail("--format png writes a binary image: give -o FILE", 2)
        caps.guard_render(req.program, fmt, max_render_nodes)
    graph = (
        evaluate(req.program, req.values) if req.values or not req.program.inputs else structure(req.program)
    )
    if fmt == "text":
        text = to_text(graph, req.style)
    else:
        text = to_dot(graph, req.style)
    data = text.encode("utf-8") if dot_program is None else render_with_dot(dot_program, text, fmt)
    if not data.endswith(b"\n") and dot_program is None:
        data += b"\n"
    sink = Sink(output)
    sink.write(data)
    sink.close()


@expression_command("explain", wrt=False, batch=False, arrays=False)
def explain_command(req: Request) -> Output:
    """Narrate the forward and backward passes of EXPR at the given values.

    The forward pass one instruction per line (with the functions that a grad(...) builds),
    then the backward pass in the order the engine really runs it (highest generation first):
    for each function, the gradient arriving at its outputs and, for each input, the local rule
    with its numbers, e.g. "grad x = grad t1 * cos(x) = 2 * 0.5403023058681398", with "+="
    where a variable receives gradient a second time. Backward is seeded with ones at each
    output: with a non-scalar output or several outputs, the gradients are those of the sum of
    all their elements.

    \b
      gradcli explain "add(square(x), square(y))" --x 2 --y 3
      gradcli explain "t = x0 + x1; x0 + t" --x0 1 --x1 2
      gradcli explain "grad(x**3, x)" --x 2 --json

    JSON: {"forward": [{"name": .., "definition": .., "value": ..}, ..], "backward": [{"step":
    .., "generation": .., "outputs": [{"name": .., "grad": ..}], "inputs": [{"name": .., "rule":
    .., "grad": .., "total": ..}]}, ..], "value": .., "grad": {..}}.
    """
    from .explain import explain, explain_json
    from .graph import evaluate

    graph = evaluate(req.program, req.values)
    return TextOutput(lambda style: explain(graph, style), lambda: explain_json(graph))
