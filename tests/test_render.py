"""gradcli.render: results -> strict one-line JSON and aligned text."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gradcli import Variable
from gradcli.render import (
    Style,
    check_json,
    derivatives_text,
    dumps,
    eval_json,
    eval_text,
    format_array,
    format_number,
    hessian_text,
    jacobian_text,
    matrix_text,
    to_jsonable,
)

SEED_VALUE = np.array(13.0)
SEED_GRAD = {"x": np.array(4.0), "y": np.array(6.0)}


def _strict_loads(text: str) -> object:
    def refuse(token: str) -> object:
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


# -- the seed example, exactly -----------------------------------------------------------------------


def test_seed_example_text_is_exact() -> None:
    assert eval_text(SEED_VALUE, SEED_GRAD) == "value  13\ngrad x 4\ngrad y 6"


def test_seed_example_json_is_exact() -> None:
    assert dumps(eval_json(SEED_VALUE, SEED_GRAD)) == '{"value": 13.0, "grad": {"x": 4.0, "y": 6.0}}'


# -- numbers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (13.0, "13"),
        (4.0, "4"),
        (0.1, "0.1"),
        (1 / 3, "0.3333333333333333"),
        (-2.5, "-2.5"),
        (1e20, "1e+20"),
        (1e-5, "1e-05"),
        (-0.0, "0"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (np.float64(0.1), "0.1"),
    ],
)
def test_format_number_is_shortest_round_trip_text(x: float, text: str) -> None:
    assert format_number(x) == text


@pytest.mark.parametrize(
    ("a", "expected"),
    [
        (2.0, 2.0),
        (np.array(2.5), 2.5),
        (np.float64(math.nan), "NaN"),
        (math.inf, "Infinity"),
        (np.array(-math.inf), "-Infinity"),
        (np.array([1.0, 2.0]), [1.0, 2.0]),
        (np.array([[1.0, math.nan], [math.inf, -math.inf]]), [[1.0, "NaN"], ["Infinity", "-Infinity"]]),
        (np.zeros((2, 0)), [[], []]),
        (np.arange(8.0).reshape(2, 2, 2), [[[0.0, 1.0], [2.0, 3.0]], [[4.0, 5.0], [6.0, 7.0]]]),
        (Variable([1.0, 2.0]), [1.0, 2.0]),
        (None, None),
    ],
)
def test_to_jsonable_gives_numbers_nested_lists_and_named_non_finites(a: object, expected: object) -> None:
    assert to_jsonable(a) == expected


def test_non_finite_strings_read_back_with_float() -> None:
    got = to_jsonable(np.array([math.nan, math.inf, -math.inf]))
    back = [float(s) for s in got]
    assert math.isnan(back[0]) and back[1:] == [math.inf, -math.inf]


# -- JSON shapes ---------------------------------------------------------------------------------------


def test_several_outputs_give_a_value_list_and_a_list_of_grad_dicts() -> None:
    value = [np.array(2.0), np.array([1.0, math.nan])]
    grad = [{"x": np.array(1.0)}, {"x": np.array([0.5, math.inf])}]
    text = dumps(eval_json(value, grad))
    assert _strict_loads(text) == {
        "value": [2.0, [1.0, "NaN"]],
        "grad": [{"x": 1.0}, {"x": [0.5, "Infinity"]}],
    }


def test_json_is_one_line_of_strict_json_with_arrays_as_nested_lists() -> None:
    obj = eval_json(np.ones((2, 2)), {"w": np.array([[math.nan, 1.0], [2.0, 3.0]])})
    obj["hessian"] = {"w": np.eye(2)}  # callers add keys
    text = dumps(obj)
    assert "\n" not in text
    assert _strict_loads(text) == {
        "value": [[1.0, 1.0], [1.0, 1.0]],
        "grad": {"w": [["NaN", 1.0], [2.0, 3.0]]},
        "hessian": {"w": [[1.0, 0.0], [0.0, 1.0]]},
    }


def test_dumps_names_bare_non_finite_floats_instead_of_writing_nan_tokens() -> None:
    text = dumps({"a": math.nan, "b": [np.float64(math.inf), (1.0, -math.inf)], "c": np.ones(1)})
    assert _strict_loads(text) == {"a": "NaN", "b": ["Infinity", [1.0, "-Infinity"]], "c": [1.0]}


def test_dumps_refuses_objects_it_cannot_write() -> None:
    with pytest.raises(TypeError, match="cannot write object as JSON"):
        dumps({"a": object()})


# -- text ----------------------------------------------------------------------------------------------


def test_text_aligns_multi_line_arrays_under_their_column() -> None:
    grad = {"x": np.array([[0.5, 1.0], [math.nan, -math.inf]])}
    text = eval_text(np.array([[1.0, 2.0], [3.0, 40.0]]), grad)
    assert text.splitlines() == [
        "value  [[ 1  2]",
        "        [ 3 40]]",
        "grad x [[ 0.5    1]",
        "        [ nan -inf]]",
    ]


def test_text_of_several_outputs_groups_each_value_with_its_gradients() -> None:
    grads = [{"x": np.array(4.0)}, {"x": np.array([0.0, 1.0])}]
    text = eval_text([np.array(1.0), np.array([1.0, 2.0])], grads)
    assert text.splitlines() == [
        "value[0]  1",
        "grad[0] x 4",
        "value[1]  [1 2]",
        "grad[1] x [0 1]",
    ]


def test_text_shows_missing_gradient_as_none() -> None:
    assert eval_text(np.array(1.0), {"x": None}) == "value  1\ngrad x none"


@pytest.mark.parametrize(
    ("a", "text"),
    [
        (np.array([1.0, 2.0]), "[1 2]"),
        (np.array([0.1, 1 / 3]), "[               0.1 0.3333333333333333]"),
        (np.array([3e-4, 1.0]), "[0.0003      1]"),
        (np.array([1.0, 2**60]), "[                    1 1.152921504606847e+18]"),
        (np.array([1.0, math.inf]), "[  1 inf]"),
        (np.array([-0.0, 2.5]), "[  0 2.5]"),
        (np.zeros(0), "[]"),
    ],
)
def test_array_elements_follow_the_same_rule_as_scalars(a: np.ndarray, text: str) -> None:
    assert format_array(a) == text
    for element in a:
        assert format_number(element) in text


@pytest.mark.parametrize(
    ("x", "precision", "text"),
    [
        (1 / 3, 3, "0.333"),
        (2 / 3, 1, "0.7"),
        (123456.0, 2, "120000"),
        (1.23456e-7, 2, "1.2e-07"),
        (13.0, 5, "13"),
        (math.nan, 3, "nan"),
        (1.7e308, 1, "2e+308"),  # rounded past the largest float: not "inf"
        (-1.7e308, 1, "-2e+308"),
        (1.7e308, 2, "1.7e+308"),
    ],
)
def test_precision_rounds_to_significant_digits_then_prints_the_shortest_text(
    x: float, precision: int, text: str
) -> None:
    assert format_number(x, precision) == text
    assert format_array(np.array([x, x]), style=Style(precision=precision)) == f"[{text} {text}]"


def test_text_does_not_follow_numpy_global_print_options() -> None:
    with np.printoptions(precision=2, threshold=5):
        assert format_array(np.array([1 / 3, 2.0])) == "[0.3333333333333333                  2]"


def test_a_summarised_array_says_how_many_elements_it_left_out() -> None:
    text = format_array(np.arange(2000.0))
    assert text == "[   0    1    2 ... 1997 1998 1999] (1,994 of 2,000 elements not shown)"
    matrix = format_array(np.arange(2000.0).reshape(40, 50))
    assert matrix.endswith("(1,964 of 2,000 elements not shown)") and matrix.count("\n") == 6


@pytest.mark.parametrize("width", [40, 80, 120])
def test_arrays_wrap_to_the_width(width: int) -> None:
    text = format_array(np.linspace(0, 1, 30), indent=7, style=Style(width=width))
    lines = text.splitlines()
    assert len(lines) > 1
    assert all(len(line) + (7 if i == 0 else 0) <= width for i, line in enumerate(lines))


def test_derivatives_text_lists_orders_per_variable_aligned() -> None:
    derivs = {"x": [np.array(4.0), np.array(2.0)], "y": [np.array([6.0, 1.5]), np.array([2.0, 0.0])]}
    assert derivatives_text(derivs).splitlines() == [
        "d/dx   4",
        "d2/dx2 2",
        "d/dy   [  6 1.5]",
        "d2/dy2 [2 0]",
    ]


# -- size ----------------------------------------------------------------------------------------------


def test_a_million_elements_render_as_json_and_summarised_text() -> None:
    a = np.arange(1_000_000, dtype=np.float64).reshape(1000, 10, 100)
    a[0, 0, 0] = math.nan
    data = to_jsonable(a)
    assert data[0][0][0] == "NaN" and data[-1][-1][-1] == 999_999.0
    text = dumps(eval_json(a, {"x": a}))
    assert text.count("NaN") == 2
    short = eval_text(a, {"x": a})
    assert "..." in short and len(short) < 10_000


def test_a_32_dimensional_array_renders_without_recursion_trouble() -> None:
    a = np.ones((1,) * 32)
    nested = json.loads("[" * 32 + "1.0" + "]" * 32)
    assert _strict_loads(dumps(eval_json(a, {}))) == {"value": nested, "grad": {}}


# -- Hessians, Jacobians, checks -------------------------------------------------------------------


def test_hessian_matrix_shows_every_digit_and_non_finite_names() -> None:
    text = hessian_text(
        np.array(1.0),
        {"x": np.array(0.0), "yy": np.array(0.0)},
        {"x": {"x": 1 / 3, "yy": math.nan}, "yy": {"x": math.nan, "yy": -math.inf}},
    )
    assert text.splitlines()[-3:] == [
        "hessian                  x   yy",
        "x       0.3333333333333333  nan",
        "yy                     nan -inf",
    ]


def test_hessian_matrix_rounds_to_the_precision() -> None:
    text = hessian_text(np.array(1.0), {"x": np.array(0.0)}, {"x": {"x": 1 / 3}}, Style(precision=4))
    assert text.splitlines()[-2:] == ["hessian      x", "x       0.3333"]


@pytest.mark.parametrize("width", [60, 120, 200])
def test_a_wide_matrix_is_printed_in_blocks_of_columns_that_fit(width: int) -> None:
    names = [f"x{i}" for i in range(10)]
    numbers = np.random.default_rng(0).normal(size=(10, 10))
    lines = matrix_text("hessian", names, names, numbers, Style(width=width))
    assert max(map(len, lines)) <= width
    headers = [line.split() for line in lines if line.startswith("hessian")]
    assert [c for h in headers for c in h[1:]] == names  # every column once, in order
    for i, name in enumerate(names):  # every number once, exactly
        cells = [float(c) for line in lines if line.split()[0] == name for c in line.split()[1:]]
        assert cells == numbers[i].tolist()


def test_hessian_text_without_variables_is_the_value_alone() -> None:
    assert hessian_text(np.array(3.0), {}, {}) == "value 3"


def test_jacobian_text_without_variables_is_the_values_alone() -> None:
    assert jacobian_text([np.array(1.0), np.array([2.0, 3.0])], [{}, {}]) == "value[0] 1\nvalue[1] [2 3]"


def test_check_json_is_strict_json_with_non_finite_errors() -> None:
    from gradcli.calculus import check

    data = _strict_loads(dumps(check_json(check(lambda x: x * 1.0, {"x": math.nan}))))
    assert data["ok"] is False and data["failures"] == 1
    assert data["rows"][0]["numeric"] == "NaN" and data["rows"][0]["derivative"] == "d/dx"
