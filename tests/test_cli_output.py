"""What commands write and where: one rule for numbers (``--precision``), the terminal's width,
``-o FILE`` (JSON, .npy, .npz), ``check -q``, shell completion, help texts whose examples run,
and what a plain ``gradcli eval`` loads."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.shell_completion import BashComplete
from conftest import REPO, invoke, run_shell, subprocess_env

from gradcli.cli import LAZY_COMMANDS, main

# --- numbers ----------------------------------------------------------------------------------


def test_text_shows_every_digit_needed_and_precision_rounds() -> None:
    assert invoke("eval", "x / 3", "--x", "1")[1] == "value  0.3333333333333333\ngrad x 0.3333333333333333\n"
    assert invoke("eval", "x / 3", "--x", "1", "--precision", "3")[1] == "value  0.333\ngrad x 0.333\n"
    rc, out, _ = invoke("eval", "x / 3", "--x", "[1, 2]", "--precision", "2")
    assert out == "value  [0.33 0.67]\ngrad x [0.33 0.33]\n"


def test_precision_leaves_json_exact() -> None:
    rc, out, _ = invoke("eval", "x / 3", "--x", "1", "--precision", "3", "--json")
    assert json.loads(out)["value"] == 1 / 3


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "x * 3e-4", "--x", "[1, 2]"],
        ["hessian", "x**3 * y / 7", "--x", "1.5", "--y", "2"],
        ["jacobian", "x * [0.1, 0.2]", "--x", "1"],
        ["check", "sin(x)", "--x", "0.1"],
        ["explain", "x / 7", "--x", "1"],
        ["graph", "x / 7", "--x", "1", "--format", "text"],
    ],
    ids=lambda a: a[0],
)
def test_every_command_prints_numbers_by_the_same_rule(args: list[str]) -> None:
    rc, out, err = invoke(*args)
    assert rc == 0, err
    assert "e-04" not in out and "00000" not in out  # no fixed-width or padded scientific forms
    for token in re.findall(r"-?\d[\d.e+-]*", out):
        if "." in token or "e" in token:
            assert repr(float(token)).removesuffix(".0") == token


# --- the terminal's width -------------------------------------------------------------------------


@pytest.mark.parametrize("columns", ["50", "100", "160"])
def test_text_follows_the_terminal_width(columns: str) -> None:
    rc, out, _ = invoke("eval", "x / 7", "--x", json.dumps(list(range(60))), env={"COLUMNS": columns})
    assert rc == 0
    lines = out.splitlines()
    assert max(map(len, lines)) <= int(columns)
    assert max(map(len, lines)) > int(columns) - 25  # and uses it


def test_a_ten_by_ten_hessian_fits_a_120_column_terminal() -> None:
    names = [f"x{k}" for k in range(10)]
    expr = " + ".join(f"{k + 1}/3 * x{k} * x{(k + 1) % 10}" for k in range(10)) + " + sum_sq"
    expr = expr.replace(" + sum_sq", "")
    values = {n: 1.0 for n in names}
    rc, out, err = invoke("hessian", expr, "--vars", json.dumps(values), env={"COLUMNS": "120"})
    assert rc == 0, err
    lines = out.splitlines()
    assert max(map(len, lines)) <= 120
    data = json.loads(invoke("hessian", expr, "--vars", json.dumps(values), "--json")[1])["hessian"]
    for a in names:  # every entry is there, exactly
        row = next(line for line in lines if line.split()[0] == a and not line.startswith("grad"))
        assert [float(c) for c in row.split()[1:]] == [data[a][b] for b in names][: len(row.split()) - 1]


def test_a_summarised_array_says_how_many_elements_it_left_out() -> None:
    rc, out, _ = invoke("eval", "x * 2", "--x", json.dumps(list(range(5000))))
    assert rc == 0
    assert out.count("(4,994 of 5,000 elements not shown)") == 2


# --- -o FILE ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "keys"),
    [
        (["eval", "x * y", "--x", "[1, 2]", "--y", "3"], ["value", "grad/x", "grad/y"]),
        (
            ["eval", "x * y, x + y", "--x", "1", "--y", "2"],
            ["value/0", "value/1", "grad/0/x", "grad/0/y", "grad/1/x", "grad/1/y"],
        ),
        (["eval", "x**3", "--x", "2", "--order", "3"], ["value", "grad/x", "derivatives/x"]),
        (
            ["hessian", "x**2 * y", "--x", "1", "--y", "2"],
            ["value", "grad/x", "grad/y", "hessian/x/x", "hessian/x/y", "hessian/y/x", "hessian/y/y"],
        ),
        (["jacobian", "x * [1, 2]", "--x", "3"], ["value", "jacobian/x"]),
    ],
    ids=["eval", "eval several outputs", "eval order", "hessian", "jacobian"],
)
def test_output_npz_holds_every_array_by_name(tmp_path: Path, args: list[str], keys: list[str]) -> None:
    path = tmp_path / "result.npz"
    rc, out, err = invoke(*args, "-o", str(path))
    assert (rc, out, err) == (0, "", "")
    data = json.loads(invoke(*args, "--json")[1])
    with np.load(path) as npz:
        assert sorted(npz.files) == sorted(keys)
        if "grad/x" in keys:
            np.testing.assert_array_equal(npz["grad/x"], data["grad"]["x"])
        if "hessian/x/y" in keys:
            assert float(npz["hessian/x/y"]) == data["hessian"]["x"]["y"]
        if "derivatives/x" in keys:
            np.testing.assert_array_equal(npz["derivatives/x"], data["derivatives"]["x"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["eval", "sum(x * x)", "--x", "[1, 2]"], [2.0, 4.0]),
        (["eval", "x * y", "--x", "2", "--y", "3", "--wrt", "y"], 2.0),
        (["hessian", "sum(x * x * x)", "--x", "[1, 2]"], [[6.0, 0.0], [0.0, 12.0]]),
        (["jacobian", "x * [1, 2]", "--x", "3"], [1.0, 2.0]),
    ],
    ids=["eval", "eval wrt", "hessian", "jacobian"],
)
def test_output_npy_holds_the_one_derivative(tmp_path: Path, args: list[str], expected: object) -> None:
    path = tmp_path / "d.npy"
    assert invoke(*args, "-o", str(path)) == (0, "", "")
    np.testing.assert_array_equal(np.load(path), expected)


@pytest.mark.parametrize(
    "args",
    [["eval", "x * y", "--x", "1", "--y", "2"], ["jacobian", "x, 2*x", "--x", "1"]],
    ids=["two variables", "two outputs"],
)
def test_output_npy_with_several_derivatives_says_to_use_npz_or_wrt(tmp_path: Path, args: list[str]) -> None:
    rc, _, err = invoke(*args, "-o", str(tmp_path / "d.npy"))
    assert rc == 2
    assert ".npz" in err and "--wrt" in err


def test_output_any_other_file_is_the_json_line(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    assert invoke("eval", "x*x", "--x", "3", "-o", str(path)) == (0, "", "")
    assert path.read_text() == '{"value": 9.0, "grad": {"x": 6.0}}\n'


def test_output_to_a_file_that_cannot_be_written_is_exit_1(tmp_path: Path) -> None:
    rc, _, err = invoke("eval", "x", "--x", "1", "-o", str(tmp_path / "missing" / "r.json"))
    assert rc == 1 and err.startswith(f"error: cannot write {tmp_path / 'missing' / 'r.json'}: ")


# --- check -q -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "status"), [([], 0), (["--eps", "1"], 1)])
def test_check_quiet_says_it_by_the_exit_status_only(options: list[str], status: int) -> None:
    assert invoke("check", "exp(x)", "--x", "0", "-q", *options) == (status, "", "")


@pytest.mark.parametrize(("point", "status"), [("1", 0), ("0", 1)])
def test_check_quiet_prints_nothing_with_json_or_in_batch_mode(point: str, status: int) -> None:
    # -q printed the whole JSON with --json, and every line in batch mode.
    assert invoke("check", "relu(x)", "--x", point, "-q", "--json") == (status, "", "")
    rc, out, err = invoke("check", "relu(x)", "--batch", "-q", input=f'{{"x": 2}}\n{{"x": {point}}}\n')
    assert (rc, out) == (status, "")
    if status == 0:
        assert err == ""
    else:  # the failed lines, an error, on stderr
        assert err.startswith("error: 1 of 2 lines failed (first: line 2, ") and err.count("\n") == 1


def test_check_quiet_still_reports_errors() -> None:
    rc, out, err = invoke("check", "x + y", "--x", "0", "-q")
    assert (rc, out) == (2, "") and err.startswith("error: missing value for 'y'")


# --- shell completion -------------------------------------------------------------------------------


def completions(args: list[str], incomplete: str) -> list[tuple[str, str]]:
    complete = BashComplete(main, {}, "gradcli", "_GRADCLI_COMPLETE")
    return [(item.type, item.value) for item in complete.get_completions(args, incomplete)]


def test_completion_offers_the_variables_of_the_expression_after_dashes() -> None:
    got = [value for _, value in completions(["eval", "x*y + sin(zeta)", "--x", "1"], "--")]
    assert {"--y", "--zeta", "--json", "--batch"} <= set(got)
    assert "--x" not in got and "--sin" not in got
    assert [v for _, v in completions(["hessian", "alpha*beta"], "--al")] == ["--alpha"]


def test_completion_offers_file_names_after_at(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert completions(["eval", "sum(w)", "--w"], "@exa") == [("plain", "@examples/")]
    assert ("plain", "@examples/line.py") in completions(["eval", "sum(w)", "--w"], "@examples/")
    assert ("plain", "@examples/line.py") in completions(["eval", "sum(w)", "--vars"], "@examples/")


@pytest.mark.parametrize("option", ["-f", "--batch", "-o"])
def test_completion_offers_files_for_file_options(option: str) -> None:
    assert completions(["eval", "x", option], "ab") == [("file", "ab")]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_clicks_script_for_the_shell(shell: str) -> None:
    rc, out, _ = invoke("completion", shell)
    assert rc == 0 and "_GRADCLI_COMPLETE" in out and f"{shell}_complete" in out


@pytest.mark.slow
def test_completion_script_for_bash_is_valid_bash() -> None:
    rc, out, _ = invoke("completion", "bash")
    assert subprocess.run(["bash", "-n"], input=out, text=True, capture_output=True).returncode == 0


# --- help texts ---------------------------------------------------------------------------------


def _all_commands() -> list[str]:
    return sorted({*main.commands, *LAZY_COMMANDS})


def _help(command: str) -> str:
    rc, out, err = invoke(command, "--help", env={"COLUMNS": "200"})
    assert rc == 0, err
    return out


def _examples(command: str) -> list[str]:
    """The command lines that a help text shows (the indented lines that start gradcli)."""
    lines = [line.strip() for line in _help(command).splitlines() if line.startswith("    ")]
    return [line for line in lines if re.match(r"(gradcli |printf .*\| gradcli )", line)]


@pytest.mark.parametrize("command", _all_commands())
def test_every_command_has_a_help_text_with_examples_of_itself(command: str) -> None:
    text = _help(command)
    assert text.startswith(f"Usage: gradcli {command} ")
    assert all(f"gradcli {command}" in example for example in _examples(command)), text


def test_help_shows_the_printf_example_on_one_line() -> None:
    assert 'printf \'{"x": 1, "y": 2}\\n{"x": 3, "y": 4}\\n\' | gradcli eval "x*y" --batch' in _help("eval")


@pytest.mark.slow
@pytest.mark.parametrize("command", _all_commands())
def test_every_example_in_a_help_text_runs(command: str, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    for example in _examples(command):
        rc, out, err = run_shell(example, cwd=tmp_path)
        if re.search(r"--format (svg|png|pdf)", example) and shutil.which("dot") is None:
            # Graphviz renders these: without it, the one line that says how to install it
            assert rc == 1 and err.startswith("error: the 'dot' program (Graphviz) is not installed"), err
            continue
        # 1 is an answer too: a check that fails, a minimisation that did not converge.
        assert rc in (0, 1) and "Traceback" not in err, f"{example}\n{err}"
        assert rc == 0 or err.startswith("error: "), f"{example}\n{err}"
        assert out or len(list(tmp_path.iterdir())) > 1, f"{example}: no output"


# --- what a plain eval loads --------------------------------------------------------------------

NOT_LOADED_BY_EVAL = [
    "json",
    "difflib",
    "shutil",
    "subprocess",
    "gradcli.batch",
    "gradcli.cli_calculus",
    "gradcli.cli_inspect",
    "gradcli.explain",
    "gradcli.graph",
    "gradcli.plugins",
    "zlib",
    "encodings.ascii",
    "click.shell_completion",
    "scipy",
    "matplotlib",
]


@pytest.mark.slow
def test_a_plain_eval_loads_only_what_it_needs() -> None:
    code = (
        "import sys\nfrom gradcli.cli import run\n"
        "status = run(['eval', 'x*y', '--x', '2', '--y', '3'])\n"
        f"print(status, [m for m in {NOT_LOADED_BY_EVAL!r} if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env())
    assert proc.stdout.splitlines()[-1] == "0 []", proc.stdout + proc.stderr


def test_the_collector_waits_while_gradcli_starts_and_runs_as_usual_once_it_has(tmp_path: Path) -> None:
    """The console script raises the collector's first threshold until the command has read its
    inputs (a plugin, loaded before that, sees it raised), then freezes what exists and gives
    Python's thresholds back, for the rest of the run."""
    plugin = tmp_path / "look.py"
    plugin.write_text("import gc\nprint('starting', gc.get_threshold()[0], gc.get_freeze_count())\n")
    code = (
        "import atexit, gc, sys\n"
        "from gradcli._entry import STARTING_THRESHOLD, main\n"
        "print('python', gc.get_threshold(), STARTING_THRESHOLD)\n"
        "def after(): print('after', gc.get_threshold(), gc.get_freeze_count() > 0, gc.isenabled())\n"
        "atexit.register(after)\n"
        f"sys.argv = ['gradcli', 'eval', 'x*y', '--x', '2', '--y', '3', '--plugin', {str(plugin)!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    python, starting, after = lines[0].split(" ", 1)[1], lines[1], lines[-1]
    thresholds, raised = python.rsplit(" ", 1)
    assert starting == f"starting {raised} 0"
    assert after == f"after {thresholds} True True"
    assert "value  6" in proc.stdout


def test_the_python_api_leaves_the_collector_alone() -> None:
    import gc

    from gradcli.cli import run

    before = (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled())
    assert run(["eval", "x*y", "--x", "2", "--y", "3"]) == 0
    assert (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()) == before


def test_the_cli_names_the_plugins_variable_as_the_plugins_module_does() -> None:
    from gradcli import command, plugins

    assert command.PLUGINS_VAR == plugins.ENV_VAR


LIBRARY_MODULES = ["arithmetic", "elementwise", "reductions", "logic", "shape", "linalg", "losses", "special"]


@pytest.mark.parametrize("module", LIBRARY_MODULES)
def test_each_module_of_functions_imports_on_its_own_before_the_registry_has_loaded(module: str) -> None:
    """The library's modules load as their names are looked up; one imported directly first (as
    a reader of the source might) must not load the others before the names they import exist."""
    code = (
        f"import gradcli.functions.{module}\n"
        "from gradcli.functions import REGISTRY\n"
        "print(len(REGISTRY), REGISTRY['det'].name, REGISTRY['sin'].name)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env())
    assert proc.returncode == 0, proc.stderr
    count, *names = proc.stdout.split()
    assert int(count) > 100 and names == ["det", "sin"]


def test_examples_are_found_in_help_texts() -> None:
    assert shlex.split(_examples("eval")[0])[:2] == ["gradcli", "eval"]


@pytest.mark.parametrize(
    ("command", "starts"),
    [
        (("eval", "x", "--x", "1", "--json"), "{"),
        (("eval", "x", "--x", "1"), "value"),
        (("graph", "x"), "digraph"),
    ],
)
def test_output_dash_is_standard_output(tmp_path: Path, command: tuple[str, ...], starts: str) -> None:
    """``-o -`` once wrote a file named ``-`` in the current directory; it is no file at all, so
    the answer is what stdout shows without it (text, unless --json)."""
    proc = subprocess.run(
        [sys.executable, "-m", "gradcli", *command, "-o", "-"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(starts) and not (tmp_path / "-").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("eval", "x*y", "--x", "2", "--y", "3"),
        ("hessian", "x*y", "--x", "2", "--y", "3"),
        ("graph", "x*y"),
        ("plot", "sin(x)", "--x=0:1"),
    ],
    ids=lambda a: a[0],
)
def test_an_empty_output_file_name_is_a_usage_error(args: tuple[str, ...]) -> None:
    # (-o "$OUT" with OUT unset once said "cannot write : No such file or directory", status 1.)
    rc, out, err = invoke(*args, "-o", "")
    assert (rc, out) == (2, "")
    said = "an empty file name; give a FILE, or - for standard output"
    assert err == f"error: invalid value for '-o' / '--output': {said}\n"


def test_an_empty_plot_file_name_for_minimize_is_a_usage_error() -> None:
    rc, out, err = invoke("minimize", "x**2", "--x", "1", "--plot", "")
    assert (rc, out, err) == (2, "", "error: invalid value for '--plot': an empty file name; give a FILE\n")
