"""Adding an expression command is one function: the recipe of gradcli.command's docstring,
followed here, gives a command with every common option, batch mode and -o, and the same
errors as the others."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np
import pytest
from conftest import invoke

from gradcli import calculus, render
from gradcli.cli import main
from gradcli.command import Request, expression_command


@expression_command("scaled")
@click.option("--by", type=float, default=2.0, help="The factor.")
def scaled_command(req: Request, by: float) -> render.Output:
    """EXPR's value and gradient times a factor (this line is its summary in --help)."""
    ev = calculus.evaluate(req.program, req.values, wrt=req.wrt)
    grads = [{name: by * g for name, g in row.items()} for row in ev.grad]
    return render.EvalOutput([by * v for v in ev.value], grads)


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    main.add_command(scaled_command)
    yield
    del main.commands["scaled"]


def test_the_docstring_recipe_is_the_one_tested_here() -> None:
    import gradcli.command

    assert '@expression_command("scaled")' in (gradcli.command.__doc__ or "")
    assert "grads = [{name: by * g for name, g in row.items()} for row in ev.grad]" in (
        gradcli.command.__doc__ or ""
    )


def test_a_new_command_has_text_json_and_the_common_options() -> None:
    assert invoke("scaled", "x*y", "--x", "2", "--y", "3", "--by", "10") == (
        0,
        "value  60\ngrad x 30\ngrad y 20\n",
        "",
    )
    rc, out, _ = invoke("scaled", "x*y", "--vars", '{"x": 2, "y": 3}', "--wrt", "y", "--json")
    assert json.loads(out) == {"value": 12.0, "grad": {"y": 4.0}}
    assert invoke("scaled", "x / 3", "--x", "1", "--precision", "2")[1] == "value  0.67\ngrad x 0.67\n"


def test_a_new_command_has_batch_mode_and_output_files(tmp_path: Path) -> None:
    rc, out, err = invoke("scaled", "x*x", "--batch", input='{"x": 1}\n{"y": 1}\n')
    assert rc == 1
    assert out.splitlines()[0] == '{"value": 2.0, "grad": {"x": 4.0}}'
    assert err.startswith("error: 1 of 2 lines failed")
    path = tmp_path / "g.npy"
    assert invoke("scaled", "sum(x*x)", "--x", "[1, 2]", "-o", str(path)) == (0, "", "")
    np.testing.assert_array_equal(np.load(path), [4.0, 8.0])


def test_a_new_command_has_the_same_errors_as_the_others() -> None:
    assert (
        invoke("scaled", "x", "--x", "1", "--bye", "2")[2]
        == "error: no such option '--bye' (did you mean --by?)\n"
    )
    assert invoke("scaled", "x + y", "--x", "1")[2] == "error: missing value for 'y' (variables: x, y)\n"
    assert invoke("scaled", "x +", "--x", "1")[0] == 2
