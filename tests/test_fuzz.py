"""Fuzzing ``gradcli eval`` through the CLI, in-process: whatever the text, the run ends with exit
status 0, 1 or 2, a failure is one message starting ``error:`` on stderr, and nothing escapes as a
traceback or an "internal error" (the CLI's name for an exception nobody expected).

Four sources of text: random strings, soups of the grammar's own terminals, mutations of valid
expressions (one character or token deleted, inserted, swapped or replaced), and random valid
expressions built from the registry, whose gradients must agree with central differences (or, where
a value is not finite, be flagged: ``--strict`` exits 1).

The run is bounded for CI: ``GRADCLI_FUZZ_EXAMPLES`` examples per test (default 60), drawn from a
fixed seed so that CI is reproducible. A longer run draws fresh examples each time::

    GRADCLI_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcli import calculus
from gradcli.cli import main
from gradcli.functions import REGISTRY, Spec
from gradcli.language import parse
from gradcli.program import ExpressionError

EXAMPLES = int(os.environ.get("GRADCLI_FUZZ_EXAMPLES", "60"))
settings.register_profile(
    "gradcli-fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    # CI runs the same examples every time; a long run asked for by hand explores anew.
    derandomize="GRADCLI_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)
FUZZ = settings(settings.get_profile("gradcli-fuzz"))

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
RUNNER = CliRunner()

# --- running the CLI and judging what came out ------------------------------------------------


def invoke(args: list[str], stdin: str | None = None) -> tuple[Result, list[warnings.WarningMessage]]:
    """``gradcli ARGS`` in-process, with every Python warning it raised (NumPy's included)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = RUNNER.invoke(main, args, input=stdin, catch_exceptions=True, prog_name="gradcli")
    return result, caught


def eval_args(expr: str, values: dict[str, Any] | None, extra: list[str] = ()) -> list[str]:
    """``eval [--vars JSON] [EXTRA] -- EXPR``: after ``--`` the text is the expression even when
    it looks like an option ("-h", "--json")."""
    args = ["eval"]
    if values is not None:
        args += ["--vars", json.dumps(values)]
    return [*args, *extra, "--", expr]


def assert_ends_cleanly(
    result: Result, caught: list[warnings.WarningMessage], what: str, batch: bool = False
) -> None:
    """Exit 0, 1 or 2; when not 0, one ``error:`` message (its line, and at most the expression
    line with a caret under it); never a traceback, an internal error or NumPy's raw warnings.
    In batch mode the errors of bad lines are on stdout, and stderr holds at most the summary."""
    __tracebackhide__ = True
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        import traceback

        tb = "".join(traceback.format_exception(*result.exc_info))  # type: ignore[misc]
        pytest.fail(f"{what}: raised {type(exc).__name__}: {exc}\n{tb}")
    err = result.stderr
    assert result.exit_code in (0, 1, 2), f"{what}: exit {result.exit_code}\n{err}"
    assert "Traceback" not in err, f"{what}:\n{err}"
    assert "internal error" not in err, f"{what}:\n{err}"
    raw = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not raw, f"{what}: NumPy's raw warning escaped: {raw[0].message}"
    lines = err.split("\n")[:-1] if err else []  # '\n' only: the text may hold other line breaks
    for line in lines:
        assert "RuntimeWarning" not in line, f"{what}:\n{err}"
    message = [line for line in lines if not line.startswith("warning: ")]
    if batch and result.exit_code == 1:
        assert len(message) == 1 and BATCH_SUMMARY.match(message[0]), f"{what}: stderr\n{err}"
        return
    if result.exit_code == 0 or batch:
        assert message == [], f"{what}: exit {result.exit_code} with stderr\n{err}"
        assert batch or result.stdout.strip(), f"{what}: exit 0 and nothing on stdout"
        return
    assert message, f"{what}: exit {result.exit_code} without a message"
    assert message[0].startswith("error: "), f"{what}: message does not start with 'error:'\n{err}"
    # A Python exception's name in the message means a failure nobody anticipated got through.
    assert not PYTHON_ERROR.match(message[0]), f"{what}: message names a Python exception\n{err}"
    assert len(message) <= 3, f"{what}: more than one message\n{err}"
    assert len(message[0]) <= 400, f"{what}: message too long\n{err}"


PYTHON_ERROR = re.compile(r"error: [A-Z]\w*(Error|Exception|Warning)\b")
BATCH_SUMMARY = re.compile(r"error: [\d,]+ of [\d,]+ lines failed \(first: line \d+, .+\)$")

# (An empty array, [], belongs here too once `mean([])` no longer lets NumPy's raw
# "RuntimeWarning: Mean of empty slice" through; see test_reliability.py.)
VALUES: list[Any] = [0.5, -1.5, 2.0, 0.0, 3, [], [1.0, 2.0, 3.0], [[1.0, -2.0], [3.0, 0.25]], "NaN", 1e300]


def inputs_of(expr: str) -> tuple[str, ...] | None:
    """The expression's variables, or None if it does not parse. Parsing may only fail with an
    ExpressionError: anything else is a bug."""
    try:
        return parse(expr).inputs
    except ExpressionError:
        return None


def check_expression(expr: str, data: st.DataObject, extra: list[str] = ()) -> None:
    """Run EXPR with a value for each of its variables and judge the run. Text that does not parse
    is a usage error (2); text that parses fails, if at all, while evaluating (1)."""
    names = inputs_of(expr)
    values = None
    if names is not None:
        values = {n: data.draw(st.sampled_from(VALUES), label=n) for n in names}
    result, caught = invoke(eval_args(expr, values, extra))
    assert_ends_cleanly(result, caught, f"eval {values} {extra} -- {expr!r}")
    if not extra:
        # '--x' alone is taken for an option whose expression is missing, even though it parses.
        looks_like_option = expr.startswith("--") and expr[2:].isidentifier()
        expected = {2} if names is None or looks_like_option else {0, 1}
        assert result.exit_code in expected, (
            f"{expr!r} with {values}: exit {result.exit_code}\n{result.stderr}"
        )


# --- text to try ------------------------------------------------------------------------------

# The grammar's terminals (grammars/gradcli.lark): names (the registry's, constants, the special
# form grad, variables), numbers, operators, brackets, separators, comments and line joins.
NAMES = sorted(REGISTRY) + ["x", "y", "z", "a", "b", "pi", "e", "grad", "axis", "shape", "index"]
NUMBERS = ["0", "1", "2", "2.5", ".5", "3.", "1e3", "1e-3", "1E+2", "1e400", "0.0", "10", "100000"]
PUNCTUATION = ["+", "-", "*", "/", "@", "**", "^", "(", ")", "[", "]", ",", ";", "=", ":", "\n", "\r\n"]
OTHER = [" ", "\t", "# note\n", "\\\n", "$", "'", '"', "!", "{", "}", ".", "?", "&", "\x00", "é"]
TOKENS = NAMES + NUMBERS + PUNCTUATION + OTHER

token_soup = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=24).flatmap(
    lambda toks: st.lists(st.sampled_from(["", " "]), min_size=len(toks), max_size=len(toks)).map(
        lambda gaps: "".join(g + t for g, t in zip(gaps, toks))
    )
)
grammar_chars = st.text(alphabet="".join(sorted(set("".join(TOKENS)))), max_size=40)


def _seed_expressions() -> list[str]:
    seeds = [
        "add(square(x), square(y))",
        "x**2 + y**2",
        "sum(x * [1, 2, 3])",
        "a = x*y; b = sin(a); a + b",
        "s, c = sincos(x); s*c",
        "-x**2 + 2**3**2",
        "x[0, 1:2] + sum(x[:, ::-1], axis=0)",
        "logsumexp(x, axis=-1) @ y",
        "grad(x**3, x) + grad(grad(x**3, x), x)",
        "reshape(x, shape=[2, 2]) @ transpose(y)",
        "mean(softmax(x, axis=0)) - max(x) + min(x) * norm(x)",
        "clip(x, -1, 1) + relu(x) + abs(x) + maximum(x, y) - minimum(x, y)",
        "p, q = split(x, 2, 0); concat(p, q, axis=0)",
        "mse(x, y) + dot(x, y) + linear(x, y) # comment",
        "x / y - log(x) + sqrt(y) ^ 2",
    ]
    for name in ("scalar_cases.jsonl", "array_cases.jsonl"):
        path = REFERENCE / name
        if path.is_file():
            with path.open(encoding="utf-8") as f:
                seeds += [json.loads(line)["expr"] for line, _ in zip(f, range(40))]
    return seeds


SEEDS = _seed_expressions()


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid expression with one to three edits: a character or token deleted, inserted,
    swapped with its neighbour or replaced."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["delete", "insert", "swap", "replace", "duplicate"]))
        piece = draw(st.sampled_from(TOKENS) | st.characters(codec="utf-8"))
        if edit == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 3)) :]
        elif edit == "insert":
            text = text[:i] + piece + text[i:]
        elif edit == "swap" and i + 1 < len(text):
            text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        elif edit == "replace":
            text = text[:i] + piece + text[i + 1 :]
        else:
            text = text[:i] + text[i : i + 8] + text[i:]
    return text


# --- never a traceback --------------------------------------------------------------------------


@FUZZ
@given(text=st.text(max_size=60), data=st.data())
def test_random_text_ends_with_a_status_and_a_message(text: str, data: st.DataObject) -> None:
    check_expression(text, data)


@FUZZ
@given(text=grammar_chars, data=st.data())
def test_random_text_from_the_grammar_alphabet_ends_cleanly(text: str, data: st.DataObject) -> None:
    check_expression(text, data)


@FUZZ
@given(text=token_soup, data=st.data())
def test_token_soup_ends_with_a_status_and_a_message(text: str, data: st.DataObject) -> None:
    check_expression(text, data)


@FUZZ
@given(text=mutated(), data=st.data())
def test_mutated_valid_expressions_end_with_a_status_and_a_message(text: str, data: st.DataObject) -> None:
    check_expression(text, data)


OPTION_SETS = [["--json"], ["--strict"], ["--order", "2"], ["--json", "--strict"], ["--wrt", "x"]]


@FUZZ
@given(text=st.sampled_from(SEEDS) | mutated(), extra=st.sampled_from(OPTION_SETS), data=st.data())
def test_expressions_with_options_end_cleanly(text: str, extra: list[str], data: st.DataObject) -> None:
    check_expression(text, data, extra)


def test_an_expression_that_looks_like_an_option_is_read_after_double_dash() -> None:
    result, caught = invoke(eval_args("-h", None))
    assert_ends_cleanly(result, caught, "-- -h")
    assert result.exit_code == 2


# --- batch: every line answered, in order -------------------------------------------------------

batch_line = st.one_of(
    st.builds(lambda v: json.dumps({"x": v}), st.sampled_from(VALUES)),
    st.builds(lambda v: json.dumps({"y": v}), st.sampled_from(VALUES)),
    st.builds(lambda v, w: json.dumps({"x": v, "z": w}), st.sampled_from(VALUES), st.sampled_from(VALUES)),
    st.sampled_from(["", " ", "{}", "[]", "null", "1", '"x"', '{"x": }', '{"x": [1, [2]]}', '{"x": true}']),
    st.sampled_from(['{"x": ' + "[" * 40 + "1" + "]" * 40 + "}", '{"x": Infinity}', '{"x": NaN}']),
    st.text(alphabet=st.characters(blacklist_characters="\n\r", codec="utf-8"), max_size=30),
)


@FUZZ
@given(lines=st.lists(batch_line, max_size=20), expr=st.sampled_from(["x*2", "sum(x*x)", "log(x) + x"]))
def test_batch_answers_every_line_in_order(lines: list[str], expr: str) -> None:
    result, caught = invoke(["eval", expr, "--batch"], stdin="".join(line + "\n" for line in lines))
    assert_ends_cleanly(result, caught, f"batch {expr!r} {lines!r}", batch=True)
    out = result.stdout.splitlines()
    assert len(out) == len(lines), f"{len(lines)} lines in, {len(out)} out:\n{result.stdout}"
    failed = False
    for number, text in enumerate(out, start=1):
        obj = json.loads(text)
        if "error" in obj:
            failed = True
            assert obj["line"] == number
        else:
            assert set(obj) == {"value", "grad"}
    assert result.exit_code == (1 if failed else 0)


# --- random valid expressions: gradients against central differences ---------------------------


def _smooth_unary(spec: Spec) -> bool:
    return (
        spec.arity == (1, 1)
        and not spec.params
        and spec.smooth
        and spec.n_outputs == 1
        and spec.sample_shapes is None
        and spec.name in _BUILTIN
    )


_BUILTIN = {name for name, spec in REGISTRY.items() if spec.cls.__module__.startswith("gradcli.")}
UNARY = sorted(name for name, spec in REGISTRY.items() if _smooth_unary(spec))
VARIABLES = ["x", "y", "z"]


def squashed(inner: str, domain: tuple[float, float]) -> str:
    """``inner`` mapped smoothly into the open interval ``domain`` (inside its middle 90 %)."""
    lo, hi = domain
    return f"({(lo + hi) / 2!r} + {0.45 * (hi - lo)!r}*tanh({inner}))"


@st.composite
def smooth_expression(draw: st.DrawFn, safe: bool = True, depth: int = 4) -> str:
    """A random expression of x, y, z from the registry's smooth unary functions and + - * / **,
    in operator or call form. With ``safe``, every argument is squashed into the function's
    sample domain (denominators and bases into (0.5, 2)), so the result is finite and smooth."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            return draw(st.sampled_from(VARIABLES))
        return repr(draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0])))
    kind = draw(st.sampled_from(["unary", "binary", "binary"]))
    if kind == "unary":
        name = draw(st.sampled_from(UNARY))
        arg = draw(smooth_expression(safe, depth - 1))
        return f"{name}({squashed(arg, REGISTRY[name].sample_domain) if safe else arg})"
    op = draw(st.sampled_from(["+", "-", "*", "/", "**", "add", "sub", "mul", "div"]))
    a = draw(smooth_expression(safe, depth - 1))
    b = draw(smooth_expression(safe, depth - 1))
    if op in ("/", "**", "div") and safe:
        b = squashed(b, (0.5, 2.0))
    if op == "**" and safe:
        a = squashed(a, (0.5, 2.0))
    if op.isalpha():
        return f"{op}({a}, {b})"
    return f"({a} {op} {b})"


point = st.fixed_dictionaries({n: st.floats(-2.0, 2.0) for n in VARIABLES})


def used_values(expr: str, values: dict[str, float]) -> dict[str, float]:
    names = parse(expr).inputs
    return {n: values[n] for n in names}


@FUZZ
@given(expr=smooth_expression(), values=point)
def test_random_smooth_expressions_agree_with_central_differences(
    expr: str, values: dict[str, float]
) -> None:
    values = used_values(expr, values)
    result, caught = invoke(eval_args(expr, values, ["--json", "--strict"]))
    assert_ends_cleanly(result, caught, f"{expr} at {values}")
    assert result.exit_code == 0, result.stderr
    got = json.loads(result.stdout)
    program = parse(expr)
    assert got["value"] == pytest.approx(float(calculus.evaluate(program, values).value[0]), rel=1e-12)
    numeric = calculus.numerical_grad(program, values)
    for name in values:
        assert got["grad"][name] == pytest.approx(float(numeric[name]), rel=1e-5, abs=1e-6), (expr, name)
    assert calculus.check(program, values).ok


@FUZZ
@given(
    exprs=st.lists(smooth_expression(), min_size=1, max_size=4),
    values=point,
)
def test_the_tape_adds_gradients_in_the_graphs_order(exprs: list[str], values: dict[str, float]) -> None:
    """The tape's reverse sweep (gradcli.tape, the CLI's first order) gives the graph's numbers
    bit for bit: the same rules, in the same order (highest generation first, ties as reached),
    however the expression's terms are nested and however many reach the same input."""
    expr = " + ".join(f"({e})*{k + 1}.1" for k, e in enumerate(exprs)) + " + x*y*z"
    program = parse(expr)
    on_tape = calculus.evaluate(program, values)
    on_graph = calculus.grad(program, values)
    for name in program.inputs:
        a, b = float(on_tape.grad[0][name]), float(on_graph[name])
        assert a == b or (np.isnan(a) and np.isnan(b)), (expr, name, a.hex(), b.hex())


@FUZZ
@given(expr=smooth_expression(safe=False), values=point)
def test_random_unguarded_expressions_are_flagged_when_not_finite(
    expr: str, values: dict[str, float]
) -> None:
    """Without guards, log, sqrt, / and ** meet their poles: whatever comes out, a NaN or an
    infinity anywhere makes ``--strict`` exit 1 with its message, and only then."""
    values = used_values(expr, values)
    result, caught = invoke(eval_args(expr, values, ["--json", "--strict"]))
    assert_ends_cleanly(result, caught, f"{expr} at {values}")
    if result.exit_code == 0:
        got = json.loads(result.stdout)
        leaves = [got["value"], *got["grad"].values()]
        assert all(isinstance(v, float) and np.isfinite(v) for v in leaves), result.stdout
        return
    assert result.exit_code == 1
    if result.stdout:  # the result is shown, then flagged
        got = json.loads(result.stdout)
        leaves = [got["value"], *got["grad"].values()]
        assert any(isinstance(v, str) for v in leaves), result.stdout
        assert "NaN or infinite" in result.stderr


def test_the_registry_offers_enough_smooth_functions_to_fuzz() -> None:
    assert {"sin", "exp", "log", "sqrt", "tanh", "asin"} <= set(UNARY)


# --- failures found by fuzzing, kept as regression tests ------------------------------------------


@pytest.mark.parametrize("control", ["\r", "\x07", "\x1e"])
def test_error_excerpts_show_control_characters_escaped(control: str) -> None:
    result, caught = invoke(eval_args(f"x{control}+", {"x": 1}))
    assert_ends_cleanly(result, caught, repr(control))
    assert control not in result.stderr


@pytest.mark.parametrize(
    ("expr", "values"),
    [
        # engine.keepdims_shape: `a % ndim` with ndim 0 in backward -> ZeroDivisionError
        ("sum(x, axis=0)", {"x": 2}),
        ("max(x, axis=-1)", {"x": 2}),
        # language number(): int() of a long literal -> OverflowError / ValueError (4300 digits)
        ("9" * 400, {}),
        ("9" * 5000, {}),
        # program.run does not catch OverflowError from NumPy's axis argument
        ("sum(x, axis=99999999999999999999)", {"x": [1, 2]}),
    ],
    ids=["sum-axis-0d", "max-axis-0d", "400-digit-int", "5000-digit-int", "huge-axis"],
)
def test_messages_never_name_a_python_exception(expr: str, values: dict[str, Any]) -> None:
    result, caught = invoke(eval_args(expr, values))
    assert_ends_cleanly(result, caught, expr[:40])
