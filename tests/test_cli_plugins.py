"""Custom functions end to end through the command line: the README's example, exactly."""

from __future__ import annotations

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
