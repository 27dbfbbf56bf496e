"""Each form of the language through the CLI, as a user types it: the JSON it prints, and for each
form a mistake and the one-line error (exit status 2) that it gets."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from conftest import invoke

FORMS: list[tuple[str, list[str], dict[str, Any]]] = [
    ("x > 1", ["--x", "2"], {"value": 1.0, "grad": {"x": 0.0}}),
    ("0 <= x < 1", ["--x", "[-1, 0, 0.5, 1]"], {"value": [0.0, 1.0, 1.0, 0.0], "grad": {"x": [0.0] * 4}}),
    ("x == y", ["--x", "1", "--y", "1"], {"value": 1.0, "grad": {"x": 0.0, "y": 0.0}}),
    ("x != 0 and not y", ["--x", "2", "--y", "0"], {"value": 1.0, "grad": {"x": 0.0, "y": 0.0}}),
    ("x < 0 or y > 0", ["--x", "1", "--y", "-1"], {"value": 0.0, "grad": {"x": 0.0, "y": 0.0}}),
    ("(x > 0) * x**2", ["--x", "3"], {"value": 9.0, "grad": {"x": 6.0}}),
    ("where(x > 0, x, -x)", ["--x", "-3"], {"value": 3.0, "grad": {"x": -1.0}}),
    ("x if x > 0 else -x", ["--x", "-3"], {"value": 3.0, "grad": {"x": -1.0}}),
    ("where(x > 0, sqrt(x), 0)", ["--x", "-1"], {"value": 0.0, "grad": {"x": 0.0}}),
    ("where(x != 0, sin(x)/x, 1)", ["--x", "0"], {"value": 1.0, "grad": {"x": 0.0}}),
    ("max(x, y)", ["--x", "1", "--y", "2"], {"value": 2.0, "grad": {"x": 0.0, "y": 1.0}}),
    ("min(x, y, 0)", ["--x", "1", "--y", "2"], {"value": 0.0, "grad": {"x": 0.0, "y": 0.0}}),
    (
        "max(x, axis=0)",
        ["--x", "[[1, 4], [3, 2]]"],
        {"value": [3.0, 4.0], "grad": {"x": [[0.0, 1.0], [1.0, 0.0]]}},
    ),
    ("[x, y]", ["--x", "1", "--y", "2"], {"value": [1.0, 2.0], "grad": {"x": 1.0, "y": 1.0}}),
    (
        "[[x, 0], [0, y]] @ [1, 2]",
        ["--x", "3", "--y", "4"],
        {"value": [3.0, 8.0], "grad": {"x": 1.0, "y": 2.0}},
    ),
    ("log(x, 2)", ["--x", "8"], {"value": 3.0, "grad": {"x": 0.18033688011112042}}),
    ("x[[0, 2]]", ["--x", "[1, 2, 3]"], {"value": [1.0, 3.0], "grad": {"x": [1.0, 0.0, 1.0]}}),
    ("x[None, :]", ["--x", "[1, 2]"], {"value": [[1.0, 2.0]], "grad": {"x": [1.0, 1.0]}}),
    (
        "x[..., 0]",
        ["--x", "[[1, 2], [3, 4]]"],
        {"value": [1.0, 3.0], "grad": {"x": [[1.0, 0.0], [1.0, 0.0]]}},
    ),
    ("sum(x, axis=None)", ["--x", "[1, 2]"], {"value": 3.0, "grad": {"x": [1.0, 1.0]}}),
    ("θ² · r − 1", ["--θ", "2", "--r", "3"], {"value": 11.0, "grad": {"θ": 12.0, "r": 4.0}}),
    ("x × y ÷ 4", ["--x", "2", "--y", "6"], {"value": 3.0, "grad": {"x": 1.5, "y": 0.5}}),
    ("x ≤ 1", ["--x", "1"], {"value": 1.0, "grad": {"x": 0.0}}),
    ("π·x", ["--x", "1"], {"value": 3.141592653589793, "grad": {"x": 3.141592653589793}}),
    ("x + sin(y)", ["--y", "0", "--x", "1"], {"value": 1.0, "grad": {"x": 1.0, "y": 1.0}}),
    ("y = 2; grad(x*y, y)", ["--x", "3"], {"value": 3.0, "grad": {"x": 1.0}}),
]


@pytest.mark.parametrize(("text", "args", "expected"), FORMS, ids=[f[0] for f in FORMS])
def test_each_form_through_the_cli(text: str, args: list[str], expected: dict[str, Any]) -> None:
    rc, out, err = invoke("eval", text, *args, "--json")
    assert (rc, err) == (0, "")
    data = json.loads(out)
    assert data == expected
    assert list(data["grad"]) == list(expected["grad"])  # the order of the text


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        ("x % 3", ["--x", "-7"], {"value": 2.0, "grad": {"x": 1.0}}),
        ("x // 2", ["--x", "-7"], {"value": -4.0, "grad": {"x": 0.0}}),
        ("x % y", ["--x", "7", "--y", "-3"], {"value": -2.0, "grad": {"x": 1.0, "y": 3.0}}),
    ],
)
def test_modulo_and_floor_division_through_the_cli(
    text: str, args: list[str], expected: dict[str, Any]
) -> None:
    rc, out, err = invoke("eval", text, *args, "--json")
    assert (rc, err, json.loads(out)) == (0, "", expected)


def test_hessian_rows_and_columns_follow_the_order_of_the_text() -> None:
    rc, out, _ = invoke("hessian", "x*y + sin(y)", "--y", "2", "--x", "1", "--json")
    data = json.loads(out)
    assert rc == 0 and list(data["grad"]) == ["x", "y"] and list(data["hessian"]) == ["x", "y"]
    assert list(data["hessian"]["y"]) == ["x", "y"]


MISTAKES = [
    # text, extra arguments, the error's first line, the offset of the caret in the text
    ("x <", [], "error: the expression ended too soon: expected an expression after '<'", 3),
    ("x if x > 0", [], "error: the expression ended too soon: expected 'else' after '0'", 10),
    ("x > 0 && x < 1", [], "error: unexpected character '&' after '0': gradcli writes 'and'", 6),
    ("not", [], "error: the expression ended too soon: expected an expression after 'not'", 3),
    ("where(x > 0, x)", [], "error: where() takes 3 inputs, got 2: where(cond, x, y)", 0),
    ("max(x, y, axis=0)", [], "error: max() of several expressions is elementwise", 10),
    ("[x, 'a']", [], "error: a string is an option of a function", 4),
    ("x[[0.5]]", [], "error: an index array must hold whole numbers", 3),
    ("x[None + 1]", [], "error: None is an option (axis=None) or in x[None, :], not a value", 2),
    ("x*１٠", [], "error: unexpected character '１' after '*': numbers are written with the digits 0-9", 2),
    (
        "np.exp(x)",
        [],
        "error: unexpected character '.' after 'np': functions are called by their name alone",
        2,
    ),
    ("clamp(x, 0, 1)", [], "error: unknown function 'clamp'; did you mean 'clip'?", 0),
    ("zzz(x)", [], "error: unknown function 'zzz' (`gradcli functions` lists them all)", 0),
    ("log(x, 2, 3)", [], "error: log() got too many arguments", 10),
]


@pytest.mark.parametrize(("text", "args", "first", "pos"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_each_form_has_a_one_line_error_with_a_caret(
    text: str, args: list[str], first: str, pos: int
) -> None:
    rc, out, err = invoke("eval", text, "--x", "1", "--y", "1", *args)
    lines = err.splitlines()
    assert (rc, out) == (2, "")
    assert lines[0].startswith(first), err
    assert lines[1:] == [f"  {text}", "  " + " " * pos + "^"]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "value", "first"),
    [
        ("sum(repeat(x, 100000000000000000000))", "2", "error: repeat() argument 'repeats' "),
        ("sum(x, axis=99999999999999999999)", "[1, 2]", "error: sum() option 'axis' "),
    ],
)
def test_an_option_past_64_bits_is_said_in_gradclis_words(text: str, value: str, first: str) -> None:
    # NumPy's was Python's: "Python int too large to convert to C long"; now refused as it is parsed
    rc, _, err = invoke("eval", text, "--x", value)
    assert rc == 2
    assert err.splitlines()[0] == first + "is too large (at most 2**63 - 1), got 1e+20"


@pytest.mark.parametrize(
    ("text", "message", "pos"),
    [
        ("sum(x, axis=1.5)", "sum() option 'axis' must be a whole number, got 1.5", 12),
        ("diag(x, 0.5)", "diag() argument 'k' must be a whole number, got 0.5", 8),
        ("roll(x, 1.5)", "roll() argument 'shift' must be a whole number, got 1.5", 8),  # (it was cut to 1)
        ("reshape(x, [1, 2.5])", "reshape() argument 'shape' must be a whole number, got 2.5", 12),
        ("sum(x, axis=nan)", "sum() option 'axis' must be a whole number, got nan", 12),
        ("sum(x, axis=True)", "sum() option 'axis' must be a whole number, got True", 12),
    ],
)
def test_a_whole_number_option_is_checked_as_the_expression_is_parsed(
    text: str, message: str, pos: int
) -> None:
    for command in ("eval", "graph"):  # graph evaluates nothing: the parser refuses it
        rc, out, err = invoke(command, text, "--x", "[1, 2]")
        assert (rc, out) == (2, "")
        assert err == f"error: {message}\n  {text}\n  {' ' * pos}^\n"


@pytest.mark.parametrize(("value", "shown"), [("2", "2"), ("0.5", "0.5"), ("'yes'", "'yes'")])
def test_a_true_or_false_option_is_checked_as_the_expression_is_parsed(value: str, shown: str) -> None:
    text = f"sum(x, keepdims={value})"
    rc, out, err = invoke("eval", text, "--x", "[1, 2]")
    assert (rc, out) == (2, "")
    assert (
        err == f"error: sum() option 'keepdims' must be True or False, got {shown}\n  {text}\n  {' ' * 16}^\n"
    )


@pytest.mark.parametrize(("value", "shape"), [("True", [1]), ("1", [1]), ("False", []), ("0", [])])
def test_a_true_or_false_option_takes_true_false_1_and_0(value: str, shape: list[int]) -> None:
    rc, out, err = invoke("eval", f"sum(x, keepdims={value})", "--x", "[1, 2]", "--json")
    assert rc == 0, err
    assert np.shape(json.loads(out)["value"]) == tuple(shape)


@pytest.mark.parametrize(
    ("text", "message", "pos"),
    [
        ("sin(x=1)", "sin() takes its inputs by position, not by name (x=...): sin(x)", 4),
        ("pow(x, y=2)", "pow() takes its inputs by position, not by name (y=...): pow(x, y)", 7),
    ],
)
def test_an_input_given_by_name_says_inputs_go_by_position(text: str, message: str, pos: int) -> None:
    rc, out, err = invoke("eval", text, "--x", "1")
    assert (rc, out) == (2, "")
    assert err == f"error: {message}\n  {text}\n  {' ' * pos}^\n"  # (it was "sin() takes 1 input, got 0")


def test_whole_number_options_name_options_of_their_functions() -> None:
    from gradcli.functions import REGISTRY
    from gradcli.functions.registry import WHOLE_NUMBER_OPTIONS

    for name, options in WHOLE_NUMBER_OPTIONS.items():
        assert set(options) <= set(REGISTRY[name].param_names), name
