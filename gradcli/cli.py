"""The command line: options in, library calls, rendered text out. Nothing here computes.

Every command that takes an expression takes its variables as options named after them
(``--x 2``, ``--x=2``, ``--x "[1, 2]"``, ``--x @file.npy``), or all at once with ``--vars``.
Exit status: 0 success, 1 evaluation failed or a check did not pass, 2 bad usage or an
expression that does not parse.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import click

from . import __version__

NON_SCALAR_NOTE = (
    "A non-scalar output's gradient is the gradient of the sum of its elements "
    "(backward is seeded with ones)."
)


# Caps that keep a mistake from exhausting the machine; both can be raised (README: Reliability).
MAX_EXPRESSION = 16_000_000  # characters: a 1,000,000-term sum is about 4 million
MAX_OUTPUT = 10_000_000  # numbers written as JSON: about 200 MB of text


def setting(name: str, default: Any) -> Any:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return (obj or {}).get(name, default)


def guard_output(*results: Any) -> None:
    """Refuse, before rendering, JSON with more numbers than ``--max-output``.

    ``results`` are arrays, or dicts and lists of them (walked with a stack, not recursion).
    """
    total = 0
    stack = list(results)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif item is not None:
            total += getattr(item, "size", 1)
    guard_count(total)


def guard_count(total: int) -> None:
    limit = setting("max_output", MAX_OUTPUT)
    if total > limit:
        fail(
            f"the result has {total:,} numbers, more than --max-output {limit:,}: raise the limit, "
            "narrow it with --wrt, or reduce it in the expression (e.g. sum(...))",
            2,
        )


class CliError(click.ClickException):
    """One clear message on stderr, prefixed 'error:', with the exit status it says."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def fail(message: str, exit_code: int = 1) -> NoReturn:
    raise CliError(message, exit_code)


def translate_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Map the library's exceptions to messages and exit codes (usage 2, evaluation 1)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .calculus import CalculusError
        from .functions.registry import RegistryError
        from .inputs import InputError
        from .plugins import PluginError
        from .program import EvaluationError, ExpressionError

        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except EvaluationError as exc:
            fail(str(exc), 1)
        except (ExpressionError, InputError, PluginError, RegistryError) as exc:
            fail(str(exc), 2)
        except CalculusError as exc:
            fail(str(exc), getattr(exc, "exit_code", 2))
        except MemoryError:
            fail("out of memory: the inputs or the expression are too large for this machine", 1)
        except RecursionError:
            fail("the expression is nested too deeply for this Python", 1)
        except (ValueError, TypeError, IndexError, ArithmeticError) as exc:
            fail(str(exc) or "the evaluation failed", 1)

    return wrapper


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


class GradGroup(click.Group):
    """The top-level group: loads subcommands lazily; unexpected failures become one line (a
    traceback only with --debug), Ctrl-C exits 130 and a closed stdout ends quietly."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            import importlib

            module, attr = LAZY_COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            _flush_quietly()
            sys.stderr.write("interrupted\n")
            sys.exit(130)
        except BrokenPipeError:
            _silence_stdout()
            sys.exit(0)
        except Exception as exc:  # noqa: BLE001 - the last line of defence for users
            if os.environ.get("GRADCLI_DEBUG") or (ctx.obj or {}).get("debug"):
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", 1)


def _flush_quietly() -> None:
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        _silence_stdout()


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@click.group(cls=GradGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="gradcli", package_name="gradcli")
@click.option("--debug", is_flag=True, hidden=True, help="Show Python tracebacks.")
@click.option(
    "--max-expression",
    type=click.IntRange(1),
    default=MAX_EXPRESSION,
    envvar="GRADCLI_MAX_EXPRESSION",
    show_default=True,
    help="Refuse expressions longer than this many characters (also $GRADCLI_MAX_EXPRESSION).",
)
@click.option(
    "--max-output",
    type=click.IntRange(1),
    default=MAX_OUTPUT,
    envvar="GRADCLI_MAX_OUTPUT",
    show_default=True,
    help="Refuse to write more numbers than this as JSON (also $GRADCLI_MAX_OUTPUT).",
)
@click.pass_context
def main(ctx: click.Context, debug: bool, max_expression: int, max_output: int) -> None:
    """gradcli: values and gradients of expressions.

    \b
      gradcli eval "add(square(x), square(y))" --x 2 --y 3
      gradcli eval "x**2 + y**2" --x 2 --y 3 --json
      gradcli functions
    """
    ctx.obj = {"debug": debug, "max_expression": max_expression, "max_output": max_output}


# --- expressions and their variables ---------------------------------------------------------


class ExpressionCommand(click.Command):
    """A command whose options include one per variable of its expression (``--x 2``).

    ``--help`` after an expression lists that expression's variables.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {}).update(ignore_unknown_options=True, allow_extra_args=True)
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        own, variables = self._split_variables(ctx, args)
        if "--help" in own or "-h" in own:
            ctx.meta["gradcli.help_expr"] = next((a for a in own if not a.startswith("-")), None)
        rest = super().parse_args(ctx, own)
        ctx.args = [*ctx.args, *variables]
        return rest

    def _split_variables(self, ctx: click.Context, args: list[str]) -> tuple[list[str], list[str]]:
        """Separate ``--NAME VALUE`` pairs that are not the command's own options, wherever they
        stand: click would otherwise take ``--x`` for the expression in ``eval --x 2 "x*3"``."""
        own = {opt for p in self.get_params(ctx) for opt in (*p.opts, *p.secondary_opts)}
        head: list[str] = []
        tail: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                head.extend(args[i:])
                break
            if arg.startswith("--") and len(arg) > 2 and arg.split("=", 1)[0] not in own:
                tail.append(arg)
                if "=" not in arg and i + 1 < len(args):
                    i += 1
                    tail.append(args[i])
            else:
                head.append(arg)
            i += 1
        return head, tail

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        text = ctx.meta.get("gradcli.help_expr")
        if not text:
            formatter.write_paragraph()
            formatter.write_text(
                "Variables: one option per variable of EXPR, e.g. --x 2 (put --help after "
                "an expression to list its variables)."
            )
            return
        from .language import parse
        from .program import ExpressionError

        try:
            names = parse(text).inputs
        except ExpressionError as exc:
            formatter.write_paragraph()
            formatter.write_text(f"(the expression does not parse: {exc.message})")
            return
        with formatter.section("Variables of this expression"):
            formatter.write_dl(
                [(f"--{n} VALUE", "number, [list], nan, inf, or @file (.npy .npz .json .csv)") for n in names]
                or [("(none)", "")]
            )


def expression_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every expression command shares."""
    decorators = [
        click.argument("expr", required=False),
        click.option(
            "-f",
            "--file",
            "expr_file",
            type=click.File("r"),
            help="Read the expression from FILE (- for stdin).",
        ),
        click.option(
            "--vars",
            "vars_text",
            metavar="JSON|@FILE|-",
            help='All values at once: \'{"x": 2, "y": [1, 2]}\'.',
        ),
        click.option(
            "--plugin",
            "plugins",
            multiple=True,
            metavar="FILE.py",
            help="Load functions from a Python file (repeatable; also $GRADCLI_PLUGINS).",
        ),
    ]
    for deco in reversed(decorators):
        func = deco(func)
    return func


def load_program(expr: str | None, expr_file: Any, plugins: tuple[str, ...]) -> Any:
    """Load the plugins asked for, then parse the expression.

    Installed entry points (group ``gradcli.functions``) are scanned only when the expression
    names a function that is not registered: scanning them costs time on every start.
    """
    from .functions.registry import REGISTRY
    from .language import parse
    from .plugins import load_plugins
    from .program import ExpressionError

    load_plugins(list(plugins), entry_points=False)
    if expr_file is not None and expr is not None:
        fail("give the expression either as an argument or with -f FILE, not both", 2)
    if expr_file is not None:
        expr = expr_file.read()
    limit = setting("max_expression", MAX_EXPRESSION)
    if expr is not None and len(expr) > limit:
        fail(f"the expression is {len(expr):,} characters, more than --max-expression {limit:,}", 2)
    if expr is None or expr.startswith("--") and expr[2:].isidentifier():
        # ('--x' would parse as -(-x), but here it is an option whose expression is missing)
        command = click.get_current_context().command_path
        fail(f"missing the expression: {command} EXPR [--x VALUE ...] (see --help)", 2)
    try:
        return parse(expr)
    except ExpressionError as exc:
        if not exc.message.startswith("unknown function"):
            raise
        before = len(REGISTRY)
        load_plugins([], env={}, entry_points=True)
        if len(REGISTRY) == before:
            raise
        return parse(expr)


def no_such_variable(where: str, name: str, names: tuple[str, ...]) -> NoReturn:
    fail(f"{where}: the expression has no variable {name!r} (its variables: {', '.join(names) or 'none'})", 2)


def split_variable_args(args: list[str]) -> dict[str, str]:
    """``['--x', '2', '--y=3']`` -> ``{'x': '2', 'y': '3'}`` (values may start with '-')."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            fail(f"unexpected argument {arg!r}: variables are given as --NAME VALUE", 2)
        name, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                fail(f"option --{name} needs a value", 2)
            i += 1
            value = args[i]
        if name in out:
            fail(f"option --{name} is given twice", 2)
        out[name] = value
        i += 1
    return out


def collect_values(
    program: Any, extra_args: list[str], vars_text: str | None, *, required: bool = True
) -> dict[str, Any]:
    """The inputs from ``--vars`` and the per-variable options; each variable exactly once."""
    from .inputs import parse_value, parse_vars

    names = program.inputs
    values: dict[str, Any] = dict(parse_vars(vars_text)) if vars_text is not None else {}
    for name, text in split_variable_args(extra_args).items():
        if name not in names:
            no_such_variable(f"option --{name}", name, names)
        if name in values:
            fail(f"{name!r} is given both in --vars and as --{name}", 2)
        values[name] = parse_value(text, name)
    unknown = [n for n in values if n not in names]
    if unknown:
        no_such_variable("--vars", unknown[0], names)
    missing = [n for n in names if n not in values]
    if missing and required:
        fail(
            f"missing value for {', '.join('--' + n for n in missing)} "
            f"(the expression uses {', '.join(names)})",
            2,
        )
    return values


def parse_wrt(wrt: str | None, names: tuple[str, ...]) -> tuple[str, ...] | None:
    if wrt is None:
        return None
    chosen = tuple(n.strip() for n in wrt.split(",") if n.strip())
    for n in chosen:
        if n not in names:
            no_such_variable(f"--wrt {n}", n, names)
    return chosen


def emit(text: str) -> None:
    click.echo(text)


def fp_warnings() -> Any:
    """NumPy's floating-point warnings as one line each on stderr, naming the function."""
    from .fpe import reporting

    return reporting(lambda line: click.echo(line, err=True))


# --- commands -----------------------------------------------------------------------------------


@main.command("eval", cls=ExpressionCommand, epilog=NON_SCALAR_NOTE)
@expression_options
@click.option("--json", "as_json", is_flag=True, help='One line of JSON: {"value": ..., "grad": {...}}.')
@click.option("--wrt", metavar="X,Y", help="Differentiate only with respect to these variables.")
@click.option(
    "--order",
    type=click.IntRange(1, 64),
    default=None,
    help="Also the pure partial derivatives of orders 1..N (scalar output).",
)
@click.option(
    "--batch",
    "batch",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="[FILE]",
    help="Read one JSON object of values per line (stdin, or FILE) and write one JSON result per line.",
)
@click.option("--strict", is_flag=True, help="Exit 1 if any value or gradient is NaN or infinite.")
@click.pass_context
@translate_errors
def eval_command(
    ctx: click.Context,
    expr: str | None,
    expr_file: Any,
    vars_text: str | None,
    plugins: tuple[str, ...],
    as_json: bool,
    wrt: str | None,
    order: int | None,
    batch: str | None,
    strict: bool,
) -> None:
    """Evaluate EXPR and its gradient with respect to every variable.

    \b
      gradcli eval "add(square(x), square(y))" --x 2 --y 3
      gradcli eval "x**2 + y**2" --x 2 --y 3 --json
      gradcli eval "sum(x * [1, 2, 3])" --x "[4, 5, 6]"
      printf '{"x": 1, "y": 2}\n{"x": 3, "y": 4}\n' | gradcli eval "x*y" --batch

    In batch mode, values given as options apply to every line; a bad line gives
    {"line": N, "error": "..."} in its place, the stream goes on, and the exit status is 1 at the end.
    """
    program = load_program(expr, expr_file, plugins)
    chosen = parse_wrt(wrt, program.inputs)
    if batch is not None:
        fixed = collect_values(program, ctx.args, vars_text, required=False)
        ok = run_batch(program, fixed, chosen, order, strict, batch)
        if not ok:
            sys.exit(1)
        return
    values = collect_values(program, ctx.args, vars_text)
    with fp_warnings():
        result, derivs = evaluate_program(program, values, chosen, order)
    emit(render_result(result, derivs, as_json))
    if strict and not all_finite(result, derivs):
        fail("--strict: a value or gradient is NaN or infinite", 1)


def evaluate_program(program: Any, values: Mapping[str, Any], wrt: Any, order: int | None) -> tuple[Any, Any]:
    from . import calculus

    result = calculus.evaluate(program, values, wrt=wrt)
    derivs = calculus.derivatives(program, values, order, wrt=wrt) if order else None
    return result, derivs


def render_result(result: Any, derivs: Any, as_json: bool) -> str:
    """The text or one-line JSON of an evaluation (several outputs: lists, as design.md says)."""
    from . import render

    several = len(result.value) > 1
    value = result.value if several else result.value[0]
    grads = result.grad if several else result.grad[0]
    if as_json:
        guard_output(value, grads, derivs)
        data = render.eval_json(value, grads)
        if derivs is not None:
            data["derivatives"] = {n: [render.to_jsonable(d) for d in ds] for n, ds in derivs.items()}
        return render.dumps(data)
    text = render.eval_text(value, grads)
    if derivs is not None:
        text += "\n" + render.derivatives_text(derivs)
    return text


def all_finite(result: Any, derivs: Any) -> bool:
    import numpy as np

    arrays = [*result.value, *(g for row in result.grad for g in row.values())]
    if derivs:
        arrays += [d for ds in derivs.values() for d in ds]
    return all(bool(np.isfinite(a).all()) for a in arrays)


def run_batch(
    program: Any, fixed: Mapping[str, Any], wrt: Any, order: int | None, strict: bool, source: str
) -> bool:
    """One JSON result per input line, in order, flushed as it goes; True if every line passed."""
    out = sys.stdout
    ok = True
    try:
        stream = sys.stdin if source == "-" else open(source, encoding="utf-8")  # noqa: SIM115
        with stream, fp_warnings(), _progress(stream, source) as advance:
            for number, line in enumerate(stream, start=1):
                advance(len(line))
                text, passed = batch_line(program, fixed, wrt, order, strict, number, line)
                ok = ok and passed
                out.write(text + "\n")
                out.flush()
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        fail(f"--batch {source}: {exc.strerror or exc}", 2)
    return ok


def batch_line(
    program: Any, fixed: Mapping[str, Any], wrt: Any, order: int | None, strict: bool, number: int, line: str
) -> tuple[str, bool]:
    """The output line for one input line, and whether it passed. Whatever goes wrong with one
    line (bad JSON, values, shapes, memory, nesting) is reported in its place."""
    import json

    from . import render
    from .calculus import CalculusError
    from .inputs import InputError, values_from_json_object
    from .program import ExpressionError

    try:
        values = values_from_json_object(json.loads(line))
        clash = sorted(set(values) & set(fixed))
        if clash:
            raise InputError(f"{clash[0]!r} is given both on the command line and in the line")
        values.update(fixed)
        unknown = [n for n in values if n not in program.inputs]
        if unknown:
            raise InputError(f"the expression has no variable {unknown[0]!r}")
        missing = [n for n in program.inputs if n not in values]
        if missing:
            raise InputError(f"missing value for {', '.join(repr(n) for n in missing)}")
        result, derivs = evaluate_program(program, values, wrt, order)
        if strict and not all_finite(result, derivs):
            return render.dumps(
                {"line": number, "error": "a value or gradient is NaN or infinite (--strict)"}
            ), False
        return render_result(result, derivs, True), True
    except json.JSONDecodeError as exc:
        message = (
            "empty line: expected a JSON object of values" if not line.strip() else f"not JSON: {exc.msg}"
        )
        return render.dumps({"line": number, "error": f"{message} at column {exc.colno}"}), False
    except (ValueError, TypeError, ArithmeticError, InputError, ExpressionError, CalculusError) as exc:
        message = exc.message if isinstance(exc, ExpressionError) else str(exc)
        return render.dumps({"line": number, "error": message}), False
    except click.ClickException as exc:  # a cap (--max-output) refused this line's result
        return render.dumps({"line": number, "error": exc.format_message()}), False
    except MemoryError:
        return render.dumps({"line": number, "error": "out of memory"}), False
    except RecursionError:
        return render.dumps({"line": number, "error": "nested too deeply"}), False


class _progress:  # noqa: N801 - used like a function
    """A progress bar on stderr, only when stderr is a terminal and the input is a file."""

    def __init__(self, stream: Any, source: str) -> None:
        self.bar = None
        if source != "-" and sys.stderr.isatty():
            size = os.fstat(stream.fileno()).st_size
            self.bar = click.progressbar(length=size, file=sys.stderr, label="batch")

    def __enter__(self) -> Callable[[int], None]:
        if self.bar is None:
            return lambda n: None
        bar = self.bar.__enter__()
        return bar.update

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


@main.command("functions")
@click.option("--json", "as_json", is_flag=True, help="As JSON: a list of objects.")
@click.option(
    "--plugin", "plugins", multiple=True, metavar="FILE.py", help="Load functions from a Python file first."
)
@translate_errors
def functions_command(as_json: bool, plugins: tuple[str, ...]) -> None:
    """List every function: arity, one-line doc and derivative rule."""
    from . import render
    from .functions import REGISTRY
    from .language import SPECIAL_FORMS
    from .plugins import load_plugins

    load_plugins(list(plugins), entry_points=True)
    specs = [REGISTRY[n] for n in sorted(REGISTRY)]
    if as_json:
        emit(
            render.dumps(
                [
                    {
                        "name": s.name,
                        "signature": s.signature(),
                        "inputs": list(s.inputs),
                        "arity": list(s.arity),
                        "params": [p for p, _ in s.params],
                        "outputs": s.n_outputs,
                        "doc": s.doc,
                        "rule": s.rule,
                    }
                    for s in specs
                ]
            )
        )
        return
    width = max(len(s.signature()) for s in specs)
    lines = []
    for s in specs:
        lines.append(f"{s.signature():<{width}}  {s.doc}")
        if s.rule:
            lines.append(f"{'':<{width}}    {s.rule}")
    for name, doc in SPECIAL_FORMS.items():
        lines.append(f"{name + '(EXPR, NAME)':<{width}}  {doc}")
    emit("\n".join(lines))


def run(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run the CLI in-process and return its exit status (for embedding and tests)."""
    try:
        main.main(args=argv, prog_name="gradcli", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0
