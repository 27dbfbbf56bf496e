"""The expression language through the Python API: precedence, literals, statements, calls,
every registry function by name, and error messages a person reads."""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import numpy as np
import pytest

from gradcli import Variable, calculus
from gradcli.functions import REGISTRY
from gradcli.language import ParseError, parse
from gradcli.program import EvaluationError, ExpressionError


def value(text: str, **inputs: Any) -> np.ndarray:
    return parse(text).run(inputs).outputs[0].data


def grads(text: str, **inputs: Any) -> dict[str, np.ndarray]:
    return calculus.evaluate(parse(text), inputs).grad[0]


def parse_error(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    return info.value


# --- operators ---------------------------------------------------------------------------------

A, B = [1.0, 2.0], [3.0, 4.0]

PRECEDENCE = [
    ("-x**2", {"x": 3}, -9.0),
    ("-2**2", {}, -4.0),
    ("(-2)**2", {}, 4.0),
    ("2**3**2", {}, 512.0),
    ("2^3^2", {}, 512.0),
    ("x^2", {"x": 3}, 9.0),
    ("2**-1", {}, 0.5),
    ("2*x**2", {"x": 3}, 18.0),
    ("2*3+4", {}, 10.0),
    ("2+3*4", {}, 14.0),
    ("(2+3)*4", {}, 20.0),
    ("8/2/2", {}, 2.0),
    ("8/(2/2)", {}, 8.0),
    ("2-3-4", {}, -5.0),
    ("2-(3-4)", {}, 3.0),
    ("+x", {"x": 3}, 3.0),
    ("-+-x", {"x": 3}, 3.0),
    ("2*-x", {"x": 3}, -6.0),
    ("--x", {"x": 3}, 3.0),
    ("a @ b + 1", {"a": A, "b": B}, 12.0),  # + binds looser than @: a@(b+1) would be 14
    ("1 + a @ b", {"a": A, "b": B}, 12.0),
    ("a @ b**2", {"a": A, "b": B}, 41.0),  # ** binds tighter than @
    ("-a @ b", {"a": A, "b": B}, -11.0),
]


@pytest.mark.parametrize(("text", "inputs", "expected"), PRECEDENCE, ids=[c[0] for c in PRECEDENCE])
def test_operators_follow_python_precedence_and_associativity(
    text: str, inputs: dict[str, Any], expected: float
) -> None:
    assert float(value(text, **inputs)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a @ b * [1, 10]", [11.0, 110.0]),  # (a@b)*[1,10]; a@(b*[1,10]) would be 83
        ("[1, 10] * a @ b", 83.0),  # ([1,10]*a)@b; [1,10]*(a@b) would be [11, 110]
        ("a * b @ b", 41.0),
    ],
)
def test_matmul_has_the_level_and_left_associativity_of_multiplication(text: str, expected: Any) -> None:
    np.testing.assert_array_equal(value(text, a=A, b=B), expected)


def test_power_operator_alias_gives_the_same_gradient() -> None:
    assert float(grads("x^3", x=2.0)["x"]) == float(grads("x**3", x=2.0)["x"]) == 12.0


# --- literals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", 2.0),
        ("2.5", 2.5),
        (".5", 0.5),
        ("2.", 2.0),
        ("1e-3", 1e-3),
        ("1E3", 1000.0),
        ("1.5e+2", 150.0),
        ("007", 7.0),
    ],
)
def test_number_literals(text: str, expected: float) -> None:
    out = value(text)
    assert out.dtype == np.float64
    assert float(out) == expected


@pytest.mark.parametrize(("text", "expected"), [("pi", math.pi), ("e", math.e), ("2*pi", 2 * math.pi)])
def test_constants_pi_and_e(text: str, expected: float) -> None:
    assert float(value(text)) == expected


def test_constants_are_not_inputs() -> None:
    assert parse("pi * x + e").inputs == ("x",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1, 2, 3]", [1.0, 2.0, 3.0]),
        ("[[1, 2], [3, 4]]", [[1.0, 2.0], [3.0, 4.0]]),
        ("[-1, 2.5e1, .5]", [-1.0, 25.0, 0.5]),
        ("[[1, 2, 3]]", [[1.0, 2.0, 3.0]]),
        ("[pi]", [math.pi]),
    ],
)
def test_array_literals(text: str, expected: Any) -> None:
    out = value(text)
    assert out.shape == np.shape(expected)
    np.testing.assert_array_equal(out, expected)


def test_array_literal_broadcasts_against_a_variable() -> None:
    np.testing.assert_array_equal(value("x * [1, 2, 3]", x=2.0), [2.0, 4.0, 6.0])
    assert float(grads("sum(x * [1, 2, 3])", x=2.0)["x"]) == 6.0


def test_ragged_array_literal_is_an_error() -> None:
    err = parse_error("[[1, 2], [3]]")
    assert "ragged" in err.message


# --- indexing and slicing ----------------------------------------------------------------------

VEC = [10.0, 20.0, 30.0, 40.0]
MAT = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


@pytest.mark.parametrize(
    ("text", "x", "expected"),
    [
        ("x[0]", VEC, 10.0),
        ("x[-1]", VEC, 40.0),
        ("x[1:3]", VEC, [20.0, 30.0]),
        ("x[:2]", VEC, [10.0, 20.0]),
        ("x[2:]", VEC, [30.0, 40.0]),
        ("x[::2]", VEC, [10.0, 30.0]),
        ("x[::-1]", VEC, [40.0, 30.0, 20.0, 10.0]),
        ("x[:, 0]", MAT, [1.0, 3.0, 5.0]),
        ("x[1, 1]", MAT, 4.0),
        ("x[1]", MAT, [3.0, 4.0]),
        ("x[1][0]", MAT, 3.0),
        ("x[-1, :]", MAT, [5.0, 6.0]),
        ("(2*x)[0]", VEC, 20.0),
    ],
)
def test_indexing_and_slicing(text: str, x: Any, expected: Any) -> None:
    np.testing.assert_array_equal(value(text, x=x), expected)


def test_gradient_of_a_slice_is_one_where_selected_and_zero_elsewhere() -> None:
    np.testing.assert_array_equal(grads("sum(x[1:3])", x=VEC)["x"], [0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(grads("sum(x[:, 0])", x=MAT)["x"], [[1, 0], [1, 0], [1, 0]])


def test_index_is_bound_tighter_than_power_and_unary_minus() -> None:
    assert float(value("-x[1]**2", x=VEC)) == -400.0


# --- statements --------------------------------------------------------------------------------

STATEMENTS = [
    "a = x*y; b = sin(a); a + b",
    "a = x*y\nb = sin(a)\na + b",
    "a = x*y\r\nb = sin(a)\r\na + b",
    "# leading comment\na = x*y  # the product\n\nb = sin(a);   # trailing\na + b\n",
    "\n; a = x*y;; b = sin(a)\n\na + b;\n",
]


@pytest.mark.parametrize("text", STATEMENTS, ids=["semicolons", "newlines", "crlf", "comments", "separators"])
def test_statements_separated_by_semicolons_or_newlines_with_comments(text: str) -> None:
    assert float(value(text, x=2.0, y=3.0)) == pytest.approx(6.0 + math.sin(6.0), rel=1e-15)


@pytest.mark.parametrize("text", ["x\n", "x;", "x;\n", "x\n\n", "x  # comment\n", "a = x\na\n"])
def test_trailing_newline_or_semicolon_is_accepted(text: str) -> None:
    # A file read with -f ends with a newline.
    assert float(value(text, x=2.0)) == 2.0


def test_a_comment_is_not_an_expression() -> None:
    assert float(value("x # + 100", x=1.0)) == 1.0


def test_assigned_name_is_shared_so_its_gradient_accumulates() -> None:
    text = "a = x*x; a + a"
    assert float(value(text, x=3.0)) == 18.0
    assert float(grads(text, x=3.0)["x"]) == 12.0  # d(2x^2)/dx = 4x


def test_assigned_name_is_one_node_of_the_graph() -> None:
    run = parse("a = sin(x); a * a").run({"x": 0.5})
    left, right = run.outputs[0].creator.inputs
    assert left is right


def test_assigned_name_used_by_a_later_assignment() -> None:
    text = "a = x + 1; b = a * a; c = b * a; c"
    assert float(value(text, x=1.0)) == 8.0
    assert float(grads(text, x=1.0)["x"]) == 12.0  # d(x+1)^3/dx = 3(x+1)^2


def test_tuple_assignment_unpacks_a_function_with_several_outputs() -> None:
    text = "s, c = sincos(x); s*s + c*c"
    assert float(value(text, x=0.7)) == pytest.approx(1.0, abs=1e-15)
    assert float(grads(text, x=0.7)["x"]) == pytest.approx(0.0, abs=1e-15)
    s, c = (o.data for o in parse("s, c = sincos(x); s, c").run({"x": 0.7}).outputs)
    assert (float(s), float(c)) == (math.sin(0.7), math.cos(0.7))


def test_several_outputs_give_one_value_and_one_gradient_each() -> None:
    program = parse("x*y, x+y")
    result = calculus.evaluate(program, {"x": 2.0, "y": 3.0})
    assert [float(v) for v in result.value] == [6.0, 5.0]
    assert [{k: float(g) for k, g in d.items()} for d in result.grad] == [
        {"x": 3.0, "y": 2.0},
        {"x": 1.0, "y": 1.0},
    ]


def test_program_is_parsed_once_and_run_on_many_inputs() -> None:
    program = parse("x**2 + y")
    assert program.inputs == ("x", "y")
    assert float(program.run({"x": 2.0, "y": 1.0}).outputs[0].data) == 5.0
    assert float(program.run({"x": 3.0, "y": 0.0}).outputs[0].data) == 9.0
    np.testing.assert_array_equal(program.run({"x": [1.0, 2.0], "y": 1.0}).outputs[0].data, [2.0, 5.0])
    assert float(calculus.evaluate(program, {"x": 5.0, "y": 0.0}).grad[0]["x"]) == 10.0
    assert float(calculus.evaluate(program, {"x": -1.0, "y": 0.0}).grad[0]["x"]) == -2.0


def test_inputs_are_listed_in_order_of_first_use() -> None:
    assert parse("y * x + y").inputs == ("y", "x")
    assert parse("a = z; a + w").inputs == ("z", "w")


def test_names_may_hold_underscores_and_digits() -> None:
    assert float(value("x_1 + y2", x_1=1.0, y2=2.0)) == 3.0


def test_running_with_a_missing_or_an_unused_input_is_an_error() -> None:
    program = parse("x + y")
    with pytest.raises(ExpressionError, match="'y'"):
        program.run({"x": 1.0})
    with pytest.raises(ExpressionError, match="'z'"):
        program.run({"x": 1.0, "y": 1.0, "z": 1.0})


# --- calls -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "positional"),
    [
        ("sum(x, axis=0)", "sum(x, 0)"),
        ("sum(x, axis=1)", "sum(x, 1)"),
        ("mean(x, axis=0)", "mean(x, 0)"),
        ("clip(x, lo=2, hi=4)", "clip(x, 2, 4)"),
        ("softmax(x, axis=0)", "softmax(x, 0)"),
    ],
)
def test_call_with_keyword_equals_call_with_positional_params(keyword: str, positional: str) -> None:
    m = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    np.testing.assert_array_equal(value(keyword, x=m), value(positional, x=m))


def test_keyword_param_changes_the_result() -> None:
    m = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    np.testing.assert_array_equal(value("sum(x, axis=0)", x=m), [5.0, 7.0, 9.0])
    np.testing.assert_array_equal(value("sum(x, axis=1)", x=m), [6.0, 15.0])
    assert float(value("sum(x)", x=m)) == 21.0


def test_seed_example_in_call_form() -> None:
    text = "add(square(x), square(y))"
    assert float(value(text, x=2.0, y=3.0)) == 13.0
    assert {k: float(v) for k, v in grads(text, x=2.0, y=3.0).items()} == {"x": 4.0, "y": 6.0}


def _literal(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_literal(x) for x in v) + "]"
    return repr(v)


def _index_text(index: Any) -> str:
    parts = index if isinstance(index, tuple) else (index,)

    def one(p: Any) -> str:
        if isinstance(p, slice):
            text = ":".join("" if b is None else str(b) for b in (p.start, p.stop, p.step))
            return text.removesuffix(":") if p.step is None else text
        return str(p)

    return ", ".join(one(p) for p in parts)


def _registry_case(name: str) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
    """Call text for ``name`` built from its Spec, the input values and the params it uses."""
    spec = REGISTRY[name]
    shapes = spec.sample_shapes or ((2, 3),) * spec.arity[0]
    names = spec.inputs[: len(shapes)]
    rng = np.random.default_rng(sum(map(ord, name)))
    lo, hi = spec.sample_domain
    values = {n: rng.uniform(lo, hi, size=s) for n, s in zip(names, shapes)}
    params = dict(spec.sample_params)
    if name == "getitem":  # its index is written with the indexing syntax, not as a keyword
        call = f"{names[0]}[{_index_text(params['index'])}]"
    else:
        args = [*names, *(f"{k}={_literal(v)}" for k, v in params.items())]
        call = f"{name}({', '.join(args)})"
    if spec.n_outputs > 1:
        outs = ", ".join(f"out{k}" for k in range(spec.n_outputs))
        call = f"{outs} = {call}; {outs}"
    return call, values, params


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registry_function_is_reachable_by_name(name: str) -> None:
    text, values, params = _registry_case(name)
    program = parse(text)
    assert set(program.inputs) == set(values)
    got = [o.data for o in program.run(values).outputs]
    direct = REGISTRY[name](*(Variable(v) for v in values.values()), **params)
    want = [o.data for o in (direct if isinstance(direct, tuple) else (direct,))]
    assert len(got) == len(want) == REGISTRY[name].n_outputs
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_operators_call_the_registry_functions_of_their_names() -> None:
    x, y = 1.5, 0.5
    for op, name in [("+", "add"), ("-", "sub"), ("*", "mul"), ("/", "div"), ("**", "pow")]:
        assert float(value(f"x {op} y", x=x, y=y)) == float(value(f"{name}(x, y)", x=x, y=y))


def test_unknown_function_suggests_the_closest_name() -> None:
    err = parse_error("sqaure(x)")
    assert "unknown function 'sqaure'" in err.message
    assert "did you mean 'square'" in err.message


def test_unknown_function_without_a_close_name_has_no_suggestion() -> None:
    err = parse_error("zzzzqqq(x)")
    assert "unknown function 'zzzzqqq'" in err.message
    assert "did you mean" not in err.message


# --- errors ------------------------------------------------------------------------------------

ERRORS = [
    # text, offset of the caret, words the message must hold
    ("x + ", 3, "expected an expression after '+'"),
    ("x + * y", 4, "unexpected '*'"),
    ("sin(x", 5, "')'"),
    ("(x", 2, "')'"),
    ("x $ y", 2, "unexpected character '$'"),
    ("sincos(x)", 0, "several outputs"),
    ("1 + sincos(x)", 4, "several outputs"),
    ("a = 2", 5, "last statement"),
    ("sin(x, y)", 7, "too many arguments"),
    ("sin()", 0, "takes 1 input, got 0"),
    ("add(x)", 0, "takes 2 inputs, got 1"),
    ("sum(x, foo=1)", 7, "no option 'foo'"),
    ("sum(x, axis=y)", 12, "must be a number"),
    ("1 + sqaure(x)", 4, "unknown function 'sqaure'"),
    ("a = x\nb = a + * 2\nb", 14, "unexpected '*'"),
    ("x[0.5]", 2, "whole number"),
    ("x[10000000000000000000000]", 2, "the index 1e+22 is out of range for any array"),
]


def _caret_column(err: ExpressionError) -> tuple[str, int]:
    """The echoed line and the caret's column, as a person sees them under the message."""
    *_, line, caret = str(err).split("\n")
    assert caret.strip() == "^"
    return line[2:], caret.index("^") - 2


@pytest.mark.parametrize(("text", "pos", "words"), ERRORS, ids=[repr(e[0]) for e in ERRORS])
def test_error_caret_points_at_the_fault(text: str, pos: int, words: str) -> None:
    err = parse_error(text)
    assert err.pos == pos
    assert words in err.message
    line, column = _caret_column(err)
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    assert line == text[start : end if end != -1 else len(text)]
    assert column == pos - start


@pytest.mark.parametrize(
    ("text", "pos", "column"),
    [
        ("x + 名前 +", 8, 10),
        ("x + 名前 + )", 9, 11),
        ("名前" * 40 + " + )", 83, 78),
        ("a" * 100 + " + )", 103, 78),
    ],
    ids=["wide", "wide, then the fault", "long wide line", "long line"],
)
def test_the_caret_stands_under_the_fault_in_a_terminals_columns(text: str, pos: int, column: int) -> None:
    """A wide character (CJK) takes two columns of a terminal, a combining accent none: the caret
    counted characters, and stood two columns left of the fault after 名前. A long line is cut to
    76 columns around the caret, not to 76 characters (152 columns of CJK)."""
    err = parse_error(text)
    assert err.pos == pos
    line, caret = _caret_column(err)
    assert caret == column
    assert sum(2 if "\u4e00" <= ch <= "\u9fff" else 1 for ch in line) <= 3 + 76  # ("..." and 76)


def test_an_array_literal_nested_past_numpys_64_axes_is_not_called_ragged() -> None:
    assert "nested more than 64 deep" in parse_error("[" * 65 + "1" + "]" * 65).message
    assert "ragged" in parse_error("[[1, 2], [3]]").message


@pytest.mark.parametrize("text", ["a, b = sin(x); a", "a, b, c = sincos(x); a"])
def test_unpacking_into_the_wrong_number_of_names_is_an_error(text: str) -> None:
    # Found when parsing or, at the latest, when running: either way located in the text.
    with pytest.raises(ExpressionError) as info:
        parse(text).run({"x": 1.0})
    assert "unpack" in info.value.message or "outputs" in info.value.message
    assert info.value.pos is not None


def test_parse_error_is_a_value_error_with_the_expression() -> None:
    err = parse_error("x + ")
    assert isinstance(err, ParseError)
    assert isinstance(err, ValueError)
    assert err.text == "x + "


def test_empty_expression_is_an_error() -> None:
    for text in ["", "   ", "\n\n"]:
        assert "empty" in parse_error(text).message


BAD = [
    "x +",
    "x + * y",
    "sin(x",
    "(x",
    ")",
    "x)",
    "x $ y",
    "x ** ",
    "[1, 2",
    "[1,, 2]",
    "sin(x,)",
    "x[",
    "x[1:",
    "x]",
    "a, b = ",
    "= x",
    "x y",
    "1 2",
    "x = = 1",
    "sum(x, axis=)",
    ",x",
    "x,",
    "a = ",
    "x +\ny",
    "x € y",
    "sin x",
    "2 ** ** 3",
    "f(x) = 3",
]
TERMINALS = re.compile(
    r"\b(NAME|NUMBER|LPAR|RPAR|LSQB|RSQB|COMMA|EQUAL|COLON|PLUS|MINUS|STAR|SLASH|_POW|_SEP|__ANON\w*)\b"
    r"|\$END|Token\(|Expected one of"
)


@pytest.mark.parametrize("text", BAD)
def test_messages_never_name_grammar_terminals(text: str) -> None:
    err = parse_error(text)
    assert not TERMINALS.search(err.message), err.message
    assert err.pos is not None
    _caret_column(err)


def test_grammar_has_no_lalr_conflicts(caplog: pytest.LogCaptureFixture) -> None:
    # Lark resolves a shift/reduce conflict silently (as shift) and only says so in its debug log;
    # a resolved conflict is how a trailing newline came to be rejected.
    from lark import Lark

    from gradcli.language import grammar_path

    with caplog.at_level(logging.DEBUG, logger="lark"):
        Lark(grammar_path().read_text(), parser="lalr", maybe_placeholders=True, debug=True)
    conflicts = [r.getMessage() for r in caplog.records if "conflict" in r.getMessage().lower()]
    assert not conflicts, conflicts


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("1 2", ["')'", "']'", "':'"]),
        ("sin(x 2)", ["']'", "':'", "new statement"]),
        ("[1 2]", ["')'", "new statement"]),
    ],
)
def test_expected_tokens_name_only_brackets_that_are_open(text: str, absent: list[str]) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    for word in absent:
        assert word not in info.value.message


def test_unpacking_a_single_output_function_is_rejected_while_parsing() -> None:
    with pytest.raises(ExpressionError, match=r"sin\(\) has one output"):
        parse("a, b = sin(x); a")


def test_an_expression_statement_before_the_last_is_an_error_pointing_at_it() -> None:
    with pytest.raises(ExpressionError) as info:
        parse("a = 1; sin(x); a")
    assert "only the last statement is evaluated" in info.value.message
    assert info.value.pos == "a = 1; sin(x); a".index("sin")


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        (None, TypeError, "values map each input's name to its value"),
        ({"x": "a", "y": 2.0}, EvaluationError, "value of 'x': expected a number"),
        ({"x": [1.0, [2.0]], "y": 2.0}, EvaluationError, "value of 'x': .*nested lists of different lengths"),
    ],
)
def test_a_programs_run_names_the_value_it_cannot_take(
    values: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        parse("x * y").run(values)
