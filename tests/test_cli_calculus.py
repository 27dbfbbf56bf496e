"""gradcli eval --order, gradcli hessian, gradcli jacobian and gradcli check from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO, invoke, run_cli

pytestmark = pytest.mark.usefixtures("clean_registry")  # plugins loaded here

LINE = str(REPO / "examples" / "line.py")
VECTOR_WXB = ["--w", "[1, 2]", "--x", "[3, 4]", "--b", "0"]
SCALAR_WXB = ["--w", "3", "--x", "2", "--b", "1"]
COS1, SIN1 = 0.5403023058681398, 0.8414709848078965
TANH1_ORDERS_5_6 = [-5.55689355847, 13.6240754413]

# line(w, x, b) = w*x + b with d/dw deliberately wrong (gy instead of x*gy).
BAD_LINE_PLUGIN = """
import gradcli
from gradcli.engine import sum_to


@gradcli.register("{name}", rule="d/dw = x (but backward returns 1)")
class BadLine(gradcli.Function):
    def forward(self, w, x, b):
        self.save_for_backward(w, x, b)
        return w * x + b

    def backward(self, gy):
        w, x, b = self.saved_tensors
        return sum_to(gy, w.shape), sum_to(w * gy, x.shape), sum_to(gy, b.shape)
"""


def ok_json(*args: str) -> Any:
    rc, out, err = invoke(*args, "--json")
    assert rc == 0, err
    return json.loads(out)


# -- eval --order ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "x", "order", "expected"),
    [
        ("x**4 - 2*x**2", "2", 2, [24.0, 44.0]),
        ("sin(x)", "1", 4, [COS1, -SIN1, -COS1, SIN1]),
        ("tanh(x)", "1", 6, [None, None, None, None, *TANH1_ORDERS_5_6]),
    ],
)
def test_eval_order_gives_pure_derivatives(expr: str, x: str, order: int, expected: list[Any]) -> None:
    got = ok_json("eval", expr, "--x", x, "--order", str(order))["derivatives"]["x"]
    assert len(got) == order
    for g, e in zip(got, expected):
        if e is not None:
            assert g == pytest.approx(e, rel=1e-10)


def test_eval_order_json_is_exact_for_polynomial() -> None:
    rc, out, _ = invoke("eval", "x**4 - 2*x**2", "--x", "2", "--order", "2", "--json")
    assert rc == 0
    assert json.loads(out) == {"value": 8.0, "grad": {"x": 24.0}, "derivatives": {"x": [24.0, 44.0]}}


def test_eval_order_text_lists_each_order() -> None:
    rc, out, _ = invoke("eval", "x**4 - 2*x**2", "--x", "2", "--order", "2")
    assert rc == 0
    assert out.splitlines()[-2:] == ["d/dx   24", "d2/dx2 44"]


# -- errors that say how to fix ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "shape"),
    [
        (["eval", "x * [1, 2, 3]", "--x", "2", "--order", "2"], "(3,)"),
        (["hessian", "x * [1, 2, 3]", "--x", "2"], "(3,)"),
        (["hessian", "x * y", "--x", "[[1, 2], [3, 4]]", "--y", "1"], "(2, 2)"),
        (["check", "x * [1, 2]", "--x", "2", "--order", "2"], "(2,)"),
    ],
)
def test_non_scalar_output_names_its_shape_and_the_fix(args: list[str], shape: str) -> None:
    rc, out, err = invoke(*args)
    assert rc == 2
    assert out == ""
    assert f"shape {shape}" in err
    assert "sum(...)" in err and "gradcli jacobian" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["eval", "hessian"])
def test_several_outputs_for_second_derivatives_point_to_jacobian(command: str) -> None:
    extra = ["--order", "2"] if command == "eval" else []
    rc, _, err = invoke(command, "x*y, x+y", "--x", "2", "--y", "3", *extra)
    assert rc == 2
    assert "2 outputs" in err and "gradcli jacobian" in err


@pytest.mark.parametrize(
    "args",
    [
        ["hessian", "x*y", "--x", "1"],
        ["jacobian", "x*y", "--x", "1", "--y", "2", "--z", "3"],
        ["check", "x*y", "--x", "1", "--y", "2", "--wrt", "q"],
        ["check", "x", "--x", "1", "--order", "3"],
        ["check", "x", "--x", "1", "--eps", "0"],
        ["check", "x", "--x", "1", "--rtol", "-1"],
        ["jacobian", "x +", "--x", "1"],
    ],
)
def test_bad_usage_exits_2(args: list[str]) -> None:
    rc, out, err = invoke(*args)
    assert rc == 2
    assert out == ""
    assert err.strip()


# -- hessian -----------------------------------------------------------------------------------------


def test_hessian_json_of_scalar_variables_is_symmetric_and_exact() -> None:
    x, y = 1.0, 2.0
    data = ok_json("hessian", "x**2*y + sin(x*y)", "--x", "1", "--y", "2")
    assert data["value"] == pytest.approx(x**2 * y + np.sin(x * y), rel=1e-14)
    assert data["grad"] == pytest.approx(
        {"x": 2 * x * y + y * np.cos(x * y), "y": x**2 + x * np.cos(x * y)}, rel=1e-14
    )
    h = data["hessian"]
    assert list(h) == ["x", "y"] and all(list(row) == ["x", "y"] for row in h.values())
    assert h["x"]["y"] == h["y"]["x"]
    expected = {
        "x": {"x": 2 * y - y**2 * np.sin(x * y), "y": 2 * x + np.cos(x * y) - x * y * np.sin(x * y)},
        "y": {"y": -(x**2) * np.sin(x * y)},
    }
    for a, row in expected.items():
        for b, v in row.items():
            assert h[a][b] == pytest.approx(v, rel=1e-13)


def test_hessian_blocks_of_array_variables_have_shape_x_then_y() -> None:
    data = ok_json("hessian", "sum(x * x) * y + sum(x * v)", "--x", "[1, 2]", "--y", "3", "--v", "[[1], [2]]")
    h = data["hessian"]
    assert np.shape(h["x"]["x"]) == (2, 2)
    assert np.shape(h["x"]["y"]) == (2,)
    assert np.shape(h["y"]["x"]) == (2,)
    assert np.shape(h["y"]["y"]) == ()
    assert np.shape(h["x"]["v"]) == (2, 2, 1)
    assert np.shape(h["v"]["x"]) == (2, 1, 2)
    assert h["x"]["x"] == [[6.0, 0.0], [0.0, 6.0]]
    assert h["x"]["y"] == h["y"]["x"] == [2.0, 4.0]
    np.testing.assert_array_equal(np.asarray(h["x"]["v"]), np.transpose(h["v"]["x"], (2, 0, 1)))


def test_hessian_text_of_scalar_variables_is_a_labelled_matrix() -> None:
    rc, out, _ = invoke("hessian", "x**2*y + y**3", "--x", "3", "--y", "2")
    assert rc == 0
    assert out.splitlines() == [
        "value  26",
        "grad x 12",
        "grad y 21",
        "hessian x  y",
        "x       4  6",
        "y       6 12",
    ]


def test_hessian_text_of_array_variable_labels_each_block() -> None:
    rc, out, _ = invoke("hessian", "sum(x * x) * y", "--x", "[1, 2]", "--y", "3")
    assert rc == 0
    assert out.splitlines() == [
        "value       15",
        "grad x      [ 6 12]",
        "grad y      5",
        "hessian x x [[6 0]",
        "             [0 6]]",
        "hessian x y [2 4]",
        "hessian y x [2 4]",
        "hessian y y 0",
    ]


def test_hessian_wrt_holds_other_variables_constant() -> None:
    data = ok_json("hessian", "x*y**2", "--x", "1", "--y", "2", "--wrt", "y")
    assert data == {"value": 4.0, "grad": {"y": 4.0}, "hessian": {"y": {"y": 2.0}}}


# -- jacobian ----------------------------------------------------------------------------------------


def test_jacobian_of_vector_output_has_shape_output_then_variable() -> None:
    data = ok_json("jacobian", "x * [1, 2, 3] + y * v", "--x", "2", "--y", "1", "--v", "[4, 5, 6]")
    assert data["value"] == [6.0, 9.0, 12.0]
    assert data["jacobian"]["x"] == [1.0, 2.0, 3.0]
    assert data["jacobian"]["y"] == [4.0, 5.0, 6.0]
    assert data["jacobian"]["v"] == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def test_jacobian_of_matrix_output_and_variable_is_four_dimensional() -> None:
    data = ok_json("jacobian", "x * y", "--x", "[[1, 2], [3, 4]]", "--y", "3")
    jx = np.asarray(data["jacobian"]["x"])
    assert jx.shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(jx.reshape(4, 4), 3 * np.eye(4))
    assert data["jacobian"]["y"] == [[1.0, 2.0], [3.0, 4.0]]


def test_jacobian_of_several_outputs_gives_lists_like_eval() -> None:
    data = ok_json("jacobian", "x*y, x+y, x * [1, 2]", "--x", "2", "--y", "3")
    assert data == {
        "value": [6.0, 5.0, [2.0, 4.0]],
        "jacobian": [{"x": 3.0, "y": 2.0}, {"x": 1.0, "y": 1.0}, {"x": [1.0, 2.0], "y": [0.0, 0.0]}],
    }


@pytest.mark.parametrize(
    ("args", "lines"),
    [
        (
            ["x * [1, 2, 3] + y", "--x", "2", "--y", "1"],
            ["value [3 5 7]", "jacobian x y", "out[0]   1 1", "out[1]   2 1", "out[2]   3 1"],
        ),
        (
            ["x*y, x+y", "--x", "2", "--y", "3"],
            ["value[0] 6", "value[1] 5", "jacobian x y", "out0     3 2", "out1     1 1"],
        ),
        (
            ["sum(x) * y", "--x", "[1, 2]", "--y", "3"],
            ["value      9", "jacobian x [3 3]", "jacobian y 3"],
        ),
    ],
)
def test_jacobian_text(args: list[str], lines: list[str]) -> None:
    rc, out, _ = invoke("jacobian", *args)
    assert rc == 0
    assert out.splitlines() == lines


def test_jacobian_agrees_with_eval_gradient_rows() -> None:
    args = ["sin(x*y), x/y", "--x", "0.5", "--y", "2"]
    jac = ok_json("jacobian", *args)["jacobian"]
    grads = ok_json("eval", *args)["grad"]
    assert jac == grads


# -- check -------------------------------------------------------------------------------------------


def test_check_agrees_on_builtin_expression_and_exits_0() -> None:
    rc, out, err = invoke("check", "x**2*y + sin(x*y)", "--x", "1", "--y", "2")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["derivative", "analytic", "numeric", "abs", "err", "rel", "err", "ok"]
    assert [line.split()[0] for line in lines[1:3]] == ["d/dx", "d/dy"]
    assert lines[-1].startswith("all 2 derivatives agree")


def test_check_order_2_compares_hessian_entries_too() -> None:
    data = ok_json("check", "x**3 * y + exp(x - y)", "--x", "0.5", "--y", "2", "--order", "2")
    assert data["ok"] is True and data["order"] == 2 and data["failures"] == 0
    labels = [r["derivative"] for r in data["rows"]]
    assert labels == ["d/dx", "d/dy", "d2/dx dx", "d2/dx dy", "d2/dy dx", "d2/dy dy"]
    second = [r for r in data["rows"] if r["order"] == 2]
    assert [(r["variable"], r["other"]) for r in second] == [("x", "x"), ("x", "y"), ("y", "x"), ("y", "y")]


def test_check_json_rows_carry_every_field() -> None:
    data = ok_json("check", "sum(x * x)", "--x", "[1, 2]")
    assert set(data) == {"ok", "order", "rtol", "atol", "failures", "rows"}
    row = data["rows"][1]
    assert set(row) == {
        "output",
        "order",
        "derivative",
        "variable",
        "index",
        "other",
        "other_index",
        "analytic",
        "numeric",
        "abs_error",
        "rel_error",
        "ok",
    }
    assert row["derivative"] == "d/dx[1]" and row["index"] == [1] and row["analytic"] == 4.0


def test_check_line_plugin_passes_at_both_orders() -> None:
    values = ["--w", "[[1, 2], [3, 4]]", "--x", "[[5, 6], [7, 8]]", "--b", "[[0, 0], [0, 1]]"]
    for order in ("1", "2"):
        rc, out, err = invoke("check", "sum(line(w, x, b) ** 2)", "--plugin", LINE, *values, "--order", order)
        assert rc == 0, out + err
        assert "FAIL" not in out


def test_check_wrong_custom_backward_exits_1_and_names_the_entries(tmp_path: Path) -> None:
    plugin = tmp_path / "badline_plugin.py"
    plugin.write_text(BAD_LINE_PLUGIN.format(name="badline"))
    rc, out, err = invoke("check", "sum(badline(w, x, b))", "--plugin", str(plugin), *VECTOR_WXB)
    assert rc == 1
    assert err == ""
    failing = [line.split()[0] for line in out.splitlines() if line.endswith("FAIL")]
    assert failing == ["d/dw[0]", "d/dw[1]"]
    assert out.splitlines()[-1].startswith("2 of 5 derivatives differ")


def test_check_wrong_custom_backward_json_says_not_ok(tmp_path: Path) -> None:
    plugin = tmp_path / "badline_json_plugin.py"
    plugin.write_text(BAD_LINE_PLUGIN.format(name="badline_json"))
    rc, out, _ = invoke("check", "badline_json(w, x, b)", "--plugin", str(plugin), *SCALAR_WXB, "--json")
    assert rc == 1
    data = json.loads(out)
    assert data["ok"] is False and data["failures"] == 1
    bad = [r for r in data["rows"] if not r["ok"]]
    assert [(r["variable"], r["analytic"]) for r in bad] == [("w", 1.0)]
    assert bad[0]["numeric"] == pytest.approx(2.0, rel=1e-8)


@pytest.mark.parametrize(
    ("options", "rc"),
    [
        ([], 0),
        # A step of 1 makes the central difference of exp wrong by ~17 %.
        (["--eps", "1"], 1),
        (["--eps", "1", "--rtol", "0.2"], 0),
        (["--eps", "1", "--atol", "1"], 0),
    ],
)
def test_check_step_and_tolerances_decide_the_verdict(options: list[str], rc: int) -> None:
    got, out, err = invoke("check", "exp(x)", "--x", "0", *options)
    assert got == rc, out + err


def test_check_writes_its_json_report_to_o_file(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    rc, out, err = invoke("check", "x**2*y", "--x", "1", "--y", "2", "-o", str(path))
    assert (rc, out, err) == (0, "", "")
    report = json.loads(path.read_text())
    assert report["ok"] is True and [r["derivative"] for r in report["rows"]] == ["d/dx", "d/dy"]


@pytest.mark.parametrize("name", ["report.npz", "report.npy", "report.zarr"])
def test_check_refuses_to_write_its_report_as_arrays(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    rc, out, err = invoke("check", "x*x", "--x", "1", "-o", str(path))
    assert (rc, out) == (2, "")
    assert err == f"error: -o {path}: check writes a report, not arrays: -o FILE takes a JSON file here\n"
    assert not path.exists()


def test_check_wrt_limits_the_rows() -> None:
    data = ok_json("check", "x*y*z", "--x", "1", "--y", "2", "--z", "3", "--wrt", "z,x")
    assert [r["variable"] for r in data["rows"]] == ["x", "z"]


def test_check_several_outputs_checks_each_gradient() -> None:
    data = ok_json("check", "x*y, x+y", "--x", "2", "--y", "3")
    assert [(r["output"], r["variable"], r["analytic"]) for r in data["rows"]] == [
        (0, "x", 3.0),
        (0, "y", 2.0),
        (1, "x", 1.0),
        (1, "y", 1.0),
    ]


# -- grad() inside, where a command first runs the expression for its sizes -------------------------

# f = 1 / (2x): the inner derivative of x**2 is 2x, so f' = -1/(2x**2) and f'' = 1/x**3. Before a
# Jacobian, a check, pure partials or a plot, the expression runs once to learn its sizes; without
# a graph there, grad(x**2, x) was 0 and inv() refused a singular matrix that the real run never
# sees (exit 1, "the matrix is singular").
INVERSE_OF_GRAD = "sum(inv(reshape(grad(x**2, x), [1, 1])))"


@pytest.mark.parametrize(
    ("args", "path", "expected"),
    [
        (["eval", INVERSE_OF_GRAD, "--order", "2"], ["derivatives", "x"], [-0.125, 0.125]),
        (["jacobian", "inv(reshape(grad(x**2, x), [1, 1]))"], ["jacobian", "x"], [[-0.125]]),
        (["hessian", INVERSE_OF_GRAD], ["hessian", "x", "x"], 0.125),
    ],
)
def test_grad_inside_is_differentiated_where_its_sizes_are_worked_out(
    args: list[str], path: list[str], expected: Any
) -> None:
    rc, out, err = invoke(*args, "--x", "2", "--json")
    assert (rc, err) == (0, "")
    found = json.loads(out)
    for key in path:
        found = found[key]
    np.testing.assert_allclose(found, expected, rtol=1e-12)


def test_grad_inside_checks_at_order_2() -> None:
    rc, out, err = invoke("check", INVERSE_OF_GRAD, "--x", "2", "--order", "2", "--json")
    assert (rc, err) == (0, "")
    assert [r["analytic"] for r in json.loads(out)["rows"]] == pytest.approx([-0.125, 0.125], rel=1e-12)


def test_grad_inside_plots() -> None:
    args = ["--x", "1:2", "--points", "2", "--format", "csv", "-o", "-"]
    rc, out, err = invoke("plot", INVERSE_OF_GRAD, *args)
    assert (rc, err) == (0, "")
    assert out.splitlines() == ["x,f,df/dx", "1.0,0.5,-0.5", "2.0,0.25,-0.125"]


@pytest.mark.parametrize("command", [["eval", "--order", "2"], ["check", "--order", "2"], ["jacobian"]])
def test_no_warning_for_a_division_that_only_a_run_without_grad_would_make(command: list[str]) -> None:
    # x / grad(x**2, x) = 1/2 everywhere: no division by zero happens, so none is reported.
    rc, _, err = invoke(command[0], "x / grad(x**2, x)", *command[1:], "--x", "1")
    assert (rc, err) == (0, "")


# -- help --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("hessian", ["sum(...)", "gradcli jacobian", "--json", "--wrt"]),
        ("jacobian", ["OUT.shape + x.shape", "--json"]),
        ("check", ["--rtol", "--atol", "--eps", "--order", "--plugin", '"ok"', "Exit status 0"]),
    ],
)
def test_help_documents_the_contract(command: str, words: list[str]) -> None:
    rc, out, _ = invoke(command, "--help")
    assert rc == 0
    flat = " ".join(out.split())
    for word in words:
        assert word in flat


def test_commands_are_listed_by_the_group() -> None:
    rc, out, _ = invoke("--help")
    assert rc == 0
    for command in ("hessian", "jacobian", "check"):
        assert command in out


# -- a real process per command ---------------------------------------------------------------------


@pytest.mark.slow
def test_subprocess_eval_order() -> None:
    rc, out, err = run_cli("eval", "tanh(x)", "--x", "1", "--order", "6", "--json")
    assert rc == 0, err
    assert json.loads(out)["derivatives"]["x"][-2:] == pytest.approx(TANH1_ORDERS_5_6, rel=1e-11)


@pytest.mark.slow
def test_subprocess_hessian() -> None:
    rc, out, err = run_cli("hessian", "x**2*y + sin(x*y)", "--x", "1", "--y", "2", "--json")
    assert rc == 0, err
    h = json.loads(out)["hessian"]
    assert h["x"]["y"] == h["y"]["x"]


@pytest.mark.slow
def test_subprocess_jacobian() -> None:
    rc, out, err = run_cli("jacobian", "x * [1, 2, 3]", "--x", "2", "--json")
    assert rc == 0, err
    assert json.loads(out) == {"value": [2.0, 4.0, 6.0], "jacobian": {"x": [1.0, 2.0, 3.0]}}


@pytest.mark.slow
def test_subprocess_check_exit_codes(tmp_path: Path) -> None:
    rc, out, err = run_cli("check", "sum(line(w, x, b))", "--plugin", LINE, *VECTOR_WXB)
    assert rc == 0, out + err
    plugin = tmp_path / "badline_subprocess.py"
    plugin.write_text(BAD_LINE_PLUGIN.format(name="badline"))
    rc, out, err = run_cli("check", "badline(w, x, b)", "--plugin", str(plugin), *SCALAR_WXB)
    assert rc == 1
    assert "FAIL" in out and "Traceback" not in err


@pytest.mark.slow
def test_subprocess_hessian_non_scalar_error() -> None:
    rc, out, err = run_cli("hessian", "x * [1, 2, 3]", "--x", "2")
    assert rc == 2
    assert out == ""
    assert err.startswith("error: output has shape (3,)") and "Traceback" not in err
