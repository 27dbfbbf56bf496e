"""The command line: options in, library calls, rendered text out. Nothing here computes.

Every command that takes an expression takes its variables as options named after them
(``--x 2``, ``--x=2``, ``--x "[1, 2]"``, ``--x @file.npy``), or all at once with ``--vars``;
what they share is :mod:`gradcli.command`. Exit status: 0 success, 1 evaluation failed or a check
did not pass, 2 bad usage or an expression that does not parse. Every error is one line on
stderr starting ``error:`` (a parse error adds the expression and a caret).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from . import __version__, budget
from .command import (
    MAX_EXPRESSION,
    MAX_NODES,
    MAX_OUTPUT,
    WRITE_FAILURES,
    CliError,
    Request,
    Settings,
    Sink,
    WholeNumber,
    expression_command,
    file_names,
    option_elsewhere,
    silence_stdout,
    translate_errors,
)

if TYPE_CHECKING:
    from .render import Output

NON_SCALAR_NOTE = (
    "A non-scalar output's gradient is the gradient of the sum of its elements "
    "(backward is seeded with ones)."
)

# Commands that live in their own modules, imported only when invoked (startup time is a feature).
LAZY_COMMANDS = {
    "hessian": "gradcli.cli_calculus:hessian_command",
    "jacobian": "gradcli.cli_calculus:jacobian_command",
    "check": "gradcli.cli_calculus:check_command",
    "graph": "gradcli.cli_inspect:graph_command",
    "explain": "gradcli.cli_inspect:explain_command",
    "minimize": "gradcli.cli_optimize:minimize_command",
    "root": "gradcli.cli_optimize:root_command",
    "plot": "gradcli.cli_optimize:plot_command",
}


def _debugging(ctx: click.Context | None = None) -> bool:
    settings = ctx.find_root().obj if ctx is not None else None
    return bool(os.environ.get("GRADCLI_DEBUG") or getattr(settings, "debug", False) or "--debug" in sys.argv)


def _one_line(exc: click.UsageError) -> CliError:
    """click's usage error as one line: ``error: no such option '--jsn' (did you mean --json?)``."""
    if isinstance(exc, click.NoSuchOption):
        text = f"no such option {exc.option_name!r}"
        if exc.possibilities:
            text += f" (did you mean {' or '.join(sorted(exc.possibilities))}?)"
        elif (
            exc.ctx is not None
            and exc.ctx.parent is not None
            and (elsewhere := option_elsewhere(exc.ctx, exc.option_name))
        ):
            text = elsewhere
        elif (
            exc.option_name.startswith("-") and not exc.option_name.startswith("--") and _takes_variables(exc)
        ):
            text += f" (a variable is given as -{exc.option_name} VALUE)"
        return CliError(text, 2)
    message = " ".join(exc.format_message().split()).rstrip(".")
    return CliError(message[:1].lower() + message[1:], 2)


def _takes_variables(exc: click.UsageError) -> bool:
    """Whether the command of a usage error takes variables as options (``eval``, not ``functions``)."""
    from .command import ExpressionCommand

    return exc.ctx is not None and isinstance(exc.ctx.command, ExpressionCommand)


class GradGroup(click.Group):
    """The top-level group: loads subcommands lazily; usage errors are one line, unexpected
    failures too (a traceback only with --debug), Ctrl-C exits 130 and a closed pipe ends
    quietly."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            import importlib

            module, attr = LAZY_COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            if _debugging():
                raise
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            if _debugging(ctx):
                raise
            raise _one_line(exc) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            _flush_quietly()
            sys.stderr.write("interrupted\n")
            sys.exit(130)
        except BrokenPipeError:
            silence_stdout()
            sys.exit(0)
        except OSError as exc:
            if exc.errno not in WRITE_FAILURES or _debugging(ctx):
                raise
            silence_stdout()  # (what is left in its buffer cannot be written either)
            raise CliError(f"cannot write the output: {exc.strerror or exc}", 1) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence for users
            if _debugging(ctx):
                raise
            from .failures import describe

            known = describe(exc)  # out of memory outside a command (click's own parsing, output)
            if known is not None:
                raise CliError(*known) from None
            raise CliError(
                f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", 1
            ) from None


def _flush_quietly() -> None:
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        silence_stdout()


@click.group(cls=GradGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="gradcli", package_name="gradcli")
@click.option("--debug", is_flag=True, hidden=True, help="Show Python tracebacks.")
@click.option(
    "--max-expression",
    type=WholeNumber(1),
    default=MAX_EXPRESSION,
    envvar="GRADCLI_MAX_EXPRESSION",
    show_default=True,
    help="Refuse expressions longer than this many characters (also $GRADCLI_MAX_EXPRESSION).",
)
@click.option(
    "--max-output",
    type=WholeNumber(1),
    default=MAX_OUTPUT,
    envvar="GRADCLI_MAX_OUTPUT",
    show_default=True,
    help="Refuse to write more numbers than this as JSON (also $GRADCLI_MAX_OUTPUT).",
)
@click.option(
    "--max-memory",
    type=budget.SIZE,
    default=budget.DEFAULT,
    envvar=budget.ENV_VAR,
    show_default=True,
    help="Memory for gradcli and the programs it starts: a size (4G, 512M), a share of the physical "
    f"memory (25%) or unlimited (also ${budget.ENV_VAR}).",
)
@click.option(
    "--max-nodes",
    type=WholeNumber(1),
    default=MAX_NODES,
    envvar="GRADCLI_MAX_NODES",
    show_default=True,
    help="Refuse higher derivatives whose graph passes this many functions (also $GRADCLI_MAX_NODES).",
)
@click.pass_context
def main(
    ctx: click.Context,
    debug: bool,
    max_expression: int,
    max_output: int,
    max_memory: int | None,
    max_nodes: int,
) -> None:
    """gradcli: values and gradients of expressions.

    \b
      gradcli eval "add(square(x), square(y))" --x 2 --y 3
      gradcli eval "x**2 + y**2" --x 2 --y 3 --json
      gradcli functions
    """
    ctx.obj = Settings(debug=debug, max_expression=max_expression, max_output=max_output, max_nodes=max_nodes)
    ctx.call_on_close(budget.apply(max_memory))


# --- commands -----------------------------------------------------------------------------------


def _eval_rows(req: Request, rows: list[dict[str, Any]], order: int | None, strict: bool) -> Any:
    """A run of batch lines with the same shapes, evaluated as one batch (--order: line by line)."""
    if order:
        return None
    import numpy as np

    from . import calculus
    from .render import EvalRows

    columns = {n: np.array([row[n] for row in rows], dtype=np.float64) for n in req.program.inputs}
    result = calculus.evaluate_rows(req.program, columns, wrt=req.wrt)
    return EvalRows(result.value, result.grad, strict)


def _strictly(output: Output) -> Output:
    import numpy as np

    if not all(bool(np.isfinite(a).all()) for a in output.arrays().values()):
        output.error = "--strict: a value or gradient is NaN or infinite"
    return output


@expression_command("eval", dask=True, epilog=NON_SCALAR_NOTE, rows=_eval_rows)
@click.option(
    "--order",
    type=WholeNumber(1, 64),
    default=None,
    help="Also the pure partial derivatives of orders 1..N (scalar output).",
)
@click.option("--strict", is_flag=True, help="Exit 1 if any value or gradient is NaN or infinite.")
def eval_command(req: Request, order: int | None, strict: bool) -> Output:
    """Evaluate EXPR and its gradient with respect to every variable.

    \b
      gradcli eval "add(square(x), square(y))" --x 2 --y 3
      gradcli eval "x**2 + y**2" --x 2 --y 3 --json
      gradcli eval "sum(x * [1, 2, 3])" --x "[4, 5, 6]"
      printf '{"x": 1, "y": 2}\\n{"x": 3, "y": 4}\\n' | gradcli eval "x*y" --batch

    JSON: {"value": ..., "grad": {"x": ..., ...}}, with --order also "derivatives": {"x": [d1,
    d2, ...]}; several outputs give lists. In batch mode, values given as options apply to
    every line (a line's own value wins); a bad line gives {"line": N, "error": "..."} in its
    place, the stream goes on, and the exit status is 1 at the end.
    """
    from . import calculus
    from .render import EvalOutput

    result = calculus.evaluate(req.program, req.values, wrt=req.wrt)
    derivs = calculus.derivatives(req.program, req.values, order, wrt=req.wrt) if order else None
    output = EvalOutput(result.value, result.grad, derivs)
    return _strictly(output) if strict else output


main.add_command(eval_command)


def _group(spec: Any) -> str:
    # Issue 10 gives every Spec a group ("elementwise", "reductions", ...); plugins may have none.
    return getattr(spec, "group", None) or "other"


@main.command("functions")
@click.argument("group", required=False, metavar="[GROUP]")
@click.option("--json", "as_json", is_flag=True, help="As JSON: a list of objects.")
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    callback=file_names,
    metavar="FILE.py",
    help="Load functions from a Python file first.",
)
@translate_errors
def functions_command(group: str | None, as_json: bool, plugins: tuple[str, ...]) -> None:
    """List the functions by group, with their arguments, one-line doc and derivative rule.

    With GROUP (a group's name as listed, e.g. reductions or linear-algebra), only that group:
    one screen; with a function's name (or another name of it: arctan), only that function, and
    the forms of the language of that name (grad, log, max).

    \b
      gradcli functions
      gradcli functions --json
    """
    from . import render
    from .functions import REGISTRY
    from .functions.registry import ALIASES
    from .language import SPECIAL_FORMS
    from .plugins import load_plugins

    load_plugins(list(plugins), entry_points=True)
    specs = sorted(REGISTRY.values(), key=lambda s: (_group(s), s.name))
    groups = sorted({_group(s) for s in specs})
    forms = SPECIAL_FORMS
    if group is not None:
        asked = group
        group = ALIASES.get(group, group)  # another name for a function (arctan, ln): that function
        if group not in REGISTRY:  # a group by its name in any case, with - or _ for spaces
            group = group.replace("-", " ").replace("_", " ")
            group = group.lower() if group.lower() in groups else group
        # A form of the language by its name (grad, log, max): it, beside a function of that name.
        forms = {f: doc for f, doc in SPECIAL_FORMS.items() if f.split("(")[0] in (asked, group)}
        if group in REGISTRY and group not in groups:
            specs, group = [REGISTRY[group]], _group(REGISTRY[group])
        elif group in groups:
            specs, forms = [s for s in specs if _group(s) == group], {}
        elif forms:
            specs = []
        else:
            from .functions.meanings import suggestion

            typed = [g.replace(" ", "-") for g in groups]  # a group as typed on a command line
            # The start of a group's name (trig, reduction) is that group, whatever is close to it.
            key = asked.lower().replace("_", "-").replace(" ", "-")
            started = [g for g in typed if len(key) >= 3 and g.startswith(key)]
            if started:
                hint = f"; did you mean the group {' or '.join(repr(g) for g in started)}?"
            else:
                hint = suggestion(asked, {*REGISTRY, *ALIASES, *typed})
            raise CliError(f"no group or function {asked!r}{hint} (groups: {', '.join(groups)})", 2)
    sink = Sink()
    if as_json:
        entries = [
            {
                "name": s.name,
                "group": _group(s),
                "signature": s.signature(),
                "inputs": list(s.inputs),
                "arity": list(s.arity),
                "params": [p for p, _ in s.params],
                "outputs": s.n_outputs,
                "doc": s.doc,
                "rule": s.rule,
                "kind": "function",
            }
            for s in specs
        ]
        # The forms of the language listed in text (grad, max of several arguments, ...), each as
        # it is written: ``gradcli functions grad --json`` is not an empty list.
        entries += [
            {
                "name": form.split("(")[0],
                "group": "forms of the language",
                "signature": form,
                "doc": doc,
                "kind": "form",
            }
            for form, doc in forms.items()
        ]
        sink.line(render.dumps(entries))
        return
    lines: list[str] = []
    for name in groups if group is None else [group]:
        members = [s for s in specs if _group(s) == name]
        if not members:
            continue
        width = max(len(s.signature()) for s in members)
        lines += ["", f"{name}:"] if lines else [f"{name}:"]
        for s in members:
            lines.append(f"  {s.signature():<{width}}  {s.doc}")
            if s.rule:
                lines.append(f"  {'':<{width}}    {s.rule}")
    if forms:
        width = max(map(len, forms))
        lines += ["", "forms of the language:"] if lines else ["forms of the language:"]
        lines += [f"  {form:<{width}}  {doc}" for form, doc in forms.items()]
    sink.line("\n".join(lines))


@main.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion_command(shell: str) -> None:
    """Print the shell completion script for SHELL (click's).

    \b
      bash, in ~/.bashrc:                   eval "$(gradcli completion bash)"
      zsh, in ~/.zshrc:                     eval "$(gradcli completion zsh)"
      fish, in ~/.config/fish/config.fish:  gradcli completion fish | source

    It completes commands and options, the variables of the expression after --, and file
    names after @ and for -f, --batch and -o.
    """
    from click.shell_completion import get_completion_class

    complete = get_completion_class(shell)
    assert complete is not None
    Sink().line(complete(main, {}, "gradcli", "_GRADCLI_COMPLETE").source().rstrip("\n"))


def run(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the CLI in-process and return its exit status (for embedding and tests)."""
    try:
        main.main(args=argv, prog_name="gradcli", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0
