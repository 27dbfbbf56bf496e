"""Options and errors that every expression command shares: a mistyped option is not a variable,
every usage error is one line, the command line overrides files, and each condition has one
wording wherever it is found (the command line, a batch line, the Python API)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke

from gradcli import calculus
from gradcli.language import parse
from gradcli.program import EvaluationError

EXPRESSION_COMMANDS = ["eval", "hessian", "jacobian", "check", "graph", "explain"]


# --- a mistyped option is not a variable ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "x*x", "--x", "1", "--jsn"], "no such option '--jsn' (did you mean --json?)"),
        (["eval", "--jsn", "x*x", "--x", "1"], "no such option '--jsn' (did you mean --json?)"),
        (["eval", "x*x", "--x", "1", "--ordr", "2"], "no such option '--ordr' (did you mean --order?)"),
        (
            ["hessian", "x*x", "--x", "1", "--order", "2"],
            "no such option '--order' for hessian (check, eval and plot have it)",
        ),
        (["explain", "x*x", "--x", "1", "--wrt", "x"], "no such option '--wrt' for explain"),
        (["eval", "x*x", "--x", "1", "--z", "3"], "no such option '--z', and no variable 'z' (variables: x)"),
        (
            ["eval", "x*y", "--x", "1", "--yy", "3"],
            "no such option '--yy', and no variable 'yy'; did you mean 'y'?",
        ),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else None,
)
def test_an_option_that_is_neither_an_option_nor_a_variable_says_so(args: list[str], message: str) -> None:
    rc, out, err = invoke(*args)
    assert (rc, out) == (2, "")
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err


@pytest.mark.parametrize("command", EXPRESSION_COMMANDS)
def test_a_variable_named_like_nothing_else_is_a_variable_in_every_command(command: str) -> None:
    rc, out, err = invoke(command, "sum(jsn * jsn)", "--jsn", "[1, 2]")
    assert rc == 0, err
    assert out


# --- every usage error is one line ----------------------------------------------------------------

USAGE_ERRORS = [
    ["eval", "x", "--x", "1", "--order", "abc"],
    ["eval", "x", "--x", "1", "--order", "100"],
    ["eval", "x", "--x", "1", "--precision", "0"],
    ["evaluate", "x"],
    ["--bogus", "eval", "x"],
    ["eval"],
    ["eval", "x", "-y", "2"],
    ["eval", "x", "--x", "1", "extra"],
    ["eval", "x", "--x"],
    ["eval", "x", "--x", "1", "--x", "2"],
    ["check", "x", "--x", "1", "--order", "3"],
    ["graph", "x", "--format", "jpeg"],
    ["functions", "--bogus"],
    ["completion", "powershell"],
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=" ".join)
def test_every_usage_error_is_one_line_starting_error_with_status_2(args: list[str]) -> None:
    rc, out, err = invoke(*args)
    assert (rc, out) == (2, "")
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Usage:" not in err and "Try " not in err


def test_debug_shows_click_usage_as_well() -> None:
    rc, _, err = invoke("--debug", "eval", "x", "--x", "1", "--order", "abc")
    assert rc == 2
    assert "Usage:" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "x", "-y", "2"], "error: no such option '-y' (a variable is given as --y VALUE)\n"),
        (["eval", "x", "--x"], "error: option --x needs a value\n"),
        (["eval", "x", "--x", "1", "--x", "2"], "error: option --x is given twice\n"),
        (["eval", "x + y", "--x", "1"], "error: missing value for 'y' (variables: x, y)\n"),
    ],
)
def test_usage_errors_say_what_to_do(args: list[str], message: str) -> None:
    assert invoke(*args)[2] == message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["minimize", "x*x", "--x", "1", "-o", "out.txt"],
            "no such option '-o' for minimize (check, eval, explain, graph, hessian, jacobian and plot "
            "have it)",
        ),
        (["graph", "x", "-q"], "no such option '-q' for graph (check has it)"),
        (
            ["functions", "-o", "x"],
            "no such option '-o' for functions (check, eval, explain, graph, hessian, jacobian and plot "
            "have it)",
        ),
    ],
)
def test_a_short_option_of_other_commands_names_them(args: list[str], message: str) -> None:
    assert invoke(*args)[::2] == (2, f"error: {message}\n")


@pytest.mark.parametrize(
    "args", [["functions", "-j"], ["completion", "-j", "bash"], ["-j", "eval", "x"]], ids=" ".join
)
def test_a_command_without_variables_gives_no_advice_on_variables(args: list[str]) -> None:
    assert invoke(*args)[::2] == (2, "error: no such option '-j'\n")


@pytest.mark.parametrize("command", ["eval", "hessian", "jacobian", "check", "minimize", "root"])
@pytest.mark.parametrize("wrt", ["", " , "])
def test_a_wrt_that_names_no_variable_is_refused(command: str, wrt: str) -> None:
    assert invoke(command, "x*x + y", "--x", "1", "--y", "2", "--wrt", wrt)[::2] == (
        2,
        f"error: --wrt {wrt!r} names no variable: give them as --wrt x,y (variables: x, y)\n",
    )


@pytest.mark.parametrize(
    ("args", "option", "dash"),
    [
        (["eval", "-f", "", "--x", "1"], "'-f' / '--file'", ", or - for standard input"),
        (["eval", "x", "--x", "1", "--batch", ""], "'--batch'", ", or - for standard input"),
        (["plot", "-f", "", "--x", "0:1"], "'-f' / '--file'", ", or - for standard input"),
        (["eval", "x", "--x", "1", "--plugin", ""], "'--plugin'", ""),
        (["functions", "--plugin", ""], "'--plugin'", ""),
    ],
)
def test_an_empty_file_name_is_a_usage_error_naming_the_option(
    args: list[str], option: str, dash: str
) -> None:
    assert invoke(*args)[::2] == (
        2,
        f"error: invalid value for {option}: an empty file name; give a FILE{dash}\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["eval", "x", "--x", "1", "--order", "abc"],
            "invalid value for '--order': 'abc' is not a valid integer",
        ),
        (
            ["eval", "x", "--x", "1", "--order", "1.5"],
            "invalid value for '--order': '1.5' is not a valid integer",
        ),
        (
            ["--max-nodes", "many", "eval", "x"],
            "invalid value for '--max-nodes': 'many' is not a valid integer",
        ),
        (
            ["plot", "x", "--x", "0:1", "--points", "ten"],
            "invalid value for '--points': 'ten' is not a valid integer",
        ),
        (
            ["check", "x", "--x", "1", "--eps", "tiny"],
            "invalid value for '--eps': 'tiny' is not a valid number",
        ),
        (
            ["minimize", "x*x", "--x", "1", "--lr", "fast"],
            "invalid value for '--lr': 'fast' is not a valid number",
        ),
    ],
)
def test_a_bad_number_for_an_option_is_said_in_plain_words(args: list[str], message: str) -> None:
    assert invoke(*args)[::2] == (2, f"error: {message}\n")


@pytest.mark.parametrize(
    ("args", "option", "value"),
    [
        (["eval", "--wrt", "x*y", "--x", "1", "--y", "2"], "--wrt", "x*y"),
        (["eval", "-o", "x*x", "--x", "1"], "-o/--output", "x*x"),
        (["hessian", "--batch", "sin(x)"], "--batch", "sin(x)"),
        (["eval", "--wrt", "x", "--x", "1"], "--wrt", "x"),
        (["plot", "-o", "x**2", "--x", "0:1"], "-o/--output", "x**2"),
    ],
)
def test_an_expression_taken_as_an_options_value_names_the_option(
    args: list[str], option: str, value: str
) -> None:
    assert invoke(*args)[::2] == (
        2,
        f"error: missing the expression: option {option} took {value!r} as its value "
        "(give the option its own value, or put the expression before it)\n",
    )


def test_an_expression_given_to_f_says_f_takes_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("eval", "-f", "x*x", "--x", "1")[::2] == (
        2,
        "error: -f x*x: No such file or directory (-f takes a file; the expression itself goes without -f)\n",
    )
    assert invoke("eval", "-f", "nofile.txt")[::2] == (2, "error: -f nofile.txt: No such file or directory\n")


@pytest.mark.parametrize(
    ("name", "text", "args", "option"),
    [
        ("expr.txt", "x*x", ["-f", "expr.txt", "--x", "1"], "-f"),
        ("x.json", "[1, 2]", ["sum(x)", "--x", "@x.json"], "--x"),
        ("v.json", '{"x": 1}', ["x", "--vars", "@./v.json"], "--vars"),
    ],
)
def test_an_output_file_that_is_also_an_input_is_refused_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, args: list[str], option: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(text)
    assert invoke("eval", *args, "-o", name)[::2] == (
        2,
        f"error: -o {name} is also read by {option}: writing the results would replace it\n",
    )
    assert (tmp_path / name).read_text() == text


def test_a_missing_expression_blames_no_option_whose_value_is_not_one() -> None:
    rc, _, err = invoke("eval", "-o", "out", "--x", "1")
    assert (rc, err) == (2, "error: missing the expression: gradcli eval EXPR [--x VALUE ...] (see --help)\n")


# --- the command line is more specific than a file, a batch line more specific than both --------


def test_an_option_overrides_vars_from_a_file_in_every_command(tmp_path: Path) -> None:
    path = tmp_path / "vars.json"
    path.write_text('{"x": 2, "y": 3}')
    for command in ("eval", "hessian", "jacobian"):
        rc, out, err = invoke(command, "x * y", "--vars", f"@{path}", "--x", "5", "--json")
        assert rc == 0, err
        assert json.loads(out)["value"] == 15.0


def test_in_batch_mode_a_line_overrides_options_which_override_vars(tmp_path: Path) -> None:
    path = tmp_path / "vars.json"
    path.write_text('{"a": 1, "b": 10, "x": 100}')
    lines = '{"x": 2}\n{"x": 3, "a": 7}\n'
    rc, out, err = invoke("eval", "a*x + b", "--vars", f"@{path}", "--a", "5", "--batch", input=lines)
    assert rc == 0, err
    assert [json.loads(line)["value"] for line in out.splitlines()] == [5 * 2 + 10, 7 * 3 + 10]


# --- constants are not variables ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["eval", "e*x", "--x", "1", "--e", "2"], ["eval", "e*x", "--vars", '{"x": 1, "e": 2}']]
)
def test_a_constant_given_a_value_says_it_is_the_constant_and_how_to_name_a_variable(args: list[str]) -> None:
    rc, out, err = invoke(*args)
    assert (rc, out) == (2, "")
    assert "e is the constant 2.718281828459045" in err
    assert "give it another name in the expression (e.g. e_)" in err


def test_a_constant_in_a_batch_line_is_reported_in_place() -> None:
    rc, out, _ = invoke("eval", "pi*x", "--batch", input='{"x": 1, "pi": 3}\n')
    assert rc == 1
    assert "pi is the constant 3.141592653589793" in json.loads(out)["error"]


# --- stdin can be read once -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["eval", "-f", "-", "--batch"], "-f - and --batch both read standard input"),
        (["eval", "x", "--vars", "-", "--batch"], "--vars - and --batch both read standard input"),
        (["hessian", "-f", "-", "--batch", "-"], "-f - and --batch both read standard input"),
    ],
)
def test_two_readers_of_stdin_are_refused_with_the_reason(args: list[str], why: str) -> None:
    rc, out, err = invoke(*args, input='{"x": 1}\n')
    assert (rc, out) == (2, "")
    assert err.startswith(f"error: {why}") and "--batch FILE" in err


def test_a_batch_file_and_the_expression_from_stdin_go_together(tmp_path: Path) -> None:
    path = tmp_path / "points.ndjson"
    path.write_text('{"x": 3}\n')
    rc, out, err = invoke("eval", "-f", "-", "--batch", str(path), input="x*x\n")
    assert (rc, err) == (0, "")
    assert json.loads(out) == {"value": 9.0, "grad": {"x": 6.0}}


def test_an_expression_file_may_start_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "expr.txt"
    path.write_bytes(b"\xef\xbb\xbfx*x\n")
    assert invoke("eval", "-f", str(path), "--x", "3", "--json")[1] == '{"value": 9.0, "grad": {"x": 6.0}}\n'


# --- one wording per condition, wherever it is found ----------------------------------------------


def _cli_single(expr: str, values: dict[str, float]) -> str:
    rc, _, err = invoke("eval", expr, "--vars", json.dumps(values))
    assert rc == 2
    return err.removeprefix("error: ").rstrip("\n")


def _cli_batch(expr: str, values: dict[str, float]) -> str:
    rc, out, _ = invoke("eval", expr, "--batch", input=json.dumps(values) + "\n")
    assert rc == 1
    return str(json.loads(out)["error"])


def _api(expr: str, values: dict[str, float]) -> str:
    with pytest.raises(calculus.CalculusError) as info:
        calculus.evaluate(parse(expr), values)
    return str(info.value)


def _program(expr: str, values: dict[str, float]) -> str:
    with pytest.raises(EvaluationError) as info:
        parse(expr).run(values)
    return str(info.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"x": 1.0}, "missing value for 'y' (variables: x, y)"),
        ({"x": 1.0, "y": 2.0, "w": 3.0}, "no variable 'w' (variables: x, y)"),
    ],
    ids=["missing value", "unknown variable"],
)
def test_one_wording_per_condition_on_the_command_line_in_batch_and_in_python(
    values: dict[str, float], message: str
) -> None:
    for where in (_cli_single, _cli_batch, _api, _program):
        assert where("x*y", values) == message, where.__name__


# --- error messages stay a readable size ----------------------------------------------------------


def test_a_huge_name_gives_a_short_message() -> None:
    name = "v" * 1_000_000
    rc, _, err = invoke("eval", f"{name} + w", "--w", "1")
    assert rc == 2
    assert err.startswith("error: missing value for 'vvv") and len(err) < 2_000
    assert "characters left out" in err and err.endswith("w)\n")


def test_a_huge_name_in_a_batch_line_gives_a_short_record() -> None:
    line = json.dumps({"x": 1, "q" * 1_000_000: 2})
    rc, out, err = invoke("eval", "x", "--batch", input=line + "\n")
    assert rc == 1
    assert len(out) < 2_000 and len(err) < 2_000
    assert "characters left out" in json.loads(out)["error"]


# --- many variables -------------------------------------------------------------------------------


@pytest.mark.slow
def test_forty_thousand_variables_through_vars(tmp_path: Path) -> None:
    n = 40_000
    expr, values = tmp_path / "sum.txt", tmp_path / "values.json"
    expr.write_text(" + ".join(f"x{i}" for i in range(n)))
    values.write_text(json.dumps({f"x{i}": float(i) for i in range(n)}))
    rc, out, err = invoke("eval", "-f", str(expr), "--vars", f"@{values}", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["value"] == float(np.arange(n).sum()) and len(data["grad"]) == n


def test_the_expression_and_vars_cannot_both_come_from_stdin() -> None:
    rc, _, err = invoke("eval", "-f", "-", "--vars", "-", input="x\n")
    assert rc == 2 and err.startswith("error: -f - and --vars - both read standard input")
