"""``gradcli eval`` and ``gradcli functions``: every way of giving an expression and its values, the
text and JSON outputs, exit statuses and error messages. Most run in-process through click's
CliRunner; those marked "subprocess" run ``python -m gradcli`` for real."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import invoke, run_cli

import gradcli
from gradcli.functions import REGISTRY
from gradcli.language import SPECIAL_FORMS


def eval_json(*args: str, input: str | None = None) -> Any:
    rc, out, err = invoke("eval", *args, "--json", input=input)
    assert rc == 0, err
    assert out.endswith("\n") and out.count("\n") == 1, "JSON is one line"
    return json.loads(out)


# --- the seed example ---------------------------------------------------------------------------

SEED = ("add(square(x), square(y))", "--x", "2", "--y", "3")
SEED_TEXT = "value  13\ngrad x 4\ngrad y 6\n"
SEED_JSON = '{"value": 13.0, "grad": {"x": 4.0, "y": 6.0}}\n'


def test_seed_example_prints_aligned_text() -> None:
    assert invoke("eval", *SEED) == (0, SEED_TEXT, "")


def test_seed_example_prints_exact_json() -> None:
    assert invoke("eval", "x**2 + y**2", "--x", "2", "--y", "3", "--json") == (0, SEED_JSON, "")


@pytest.mark.slow
def test_seed_example_in_a_subprocess() -> None:
    assert run_cli("eval", *SEED) == (0, SEED_TEXT, "")
    assert run_cli("eval", *SEED, "--json") == (0, SEED_JSON, "")


# --- values on the command line -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "value", "grad"),
    [
        (["--x", "2"], 4.0, 4.0),
        (["--x=2"], 4.0, 4.0),
        (["--x", "-2"], 4.0, -4.0),
        (["--x=-2"], 4.0, -4.0),
        (["--x", "1e-3"], 1e-6, 2e-3),
        (["--x", "-1.5e1"], 225.0, -30.0),
        (["--x", ".5"], 0.25, 1.0),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else None,
)
def test_variable_option_forms(args: list[str], value: float, grad: float) -> None:
    data = eval_json("x*x", *args)
    assert data["value"] == pytest.approx(value, rel=1e-15)
    assert data["grad"]["x"] == pytest.approx(grad, rel=1e-15)


@pytest.mark.parametrize(("text", "shown"), [("nan", "NaN"), ("inf", "Infinity"), ("-inf", "-Infinity")])
def test_non_finite_values_are_strict_json_strings(text: str, shown: str) -> None:
    data = eval_json("x", "--x", text)
    assert data == {"value": shown, "grad": {"x": 1.0}}


def test_array_value_in_brackets() -> None:
    assert eval_json("x*x", "--x", "[1, 2, 3]") == {"value": [1.0, 4.0, 9.0], "grad": {"x": [2.0, 4.0, 6.0]}}


def test_nested_array_value_gives_nested_lists() -> None:
    data = eval_json("x*2", "--x", "[[1, 2], [3, 4]]")
    assert data == {"value": [[2.0, 4.0], [6.0, 8.0]], "grad": {"x": [[2.0, 2.0], [2.0, 2.0]]}}


def test_value_from_an_npy_file(tmp_path: Path) -> None:
    path = tmp_path / "values.npy"
    np.save(path, np.array([1.0, 2.0, 3.0]))
    assert eval_json("sum(x*x)", "--x", f"@{path}") == {"value": 14.0, "grad": {"x": [2.0, 4.0, 6.0]}}


def test_value_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "values.json"
    path.write_text("[[1, 2], [3, 4]]")
    assert eval_json("sum(x)", "--x", f"@{path}") == {"value": 10.0, "grad": {"x": [[1.0, 1.0], [1.0, 1.0]]}}


def test_missing_value_is_a_usage_error_naming_the_variable() -> None:
    rc, out, err = invoke("eval", "x + y", "--x", "2")
    assert (rc, out) == (2, "")
    assert err == "error: missing value for 'y' (variables: x, y)\n"


def test_value_for_a_name_the_expression_does_not_use_is_an_error() -> None:
    rc, out, err = invoke("eval", "x*x", "--x", "2", "--z", "3")
    assert rc == 2
    assert out == ""
    assert "z" in err


def test_value_given_twice_is_an_error() -> None:
    rc, _, err = invoke("eval", "x", "--x", "2", "--x", "3")
    assert rc == 2
    assert "--x" in err


def test_option_without_a_value_is_an_error() -> None:
    rc, _, err = invoke("eval", "x", "--x")
    assert rc == 2
    assert "--x" in err


def test_value_that_is_not_a_number_is_a_usage_error() -> None:
    rc, out, err = invoke("eval", "x", "--x", "two")
    assert rc == 2
    assert out == ""
    assert "Traceback" not in err


def test_help_after_an_expression_lists_its_variables() -> None:
    rc, out, _ = invoke("eval", "x*y + sin(zeta)", "--help")
    assert rc == 0
    for name in ("--x", "--y", "--zeta"):
        assert name in out
    assert "--sin" not in out


def test_help_after_an_expression_gives_a_variable_named_as_an_option_through_vars() -> None:
    # It offered "--json VALUE" and "--wrt VALUE", which are the command's own options.
    rc, out, _ = invoke("eval", "json*y + wrt", "--help")
    assert rc == 0
    listed = out.split("Variables of this expression:")[1]
    assert "--json VALUE" not in listed and "--wrt VALUE" not in listed and "--y VALUE" in listed
    assert """--vars '{"json": VALUE}'""" in listed and """--vars '{"wrt": VALUE}'""" in listed
    assert invoke("eval", "json*y + wrt", "--vars", '{"json": 2, "wrt": 1}', "--y", "3")[1].startswith(
        "value     7"
    )


def test_help_says_a_non_scalar_gradient_is_that_of_the_sum() -> None:
    rc, out, _ = invoke("eval", "--help")
    assert rc == 0
    assert "sum of its elements" in " ".join(out.split())


# --- --vars, --wrt, -f --------------------------------------------------------------------------


def test_vars_as_json_text() -> None:
    data = eval_json("x * sum(y)", "--vars", '{"x": 2, "y": [1, 2]}')
    assert data == {"value": 6.0, "grad": {"x": 3.0, "y": [2.0, 2.0]}}


def test_vars_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "vars.json"
    path.write_text('{"x": 2, "y": [1, 2]}')
    assert eval_json("x * sum(y)", "--vars", f"@{path}")["value"] == 6.0


def test_vars_from_stdin() -> None:
    assert eval_json("x * sum(y)", "--vars", "-", input='{"x": 2, "y": [1, 2]}')["value"] == 6.0


def test_vars_combined_with_an_option_for_another_variable() -> None:
    assert eval_json("x * y", "--vars", '{"x": 2}', "--y", "5") == {
        "value": 10.0,
        "grad": {"x": 5.0, "y": 2.0},
    }


def test_an_option_overrides_the_same_variable_in_vars(tmp_path: Path) -> None:
    path = tmp_path / "vars.json"
    path.write_text('{"x": 2, "y": 3}')
    assert eval_json("x * y", "--vars", f"@{path}", "--x", "5") == {
        "value": 15.0,
        "grad": {"x": 3.0, "y": 5.0},
    }
    assert eval_json("x * y", "--x", "5", "--vars", f"@{path}")["value"] == 15.0  # whatever the order


def test_vars_with_an_unused_name_is_an_error() -> None:
    rc, _, err = invoke("eval", "x", "--vars", '{"x": 2, "w": 1}')
    assert rc == 2
    assert "w" in err


def test_wrt_restricts_the_gradients() -> None:
    assert eval_json("x*y", "--x", "2", "--y", "3", "--wrt", "x") == {"value": 6.0, "grad": {"x": 3.0}}
    assert eval_json("x*y*z", "--x", "1", "--y", "2", "--z", "3", "--wrt", "z,x")["grad"] == {
        "x": 6.0,
        "z": 2.0,
    }


def test_wrt_an_unknown_name_is_a_usage_error() -> None:
    rc, _, err = invoke("eval", "x*y", "--x", "2", "--y", "3", "--wrt", "q")
    assert rc == 2
    assert "q" in err


def test_wrt_in_text_output() -> None:
    assert invoke("eval", "x*y", "--x", "2", "--y", "3", "--wrt", "y") == (0, "value  6\ngrad y 2\n", "")


def test_expression_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "expr.txt"
    path.write_text("# the seed example, one statement a line\na = square(x)\nb = square(y)\na + b\n")
    assert invoke("eval", "-f", str(path), "--x", "2", "--y", "3") == (0, SEED_TEXT, "")


def test_expression_from_a_file_with_options_before_it(tmp_path: Path) -> None:
    path = tmp_path / "expr.txt"
    path.write_text("x*y")
    assert eval_json("--x", "2", "--y", "3", "-f", str(path)) == {"value": 6.0, "grad": {"x": 3.0, "y": 2.0}}


def test_expression_from_stdin() -> None:
    assert eval_json("-f", "-", "--x", "2", "--y", "3", input="x*y\n")["value"] == 6.0


@pytest.mark.slow
def test_expression_from_stdin_in_a_subprocess() -> None:
    rc, out, err = run_cli("eval", "-f", "-", "--x=2", "--y=3", "--json", input="x**2 + y**2\n")
    assert (rc, out, err) == (0, SEED_JSON, "")


def test_expression_both_as_argument_and_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "expr.txt"
    path.write_text("x")
    rc, _, err = invoke("eval", "x", "-f", str(path), "--x", "2")
    assert rc == 2
    assert "Traceback" not in err


def test_missing_expression_is_a_usage_error() -> None:
    rc, out, err = invoke("eval")
    assert rc == 2
    assert out == ""
    assert "expression" in err


# --- outputs ------------------------------------------------------------------------------------


def test_several_outputs_give_a_value_list_and_a_grad_list() -> None:
    assert eval_json("x*y, x+y", "--x", "2", "--y", "3") == {
        "value": [6.0, 5.0],
        "grad": [{"x": 3.0, "y": 2.0}, {"x": 1.0, "y": 1.0}],
    }


def test_several_outputs_in_text() -> None:
    rc, out, _ = invoke("eval", "x*y, x+y", "--x", "2", "--y", "3")
    assert rc == 0
    assert out.split() == "value[0] 6 grad[0] x 3 grad[0] y 2 value[1] 5 grad[1] x 1 grad[1] y 1".split()


def test_non_scalar_output_gradient_is_the_gradient_of_its_sum() -> None:
    data = eval_json("x * [1, 2, 3]", "--x", "2")
    assert data == {"value": [2.0, 4.0, 6.0], "grad": {"x": 6.0}}


def test_gradient_has_the_shape_of_its_variable() -> None:
    data = eval_json("sum(x * y)", "--x", "[[1, 2], [3, 4]]", "--y", "[10, 20]")
    assert data["grad"] == {"x": [[10.0, 20.0], [10.0, 20.0]], "y": [4.0, 6.0]}


def test_expression_without_variables_has_an_empty_gradient() -> None:
    assert eval_json("2**10") == {"value": 1024.0, "grad": {}}


def test_array_text_output_shows_every_element() -> None:
    rc, out, _ = invoke("eval", "x*x", "--x", "[1, 2, 3]")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("value") and lines[1].startswith("grad x")
    assert [t for t in lines[0].replace("[", " ").replace("]", " ").split()[1:]] == ["1", "4", "9"]


# --- worked examples as expressions -------------------------------------------------------------

GOLDSTEIN_PRICE = (
    "(1 + (x + y + 1)**2 * (19 - 14*x + 3*x**2 - 14*y + 6*x*y + 3*y**2))"
    " * (30 + (2*x - 3*y)**2 * (18 - 32*x + 12*x**2 + 48*y - 36*x*y + 27*y**2))"
)
TANH_6 = "grad(" * 6 + "tanh(x)" + ", x)" * 6

EXAMPLES = [
    ("sphere", "x**2 + y**2", {"x": 1, "y": 1}, 2.0, {"x": 2.0, "y": 2.0}),
    ("matyas", "0.26*(x**2 + y**2) - 0.48*x*y", {"x": 1, "y": 1}, 0.04, {"x": 0.04, "y": 0.04}),
    ("goldstein-price", GOLDSTEIN_PRICE, {"x": 1, "y": 1}, 1876.0, {"x": -5376.0, "y": 8064.0}),
    ("rosenbrock", "100*(y - x**2)**2 + (1 - x)**2", {"x": 0, "y": 2}, 401.0, {"x": -2.0, "y": 400.0}),
    ("x+x", "x + x", {"x": 3}, 6.0, {"x": 2.0}),
    ("reused name", "a = x**2; a**2 + a**2", {"x": 2}, 32.0, {"x": 64.0}),
    ("diamond", "t = x0 + x1; x0 + t", {"x0": 1, "x1": 2}, 4.0, {"x0": 2.0, "x1": 1.0}),
    ("double backprop", "grad(x**2, x)**3 + x**2", {"x": 2}, 68.0, {"x": 100.0}),
    ("double backprop by names", "y = x**2; gx = grad(y, x); gx**3 + y", {"x": 2}, 68.0, {"x": 100.0}),
    ("second derivative", "grad(grad(x**4 - 2*x**2, x), x)", {"x": 2}, 44.0, {"x": 48.0}),
    ("sixth derivative of tanh", TANH_6, {"x": 1}, 13.6240754413, None),
]


@pytest.mark.parametrize(
    ("expr", "inputs", "value", "grad"), [e[1:] for e in EXAMPLES], ids=[e[0] for e in EXAMPLES]
)
def test_worked_examples(expr: str, inputs: dict[str, float], value: float, grad: dict[str, float]) -> None:
    args = [a for n, v in inputs.items() for a in (f"--{n}", str(v))]
    data = eval_json(expr, *args)
    assert data["value"] == pytest.approx(value, rel=1e-10, abs=1e-12)
    if grad is not None:
        assert data["grad"] == pytest.approx(grad, rel=1e-10, abs=1e-12)


# --- errors and exit statuses -------------------------------------------------------------------


def test_shape_mismatch_exits_1_with_a_short_message() -> None:
    rc, out, err = invoke("eval", "x @ y", "--x", "[1, 2]", "--y", "[1, 2, 3]")
    assert rc == 1
    assert out == ""
    assert err.startswith("error: ")
    assert "matmul" in err
    assert len(err.splitlines()) <= 3
    assert "Traceback" not in err


@pytest.mark.slow
def test_shape_mismatch_in_a_subprocess_has_no_traceback() -> None:
    rc, out, err = run_cli("eval", "x + y", "--x", "[1, 2]", "--y", "[1, 2, 3]")
    assert rc == 1
    assert out == ""
    assert err.startswith("error: ")
    assert "Traceback" not in err


def test_parse_error_exits_2_with_the_expression_and_a_caret() -> None:
    rc, out, err = invoke("eval", "x + * y", "--x", "1", "--y", "2")
    assert rc == 2
    assert out == ""
    first, line, caret = err.rstrip("\n").split("\n")
    assert first.startswith("error: ") and "expected an expression after '+'" in first
    assert line.strip() == "x + * y"
    assert caret.strip() == "^"
    assert caret.index("^") == line.index("*")


@pytest.mark.slow
def test_parse_error_in_a_subprocess() -> None:
    rc, out, err = run_cli("eval", "sin(x", "--x", "1")
    assert rc == 2
    assert out == ""
    assert "^" in err
    assert "Traceback" not in err


def test_unknown_function_exits_2_with_a_suggestion() -> None:
    rc, _, err = invoke("eval", "sqaure(x)", "--x", "1")
    assert rc == 2
    assert "did you mean 'square'" in err


@pytest.mark.parametrize(
    "args",
    [
        ["sincos(x)", "--x", "1"],
        ["a, b = sin(x); a", "--x", "1"],
        ["sum(x, axis=5)", "--x", "[1, 2]"],
        ["x[10]", "--x", "[1, 2]"],
        ["reshape(x, shape=[3, 3])", "--x", "[1, 2]"],
        ["grad(x, 2)", "--x", "1"],
        ["x", "--x", "[1, [2]]"],
        ["x", "--x", "@/nonexistent/file.npy"],
        ["x", "--vars", "{not json"],
        ["x", "--x", "1", "extra"],
    ],
    ids=lambda a: " ".join(a),
)
def test_no_traceback_for_bad_input(args: list[str]) -> None:
    rc, out, err = invoke("eval", *args)
    assert rc in (1, 2)
    assert out == ""
    assert err.startswith("error: ")
    assert "Traceback" not in err


def test_floating_point_warning_is_one_line_naming_the_function() -> None:
    rc, out, err = invoke("eval", "log(x)", "--x", "0", "--json")
    assert rc == 0
    assert json.loads(out)["value"] == "-Infinity"
    lines = err.splitlines()
    assert "warning: log: divide by zero" in lines
    assert len(lines) == len(set(lines))
    assert all(line.startswith("warning: log") for line in lines)


@pytest.mark.parametrize(
    ("expr", "x", "lines"),
    [
        # The tape runs a two-input row's rules itself, outside any method of the function: the
        # warning named "numpy" there, where the README promises the function's name.
        ("x**0.5", "0", ["warning: pow (in backward): divide by zero"]),
        ("x**3", "1e200", ["warning: pow: overflow", "warning: pow (in backward): overflow"]),
        ("x/y", "1", ["warning: div: divide by zero", "warning: div (in backward): divide by zero"]),
        ("sqrt(x)", "0", ["warning: sqrt (in backward): divide by zero"]),
    ],
)
def test_floating_point_warning_names_the_function_in_backward(expr: str, x: str, lines: list[str]) -> None:
    rc, _, err = invoke("eval", expr, "--x", x, "--y", "0") if "y" in expr else invoke("eval", expr, "--x", x)
    assert rc == 0
    assert err.splitlines() == lines


def test_floating_point_warning_of_central_differences_names_them() -> None:
    # inf - inf in the differences themselves, outside any function: it said "numpy".
    rc, _, err = invoke("check", "x**2", "--x", "1e200")
    assert rc == 1
    assert err.splitlines()[:2] == ["warning: pow: overflow", "warning: central differences: invalid value"]


def test_floating_point_warning_in_a_hessians_rows_names_the_function() -> None:
    # The rows run the traced backward pass on arrays, where no Function runs: they said "numpy".
    rc, _, err = invoke("hessian", "x**2 + sqrt(y)", "--x", "1", "--y", "0")
    assert rc == 0
    assert err.splitlines() == [
        "warning: sqrt (in backward): divide by zero",
        "warning: div (in backward): invalid value",
        "warning: div: divide by zero",
        "warning: div: invalid value",
    ]


@pytest.mark.slow
def test_floating_point_warning_in_a_subprocess_has_no_python_warning_text() -> None:
    rc, out, err = run_cli("eval", "log(x)", "--x", "0", "--json")
    assert rc == 0
    assert json.loads(out)["value"] == "-Infinity"
    assert "warning: log: divide by zero" in err.splitlines()
    assert "RuntimeWarning" not in err


# --- the program itself -------------------------------------------------------------------------


def test_version() -> None:
    rc, out, _ = invoke("--version")
    assert rc == 0
    assert out.strip() == f"gradcli, version {gradcli.__version__}"


@pytest.mark.slow
def test_python_dash_m_gradcli_is_the_command() -> None:
    rc, out, err = run_cli("--version")
    assert (rc, out.strip(), err) == (0, f"gradcli, version {gradcli.__version__}", "")
    rc, out, _ = run_cli("--help")
    assert rc == 0
    assert "eval" in out and "functions" in out


def test_unknown_command_is_a_usage_error() -> None:
    rc, _, err = invoke("evaluate", "x")
    assert rc == 2
    assert "Traceback" not in err


def test_functions_lists_every_registry_name_under_its_group() -> None:
    rc, out, _ = invoke("functions")
    assert rc == 0
    listed = {
        line.split("(")[0].strip() for line in out.splitlines() if line[:3].strip() and line[2:3].isalpha()
    }
    assert set(REGISTRY) <= listed
    groups = {getattr(spec, "group", None) or "other" for spec in REGISTRY.values()}
    assert {
        line[:-1] for line in out.splitlines() if line.endswith(":") and not line.startswith(" ")
    } >= groups


def test_functions_of_one_group_fit_a_screen() -> None:
    groups = {getattr(spec, "group", None) or "other" for spec in REGISTRY.values()}
    assert len(groups) > 5
    for group in groups:
        rc, out, err = invoke("functions", group.replace(" ", "-"))
        assert rc == 0, err
        lines = out.splitlines()
        assert lines[0] == f"{group}:" and len(lines) <= 40
        names = {s.name for s in REGISTRY.values() if (getattr(s, "group", None) or "other") == group}
        assert {line.split("(")[0].strip() for line in lines[1:] if line[2:3].isalpha()} == names
    rc, _, err = invoke("functions", "no-such-group")
    assert rc == 2 and err.startswith("error: no group or function 'no-such-group' (groups: ")


def test_functions_of_another_name_or_a_form_of_the_language() -> None:
    # `functions arctan` said "no group 'arctan'", though the README calls arctan another name
    # of atan, and `functions grad` likewise, though the full list shows grad(EXPR, NAME).
    assert invoke("functions", "arctan")[1] == invoke("functions", "atan")[1]
    rc, out, _ = invoke("functions", "arctan")
    assert rc == 0 and out.splitlines()[1].split("(")[0].strip() == "atan"
    rc, out, _ = invoke("functions", "grad")
    assert rc == 0 and out.splitlines()[0] == "forms of the language:"
    assert out.splitlines()[1].split()[0] == "grad(EXPR,"
    rc, out, _ = invoke("functions", "max")  # the reduction and the form of several arguments
    assert rc == 0 and "forms of the language:" in out and "max(a, b, ...)" in out
    rc, _, err = invoke("functions", "arctann")
    assert rc == 2 and err.startswith("error: no group or function 'arctann'; did you mean 'arctan'")
    rc, _, err = invoke("functions", "linear-algbra")  # a group's name, mistyped
    assert rc == 2 and err.startswith(
        "error: no group or function 'linear-algbra'; did you mean 'linear-algebra'"
    )
    rc, _, err = invoke("functions", "trig")  # the start of a group's name
    assert rc == 2 and "'trig'; did you mean the group 'trigonometric'?" in err
    rc, out, _ = invoke("functions", "linear-algebra")  # which is a group
    assert rc == 0 and out.startswith("linear algebra:")


@pytest.mark.parametrize("name", ["Linear Algebra", "LOSSES", "Neural-Network"])
def test_functions_of_a_group_named_in_any_case(name: str) -> None:
    rc, out, err = invoke("functions", name)
    assert (rc, err) == (0, "")
    assert out.splitlines()[0] == name.lower().replace("-", " ") + ":"


@pytest.mark.parametrize(
    ("name", "hint"),
    [("reduction", "the group 'reductions'"), ("trig", "the group 'trigonometric'"), ("SUM", "'sum'")],
)
def test_functions_of_a_name_close_to_a_group_suggests_it(name: str, hint: str) -> None:
    rc, out, err = invoke("functions", name)
    assert (rc, out) == (2, "")
    assert err.startswith(f"error: no group or function {name!r}; did you mean {hint}? (groups: "), err


def test_functions_json_describes_every_registry_function() -> None:
    rc, out, _ = invoke("functions", "--json")
    assert rc == 0
    entries = json.loads(out)
    assert isinstance(entries, list)
    assert {e["name"] for e in entries if e["kind"] == "function"} == set(REGISTRY)
    sin = next(e for e in entries if e["name"] == "sin")
    assert sin["doc"] and sin["rule"]
    forms = [e for e in entries if e["kind"] == "form"]
    assert {e["signature"] for e in forms} == set(SPECIAL_FORMS)


def test_functions_json_of_a_form_lists_the_form_as_the_text_does() -> None:
    # `functions grad --json` gave [] where the text gives the form.
    rc, out, _ = invoke("functions", "grad", "--json")
    assert rc == 0
    assert json.loads(out) == [
        {
            "name": "grad",
            "group": "forms of the language",
            "signature": "grad(EXPR, NAME)",
            "doc": SPECIAL_FORMS["grad(EXPR, NAME)"],
            "kind": "form",
        }
    ]
    rc, out, _ = invoke("functions", "max", "--json")  # the reduction and the form
    assert rc == 0 and [e["kind"] for e in json.loads(out)] == ["function", "form"]
    rc, out, _ = invoke("functions", "reductions", "--json")  # a group: its functions only
    assert rc == 0 and {e["kind"] for e in json.loads(out)} == {"function"}


def test_shapes_that_do_not_broadcast_are_said_once_in_gradclis_words() -> None:
    # NumPy's words gave the shapes a second time, in another spelling, and a trailing space.
    rc, out, err = invoke("eval", "x*y", "--x", "[[1, 2], [3, 4]]", "--y", "[1, 2, 3]")
    assert (rc, out) == (1, "")
    assert err.splitlines()[0] == (
        "error: mul of shapes (2, 2), (3,): the shapes do not broadcast together "
        "(each axis, from the last: equal, or one is 1)"
    )
    rc, out, _ = invoke("eval", "x*y", "--batch", input='{"x": [1, 2], "y": [1, 2, 3]}\n')
    assert rc == 1 and json.loads(out)["error"].endswith(
        "the shapes do not broadcast together (each axis, from the last: equal, or one is 1)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["x", "--x", "[1, 2]"],
            "output has shape (2,): a derivative of higher order (--order) needs a scalar",
        ),
        (
            ["x, x", "--x", "1"],
            "2 outputs: a derivative of higher order (--order) needs a single scalar output",
        ),
    ],
)
def test_order_of_a_non_scalar_says_what_it_needs_in_good_grammar(args: list[str], message: str) -> None:
    rc, out, err = invoke("eval", *args, "--order", "2")
    assert (rc, out) == (2, "")
    assert err.startswith(f"error: {message}; "), err  # (it was "derivatives ... needs")
