"""One path for every command that takes an expression: its common options, the request it is
given, the check of its inputs (one wording per condition), errors as one line, and where its
output goes. ``eval``, ``hessian``, ``jacobian``, ``check``, ``graph`` and ``explain`` are each
one function over it.

Adding a command is one function, and one entry in ``gradcli.cli.LAZY_COMMANDS``
(``"scaled": "gradcli.cli_scaled:scaled_command"``)::

    import click
    from . import calculus, render
    from .command import Request, expression_command

    @expression_command("scaled")
    @click.option("--by", type=float, default=2.0, help="The factor.")
    def scaled_command(req: Request, by: float) -> render.Output:
        \"\"\"EXPR's value and gradient times a factor (this line is its summary in --help).\"\"\"
        ev = calculus.evaluate(req.program, req.values, wrt=req.wrt)
        grads = [{name: by * g for name, g in row.items()} for row in ev.grad]
        return render.EvalOutput([by * v for v in ev.value], grads)

The function computes and returns a :class:`gradcli.render.Output` (or None when it wrote its
answer itself); it never prints and never parses options. The decorator gives it EXPR, ``-f``,
``--vars``, ``--plugin``, ``--precision``, one option per variable (``--x 2``) and, unless told
otherwise, ``--wrt``, ``--json``, ``-o FILE`` and ``--batch [FILE]`` (``quiet=True`` adds ``-q``).
Before calling it, the decorator parses the expression, reads and checks the values; after, it
writes the answer as text, JSON or arrays, once or once per batch line, and sets the exit status:
0 success, 1 evaluation failed (or the answer says it failed), 2 bad usage.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, NoReturn

import click

from . import budget

if TYPE_CHECKING:
    from .program import Program
    from .render import Output, Style

# Caps that keep a mistake from exhausting the machine; both can be raised (README: Reliability).
MAX_EXPRESSION = 16_000_000  # characters: a 1,000,000-term sum is about 4 million
MAX_OUTPUT = 10_000_000  # numbers written as JSON: about 200 MB of text
# Functions one differentiable backward pass may visit: the Hessian of a 1,000,000-term sum
# still fits, while tanh's --order, whose graph triples with each order, stops at order 15.
MAX_NODES = 1_000_000
# An error message line longer than this is cut in the middle (a 10-million-character name).
MESSAGE_LINE_LIMIT = 1000
# The environment variable that lists plugin files (gradcli.plugins.ENV_VAR, which a test holds
# to this: the plugins module is imported only when there is a plugin to load).
PLUGINS_VAR = "GRADCLI_PLUGINS"


class Settings:
    """The options of ``gradcli`` itself (before the command), shared by every command."""

    __slots__ = ("debug", "max_expression", "max_output", "max_nodes")

    def __init__(
        self,
        debug: bool = False,
        max_expression: int = MAX_EXPRESSION,
        max_output: int = MAX_OUTPUT,
        max_nodes: int = MAX_NODES,
    ) -> None:
        self.debug, self.max_expression, self.max_output = debug, max_expression, max_output
        self.max_nodes = max_nodes


def current_settings() -> Settings:
    """The settings of the command line being run (the defaults outside one)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj if isinstance(obj, Settings) else Settings()


# --- errors ---------------------------------------------------------------------------------------


def bounded(message: str, limit: int = MESSAGE_LINE_LIMIT) -> str:
    """``message`` with each line cut to ``limit`` characters, its start and end kept."""
    lines = message.split("\n")
    for i, line in enumerate(lines):
        if len(line) > limit:
            head, tail = limit * 3 // 4, limit // 4
            lines[i] = (
                f"{line[:head]} ... [{len(line) - head - tail:,} characters left out] ... {line[-tail:]}"
            )
    return "\n".join(lines)


class CliError(click.ClickException):
    """One clear message on stderr, prefixed 'error:', with the exit status it says."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: IO[Any] | None = None) -> None:
        # The one place errors are printed: whatever they quote, they stay a readable size.
        click.echo(f"error: {bounded(self.format_message())}", err=True)


def fail(message: str, exit_code: int = 1) -> NoReturn:
    raise CliError(message, exit_code)


def describe(exc: BaseException, excerpt: bool = True) -> tuple[str, int] | None:
    """The message and exit status for an exception from the library, a resource or a plugin
    (:mod:`gradcli.failures`), or None for one that is not the user's doing (a bug, Ctrl-C).
    ``excerpt``: show where in the expression (line and caret)."""
    from . import failures
    from .calculus import CalculusError
    from .functions.registry import RegistryError
    from .inputs import InputError
    from .plugins import PluginError
    from .program import EvaluationError, ExpressionError

    if isinstance(exc, click.ClickException):
        return exc.format_message(), exc.exit_code
    if isinstance(exc, ExpressionError):
        text = str(exc) if excerpt else exc.message
        return text, 1 if isinstance(exc, EvaluationError) else 2
    if isinstance(exc, (InputError, PluginError, RegistryError)):
        return str(exc), 2
    if isinstance(exc, CalculusError):
        return str(exc), getattr(exc, "exit_code", 2)
    if isinstance(exc, RecursionError):
        return "the expression is nested too deeply for this Python", 1
    if isinstance(exc, (ValueError, TypeError, IndexError, ArithmeticError)):
        return str(exc) or "the evaluation failed", 1
    return failures.describe(exc)  # memory, --max-nodes, a plugin's failure (even SystemExit)


def translate_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's exceptions into one-line errors with their exit status."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with budget.loading():  # NumPy first loads here, with its OpenBLAS (see gradcli.budget)
            from .engine import limited_nodes

        try:
            with limited_nodes(current_settings().max_nodes):
                return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except BaseException as exc:  # a plugin's SystemExit is its failure, not gradcli's exit
            described = describe(exc)
            if described is None:
                raise
            _quiet_event_loops()
            fail(*described)

    return wrapper


def _quiet_event_loops() -> None:
    """After an error, its one line is all that is said. zarr reads a store's chunks as tasks on
    an event loop of its own; where one chunk cannot be read, the others are left pending, and
    at exit asyncio logs each one destroyed and Python each coroutine closed on a closed loop,
    with tracebacks (10,000 lines for a store of 10,000 chunks). In this process, which is about
    to end, asyncio's logger is turned off, and Python's reports of such coroutines ("Exception
    ignored in", "coroutine ... was never awaited") are dropped."""
    if "asyncio" in sys.modules:
        import logging
        import warnings

        logging.getLogger("asyncio").disabled = True
        sys.unraisablehook = _dropped
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)


def _dropped(unraisable: Any) -> None:
    """An exception Python could not raise (in a finalizer), not reported: see above."""


# The progress bar on stderr now, if any: a warning is written above it, not into its line.
_progress: list[Any] = []


def warn(line: str) -> None:
    """One line of warning on stderr; over a progress bar, the bar's line is cleared first and
    the bar drawn again below the warning."""
    if not _progress:
        click.echo(line, err=True)
        return
    bar = _progress[-1]
    click.echo("\r\x1b[K" + line, file=bar.file)
    bar._last_line = None  # (click draws only a line that changed: this one must be drawn again)
    bar.render_progress()


@contextlib.contextmanager
def progress_bar(length: int, label: str) -> Iterator[Callable[[int], None]]:
    """click's progress bar on stderr, over which :func:`warn` writes; yields its ``update``."""
    with click.progressbar(length=length, file=sys.stderr, label=label) as bar:
        _progress.append(bar)
        try:
            yield bar.update
        finally:
            _progress.remove(bar)


def fp_warnings() -> Any:
    """NumPy's floating-point warnings as one line each on stderr, naming the function."""
    from .fpe import reporting

    return reporting(warn)


def terminal_width() -> int:
    """``$COLUMNS``, else the terminal's width, else 80 (as ``shutil.get_terminal_size``, whose
    module is costly to import)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class WholeNumber(click.IntRange):
    """``click.IntRange`` in plain words: "'abc' is not a valid integer" (click's says "integer
    range"), and INTEGER in the help."""

    name = "integer"


# --- the inputs: one wording per condition --------------------------------------------------------


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def missing_value(missing: Sequence[str], names: Sequence[str]) -> str:
    """The message for variables without a value (the same as gradcli.calculus's)."""
    return f"missing value for {_quoted(missing)} (variables: {', '.join(names) or 'none'})"


def no_variable(name: str, names: Sequence[str]) -> str:
    """The message for a value given to a name that is not a variable of the expression."""
    from .language import CONSTANTS

    if name in CONSTANTS:
        return (
            f"no variable {name!r}: {name} is the constant {CONSTANTS[name]!r}; to use a variable, "
            f"give it another name in the expression (e.g. {name}_)"
        )
    import difflib

    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"no variable {name!r}{hint} (variables: {', '.join(names) or 'none'})"


def check_inputs(names: Sequence[str], values: Mapping[str, Any], *, required: bool = True) -> None:
    """Refuse values for names that are not variables and, if ``required``, variables without a
    value (usage errors, exit status 2). Linear in the number of names."""
    known = set(names)
    for name in values:
        if name not in known:
            fail(no_variable(name, names), 2)
    if required:
        missing = [n for n in names if n not in values]
        if missing:
            fail(missing_value(missing, names), 2)


# --- the command line of an expression command ----------------------------------------------------

_VARIABLES = "gradcli.variables"
_HELP_EXPR = "gradcli.help_expr"


def _looks_like_option(arg: str, own: set[str]) -> bool:
    return arg in own or arg == "--" or (arg.startswith("--") and arg[2:].split("=", 1)[0].isidentifier())


def split_variable_args(args: list[str], own: set[str]) -> tuple[list[str], list[tuple[str, str | None]]]:
    """Separate ``--NAME VALUE`` pairs that are not the command's own options, wherever they
    stand (click would take ``--x`` for the expression in ``eval --x 2 "x*3"``). A ``--NAME``
    followed by another option has no value (None). Values may start with '-': ``--x -2``."""
    head: list[str] = []
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            head.extend(args[i:])
            break
        if arg.startswith("--") and len(arg) > 2 and arg.split("=", 1)[0] not in own:
            name, eq, value = arg[2:].partition("=")
            if not eq:
                following = args[i + 1] if i + 1 < len(args) else None
                if following is None or _looks_like_option(following, own):
                    pairs.append((name, None))
                    i += 1
                    continue
                value = following
                i += 1
            pairs.append((name, value))
        else:
            head.append(arg)
        i += 1
    return head, pairs


class ExpressionCommand(click.Command):
    """A command whose options include one per variable of its expression (``--x 2``).

    ``--help`` after an expression lists that expression's variables; shell completion offers
    them after ``--``, and file names after ``@``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {}).update(ignore_unknown_options=True, allow_extra_args=True)
        super().__init__(*args, **kwargs)

    def own_options(self, ctx: click.Context) -> set[str]:
        return {opt for p in self.get_params(ctx) for opt in (*p.opts, *p.secondary_opts)}

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        own, pairs = split_variable_args(args, self.own_options(ctx))
        if "--help" in own or "-h" in own:
            ctx.meta[_HELP_EXPR] = next((a for a in own if not a.startswith("-")), None)
        rest = super().parse_args(ctx, own)
        ctx.meta[_VARIABLES] = pairs
        if not ctx.resilient_parsing:  # (shell completion parses what is typed so far)
            _refuse_extra_arguments(ctx, ctx.args)
        return rest

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        text = ctx.meta.get(_HELP_EXPR)
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
        # A variable named as one of the command's own options (json, wrt) is given through --vars.
        own = {o for p in self.get_params(ctx) for o in [*p.opts, *p.secondary_opts]}
        kinds = "number, [list], nan, inf, or @file (.npy .npz .json .csv)"
        with formatter.section("Variables of this expression"):
            formatter.write_dl(
                [
                    (
                        f"--vars '{{\"{n}\": VALUE}}'",
                        f"its value in JSON (--{n} is one of the command's options)",
                    )
                    if f"--{n}" in own
                    else (f"--{n} VALUE", kinds)
                    for n in names
                ]
                or [("(none)", "")]
            )

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        if incomplete.startswith("@"):
            return _complete_at_file(ctx, self.params[0], incomplete)
        items = super().shell_complete(ctx, incomplete)
        if incomplete.startswith("-") and ctx.params.get("expr"):
            given = {name for name, _ in ctx.meta.get(_VARIABLES, [])}
            for name in _variables_of(ctx.params["expr"]):
                option = f"--{name}"
                if option.startswith(incomplete) and name not in given:
                    items.append(CompletionItem(option, help="a variable of the expression"))
        return items


def _complete_at_file(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from click.shell_completion import CompletionItem

    if not incomplete.startswith("@"):
        return []
    return [CompletionItem(f"@{path}") for path in _paths_starting_with(incomplete[1:])]


def _variables_of(text: str) -> tuple[str, ...]:
    from .language import parse
    from .program import ExpressionError

    try:
        return parse(text).inputs
    except ExpressionError:
        return ()


def _paths_starting_with(prefix: str) -> Iterator[str]:
    """Files and directories (with a trailing '/') whose path starts with ``prefix``."""
    folder, _, start = prefix.rpartition("/")
    try:
        entries = sorted(os.scandir(os.path.expanduser(folder) if folder else "."), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(start) and (start.startswith(".") or not entry.name.startswith(".")):
            path = f"{folder}/{entry.name}" if folder else entry.name
            yield path + "/" if entry.is_dir() else path


def _other_commands_with(ctx: click.Context, option: str) -> list[str]:
    root = ctx.find_root()
    group = root.command
    if not isinstance(group, click.Group):
        return []
    found = []
    for name in group.list_commands(root):
        command = group.get_command(root, name)
        if command is not None and command is not ctx.command:
            if any(option in (*p.opts, *p.secondary_opts) for p in command.params):
                found.append(name)
    return found


def _own_long_options(ctx: click.Context) -> list[str]:
    command = ctx.command
    if not isinstance(command, ExpressionCommand):
        return []
    return sorted(o[2:] for o in command.own_options(ctx) if o.startswith("--"))


def refuse_mistyped_options(ctx: click.Context) -> None:
    """Before saying the expression is missing: a ``--NAME`` close to one of the command's own
    options took the expression as its value (``eval --jsn "x*x"``)."""
    import difflib

    for name, _ in ctx.meta.get(_VARIABLES, []):
        close = difflib.get_close_matches(name, _own_long_options(ctx), n=1)
        if close:
            fail(f"no such option '--{name}' (did you mean --{close[0]}?)", 2)


def no_such_option(ctx: click.Context, name: str, variables: Sequence[str]) -> str:
    """The message for ``--NAME`` that is neither an option of this command nor a variable."""
    import difflib

    from .language import CONSTANTS

    option = f"--{name}"
    if name in CONSTANTS:
        return f"no such option {option!r}, and {no_variable(name, variables)}"
    close = difflib.get_close_matches(name, _own_long_options(ctx), n=1)
    if close:
        return f"no such option {option!r} (did you mean --{close[0]}?)"
    return option_elsewhere(ctx, option) or f"no such option {option!r}, and {no_variable(name, variables)}"


def option_elsewhere(ctx: click.Context, option: str) -> str | None:
    """``no such option '-o' for explain (check, eval and graph have it)``, or None where no
    other command has the option either."""
    others = _other_commands_with(ctx, option)
    if not others:
        return None
    if len(others) == 1:
        return f"no such option {option!r} for {ctx.info_name} ({others[0]} has it)"
    named = ", ".join(others[:-1]) + " and " + others[-1]
    return f"no such option {option!r} for {ctx.info_name} ({named} have it)"


def variable_texts(ctx: click.Context, variables: Sequence[str]) -> dict[str, str]:
    """The ``--NAME VALUE`` pairs of the command line as {name: text}, every name a variable."""
    pairs: list[tuple[str, str | None]] = ctx.meta.get(_VARIABLES, [])
    known = set(variables)
    for name, _ in pairs:
        if name not in known:
            fail(no_such_option(ctx, name, variables), 2)
    out: dict[str, str] = {}
    for name, value in pairs:
        if value is None:
            fail(f"option --{name} needs a value", 2)
        if name in out:
            fail(f"option --{name} is given twice", 2)
        out[name] = value
    return out


def read_expression(expr: str | None, expr_file: str | None, limit: int) -> str | None:
    """The expression from the argument, or from ``-f FILE`` (``-`` for stdin; a UTF-8 BOM is
    accepted), read no further than ``limit`` characters."""
    import io

    from .inputs import read_capped, shown

    if expr_file is None:
        return expr
    if expr is not None:
        fail("give the expression either as an argument or with -f FILE, not both", 2)
    source = f"-f {shown(expr_file)}"
    too_long = f"the expression is more than --max-expression {limit:,} characters"
    try:
        if expr_file == "-":
            if sys.stdin is None:
                fail("-f -: standard input is closed", 2)
            stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig")
            try:
                return read_capped(stream, limit, source, too_long)
            finally:
                stream.detach()  # stdin stays open for --vars - or the rest of the program
        with open(expr_file, encoding="utf-8-sig") as fh:
            return read_capped(fh, limit, source, too_long)
    except OSError as exc:
        hint = ""
        if isinstance(exc, FileNotFoundError) and not os.path.basename(expr_file).isidentifier():
            from .language import parse
            from .program import ExpressionError

            try:
                parse(expr_file)
                hint = " (-f takes a file; the expression itself goes without -f)"
            except ExpressionError:
                pass
        fail(f"{source}: {exc.strerror or exc}{hint}", 2)


def load_program(
    expr: str | None, plugins: Sequence[str], settings: Settings, env: Mapping[str, str] = os.environ
) -> Program:
    """Load the plugins asked for (``plugins``, then those ``env`` names), then parse the
    expression.

    Installed entry points (group ``gradcli.functions``) are scanned only when the expression
    names a function that is not registered: scanning them costs time on every start.
    """
    from .functions.registry import REGISTRY
    from .language import parse
    from .program import ExpressionError

    if plugins or env.get(PLUGINS_VAR, "").strip():  # (gradcli.plugins is imported only for one)
        from .plugins import load_plugins

        load_plugins(list(plugins), env, entry_points=False)
    limit = settings.max_expression
    if expr is not None and len(expr) > limit:
        fail(f"the expression is {len(expr):,} characters, more than --max-expression {limit:,}", 2)
    if expr is None or expr.startswith("--") and expr[2:].isidentifier():
        # ('--x' would parse as -(-x), but here it is an option whose expression is missing)
        ctx = click.get_current_context()
        taken = _expression_taken_by_an_option(ctx)
        if taken is not None:
            option, value = taken
            fail(
                f"missing the expression: option {option} took {value!r} as its value "
                "(give the option its own value, or put the expression before it)",
                2,
            )
        fail(f"missing the expression: {ctx.command_path} EXPR [--x VALUE ...] (see --help)", 2)
    try:
        return parse(expr)
    except ExpressionError as exc:
        if not exc.message.startswith("unknown function"):
            raise
        from .plugins import load_plugins

        before = len(REGISTRY)
        load_plugins([], env={}, entry_points=True)
        if len(REGISTRY) == before:
            raise
        return parse(expr)


def _expression_taken_by_an_option(ctx: click.Context) -> tuple[str, str] | None:
    """The option (``-o/--output``) and the value it took from the command line, where that
    value reads as the missing expression (``eval --wrt "x*y" --x 1``): an expression that is
    more than a name, or the name of a variable given a value."""
    from click.core import ParameterSource

    from .language import parse
    from .program import ExpressionError

    given = {name for name, _ in ctx.meta.get(_VARIABLES, [])}
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if not isinstance(param, click.Option) or not isinstance(value, str):
            continue
        if ctx.get_parameter_source(param.name or "") is not ParameterSource.COMMANDLINE:
            continue
        if value.isidentifier() and value not in given:
            continue
        try:
            parse(value)
        except ExpressionError:
            continue
        return "/".join(param.opts), value
    return None


def collect_values(program: Program, texts: Mapping[str, str], vars_text: str | None) -> dict[str, Any]:
    """The values of ``--vars`` with those of the variable options over them (the command line
    is more specific than a file)."""
    from .inputs import parse_value, parse_vars

    values: dict[str, Any] = dict(parse_vars(vars_text)) if vars_text is not None else {}
    check_inputs(program.inputs, values, required=False)
    values.update({name: parse_value(text, name) for name, text in texts.items()})
    return values


def parse_wrt(wrt: str | None, names: Sequence[str]) -> tuple[str, ...] | None:
    if wrt is None:
        return None
    chosen = tuple(n.strip() for n in wrt.split(",") if n.strip())
    if not chosen:  # (an unset shell variable: differentiating nothing was surely not meant)
        known_names = ", ".join(names) or "none"
        fail(f"--wrt {wrt!r} names no variable: give them as --wrt x,y (variables: {known_names})", 2)
    known = set(names)
    for n in chosen:
        if n not in known:
            fail(f"--wrt: {no_variable(n, names)}", 2)
    return chosen


# --- the request ----------------------------------------------------------------------------------


class Request:
    """What an expression command computes from: the parsed ``program``, its ``values`` (every
    variable's, unless the command accepts fewer), the variables to differentiate (``wrt``, None
    for all), the ``settings`` of gradcli itself and the ``style`` of its text."""

    __slots__ = ("program", "values", "wrt", "settings", "style")

    def __init__(
        self,
        program: Program,
        values: dict[str, Any],
        wrt: tuple[str, ...] | None,
        settings: Settings,
        style: Style,
    ) -> None:
        self.program, self.values, self.wrt = program, values, wrt
        self.settings, self.style = settings, style

    def with_values(self, values: dict[str, Any]) -> Request:
        return Request(self.program, values, self.wrt, self.settings, self.style)

    @property
    def variables(self) -> tuple[str, ...]:
        """The variables differentiated: ``wrt``, or every input."""
        return self.wrt if self.wrt is not None else self.program.inputs

    def refuse_more_numbers(self, count: int) -> None:
        """Refuse, before the work, an answer of more numbers than ``--max-output``."""
        limit = self.settings.max_output
        if count > limit:
            fail(
                f"the result has {count:,} numbers, more than --max-output {limit:,}: raise the limit, "
                "narrow it with --wrt, or reduce it in the expression (e.g. sum(...))",
                2,
            )


# --- where the answer goes ------------------------------------------------------------------------


# What a write to a full or failing standard output raises, written by click.echo or print
# (files given with -o say so themselves, naming the file).
WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT, errno.EBADF})


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush of what could not be
    written stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


# POSIX writes at most this many bytes to a pipe all at once or not at all.
PIPE_BUF = 4096


def _whole_lines(data: bytes) -> Iterator[bytes]:
    """``data`` in pieces of whole lines of at most :data:`PIPE_BUF` bytes (a longer line alone):
    each piece goes out whole or not at all, so a Ctrl-C between writes never cuts a line."""
    start, size = 0, len(data)
    while start < size:
        end = data.rfind(b"\n", start, start + PIPE_BUF) + 1
        if end <= start:  # one line longer than PIPE_BUF
            end = data.find(b"\n", start) + 1 or size
        yield data[start:end]
        start = end


def dash_is_stdout(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The callback of an ``-o FILE`` option: ``-o -`` is standard output (None), as it is for
    plot and most tools (it once wrote a file named ``-``)."""
    value = file_or_dash(ctx, param, value)
    return None if value == "-" else value


def file_name(
    ctx: click.Context, param: click.Parameter, value: str | None, dash: bool | str = False
) -> str | None:
    """The callback of an option that names a file: an empty name (``-o ""``, an unset shell
    variable) is a usage error, not "cannot write : No such file or directory". ``dash``: the
    stream that ``-`` stands for (True: standard output)."""
    if value == "":
        stream = "standard output" if dash is True else dash
        raise click.BadParameter(
            "an empty file name; give a FILE" + (f", or - for {stream}" if stream else "")
        )
    return value


def file_or_dash(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """:func:`file_name` for an option where ``-`` is standard output."""
    return file_name(ctx, param, value, dash=True)


def input_or_dash(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """:func:`file_name` for an option that reads a file, where ``-`` is standard input."""
    return file_name(ctx, param, value, dash="standard input")


def file_names(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """:func:`file_name` for each of a repeatable option's files (``--plugin``)."""
    for value in values:
        file_name(ctx, param, value)
    return values


class Sink:
    """Where answers go, whole lines (or a whole file's bytes) at a time: standard output, or
    ``-o FILE``.

    A write that fails (disk full, ``ulimit -f``, standard output closed) is one error with exit
    status 1. Bytes go straight to the file descriptor, so a short write is seen where it
    happens (a buffer would report it one write later, if at all); on a regular file, what was
    written of the failing piece is cut off again, so the output holds whole lines only. A
    closed pipe (``| head -1``) is left to end the program quietly.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.where = "the output" if path is None else path
        self.fd: int | None = None
        self.regular = False
        self.stream: IO[str] | None = None
        if path is None:
            self.stream = sys.stdout
            if self.stream is None:
                fail("cannot write the output: standard output is closed", 1)
            try:
                self.fd = self.stream.fileno()
            except (OSError, ValueError):  # a stream in memory (click's test runner, an embedder)
                self.fd = None
        else:
            try:
                self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            except OSError as exc:
                fail(f"cannot write {path}: {exc.strerror or exc}", 1)
        if self.fd is not None:
            import stat

            try:
                self.regular = stat.S_ISREG(os.fstat(self.fd).st_mode)
            except OSError:
                self.regular = False

    def line(self, text: str) -> None:
        self.write((text + "\n").encode("utf-8"))

    def write(self, data: bytes) -> None:
        start = None
        written = 0  # bytes of whole pieces written
        try:
            if self.fd is None:
                assert self.stream is not None
                binary = getattr(self.stream, "buffer", None)
                if binary is not None:
                    binary.write(data)
                else:
                    self.stream.write(data.decode("utf-8"))
                self.stream.flush()
                return
            if self.stream is not None:
                self.stream.flush()  # what was printed before (help, a plugin) comes first
            if self.regular:
                start = os.lseek(self.fd, 0, os.SEEK_CUR)
            for piece in _whole_lines(data):
                view = memoryview(piece)
                while view:
                    view = view[os.write(self.fd, view) :]
                written += len(piece)
        except BrokenPipeError:
            raise
        except OSError as exc:
            if start is not None:
                # Keep the whole lines that made it (a batch writes many at once), cut the rest.
                whole = written
                try:
                    os.ftruncate(self.fd, start + whole)  # type: ignore[arg-type]
                except OSError:
                    pass
            if self.path is None:
                silence_stdout()
            fail(f"cannot write {self.where}: {exc.strerror or exc}", 1)

    def close(self) -> None:
        if self.path is not None and self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _suffix(path: str | None) -> str:
    return os.path.splitext(path.rstrip("/" + os.sep))[1].lower() if path else ""  # out.zarr/ too


def _npy_array(output: Output, path: str) -> Any:
    chosen = [(k, a) for k, a in output.arrays().items() if k.startswith(output.primary + "/")]
    if len(chosen) != 1:
        names = ", ".join(k for k, _ in chosen) or "none"
        fail(
            f"-o {path}: a .npy file holds one array, and the result has {len(chosen)} ({names}): "
            "write a .npz file, or choose one variable with --wrt",
            2,
        )
    return chosen[0][1]


def deliver(output: Output, req: Request, *, as_json: bool, path: str | None, quiet: bool) -> None:
    """Write ``output`` as the user asked: ``-o FILE`` (.npy, .npz, else JSON), JSON, text, or
    nothing (``-q``); then the exit status it calls for."""
    import numpy as np

    from .render import dumps

    suffix = _suffix(path)
    if suffix in (".npy", ".npz"):
        assert path is not None
        import io

        buffer = io.BytesIO()
        if suffix == ".npy":
            np.save(buffer, _npy_array(output, path))
        else:
            arrays: dict[str, Any] = output.arrays()
            np.savez(buffer, **arrays)
        sink = Sink(path)
        sink.write(buffer.getvalue())
        sink.close()
    elif path is not None or as_json and not quiet:  # (-q prints nothing, as grep -q; a file is written)
        req.refuse_more_numbers(output.numbers())
        sink = Sink(path)
        for data in output.json_lines():
            sink.line(dumps(data))
        sink.close()
    elif not quiet:
        Sink().line(output.text(req.style))
    exit_status(output)


def exit_status(output: Output) -> None:
    """End with the exit status the answer calls for: 1 with its error (``--strict``) or when it
    failed (a check that did not pass), else go on (0)."""
    if output.error is not None:
        fail(output.error, 1)
    if output.failed is not None:
        click.get_current_context().exit(1)


# --- the decorator --------------------------------------------------------------------------------

# The parameters every expression command has, and those it has unless told otherwise.
_COMMON = (
    "expr",
    "expr_file",
    "vars_text",
    "plugins",
    "precision",
    "wrt",
    "as_json",
    "output",
    "batch",
    "quiet",
    "dask",
)


def common_options(
    *,
    wrt: bool = True,
    json: bool = True,
    output: bool = True,
    batch: bool = True,
    quiet: bool = False,
    precision: bool = True,
    dask: bool = False,
    arrays: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options every expression command shares (EXPR, -f, --vars, --plugin, --precision) and
    those it has as asked, as one decorator. :func:`expression_command` uses it; a command that
    reads its variables otherwise (``plot``'s ranges) builds on it with :func:`variable_texts`,
    :func:`collect_values` and the other functions here."""
    options = _option_list(wrt, json, output, batch, quiet, precision, dask, arrays)

    def apply(function: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            function = option(function)
        return function

    return apply


def _option_list(
    wrt: bool,
    as_json: bool,
    output: bool,
    batch: bool,
    quiet: bool,
    precision: bool,
    dask: bool,
    arrays: bool = True,
) -> list[Callable[..., Any]]:
    options: list[Callable[..., Any]] = [
        click.argument("expr", required=False),
        click.option(
            "-f",
            "--file",
            "expr_file",
            type=click.Path(dir_okay=False, allow_dash=True),
            callback=input_or_dash,
            help="Read the expression from FILE (- for stdin).",
        ),
        click.option(
            "--vars",
            "vars_text",
            metavar="JSON|@FILE|-",
            shell_complete=_complete_at_file,
            help='All values at once: \'{"x": 2, "y": [1, 2]}\' (options like --x override them).',
        ),
        click.option(
            "--plugin",
            "plugins",
            multiple=True,
            type=click.Path(dir_okay=False),
            callback=file_names,
            metavar="FILE.py",
            help="Load functions from a Python file (repeatable; also $GRADCLI_PLUGINS).",
        ),
    ]
    if wrt:
        options.append(
            click.option(
                "--wrt",
                metavar="X,Y",
                help="Differentiate only with respect to these variables (the others are held constant).",
            )
        )
    if as_json:
        options.append(click.option("--json", "as_json", is_flag=True, help="One line of JSON (see below)."))
    if precision:
        options.append(
            click.option(
                "--precision",
                type=WholeNumber(1, 17),
                metavar="N",
                help="Round numbers in text to N significant digits [default: every digit needed to "
                "read each number back exactly].",
            )
        )
    if output:
        options.append(
            click.option(
                "-o",
                "--output",
                type=click.Path(allow_dash=True),
                callback=dash_is_stdout,
                metavar="FILE",
                help="Write the result to FILE instead of stdout: .npy (the one derivative), .npz "
                "(every array: value, grad/x, ...), .zarr (every array, as a Zarr store written by "
                "Dask), anything else one line of JSON."
                if arrays
                else "Write the result to FILE instead of stdout, as one line of JSON.",
            )
        )
    if batch:
        options.append(
            click.option(
                "--batch",
                is_flag=False,
                flag_value="-",
                default=None,
                type=click.Path(dir_okay=False, allow_dash=True),
                callback=input_or_dash,
                metavar="[FILE]",
                help="Read one JSON object of values per line (stdin, or FILE) and write one JSON "
                'result per line; a bad line gives {"line": N, "error": "..."} in its place.',
            )
        )
    if quiet:
        options.append(
            click.option("-q", "--quiet", is_flag=True, help="Print nothing: the exit status says it.")
        )
    if dask:
        options.append(
            click.option(
                "--dask",
                is_flag=False,
                flag_value="local",
                default=None,
                metavar="[ADDRESS]",
                help="Compute on a Dask cluster: one started on this machine, or the scheduler at "
                "ADDRESS (tcp://host:8786). Arrays become Dask arrays; results larger than "
                "--max-output go to -o out.zarr.",
            )
        )
    return options


#: Each expression command's function by the command's name: what a worker runs (``--dask``).
COMMANDS: dict[str, Callable[..., Output | None]] = {}


def expression_command(
    name: str,
    *,
    values: str = "all",
    wrt: bool = True,
    json: bool = True,
    output: bool = True,
    batch: bool = True,
    quiet: bool = False,
    dask: bool = False,
    epilog: str | None = None,
    rows: Callable[..., Any] | None = None,
    arrays: bool = True,
) -> Callable[[Callable[..., Output | None]], click.Command]:
    """Make ``function(req, **its own options) -> Output`` the command ``name`` (see the module's
    docstring). ``values="all_or_none"``: the command also runs without any value (``graph``
    draws the structure); the other flags give or withhold the common options. ``rows(req,
    list of values, **its own options)`` answers many batch lines at once (an object with
    ``lines()`` and ``numbers()``, as :class:`gradcli.render.EvalRows`; None where it cannot):
    runs of lines with the same shapes go to it as one batch. ``arrays=False``: its answer is a
    report, which ``-o FILE`` writes as JSON only (not .npy, .npz or .zarr)."""
    if values not in ("all", "all_or_none"):
        raise ValueError(f"values is 'all' or 'all_or_none', not {values!r}")

    def decorate(function: Callable[..., Output | None]) -> click.Command:
        COMMANDS[name] = function
        given = {"wrt": wrt, "as_json": json, "output": output, "batch": batch, "quiet": quiet, "dask": dask}
        keys = [key for key in _COMMON if given.get(key, True)]

        @functools.wraps(function)
        def callback(**kwargs: Any) -> None:
            common = dict.fromkeys(_COMMON) | {key: kwargs.pop(key) for key in keys}
            _run(function, values, common, kwargs, rows, arrays)

        callback.__click_params__ = list(getattr(function, "__click_params__", []))  # type: ignore[attr-defined]
        command = common_options(
            wrt=wrt, json=json, output=output, batch=batch, quiet=quiet, dask=dask, arrays=arrays
        )(translate_errors(callback))
        return click.command(name, cls=ExpressionCommand, epilog=epilog)(command)

    return decorate


def _refuse_extra_arguments(ctx: click.Context, args: Sequence[str]) -> None:
    if not args:
        return
    arg = args[0]
    if arg.startswith("-") and arg[1:].isidentifier():
        fail(option_elsewhere(ctx, arg) or f"no such option {arg!r} (a variable is given as -{arg} VALUE)", 2)
    fail(
        f"unexpected argument {arg!r}: the expression is one argument (quote it), variables are --NAME VALUE",
        2,
    )


def _refuse_two_readers_of_stdin(common: Mapping[str, Any]) -> None:
    if common["expr_file"] == "-" and (common["vars_text"] or "").strip() == "-":
        fail("-f - and --vars - both read standard input: give one of them as a file", 2)
    if common["batch"] != "-":
        return
    if common["expr_file"] == "-":
        fail(
            "-f - and --batch both read standard input (the expression, then the lines of values): "
            "give the expression as an argument or with -f FILE, or the lines with --batch FILE",
            2,
        )
    if (common["vars_text"] or "").strip() == "-":
        fail(
            "--vars - and --batch both read standard input: give the values shared by every line "
            "as --vars @FILE.json or as options, or the lines with --batch FILE",
            2,
        )


def _run(
    function: Callable[..., Output | None],
    values_needed: str,
    common: dict[str, Any],
    own: dict[str, Any],
    rows: Callable[..., Any] | None = None,
    arrays: bool = True,
) -> None:
    from .render import Style

    ctx = click.get_current_context()
    settings = current_settings()
    _refuse_two_readers_of_stdin(common)
    batch_source, path, on_dask = common["batch"], common["output"], common["dask"]
    if not arrays and _suffix(path) in (".npy", ".npz", ".zarr"):
        fail(f"-o {path}: {ctx.info_name} writes a report, not arrays: -o FILE takes a JSON file here", 2)
    if batch_source is not None and _suffix(path) in (".npy", ".npz", ".zarr"):
        fail("--batch writes one line of JSON per line of values: -o FILE takes a JSON file here", 2)
    if batch_source is not None and path is not None and _same_file(batch_source, path):
        same = (
            f"--batch reads standard input from {path}, the file -o writes"
            if batch_source == "-"
            else f"--batch {batch_source} and -o {path} are the same file"
        )
        fail(f"{same}: writing the results would empty it before it is read", 2)
    if batch_source is not None and on_dask is not None:
        fail("--dask computes one evaluation on a cluster; --batch runs many small ones here: give one", 2)
    expr = read_expression(common["expr"], common["expr_file"], settings.max_expression)
    if expr is None:
        refuse_mistyped_options(ctx)
    program = load_program(expr, common["plugins"], settings)
    texts = variable_texts(ctx, program.inputs)
    _refuse_writing_an_input(path, common["expr_file"], common["vars_text"], texts)
    reading: Any = contextlib.nullcontext()
    if on_dask is not None:  # Zarr inputs checked here, read by the worker that builds the graph
        from .scale import for_a_cluster

        reading = for_a_cluster()
    with reading:
        values = collect_values(program, texts, common["vars_text"])
    from ._entry import started

    started()  # (what starting made is frozen, and the garbage collector runs as usual again)
    given_wrt = common["wrt"]
    wrt = parse_wrt(given_wrt, program.inputs) if given_wrt is not None else _without_data(texts, program)
    req = Request(program, values, wrt, settings, Style(common["precision"], terminal_width()))
    if _suffix(path) == ".npy" and len(req.variables) != 1:
        fail(f"-o {path}: a .npy file holds one derivative: choose one variable with --wrt, or write .npz", 2)
    if batch_source is not None:
        _run_batch(function, req, batch_source, path, own, rows, quiet=bool(common["quiet"]))
        return
    if values_needed == "all" or values:
        missing = [n for n in program.inputs if n not in values]
        if missing:
            hint = (
                ""
                if values_needed == "all"
                else ": give values for every variable or for none (the structure only)"
            )
            fail(missing_value(missing, program.inputs) + hint, 2)
    from .backend import is_lazy

    if on_dask is not None:
        assert expr is not None
        _run_on_cluster(function, req, expr, common, own)
        return
    if _suffix(path) == ".zarr" or any(is_lazy(v) for v in values.values()):
        _run_on_dask(function, req, common, own)
        return
    with fp_warnings():
        output = function(req, **own)
    if output is not None:
        deliver(output, req, as_json=bool(common["as_json"]), path=path, quiet=bool(common["quiet"]))


def _same_file(source: str, path: str) -> bool:
    """Whether the file read (``-``: standard input, redirected from a file) is ``path``."""
    try:
        if source == "-":
            if sys.stdin is None:
                return False
            read = os.fstat(sys.stdin.fileno())
        else:
            read = os.stat(source)
        written = os.stat(path)
    except (OSError, ValueError, AttributeError):  # (not there yet: nothing to lose)
        return False
    return (read.st_dev, read.st_ino) == (written.st_dev, written.st_ino)


def _refuse_writing_an_input(
    path: str | None, expr_file: str | None, vars_text: str | None, texts: Mapping[str, str]
) -> None:
    """Refuse ``-o FILE`` where FILE is read as an input too (``-f``, ``--vars @FILE``, ``--x
    @FILE``): the results would replace the expression or the data they came from."""
    if path is None:
        return
    sources = [("-f", expr_file)] if expr_file not in (None, "-") else []
    given = [("--vars", vars_text or ""), *((f"--{name}", text) for name, text in texts.items())]
    sources += [(option, text.strip()[1:]) for option, text in given if text.strip().startswith("@")]
    for option, source in sources:
        assert source is not None
        source = os.path.expanduser(source)
        if not os.path.exists(source):  # (@f.npz:KEY)
            source = source.rpartition(":")[0] or source
        if _same_file(source, path):
            fail(f"-o {path} is also read by {option}: writing the results would replace it", 2)


def _without_data(texts: Mapping[str, str], program: Program) -> tuple[str, ...] | None:
    """The variables differentiated when ``--wrt`` is not given: all but those read from Zarr
    stores, which are data (as PyTorch's tensors need no gradient unless asked): a gradient the
    size of a data set is asked for by name, and written to a store (``-o out.zarr``)."""
    from .inputs import zarr_source

    data = {n for n, text in texts.items() if zarr_source(text) is not None}
    return tuple(n for n in program.inputs if n not in data) if data else None


def _run_on_dask(
    function: Callable[..., Output | None], req: Request, common: dict[str, Any], own: dict[str, Any]
) -> None:
    """The command on Dask arrays in this process (Dask's threads): its graph built, then
    computed in one piece, and its answer printed or written to a Zarr store."""
    from . import scale

    path = common["output"]
    try:
        with fp_warnings():
            output = function(req, **own)
            if output is None:
                return
            if _suffix(path) == ".zarr":
                scale.write_zarr(path, output.arrays())
                exit_status(output)
                return
            output = scale.finish(output, req.settings.max_output)
    except scale.ClusterError as exc:
        fail(str(exc), exc.status)
    deliver(output, req, as_json=bool(common["as_json"]), path=path, quiet=bool(common["quiet"]))


def _run_on_cluster(
    function: Callable[..., Output | None],
    req: Request,
    expr: str,
    common: dict[str, Any],
    own: dict[str, Any],
) -> None:
    """The command on the cluster of ``--dask``: a worker parses the expression, builds the
    graph and hands it to the scheduler (:func:`gradcli.scale.on_cluster`); its answer is printed
    here, or written by the workers to a Zarr store. This process reads no data and builds no
    graph: its memory is the client's alone."""
    from . import scale
    from .remote import ClusterJob, build_on_worker

    job = ClusterJob(function, expr, req, common, own)
    try:
        with scale.cluster(scale.address_of(common["dask"])) as client:
            (kind, answer, warnings), results = scale.on_cluster(client, build_on_worker, job)
    except scale.ClusterError as exc:
        fail(str(exc), exc.status)
    for line in warnings:
        warn(line)
    if kind == "failed":
        fail(*answer)
    if kind == "written":
        exit_status(answer)
    elif kind == "answer":
        output = scale.filled(answer, results)
        path = common["output"]
        deliver(output, req, as_json=bool(common["as_json"]), path=path, quiet=bool(common["quiet"]))


class _Silent(Sink):
    """Where ``-q`` sends a batch's lines: nowhere."""

    def __init__(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        pass

    def line(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _run_batch(
    function: Callable[..., Output | None],
    req: Request,
    source: str,
    path: str | None,
    own: dict[str, Any],
    rows: Callable[..., Any] | None = None,
    quiet: bool = False,
) -> None:
    from . import batch

    def answer(values: dict[str, Any]) -> Output:
        merged = {**req.values, **values}  # the line is more specific than the command line
        check_inputs(req.program.inputs, merged)
        output = function(req.with_values(merged), **own)
        assert output is not None, "a command that writes its answer itself has no batch mode"
        req.refuse_more_numbers(output.numbers())
        return output

    def answer_rows(lines: list[dict[str, Any]]) -> Any:
        merged = [{**req.values, **values} for values in lines]
        check_inputs(req.program.inputs, merged[0])  # the lines of a run share their names
        assert rows is not None
        answers = rows(req, merged, **own)
        if answers is not None:  # every line of a run has the same shapes, so the same count
            req.refuse_more_numbers(answers.numbers())
        return answers

    # -q: no line is written (a file, -o FILE, would be), no progress bar; the summary of failed
    # lines is an error, on stderr, with the exit status. A progress bar is for someone watching
    # a terminal: the results go to -o FILE (on the terminal they would mix with the bar), and
    # stdout is a terminal too (stderr's is checked by batch.Progress): never in a pipe.
    silent = quiet and path is None
    progress = not quiet and path is not None and _stdout_is_terminal()
    sink = _Silent() if silent else Sink(path)
    with fp_warnings():
        summary = batch.run(
            source,
            answer,
            sink,
            progress=progress,
            answer_rows=answer_rows if rows is not None else None,
        )
    sink.close()
    if summary.failed:
        fail(summary.text(), 1)


def _stdout_is_terminal() -> bool:
    try:
        return bool(sys.stdout is not None and sys.stdout.isatty())
    except (AttributeError, ValueError):
        return False
