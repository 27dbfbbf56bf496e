"""gradcli minimize and gradcli root, and gradcli.optimize beneath them.

Every answer is checked against a computation written here: SciPy called directly with gradients
(Hessians, Hessian-vector products, Jacobians) written by hand, gradient descent and Newton's
method written by hand, and roots known in closed form.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np
import pytest
import scipy.optimize as so
from conftest import invoke, run_cli

from gradcli import calculus, parse
from gradcli.optimize import MINIMIZE_METHODS, ROOT_METHODS, minimize, root

ROSENBROCK = "100*(y - x**2)**2 + (1 - x)**2"
QUARTIC = "x**4 - 2*x**2"
GD_ANCHOR = ["--x", "0", "--y", "2", "--method", "gd", "--lr", "0.001", "--max-iter", "1000"]


def rosen(v: np.ndarray) -> float:
    return float(100 * (v[1] - v[0] ** 2) ** 2 + (1 - v[0]) ** 2)


def rosen_grad(v: np.ndarray) -> np.ndarray:
    x, y = v
    return np.array([-400 * x * (y - x**2) - 2 * (1 - x), 200 * (y - x**2)])


def rosen_hess(v: np.ndarray) -> np.ndarray:
    x, y = v
    return np.array([[1200 * x**2 - 400 * y + 2, -400 * x], [-400 * x, 200.0]])


def ok_json(*args: str) -> Any:
    rc, out, err = invoke(*args, "--json")
    assert (rc, err) == (0, ""), err
    return json.loads(out)


# -- the anchors of the issue -------------------------------------------------------------------------


def test_newton_on_the_quartic_reaches_one_within_seven_iterations_as_dezero_step_29() -> None:
    data = ok_json("minimize", QUARTIC, "--x", "2", "--method", "newton")
    assert data["converged"] is True and data["iterations"] <= 7
    assert data["point"]["x"] == pytest.approx(1.0, abs=1e-10)
    assert data["value"] == pytest.approx(-1.0, abs=1e-15)


def test_newton_iterates_are_those_of_x_minus_f1_over_f2_written_by_hand() -> None:
    sol = minimize(QUARTIC, {"x": 2.0}, method="newton", trace=True)
    x, hand = 2.0, []
    for _ in range(len(sol.trace)):
        hand.append(x)
        x = x - (4 * x**3 - 4 * x) / (12 * x**2 - 4)
    np.testing.assert_allclose([float(s.point["x"]) for s in sol.trace], hand, rtol=1e-15)


def test_default_method_takes_rosenbrock_from_the_classic_start_to_one_one() -> None:
    data = ok_json("minimize", ROSENBROCK, "--x", "-1.2", "--y", "1")
    assert list(data) == ["point", "value", "grad", "iterations", "converged", "method"]
    assert data["method"] == "bfgs" and data["converged"] is True
    assert data["point"]["x"] == pytest.approx(1.0, abs=1e-6)
    assert data["point"]["y"] == pytest.approx(1.0, abs=1e-6)
    expected = so.minimize(rosen, [-1.2, 1.0], jac=rosen_grad, method="BFGS")
    assert data["iterations"] == expected.nit
    np.testing.assert_allclose([data["point"]["x"], data["point"]["y"]], expected.x, rtol=1e-9)
    np.testing.assert_allclose(
        [data["grad"]["x"], data["grad"]["y"]], rosen_grad(np.array([data["point"]["x"], data["point"]["y"]]))
    )


def _gradient_descent(gradient: Any, x: float, y: float, lr: float, steps: int) -> list[tuple[float, float]]:
    """DeZero step 28: x <- x - lr * grad, printed before each step."""
    out = [(x, y)]
    for _ in range(steps):
        gx, gy = gradient(x, y)
        x, y = x - lr * gx, y - lr * gy
        out.append((x, y))
    return out


def test_gd_follows_the_iterates_of_gradient_descent_written_by_hand() -> None:
    sol = minimize(ROSENBROCK, {"x": 0.0, "y": 2.0}, method="gd", lr=0.001, max_iter=1000, trace=True)
    mine = [(float(s.point["x"]), float(s.point["y"])) for s in sol.trace]
    assert sol.iterations == 1000 and len(mine) == 1001 and not sol.converged
    # The rule itself, bit for bit: the same update on the engine's own gradient.
    program = parse(ROSENBROCK)
    with_engine = _gradient_descent(
        lambda x, y: tuple(float(g) for g in map(calculus.grad(program, {"x": x, "y": y}).get, "xy")),
        0.0,
        2.0,
        0.001,
        1000,
    )
    assert mine == with_engine
    # The numbers, against the derivative written by hand (the engine rounds in another order).
    by_hand = _gradient_descent(lambda x, y: tuple(rosen_grad(np.array([x, y]))), 0.0, 2.0, 0.001, 1000)
    np.testing.assert_allclose(mine, by_hand, rtol=1e-13, atol=1e-15)


def test_gd_that_has_not_converged_prints_the_result_and_exits_1() -> None:
    rc, out, err = invoke("minimize", ROSENBROCK, *GD_ANCHOR, "--json")
    data = json.loads(out)
    assert rc == 1 and data["converged"] is False and data["iterations"] == 1000
    assert err.startswith("error: did not converge (gd, 1000 iterations): ") and err.count("\n") == 1
    assert (data["point"]["x"], data["point"]["y"]) == pytest.approx((0.6837118569138317, 0.4659526837427042))


def test_root_of_the_cubic_is_the_closed_form_to_1e12() -> None:
    # Cardano: t**3 + p*t + q = 0 with p = -2, q = -5 has one real root.
    p, q = -2.0, -5.0
    d = math.sqrt(q * q / 4 + p**3 / 27)
    closed = math.cbrt(-q / 2 + d) + math.cbrt(-q / 2 - d)
    data = ok_json("root", "x**3 - 2*x - 5", "--x", "2")
    assert data["converged"] is True and data["method"] == "hybr"
    assert abs(data["point"]["x"] - closed) <= 1e-12
    assert abs(data["point"]["x"] - 2.0945514815423265) <= 1e-12
    assert data["grad"]["x"] == pytest.approx(3 * closed**2 - 2)
    assert abs(data["value"]) <= 1e-12


# -- minimize: every method against SciPy called directly ----------------------------------------------


SCIPY_NAMES = {name: m.scipy for name, m in MINIMIZE_METHODS.items() if m.scipy is not None}
# Their iteration counts move with the last bit of a derivative (a hand-written Hessian scaled by
# 1 + 1e-15 turns trust-constr's 27 iterations into 19 here), so only their answers are compared.
ROUNDING_SENSITIVE = {"trust-constr", "tnc"}

CONVEX = "(x - 1)**4 + (x - 2*y)**2 + exp(x + y)"


def convex(v: np.ndarray) -> float:
    return float((v[0] - 1) ** 4 + (v[0] - 2 * v[1]) ** 2 + np.exp(v[0] + v[1]))


def convex_grad(v: np.ndarray) -> np.ndarray:
    e = np.exp(v[0] + v[1])
    return np.array([4 * (v[0] - 1) ** 3 + 2 * (v[0] - 2 * v[1]) + e, -4 * (v[0] - 2 * v[1]) + e])


def convex_hess(v: np.ndarray) -> np.ndarray:
    e = np.exp(v[0] + v[1])
    return np.array([[12 * (v[0] - 1) ** 2 + 2 + e, -4 + e], [-4 + e, 8 + e]])


@pytest.mark.parametrize("method", sorted(SCIPY_NAMES))
def test_scipy_method_matches_scipy_given_hand_written_derivatives(method: str) -> None:
    spec = MINIMIZE_METHODS[method]
    extra: dict[str, Any] = {}
    if spec.hessian == "hess":
        extra["hess"] = convex_hess
    elif spec.hessian == "hessp":
        extra["hessp"] = lambda v, p: convex_hess(v) @ p
    expected = so.minimize(convex, [2.0, 2.0], jac=convex_grad, method=SCIPY_NAMES[method], **extra)
    sol = minimize(CONVEX, {"x": 2.0, "y": 2.0}, method=method)
    assert sol.converged and expected.success and sol.method == method
    if method not in ROUNDING_SENSITIVE:
        assert sol.iterations == expected.nit
    np.testing.assert_allclose([sol.point["x"], sol.point["y"]], expected.x, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose([sol.grad["x"], sol.grad["y"]], convex_grad(expected.x), atol=1e-5)


def test_hessian_vector_products_of_array_variables_match_the_matrix_written_by_hand() -> None:
    # f = sum(x**2 * y) + sum(x)**3: newton-cg uses only products, trust-exact the matrix.
    expr = "sum(x**2 * y) + sum(x)**3 + sum(y**4)"

    def f(v: np.ndarray) -> float:
        x, y = v[:2], v[2:]
        return float(np.sum(x**2 * y) + np.sum(x) ** 3 + np.sum(y**4))

    def g(v: np.ndarray) -> np.ndarray:
        x, y = v[:2], v[2:]
        return np.concatenate([2 * x * y + 3 * np.sum(x) ** 2, x**2 + 4 * y**3])

    def h(v: np.ndarray) -> np.ndarray:
        x, y = v[:2], v[2:]
        top = np.diag(2 * y) + 6 * np.sum(x)
        return np.block([[top, np.diag(2 * x)], [np.diag(2 * x), np.diag(12 * y**2)]])

    start = {"x": [0.5, -0.3], "y": [1.0, 2.0]}
    x0 = np.array([0.5, -0.3, 1.0, 2.0])
    for method, extra in (("newton-cg", {"hessp": lambda v, p: h(v) @ p}), ("trust-exact", {"hess": h})):
        expected = so.minimize(f, x0, jac=g, method=SCIPY_NAMES[method], **extra)
        sol = minimize(expr, start, method=method)
        assert sol.iterations == expected.nit
        np.testing.assert_allclose(np.concatenate([sol.point["x"], sol.point["y"]]), expected.x, rtol=1e-7)


def test_newton_on_several_variables_solves_with_the_hessian_as_written_by_hand() -> None:
    sol = minimize(ROSENBROCK, {"x": -1.2, "y": 1.0}, method="newton", trace=True)
    v, hand = np.array([-1.2, 1.0]), []
    for _ in range(len(sol.trace)):
        hand.append(v)
        v = v - np.linalg.solve(rosen_hess(v), rosen_grad(v))
    assert sol.converged
    np.testing.assert_allclose(
        [[s.point["x"], s.point["y"]] for s in sol.trace], hand, rtol=1e-12, atol=1e-15
    )


def test_array_variable_comes_back_as_nested_lists_in_json() -> None:
    data = ok_json("minimize", "sum((x - [[1, 2], [3, 4]])**2)", "--x", "[[0, 0], [0, 0]]")
    np.testing.assert_allclose(data["point"]["x"], [[1, 2], [3, 4]], atol=1e-6)
    assert np.shape(data["grad"]["x"]) == (2, 2)


def test_wrt_holds_the_other_variables_constant() -> None:
    data = ok_json("minimize", "(x - a)**2 + a**2", "--x", "0", "--a", "3", "--wrt", "x")
    assert list(data["point"]) == ["x"] and list(data["grad"]) == ["x"]
    assert data["point"]["x"] == pytest.approx(3.0) and data["value"] == pytest.approx(9.0)


@pytest.mark.parametrize("method", ["l-bfgs-b", "tnc", "slsqp", "trust-constr"])
def test_bounds_keep_the_minimum_inside_as_scipy_does(method: str) -> None:
    expected = so.minimize(
        lambda v: float((v[0] - 2) ** 2 + (v[1] + 3) ** 2),
        [0.0, 0.0],
        jac=lambda v: np.array([2 * (v[0] - 2), 2 * (v[1] + 3)]),
        method=SCIPY_NAMES[method],
        bounds=[(-1, 1), (-1, None)],
    )
    data = ok_json(
        "minimize", "(x - 2)**2 + (y + 3)**2", "--x", "0", "--y", "0", "--method", method,
        "--bounds", "x=-1:1", "--bounds", "y=-1:",
    )  # fmt: skip
    # trust-constr, an interior-point method, stops about 1e-4 inside the bounds.
    np.testing.assert_allclose([data["point"]["x"], data["point"]["y"]], expected.x, atol=1e-5)
    np.testing.assert_allclose([data["point"]["x"], data["point"]["y"]], [1.0, -1.0], atol=1e-4)


@pytest.mark.parametrize("text", ["", " , "])
def test_bounds_that_name_nothing_are_refused_not_ignored(text: str) -> None:
    assert invoke("minimize", "x**2", "--x", "1", "--method", "l-bfgs-b", "--bounds", text)[::2] == (
        2,
        f"error: --bounds {text!r}: expected NAME=LOW:HIGH, e.g. x=0:1 (an end may be empty)\n",
    )


@pytest.mark.parametrize(
    ("command", "args", "bad"),
    [
        ("minimize", ["x**2", "--x", "inf"], "inf"),
        ("minimize", ["sum(x**2)", "--x", "[1, nan]"], "nan"),
        ("root", ["x", "--x", "-inf"], "-inf"),
    ],
)
def test_a_start_that_is_not_finite_is_refused(command: str, args: list[str], bad: str) -> None:
    assert invoke(command, *args)[::2] == (
        2,
        f"error: --x: the start holds {bad}; {command} starts from finite numbers\n",
    )  # (SciPy iterated on nan, and said "precision loss")


def test_start_outside_the_bounds_is_clipped_into_them() -> None:
    data = ok_json("minimize", "(x - 0.5)**2", "--x", "5", "--method", "l-bfgs-b", "--bounds", "x=0:1")
    assert data["point"]["x"] == pytest.approx(0.5)


# -- --trace -------------------------------------------------------------------------------------------


def test_trace_json_is_one_line_per_iteration_then_the_result() -> None:
    rc, out, err = invoke("minimize", QUARTIC, "--x", "2", "--method", "newton", "--trace", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    result = lines[-1]
    assert rc == 0 and len(lines) == result["iterations"] + 2
    for k, line in enumerate(lines[:-1]):
        assert list(line) == ["iteration", "point", "value", "grad_norm"] and line["iteration"] == k
        x = line["point"]["x"]
        assert line["value"] == pytest.approx(x**4 - 2 * x**2, rel=1e-15, abs=1e-15)
        assert line["grad_norm"] == pytest.approx(abs(4 * x**3 - 4 * x), rel=1e-12, abs=1e-15)


def test_trace_table_has_a_row_per_iteration_before_the_result() -> None:
    # The columns follow the inputs in the order they appear in the text: x first here.
    rc, out, _ = invoke("minimize", "(1 - x)**2 + 100*(y - x**2)**2", "--x", "-1.2", "--y", "1", "--trace")
    lines = out.splitlines()
    head = lines[0].split()
    assert rc == 0 and head == ["iter", "x", "y", "value", "|grad|"]
    iterations = int(next(line.split()[1] for line in lines if line.startswith("iterations")))
    rows = lines[1 : 2 + iterations]
    assert [int(r.split()[0]) for r in rows] == list(range(iterations + 1))
    assert rows[0].split()[1:4] == ["-1.2", "1", "24.2"]
    assert lines[2 + iterations].startswith("point x")


# -- root ----------------------------------------------------------------------------------------------


def test_root_of_a_system_gives_residuals_and_jacobian_rows_like_eval() -> None:
    data = ok_json("root", "x**2 + y**2 - 4, x - y", "--x", "1", "--y", "0.5")
    r2 = math.sqrt(2)
    assert data["point"] == pytest.approx({"x": r2, "y": r2})
    assert data["value"] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert data["grad"] == [pytest.approx({"x": 2 * r2, "y": 2 * r2}), pytest.approx({"x": 1.0, "y": -1.0})]


def test_root_of_a_linear_vector_equation_is_numpys_solve() -> None:
    a, b = np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([1.0, 2.0])
    for method in ("hybr", "lm", "newton"):
        data = ok_json("root", "[[2, 1], [1, 3]] @ x - [1, 2]", "--x", "[0, 0]", "--method", method)
        np.testing.assert_allclose(data["point"]["x"], np.linalg.solve(a, b), rtol=1e-10)
        np.testing.assert_allclose(data["grad"]["x"], a)


def test_root_newton_follows_newton_written_by_hand_with_a_parameter_held() -> None:
    sol = root("x**2 - a", {"x": 1.0, "a": 2.0}, wrt="x", method="newton", trace=True)
    x, hand = 1.0, []
    for _ in range(len(sol.trace)):
        hand.append(x)
        x = x - (x * x - 2) / (2 * x)
    assert sol.converged and list(sol.point) == ["x"]
    np.testing.assert_allclose([float(s.point["x"]) for s in sol.trace], hand, rtol=1e-15)
    assert abs(float(sol.point["x"]) ** 2 - 2) <= 1e-10  # the default tol, on the residual


@pytest.mark.parametrize("method", sorted(ROOT_METHODS))
def test_every_root_method_finds_the_cube_root_of_two_as_scipy_does(method: str) -> None:
    # 2 - x**3 rather than x**3 - 2: linearmixing and excitingmixing assume a negative slope.
    spec = ROOT_METHODS[method]
    sol = root("2 - x**3", {"x": 1.0}, method=method)
    assert sol.converged, sol.message
    assert float(sol.point["x"]) == pytest.approx(2 ** (1 / 3), rel=1e-5)
    if spec.scipy is not None:
        jac = (lambda x: np.array([[-3 * x[0] ** 2]])) if spec.jacobian else None
        expected = so.root(lambda x: 2 - x**3, [1.0], jac=jac, method=spec.scipy)
        assert float(sol.point["x"]) == pytest.approx(float(expected.x[0]), rel=1e-9)


def test_root_where_scipy_stalls_is_not_called_converged() -> None:
    # From x = 1, hybr's first step lands on 1/0; it comes back to x = 1 and stops there with
    # "The solution converged." (its iterates stopped moving), where 1/x - 2 is still -1.
    assert not so.root(lambda x: 1 / x - 2, [1.0], method="hybr").x[0] == pytest.approx(0.5)
    sol = root("1/x - 2", {"x": 1.0})
    assert not sol.converged
    assert "the largest residual is 1, not a root" in sol.message
    rc, out, err = invoke("root", "1/x - 2", "--x", "1", "--json")
    assert rc == 1 and json.loads(out)["converged"] is False
    assert err.splitlines()[-1].startswith("error: did not converge (hybr, 2 iterations): stopped where")
    lm = root("1/x - 2", {"x": 1.0}, method="lm")  # another method gets there, and says so
    assert lm.converged and float(lm.point["x"]) == pytest.approx(0.5, rel=1e-12)


def test_root_trace_lists_residual_norms() -> None:
    rc, out, _ = invoke("root", "x**3 - 2*x - 5", "--x", "2", "--method", "newton", "--trace", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and list(lines[0]) == ["iteration", "point", "value", "residual_norm"]
    assert lines[0]["residual_norm"] == pytest.approx(1.0) and lines[0]["value"] == pytest.approx(-1.0)


# -- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["minimize", "x * [1, 2]", "--x", "0"], "minimize needs one scalar output"),
        (["minimize", "x**2", "--x", "0", "--lr", "0.1"], "--lr is the learning rate of --method gd"),
        (["minimize", "x**2", "--x", "0", "--bounds", "x=0:1"], "method bfgs takes no bounds"),
        (["minimize", "x**2", "--x", "0", "--method", "l-bfgs-b", "--bounds", "x"], "expected NAME=LOW:HIGH"),
        (["minimize", "x**2", "--x", "0", "--method", "tnc", "--bounds", "x=a:1"], "'a' is not a number"),
        (["minimize", "x**2", "--x", "0", "--method", "tnc", "--bounds", "x=2:1"], "must be below"),
        (["minimize", "x**2", "--x", "0", "--method", "tnc", "--bounds", "z=0:1"], "no variable 'z'"),
        (["minimize", "x**2", "--x", "0", "--method", "sgd"], "invalid value for '--method'"),
        (["minimize", "x**2", "--x", "0", "--wrt", "q"], "no variable 'q'"),
        (["minimize", "x**2 + y", "--x", "0", "--y", "1", "--plot", "p.jpg"], "must end in .png"),
        (
            ["minimize", "x + y + z", "--x", "0", "--y", "0", "--z", "0", "--plot", "p.png"],
            "one or two scalar",
        ),
        (["minimize", "2"], "nothing to solve for"),
        (["minimize", "sum(x**2)", "--x", "[]"], "nothing to solve for"),
        (
            ["--max-output", "8", "minimize", "sum(x**2)", "--x", "[1, 2, 3]", "--method", "newton"],
            "Hessian of 3",
        ),
        (["--max-output", "8", "root", "x - 1", "--x", "[1, 2, 3]", "--method", "krylov"], "has 9 numbers"),
        (["--max-output", "8", "minimize", "sum(x**2)", "--x", "[1, 2]", "--trace", "--json"], "more than"),
        (["root", "x + y", "--x", "0", "--y", "0"], "as many equations as unknowns: 1 equation"),
        (["root", "x", "--x", "0", "--method", "nope"], "invalid value for '--method'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    rc, out, err = invoke(*args)
    assert rc == 2 and out == ""
    assert err.startswith("error: ") or err.startswith("Usage:"), err
    assert message in err


def test_singular_hessian_stops_newton_with_exit_1() -> None:
    rc, out, err = invoke("minimize", "x**4 + y", "--x", "1", "--y", "0", "--method", "newton")
    assert rc == 1 and "converged  no" in out
    assert err == (
        "error: did not converge (newton, 0 iterations): "
        "cannot take a Newton step: the matrix is singular here\n"
    )


def test_scipys_message_of_several_lines_is_one_error_line() -> None:
    rc, out, err = invoke("root", "x**2 + 1", "--x", "1")
    assert rc == 1 and "converged  no" in out
    assert err.startswith("error: did not converge (hybr, ") and err.count("\n") == 1 and "  " not in err


def test_max_iter_zero_reports_the_start() -> None:
    rc, out, _ = invoke("minimize", QUARTIC, "--x", "2", "--method", "newton", "--max-iter", "0", "--json")
    data = json.loads(out)
    assert rc == 1 and data["iterations"] == 0 and data["point"] == {"x": 2.0} and data["grad"] == {"x": 24.0}


def test_diverging_gd_stops_when_the_point_is_no_longer_finite() -> None:
    rc, out, err = invoke("minimize", "-x**4", "--x", "1", "--method", "gd", "--lr", "10")
    assert rc == 1 and "no longer finite" in err
    assert "Traceback" not in err


def test_missing_scipy_is_one_line_naming_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    rc, out, err = invoke("minimize", "x**2", "--x", "1")
    assert (rc, out) == (1, "")
    assert err == "error: minimize --method BFGS needs scipy, which cannot be imported: pip install scipy\n"
    # The methods written on the engine need no SciPy.
    assert invoke("minimize", "x**2", "--x", "1", "--method", "newton")[0] == 0


# -- what is imported, and when ------------------------------------------------------------------------


IMPORTS_SCRIPT = """
import sys, tempfile, os
from gradcli.cli import run
OPTIONAL = ("scipy", "matplotlib", "uniplot")

def loaded():
    return sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in OPTIONAL})

steps = [
    ["eval", "x*y", "--x", "2", "--y", "3"],
    ["minimize", "x**4 - 2*x**2", "--x", "2", "--method", "newton"],
    ["root", "x**2 - 2", "--x", "1", "--method", "newton"],
    ["plot", "x**2", "--x", "-1:1", "--format", "csv"],
    ["plot", "x**2", "--x", "-1:1"],
    ["minimize", "x**2", "--x", "1"],
    ["plot", "x**2", "--x", "-1:1", "-o", os.path.join(tempfile.mkdtemp(), "p.png")],
]
for argv in steps:
    with open(os.devnull, "w") as sys.stdout:
        rc = run(argv)
    sys.stdout = sys.__stdout__
    print(rc, argv[0], *loaded())
"""


@pytest.mark.slow
def test_eval_imports_neither_scipy_nor_matplotlib_and_the_others_only_what_they_use() -> None:
    proc_rc, out, err = run_cli_python(IMPORTS_SCRIPT)
    assert proc_rc == 0, err
    assert out.splitlines() == [
        "0 eval",
        "0 minimize",  # newton is written on the engine
        "0 root",
        "0 plot",  # csv: no drawing library
        "0 plot uniplot",  # the terminal
        "0 minimize scipy uniplot",
        "0 plot matplotlib scipy uniplot",
    ]


def run_cli_python(script: str) -> tuple[int, str, str]:
    import subprocess

    from conftest import subprocess_env

    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env(), timeout=120
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.slow
def test_minimize_through_a_real_process_exits_1_when_not_converged() -> None:
    rc, out, err = run_cli("minimize", QUARTIC, "--x", "2", "--method", "newton", "--max-iter", "2")
    assert rc == 1 and "converged  no" in out and err.startswith("error: did not converge")


@pytest.mark.parametrize(
    "args",
    [
        ("minimize", "x**2", "--x", "1", "--tol", "nan"),
        ("minimize", "x**2", "--x", "1", "--tol", "inf"),
        ("minimize", "x**2", "--x", "1", "--method", "gd", "--lr", "nan"),
        ("root", "x**2 - 4", "--x", "1", "--tol", "nan"),
    ],
    ids=["tol-nan", "tol-inf", "lr-nan", "root-tol-nan"],
)
def test_a_tolerance_or_rate_that_is_not_a_finite_number_is_refused(args: tuple[str, ...]) -> None:
    """nan compares false with every bound: it once passed as a tolerance, and minimize said
    'converged yes' at the starting point."""
    rc, out, err = invoke(*args)
    assert rc == 2 and out == ""
    assert err.startswith(f"error: invalid value for '{args[-2]}': ") and err.count("\n") == 1, err
    assert "is not a finite number" in err


@pytest.mark.parametrize(
    ("expr", "start"),
    [("-x**2", {"x": 1.0}), ("x**2 - y**2", {"x": 1.0, "y": 2.0})],
    ids=["maximum", "saddle"],
)
def test_newton_does_not_call_a_maximum_or_a_saddle_point_converged(
    expr: str, start: dict[str, float]
) -> None:
    """Newton's step goes to where the gradient is zero, whatever the curvature there: it once
    said 'converged' at the top of -x**2 (BFGS, correctly, fails there)."""
    result = minimize(expr, start, method="newton")
    assert not result.converged and result.message.startswith("not a minimum")
    assert minimize("x**4 - 2*x**2", {"x": 2.0}, method="newton").converged  # a true minimum still is


_BOWL = "(x - 1)**2 + (y + 2)**2"


@pytest.mark.parametrize(
    ("solve", "options", "error", "message"),
    [
        (minimize, {"method": ["bfgs"]}, TypeError, "method of minimize is a name"),
        (minimize, {"method": "nelder-mead"}, ValueError, "minimize has no method 'nelder-mead'"),
        (minimize, {"method": "gd", "max_iter": -1}, ValueError, "max_iter must be a whole number >= 0"),
        (minimize, {"max_iter": 1.5}, ValueError, "max_iter must be a whole number"),
        (minimize, {"max_iter": "10"}, TypeError, "max_iter must be a whole number"),
        (minimize, {"method": "newton", "tol": math.nan}, ValueError, "tol must be a finite number >= 0"),
        (minimize, {"tol": "small"}, TypeError, "tol must be a number"),
        (minimize, {"method": "gd", "lr": -0.1}, ValueError, "lr must be a finite number > 0"),
        (minimize, {"method": "l-bfgs-b", "bounds": {"x": (0, 1, 2)}}, TypeError, "are a pair"),
        (minimize, {"method": "l-bfgs-b", "bounds": {"x": 1}}, TypeError, "are a pair"),
        (minimize, {"method": "l-bfgs-b", "bounds": {"x": ("a", 1)}}, TypeError, "low end must be a number"),
        (minimize, {"method": "l-bfgs-b", "bounds": {"x": (math.nan, 1)}}, ValueError, "low end is NaN"),
        (minimize, {"method": "l-bfgs-b", "bounds": {"x": (2, 1)}}, ValueError, "2 is above the high end 1"),
        (minimize, {"method": "l-bfgs-b", "bounds": [(0, 1), (0, 1)]}, TypeError, "bounds map a name"),
        (root, {"method": "secant"}, ValueError, "root has no method 'secant'"),
        (root, {"max_iter": -1}, ValueError, "max_iter must be a whole number >= 0"),
        (root, {"method": "newton", "tol": -1e-8}, ValueError, "tol must be a finite number >= 0"),
    ],
)
def test_bad_options_of_minimize_and_root_are_one_clear_error(
    solve: Any, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    expr = _BOWL if solve is minimize else "x**3 - 2*y, y - 1"
    with pytest.raises(error, match=message) as info:
        solve(expr, {"x": 0.5, "y": 0.5}, **options)
    assert "\n" not in str(info.value)


def test_method_names_are_taken_in_any_case_as_scipy_takes_them() -> None:
    result = minimize(_BOWL, {"x": 0.0, "y": 0.0}, method="BFGS")
    assert result.converged and result.method == "bfgs"
    assert root("x**3 - 2", {"x": 1.0}, method="Newton").method == "newton"


def test_a_scipy_method_that_raises_ends_as_not_converged() -> None:
    # broyden1 refuses NaN residuals (log of a negative number) with a ValueError of its own.
    with np.errstate(all="ignore"):
        result = root("log(x)", {"x": -1.0}, method="broyden1")
    assert not result.converged
    assert result.message.startswith("SciPy's broyden1 failed: ")
    rc, out, err = invoke("root", "log(x)", "--x", "-1", "--method", "broyden1")
    assert rc == 1 and "did not converge (broyden1" in err and "Traceback" not in err


def test_an_error_of_the_model_inside_a_scipy_method_is_raised_as_it_is() -> None:
    def model(x: Any) -> Any:
        if float(x.data) > 0.5:
            raise ZeroDivisionError("the model's own error")
        return (x - 2.0) ** 2

    with pytest.raises(ZeroDivisionError, match="the model's own error"):
        minimize(model, {"x": 0.0})
    with pytest.raises(ZeroDivisionError, match="the model's own error"):
        root(lambda x: model(x) - 1.0, {"x": 0.0}, method="broyden1")


@pytest.mark.parametrize("method", ["hybr", "lm"])
def test_max_iter_zero_for_minpacks_methods_makes_no_iterations(method: str) -> None:
    # MINPACK takes a limit of 0 for its default: the run went on to the root.
    result = root("x**3 - 2", {"x": 1.0}, method=method, max_iter=0, trace=True)
    assert not result.converged and result.iterations == 0 and result.point == {"x": 1.0}
    assert [step.iteration for step in result.trace] == [0]
    rc, out, _ = invoke("root", "x**3 - 2", "--x", "1", "--method", method, "--max-iter", "0", "--json")
    assert rc == 1 and json.loads(out)["point"] == {"x": 1.0}
