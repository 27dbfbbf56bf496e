"""The forms of the language beyond arithmetic, through the Python API: comparisons and logic,
conditional expressions, % and //, superscripts and other characters from papers, arrays of
expressions, max/min of several expressions, log(x, base), subscripts with integer arrays, None and
..., strings as options, the order of the inputs, grad with respect to an assigned constant, and
what errors say. (``where``'s derivatives and warnings: test_where.py; the CLI: test_cli_language.py.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from helpers_functions import stand_ins
from test_parser_sync import _program

from gradcli import calculus
from gradcli.functions import REGISTRY
from gradcli.language import lark_parser, parse
from gradcli.program import CONST, ExpressionError


def value(text: str, **inputs: Any) -> Any:
    return parse(text).run(inputs).outputs[0].data


def grads(text: str, **inputs: Any) -> dict[str, Any]:
    return calculus.evaluate(parse(text), inputs).grad[0]


def error(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    return info.value


# --- precedence: Python's, from `if else` (lowest) to `**` and superscripts (highest) ----------

PRECEDENCE = [
    ("1 + 2 > 2", 1.0),  # (1 + 2) > 2
    ("2 * 3 == 6", 1.0),
    ("-1 < 0", 1.0),
    ("2**3 >= 8", 1.0),
    ("not 1 < 0", 1.0),  # not (1 < 0)
    ("not 0 == 1", 1.0),  # not (0 == 1), not (not 0) == 1
    ("not 1 and 0", 0.0),  # (not 1) and 0
    ("1 or 0 and 0", 1.0),  # 1 or (0 and 0)
    ("0 and 1 or 1", 1.0),  # (0 and 1) or 1
    ("not not 2", 1.0),
    ("1 if 0 else 2", 2.0),
    ("1 if 1 else 2", 1.0),
    ("1 + 1 if 0 else 5", 5.0),  # (1 + 1) if 0 else 5
    ("1 if 0 else 2 if 0 else 3", 3.0),  # right-associative: 1 if 0 else (2 if 0 else 3)
    ("1 if 0 or 1 else 2", 1.0),  # the condition is an or_test
    ("0 < 1 < 2", 1.0),  # chained: (0 < 1) and (1 < 2)
    ("2 > 1 > 0", 1.0),
    ("0 < 2 < 1", 0.0),  # (0 < 2) < 1 would be 0 < 1: true
    ("1 < 2 == 2", 1.0),
    ("3 != 3", 0.0),
    ("2 <= 2 >= 1", 1.0),
    ("-2**2", -4.0),
    ("2²", 4.0),
    ("-2²", -4.0),  # the superscript binds tighter than unary minus, as ** does
    ("2³²", 2.0**32),  # one exponent of two digits
    ("2**3²", 512.0),  # 2**(3²)
    ("(1 + 2)²", 9.0),
    ("3 × 2 ÷ 4", 1.5),
    ("3 · 2 ⋅ 2", 12.0),
    ("5 − 2 − 1", 2.0),  # U+2212, left-associative
    ("−2²", -4.0),
    ("1 ≤ 1 ≠ 0", 1.0),
    ("2 ≥ 3", 0.0),
]


@pytest.mark.parametrize(("text", "expected"), PRECEDENCE, ids=[c[0] for c in PRECEDENCE])
def test_operators_follow_python_precedence(text: str, expected: float) -> None:
    assert float(value(text)) == expected


PYTHON_ARITHMETIC = [
    "-7 % 3",
    "7 % -3",
    "7.5 % 2",
    "-7 // 2",
    "7 // -2",
    "2 + 7 % 3 * 2",
    "2**3 % 3",
    "9 // 2 // 2",
]


@pytest.mark.parametrize("text", PYTHON_ARITHMETIC)
def test_modulo_and_floor_division_match_python(text: str) -> None:
    assert float(value(text)) == eval(text)  # noqa: S307 - numbers only, written above


def test_modulo_has_gradient_one_and_minus_floor_of_the_quotient() -> None:
    g = grads("x % y", x=7.0, y=-3.0)
    assert (float(g["x"]), float(g["y"])) == (1.0, -math.floor(7.0 / -3.0))


def test_floor_division_has_zero_gradient() -> None:
    g = grads("x // y + x", x=7.0, y=2.0)
    assert (float(g["x"]), float(g["y"])) == (1.0, 0.0)


# --- comparisons and logic ---------------------------------------------------------------------

X = [-1.0, 0.0, 2.0, math.nan]

COMPARISONS = [
    ("x < 0", [1, 0, 0, 0]),
    ("x <= 0", [1, 1, 0, 0]),
    ("x > 0", [0, 0, 1, 0]),
    ("x >= 0", [0, 1, 1, 0]),
    ("x == 0", [0, 1, 0, 0]),
    ("x != 0", [1, 0, 1, 1]),  # NaN differs from everything, as in NumPy
    ("not x", [0, 1, 0, 0]),  # NaN is true, as in NumPy
    ("x and 1", [1, 0, 1, 1]),
    ("x or 0", [1, 0, 1, 1]),
    ("x > 0 or x < 0", [1, 0, 1, 0]),
    ("-1 <= x < 2", [1, 1, 0, 0]),
]


@pytest.mark.parametrize(("text", "expected"), COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparisons_and_logic_give_one_or_zero_elementwise(text: str, expected: list[int]) -> None:
    out = value(text, x=X)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("text", ["x < y", "x == y", "x != 1", "x and y", "not x", "0 < x < y"])
def test_comparisons_have_zero_gradient_of_every_order(text: str) -> None:
    h = calculus.hessian(parse(f"({text}) * x * y"), {"x": 1.0, "y": 2.0})
    # d/dx [c * x * y] = c * y with c the comparison held constant: only the product's own terms.
    c = float(value(text, x=1.0, y=2.0)) if "y" in text else float(value(text, x=1.0))
    assert (float(h.grad["x"]), float(h.grad["y"])) == (c * 2.0, c * 1.0)
    assert float(h.hessian["x"]["y"]) == c
    assert float(h.hessian["x"]["x"]) == float(h.hessian["y"]["y"]) == 0.0


def test_chained_comparison_computes_the_middle_operand_once() -> None:
    program = parse("0 < sin(x) < 1")
    assert [op.spec.name for op in program.ops if op.spec is not None].count("sin") == 1


def test_conditional_expression_is_where() -> None:
    assert _ops("x if x > 0 else -x") == _ops("where(x > 0, x, -x)")
    np.testing.assert_array_equal(value("x if x > 0 else -x", x=[-2.0, 3.0]), [2.0, 3.0])


def _ops(text: str) -> list[tuple[str, ...]]:
    return sorted(
        (op.kind, op.spec.name if op.spec else "", str(op.value))
        for op in parse(text).ops
        if op.kind != CONST
    )


# --- characters from papers and web pages -----------------------------------------------------


def test_names_may_use_letters_of_any_script() -> None:
    assert parse("θ * σ_1 + Δx").inputs == ("θ", "σ_1", "Δx")
    assert float(value("θ²", θ=3.0)) == 9.0


def test_pi_may_be_written_as_the_greek_letter() -> None:
    assert float(value("π")) == math.pi


def test_unicode_spaces_separate_like_spaces() -> None:
    assert float(value("x\u00a0*\u2009x\u202f+\u30001", x=2.0)) == 5.0


@pytest.mark.parametrize("text", ["x*１٠", "x + ٣", "१ + x", "x * ²"])
def test_digits_other_than_ascii_are_not_numbers(text: str) -> None:
    err = error(text)
    assert err.message.startswith("unexpected")


def test_superscript_is_a_power_of_the_thing_before_it() -> None:
    assert float(grads("x³", x=2.0)["x"]) == 12.0
    assert float(value("sin(x)²", x=0.5)) == pytest.approx(math.sin(0.5) ** 2, rel=1e-15)
    assert float(value("x[1]²", x=[1.0, 3.0])) == 9.0


# --- arrays of expressions -----------------------------------------------------------------------


def test_array_of_expressions_is_a_differentiable_stack() -> None:
    np.testing.assert_array_equal(value("[x, 2*y, 1]", x=1.0, y=2.0), [1.0, 4.0, 1.0])
    g = grads("sum([x, 2*y, 1] * [1, 10, 100])", x=1.0, y=2.0)
    assert (float(g["x"]), float(g["y"])) == (1.0, 20.0)


def test_nested_array_of_expressions_is_a_matrix() -> None:
    text = "[[a, b], [c, d]] @ [1, 2]"
    np.testing.assert_array_equal(value(text, a=1.0, b=2.0, c=3.0, d=4.0), [5.0, 11.0])
    g = grads(f"sum({text})", a=1.0, b=2.0, c=3.0, d=4.0)
    assert {k: float(v) for k, v in g.items()} == {"a": 1.0, "b": 2.0, "c": 1.0, "d": 2.0}


def test_array_mixing_a_number_row_and_an_expression_row() -> None:
    np.testing.assert_array_equal(value("[[1, 2], [x, -x]]", x=3.0), [[1.0, 2.0], [3.0, -3.0]])


def test_array_of_numbers_stays_one_constant() -> None:
    program = parse("x * [[1, 2], [pi, -e]]")
    assert [op.kind for op in program.ops] == ["input", "const", "call"]


def test_array_of_expressions_of_different_shapes_is_an_evaluation_error() -> None:
    with pytest.raises(ExpressionError, match="stack") as info:
        parse("[x, y]").run({"x": [1.0, 2.0], "y": [1.0, 2.0, 3.0]})
    assert info.value.pos == 1


# --- max and min -------------------------------------------------------------------------------------


def test_max_and_min_of_several_expressions_are_elementwise() -> None:
    np.testing.assert_array_equal(value("max(x, 0)", x=[-1.0, 2.0]), [0.0, 2.0])
    np.testing.assert_array_equal(value("min(x, y, 1)", x=[-1.0, 2.0], y=[0.0, 3.0]), [-1.0, 1.0])
    g = grads("max(x, y, 0)", x=3.0, y=1.0)
    assert (float(g["x"]), float(g["y"])) == (1.0, 0.0)


def test_max_and_min_of_one_expression_reduce() -> None:
    m = [[1.0, 5.0], [3.0, 2.0]]
    assert float(value("max(x)", x=m)) == 5.0
    np.testing.assert_array_equal(value("max(x, axis=0)", x=m), [3.0, 5.0])
    np.testing.assert_array_equal(value("min(x, axis=1)", x=m), [1.0, 2.0])


def test_max_of_several_expressions_takes_no_axis() -> None:
    err = error("max(x, y, axis=0)")
    assert "elementwise" in err.message and "axis=" in err.message
    assert err.pos == len("max(x, y, ")


# --- log(x, base) ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["log(x, b)", "log(x, base=b)"])
def test_log_with_a_base_is_differentiable_in_both(text: str) -> None:
    x, b = 8.0, 2.0
    assert float(value(text, x=x, b=b)) == pytest.approx(3.0, rel=1e-15)
    g = grads(text, x=x, b=b)
    assert float(g["x"]) == pytest.approx(1.0 / (x * math.log(b)), rel=1e-14)
    assert float(g["b"]) == pytest.approx(-math.log(x) / (b * math.log(b) ** 2), rel=1e-14)


def test_log_of_one_argument_is_the_natural_logarithm() -> None:
    assert [op.spec.name for op in parse("log(x)").ops if op.spec] == ["log"]


# --- subscripts -------------------------------------------------------------------------------------

V = [10.0, 20.0, 30.0]
M = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]

SUBSCRIPTS = [
    ("x[[0, 2]]", V, [10.0, 30.0]),
    ("x[[2, 0, 2]]", V, [30.0, 10.0, 30.0]),
    ("x[[-1]]", V, [30.0]),
    ("x[None, :]", V, [V]),
    ("x[:, None]", V, [[10.0], [20.0], [30.0]]),
    ("x[None]", V, [V]),
    ("x[..., 0]", M, [1.0, 4.0]),
    ("x[..., None, 1]", M, [[2.0], [5.0]]),
    ("x[...]", V, V),
    ("x[1, [0, 2]]", M, [4.0, 6.0]),
    ("x[[[0, 1], [1, 0]]]", V, [[10.0, 20.0], [20.0, 10.0]]),
]


@pytest.mark.parametrize(("text", "x", "expected"), SUBSCRIPTS, ids=[c[0] for c in SUBSCRIPTS])
def test_subscripts_take_integer_arrays_none_and_ellipsis_as_numpy(text: str, x: Any, expected: Any) -> None:
    out = value(text, x=x)
    np.testing.assert_array_equal(out, expected)
    assert out.shape == np.asarray(x)[_numpy_index(text)].shape


@pytest.mark.parametrize(("text", "x", "expected"), SUBSCRIPTS, ids=[c[0] for c in SUBSCRIPTS])
def test_gradient_through_subscripts_adds_up_repeated_indices(text: str, x: Any, expected: Any) -> None:
    g = grads(f"sum({text})", x=x)["x"]
    counts = np.zeros(np.shape(x))
    np.add.at(counts, _numpy_index(text), 1.0)
    np.testing.assert_array_equal(g, counts)


def _numpy_index(text: str) -> Any:
    """The subscript of ``text`` as NumPy's index, read back from the parsed program."""
    (op,) = [op for op in parse(text).ops if op.spec is not None and op.spec.name == "getitem"]
    return op.params["index"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("x[[0.5]]", "whole numbers"),
        ("x[[0, nan]]", "whole numbers"),
        ("x[y]", "must be a number written in the expression"),
        ("x[...] + ...", "unexpected"),
        ("None + 1", "None is an option"),
    ],
)
def test_subscript_errors(text: str, words: str) -> None:
    assert words in error(text).message


# --- strings as options, None, True, False --------------------------------------------------------


def test_string_fills_the_first_option_wherever_it_stands() -> None:
    with stand_ins("contract"):
        program = parse("contract('i,i->', a, b)")
        (op,) = [op for op in program.ops if op.spec is not None]
        assert op.params == {"subscripts": "i,i->"} and len(op.args) == 2
        assert float(value('contract("i,i->", a, b)', a=[1.0, 2.0], b=[3.0, 4.0])) == 11.0


def test_string_option_by_keyword_and_positionally() -> None:
    with stand_ins("scaled"):
        assert float(value("scaled(x, how='three')", x=2.0)) == 6.0
        assert float(value('scaled(x, "two")', x=2.0)) == 4.0


@pytest.mark.parametrize("text", ["'fro'", "x + 'a'", "sin('a')", "where(x > 0, 'a', 1)", "['a', 1]"])
def test_a_string_is_never_a_value(text: str) -> None:
    err = error(text)
    assert "a string is an option of a function" in err.message
    assert text[err.pos] in "'["


def test_none_true_and_false_as_options() -> None:
    m = [[1.0, 2.0], [3.0, 4.0]]
    assert float(value("sum(x, axis=None)", x=m)) == 10.0
    assert [op.params for op in parse("sum(x, axis=None)").ops if op.spec] == [{"axis": None}]
    assert float(value("True + False + True")) == 2.0


def test_einsum_takes_its_subscripts_as_a_string() -> None:
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(value('einsum("ij,jk->ik", a, b)', a=a, b=b), a @ b)


@pytest.mark.parametrize(("text", "ord_"), [('norm(x, ord="fro")', "fro"), ("norm(x, ord=inf)", np.inf)])
def test_norm_takes_ord_as_a_string_or_inf(text: str, ord_: Any) -> None:
    m = np.array([[1.0, -2.0], [3.0, 4.0]])
    assert float(value(text, x=m)) == pytest.approx(float(np.linalg.norm(m, ord=ord_)), rel=1e-14)


# --- the order of the inputs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "order"),
    [
        ("x + sin(y)", ("x", "y")),
        ("100*(y - x**2)**2 + (1 - x)**2", ("y", "x")),
        ("where(c, a*b, d) + z", ("c", "a", "b", "d", "z")),
        ("a*b if c else d", ("a", "b", "c", "d")),
        ("a = z*w; b = v + a; b", ("z", "w", "v")),
        ("-(((q))) + [p, r][0]", ("q", "p", "r")),
    ],
)
def test_inputs_are_listed_in_the_order_they_first_appear(text: str, order: tuple[str, ...]) -> None:
    assert parse(text).inputs == order


def test_gradient_and_hessian_follow_the_order_of_the_text() -> None:
    program = parse("x*y + sin(y)")
    assert list(calculus.evaluate(program, {"y": 2.0, "x": 1.0}).grad[0]) == ["x", "y"]
    h = calculus.hessian(program, {"y": 2.0, "x": 1.0})
    assert list(h.hessian) == ["x", "y"] and list(h.hessian["x"]) == ["x", "y"]


# --- grad with respect to an assigned name ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("y = 2; grad(x*y, y)", 3.0),
        ("y = 2; z = y**2; grad(x*z, y)", 12.0),  # through a later use: d(x y^2)/dy = 2 x y
        ("c = 2*pi; grad(x*c, c)", 3.0),
        ("y = x*2; grad(y**2, y)", 12.0),  # a name with a graph behind it: as before
        ("y = 2; grad(grad(x*y**3, y), y)", 36.0),  # 6 x y
    ],
)
def test_grad_with_respect_to_a_name_assigned_a_constant(text: str, expected: float) -> None:
    assert float(value(text, x=3.0)) == pytest.approx(expected, rel=1e-15)


def test_grad_with_respect_to_an_assigned_constant_in_batched_runs() -> None:
    program = parse("y = 2; grad(x**2*y, y)")  # = x**2
    h = calculus.hessian(program, {"x": 3.0})
    assert (float(h.grad["x"]), float(h.hessian["x"]["x"])) == (6.0, 2.0)


# --- unknown names ------------------------------------------------------------------------------------

SUGGESTIONS = [
    ("expit(x)", "did you mean 'sigmoid'?"),
    ("amax(x)", "did you mean 'max'?"),
    ("multiply(x, y)", "did you mean the operator '*'?"),
    ("lt(x, y)", "did you mean the operator '<'?"),
    ("clamp(x, 0, 1)", "did you mean 'clip'?"),
    ("average(x)", "did you mean 'mean'?"),
    ("derivative(x, x)", "did you mean 'grad'?"),
    ("SQRT(x)", "did you mean 'sqrt'?"),
    ("sqaure(x)", "did you mean 'square'"),
]


@pytest.mark.parametrize(("text", "words"), SUGGESTIONS, ids=[c[0] for c in SUGGESTIONS])
def test_unknown_function_suggests_names_of_the_same_meaning_then_of_close_spelling(
    text: str, words: str
) -> None:
    name = text[: text.index("(")]
    assert name not in REGISTRY
    err = error(text)
    assert err.message.startswith(f"unknown function {name!r}")
    assert words in err.message
    assert err.message.endswith("(`gradcli functions` lists them all)")


@pytest.mark.parametrize("name", ["fmod", "remainder"])
def test_names_of_modulo_suggest_the_operator(name: str) -> None:
    assert "did you mean the operator '%'?" in error(f"{name}(x, 2)").message


# --- syntax errors of the new forms ---------------------------------------------------------------

SYNTAX_ERRORS = [
    # text, offset of the caret, words the message must hold
    ("x if y", 6, "expected 'else' after 'y'"),
    ("(x if y) + 1", 7, "expected 'else'"),
    ("x ==", 4, "expected an expression after '=='"),
    ("x <= ", 4, "after '<='"),
    ("x // ", 4, "after '//'"),
    ("not", 3, "after 'not'"),
    ("x and", 5, "after 'and'"),
    ("x & y", 2, "gradcli writes 'and'"),
    ("x | y", 2, "gradcli writes 'or'"),
    ("~x", 0, "gradcli writes 'not'"),
    ("!x", 0, "gradcli writes 'not'"),
    ("np.sin(x)", 2, "not np.sin(x)"),
    ("x*１٠", 2, "digits 0-9"),
    ("f('a", 2, "closing quote"),
    ('f("(" 2', 6, "after '\"(\"'"),
    ("x ⁻¹", 2, "unexpected character '⁻'"),
]


@pytest.mark.parametrize(("text", "pos", "words"), SYNTAX_ERRORS, ids=[c[0] for c in SYNTAX_ERRORS])
def test_syntax_errors_of_the_new_forms_point_at_the_fault(text: str, pos: int, words: str) -> None:
    err = error(text)
    assert (err.pos, words in err.message) == (pos, True), err.message


def test_else_is_only_expected_after_an_if() -> None:
    assert "'else'" not in error("x y").message
    assert "'else'" not in error("a if b else c d").message


NEW_FORMS = [
    "0 < x <= 1 and not y == 2 or z != 3",
    "a if x > 0 else b if x < 0 else c",
    "where(x > 0, sqrt(x), 0)",
    "x % 2 + x // 3 - max(x, y, 1) * min(x)",
    "θ² · r − 1 ÷ x ≤ 2",
    "[x, [1, 2]] @ [[a, b], [c, d]]",
    "x[[0, 2]] + x[None, ..., 0] + log(x, 2)",
    "einsum('ij,jk->ik', a, b) + norm(x, ord=\"fro\", axis=None)",
    "y = 2; grad(x*y, y)",
    "x if y",
    "x & y",
]


@pytest.mark.parametrize("text", NEW_FORMS)
def test_generated_parser_and_lark_agree_on_the_new_forms(text: str) -> None:
    assert _program(text) == _program(text, lark_parser())
