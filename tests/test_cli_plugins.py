"""Custom functions end to end through the command line: the README's example, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, run_cli

LINE = str(REPO / "examples" / "line.py")
MATRICES = ["--w", "[[1, 2], [3, 4]]", "--x", "[[5, 6], [7, 8]]", "--b", "1"]

README_OUTPUT = """value  74
grad w [[5 6]
        [7 8]]
grad x [[1 2]
        [3 4]]
grad b 4
"""


@pytest.mark.slow
def test_readme_plugin_example_on_2x2_matrices() -> None:
    rc, out, err = run_cli("eval", "sum(line(w, x, b))", "--plugin", LINE, *MATRICES)
    assert (rc, out, err) == (0, README_OUTPUT, "")


@pytest.mark.slow
def test_plugin_from_the_environment_variable() -> None:
    rc, out, _ = run_cli(
        "eval", "sum(line(w, x, b))", *MATRICES, "--json", env_extra={"GRADCLI_PLUGINS": LINE}
    )
    assert rc == 0 and out.startswith('{"value": 74.0')


@pytest.mark.slow
def test_plugin_function_is_listed_with_its_rule() -> None:
    rc, out, _ = run_cli("functions", "--plugin", LINE)
    assert rc == 0
    assert "line(w, x, b)" in out and "d/dw = x, d/dx = w, d/db = 1" in out


@pytest.mark.slow
def test_without_the_switch_the_plugin_function_is_unknown() -> None:
    rc, _, err = run_cli("eval", "sum(line(w, x, b))", *MATRICES)
    assert rc == 2 and "unknown function 'line'" in err


# -- a plugin's failures are one line, never a traceback ---------------------------------------------

NO_BACKWARD = """
import gradcli

@gradcli.register("noback")
class NoBack(gradcli.Function):
    def forward(self, x):
        return x * 2
"""

FAILING = """
import sys
import gradcli

@gradcli.register("fussy")
class Fussy(gradcli.Function):
    def forward(self, x):
        if x < 0:
            {raise_it}
        return x * 2

    def backward(self, gy):
        return gy * 2
"""


def _write(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


@pytest.mark.slow
def test_a_plugin_function_without_backward_says_so(tmp_path: Path) -> None:
    plugin = _write(tmp_path, "noback.py", NO_BACKWARD)
    rc, out, err = run_cli("eval", "noback(x)", "--x", "1", "--plugin", plugin)
    assert (rc, out, err) == (1, "", "error: noback has no backward\n")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("raise_it", "shown"),
    [
        ("raise SystemExit(3)", "SystemExit: 3"),
        ("sys.exit('bye')", "SystemExit: bye"),
        ("raise BaseException('deep')", "BaseException: deep"),
        ("raise RuntimeError('no negatives')", "RuntimeError: no negatives"),
    ],
)
def test_whatever_a_plugin_raises_is_one_line_naming_it(tmp_path: Path, raise_it: str, shown: str) -> None:
    plugin = _write(tmp_path, "fussy.py", FAILING.format(raise_it=raise_it))
    rc, out, err = run_cli("eval", "fussy(x)", "--x", "-1", "--plugin", plugin)
    assert (rc, out, err) == (1, "", f"error: fussy (a plugin) failed in forward: {shown}\n")


@pytest.mark.slow
def test_a_plugin_failing_on_one_batch_line_is_that_lines_error(tmp_path: Path) -> None:
    plugin = _write(tmp_path, "fussy.py", FAILING.format(raise_it="raise SystemExit(3)"))
    rc, out, err = run_cli(
        "eval", "fussy(x)", "--batch", "--plugin", plugin, input='{"x": 1}\n{"x": -1}\n{"x": 2}\n'
    )
    assert rc == 1 and "Traceback" not in err
    assert out.splitlines() == [
        '{"value": 2.0, "grad": {"x": 2.0}}',
        '{"line": 2, "error": "fussy (a plugin) failed in forward: SystemExit: 3"}',
        '{"value": 4.0, "grad": {"x": 2.0}}',
    ]


@pytest.mark.slow
def test_a_plugin_raising_base_exception_while_loading_is_one_line(tmp_path: Path) -> None:
    plugin = _write(tmp_path, "bad.py", "raise BaseException('at import')\n")
    rc, out, err = run_cli("eval", "x", "--x", "1", "--plugin", plugin)
    assert (rc, out) == (2, "") and "Traceback" not in err
    assert err == f"error: plugin {plugin}: BaseException: at import (line 1)\n"


PLUGIN_OF = """
import gradcli

@gradcli.register("{name}")
class F(gradcli.Function):
    def forward(self, x):
        return x

    def backward(self, gy):
        return gy
"""


def test_a_name_registered_twice_says_who_has_it(tmp_path: Path) -> None:
    (tmp_path / "sin.py").write_text(PLUGIN_OF.format(name="sin"))
    (tmp_path / "a.py").write_text(PLUGIN_OF.format(name="myf"))
    (tmp_path / "b.py").write_text(PLUGIN_OF.format(name="myf"))
    rc, _, err = run_cli("eval", "x", "--x", "1", "--plugin", "sin.py", cwd=tmp_path)
    assert (rc, err) == (
        2,
        "error: plugin sin.py: function 'sin' is already registered (by gradcli itself)\n",
    )
    rc, _, err = run_cli("eval", "x", "--x", "1", "--plugin", "a.py", "--plugin", "b.py", cwd=tmp_path)
    assert rc == 2  # (it named gradcli.engine, and a module gradcli_plugin_a_<hash>)
    assert (
        err
        == f"error: plugin b.py: function 'myf' is already registered (by the plugin {tmp_path / 'a.py'})\n"
    )
