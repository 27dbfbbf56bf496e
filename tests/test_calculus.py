"""gradcli.calculus: gradients, higher orders, Hessians, Jacobians and numerical checks."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcli
from gradcli import Function, Variable, calculus, language
from gradcli.calculus import CalculusError
from gradcli.functions import REGISTRY, sin, tanh
from gradcli.functions import sum as fsum

# --------------------------------------------------------------------------------------------
# Helpers independent of the code under test
# --------------------------------------------------------------------------------------------


def central(fn: Any, values: dict[str, Any], name: str, h: float = 1e-3) -> np.ndarray:
    """d fn(values) / d values[name], of shape fn.shape + x.shape: central differences refined by
    Ridders' extrapolation (Numerical Recipes' ``dfridr``) from step ``h`` down, each element taking
    the estimate of least estimated error. A plain central difference at one step is not a
    reference for the steep compositions the random programs draw (``rad2deg`` of ``rad2deg``
    through ``tanh``): its truncation error reached 0.4% at h = 1e-5."""
    x = np.asarray(values[name], dtype=float)
    cols = []
    for idx in np.ndindex(x.shape):

        def difference(step: float, idx: tuple[int, ...] = idx) -> np.ndarray:
            xp, xm = x.copy(), x.copy()
            xp[idx] += step
            xm[idx] -= step
            return (np.asarray(fn({**values, name: xp})) - np.asarray(fn({**values, name: xm}))) / (2 * step)

        shrink, steps = 1.6, 16
        step = h
        row = [difference(step)]
        best, error = row[0], np.full(np.shape(row[0]), np.inf)
        for _ in range(1, steps):
            step /= shrink
            new = [difference(step)]
            factor = shrink**2
            for j in range(1, len(row) + 1):
                new.append((new[j - 1] * factor - row[j - 1]) / (factor - 1))
                factor *= shrink**2
                estimate = np.maximum(abs(new[j] - new[j - 1]), abs(new[j] - row[j - 1]))
                better = estimate <= error
                best, error = np.where(better, new[j], best), np.where(better, estimate, error)
            row = new
        cols.append(best)
    out_shape = np.shape(cols[0])
    stacked = np.reshape(cols, x.shape + out_shape)
    return np.moveaxis(stacked, list(range(x.ndim)), list(range(len(out_shape), len(out_shape) + x.ndim)))


def forward_values(f: Any, values: dict[str, Any]) -> list[np.ndarray]:
    with gradcli.no_grad():
        out = f(**{n: Variable(np.asarray(v, dtype=float)) for n, v in values.items()})
    outs = out if isinstance(out, tuple) else (out,)
    return [np.array(y.data) for y in outs]


def goldstein_price(x: Variable, y: Variable) -> Variable:
    a = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x**2 - 14 * y + 6 * x * y + 3 * y**2)
    b = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x**2 + 48 * y - 36 * x * y + 27 * y**2)
    return a * b


class FakeProgram:
    """What a parsed expression offers: input names and a run on Variables."""

    inputs = ("x", "y")

    def run_variables(self, variables: dict[str, Variable]) -> list[Variable]:
        x, y = variables["x"], variables["y"]
        return [x * x * y]


class Cube(Function):
    def forward(self, x: Any) -> Any:
        return x**3

    def backward(self, gy: Variable) -> Variable:
        return gy * 3.0 * self.inputs[0] ** 2


class CubeWrongBackward(Cube):
    def backward(self, gy: Variable) -> Variable:
        return gy * 2.0 * self.inputs[0] ** 2


class CubeBackwardOnArrays(Cube):
    """Right first derivative, but computed on raw arrays: invisible to a second backward."""

    def backward(self, gy: Variable) -> Any:
        return gy.data * 3.0 * self.inputs[0].data ** 2


# --------------------------------------------------------------------------------------------
# Known values
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("f", "x", "order", "expected"),
    [
        (lambda x: x**4 - 2 * x**2, 2.0, 2, [24.0, 44.0]),
        (lambda x: sin(x), 1.0, 4, [0.5403023, -0.8414710, -0.5403023, 0.8414710]),
        (lambda x: x**3, 1.5, 5, [6.75, 9.0, 6.0, 0.0, 0.0]),
    ],
)
def test_derivatives_of_scalar_functions_match_known_values(
    f: Any, x: float, order: int, expected: list
) -> None:
    got = calculus.derivatives(f, {"x": x}, order)["x"]
    assert len(got) == order
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-12)


def test_sixth_derivative_of_tanh_matches_known_values() -> None:
    got = calculus.derivatives(lambda x: tanh(x), {"x": 1.0}, 6)["x"]
    np.testing.assert_allclose(got[-2:], [-5.55689355847, 13.6240754413], rtol=1e-10)


def test_goldstein_price_value_and_gradient_via_evaluate() -> None:
    ev = calculus.evaluate(goldstein_price, {"x": 1, "y": 1})
    assert ev.value[0] == pytest.approx(1876.0)
    assert ev.grad[0]["x"] == pytest.approx(-5376.0)
    assert ev.grad[0]["y"] == pytest.approx(8064.0)


def test_grad_of_program_like_object_uses_its_input_names() -> None:
    g = calculus.grad(FakeProgram(), {"x": 3.0, "y": 2.0})
    assert g == {"x": pytest.approx(12.0), "y": pytest.approx(9.0)}


def test_registry_spec_is_a_model_with_its_input_names() -> None:
    h = calculus.hessian(REGISTRY["sin"], {"x": 1.0})
    assert h.grad["x"] == pytest.approx(np.cos(1.0))
    assert h.hessian["x"]["x"] == pytest.approx(-np.sin(1.0))


# --------------------------------------------------------------------------------------------
# evaluate and grad
# --------------------------------------------------------------------------------------------


def test_evaluate_with_several_outputs_gives_the_rows_of_the_jacobian() -> None:
    ev = calculus.evaluate(lambda x, y: (x * y, x + 2 * y), {"x": 3.0, "y": 5.0})
    np.testing.assert_allclose(ev.value, [15.0, 13.0])
    assert [{k: float(v) for k, v in row.items()} for row in ev.grad] == [{"x": 5, "y": 3}, {"x": 1, "y": 2}]


def test_unused_input_gets_zero_gradient_of_its_shape() -> None:
    ev = calculus.evaluate(lambda x, y: x * 2, {"x": 1.0, "y": np.ones((2, 3))})
    assert isinstance(ev.grad[0]["y"], np.ndarray)
    np.testing.assert_array_equal(ev.grad[0]["y"], np.zeros((2, 3)))


def test_non_scalar_output_gradient_is_that_of_the_sum_of_its_elements() -> None:
    x = np.array([0.3, -1.0, 2.0])
    ev = calculus.evaluate(lambda x: sin(x) * x, {"x": x})
    np.testing.assert_allclose(ev.grad[0]["x"], np.cos(x) * x + np.sin(x))


def test_wrt_selects_and_orders_variables_by_input_order() -> None:
    ev = calculus.evaluate(lambda x, y, z: x * y * z, {"x": 1.0, "y": 2.0, "z": 3.0}, wrt=["z", "x"])
    assert list(ev.grad[0]) == ["x", "z"]
    assert ev.grad[0] == {"x": pytest.approx(6.0), "z": pytest.approx(2.0)}


def test_evaluate_differentiates_even_inside_no_grad() -> None:
    with gradcli.no_grad():
        g = calculus.grad(lambda x: x**2, {"x": 3.0})
    assert g["x"] == pytest.approx(6.0)


def test_calls_leave_no_gradient_on_variables_and_are_repeatable() -> None:
    values = {"x": np.array([1.0, 2.0]), "y": 0.5}
    first = calculus.evaluate(lambda x, y: fsum(x * y), values)
    second = calculus.evaluate(lambda x, y: fsum(x * y), values)
    assert all(v.grad is None for v in first.variables.values())
    np.testing.assert_array_equal(first.grad[0]["x"], second.grad[0]["x"])


def test_caller_arrays_are_not_modified() -> None:
    x = np.array([0.5, 1.5])
    calculus.check(lambda x: fsum(x**2), {"x": x}, order=2)
    np.testing.assert_array_equal(x, [0.5, 1.5])


# --------------------------------------------------------------------------------------------
# Higher orders on arrays
# --------------------------------------------------------------------------------------------


def test_derivatives_of_array_variable_are_elementwise_pure_partials() -> None:
    # f = x0**2 * x1**3: the diagonal d^k f / dx_i^k, not derivatives of sum(grad) (mixed terms).
    got = calculus.derivatives(lambda x: x[0] ** 2 * x[1] ** 3, {"x": [1.0, 2.0]}, 3)["x"]
    np.testing.assert_allclose(got[0], [16.0, 12.0])
    np.testing.assert_allclose(got[1], [16.0, 12.0])
    np.testing.assert_allclose(got[2], [0.0, 6.0])


def test_derivatives_of_unused_variable_are_zero_at_every_order() -> None:
    got = calculus.derivatives(lambda x, y: sin(x), {"x": 1.0, "y": [1.0, 2.0]}, 3)["y"]
    assert [g.tolist() for g in got] == [[0.0, 0.0]] * 3


def test_hessian_blocks_have_shape_x_then_y() -> None:
    h = calculus.hessian(lambda x, y: fsum(x) * fsum(y**2), {"x": np.ones((2, 3)), "y": [1.0, 2.0]})
    assert h.hessian["x"]["y"].shape == (2, 3, 2)
    assert h.hessian["y"]["x"].shape == (2, 2, 3)
    assert h.hessian["x"]["x"].shape == (2, 3, 2, 3)
    np.testing.assert_allclose(h.hessian["x"]["y"], np.broadcast_to([2.0, 4.0], (2, 3, 2)))
    np.testing.assert_allclose(h.hessian["y"]["y"], 12.0 * np.eye(2))  # sum(x) = 6, times 2


def test_hessian_of_goldstein_price_matches_closed_form() -> None:
    h = calculus.hessian(goldstein_price, {"x": 1.0, "y": 1.0})
    assert (h.value, h.grad["x"], h.grad["y"]) == pytest.approx((1876.0, -5376.0, 8064.0))
    assert h.hessian["x"]["y"] == pytest.approx(h.hessian["y"]["x"])
    np.testing.assert_allclose(
        central(lambda v: calculus.grad(goldstein_price, v)["x"], {"x": 1.0, "y": 1.0}, "y"),
        h.hessian["x"]["y"],
        rtol=1e-6,
    )


# --------------------------------------------------------------------------------------------
# Random smooth programs from the registry
# --------------------------------------------------------------------------------------------

# rad2deg is left out: its factor of 57 makes a composition's second derivatives thousands of
# times larger than central differences' step is made for (check of cos(rad2deg(x)**2) at 0
# misses by 0.28); the registry's own tests differentiate it alone.
UNARY = sorted(
    n
    for n, s in REGISTRY.items()
    if s.smooth
    and s.arity == (1, 1)
    and not s.params
    and s.sample_shapes is None
    and s.n_outputs == 1
    and n != "rad2deg"
)
BINARY = ["add", "sub", "mul", "div", "pow"]


def squash(v: Variable, domain: tuple[float, float]) -> Variable:
    """Map any value smoothly into the inside of ``domain``, where the function is smooth."""
    lo, hi = domain
    return (lo + hi) / 2 + 0.45 * (hi - lo) * tanh(v)


@st.composite
def programs(draw: st.DrawFn) -> list[tuple[str, tuple[int, ...]]]:
    ops = []
    for i in range(draw(st.integers(1, 5))):
        pick = st.integers(0, i + 1)  # x, y and every earlier result
        if draw(st.booleans()):
            ops.append((draw(st.sampled_from(UNARY)), (draw(pick),)))
        else:
            ops.append((draw(st.sampled_from(BINARY)), (draw(pick), draw(pick))))
    return ops


def run_program(ops: list[tuple[str, tuple[int, ...]]], x: Variable, y: Variable) -> list[Variable]:
    nodes = [x, y]
    for name, args in ops:
        spec = REGISTRY[name]
        nodes.append(spec(*(squash(nodes[i], spec.sample_domain) for i in args)))
    return nodes


points = st.fixed_dictionaries(
    {
        "x": st.floats(-1.5, 1.5),
        "y": hnp.arrays(np.float64, (2,), elements=st.floats(-1.5, 1.5)),
    }
)


@settings(max_examples=25, deadline=None)
@given(programs(), points)
def test_hessian_is_symmetric_and_matches_central_differences_of_gradient(ops: list, values: dict) -> None:
    def f(x: Variable, y: Variable) -> Variable:
        return fsum(run_program(ops, x, y)[-1])

    h = calculus.hessian(f, values).hessian
    for a in "xy":
        for b in "xy":
            na, nb = np.size(values[a]), np.size(values[b])
            np.testing.assert_allclose(
                h[a][b].reshape(na, nb), h[b][a].reshape(nb, na).T, rtol=1e-9, atol=1e-12
            )
            numeric = central(lambda v, a=a: calculus.grad(f, v)[a], values, b)
            np.testing.assert_allclose(h[a][b], numeric, rtol=1e-5, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(programs(), points)
def test_jacobian_of_vector_output_matches_central_differences(ops: list, values: dict) -> None:
    def f(x: Variable, y: Variable) -> Variable:
        return run_program(ops, x, y)[-1]

    value, jac = calculus.jacobian(f, values)
    np.testing.assert_allclose(value, forward_values(f, values)[0])
    for n in "xy":
        numeric = central(lambda v: forward_values(f, v)[0], values, n)
        assert jac[n].shape == np.shape(value) + np.shape(values[n])
        np.testing.assert_allclose(jac[n], numeric, rtol=1e-5, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(programs(), points)
def test_jacobian_of_two_outputs_matches_central_differences(ops: list, values: dict) -> None:
    # The middle node may be an input itself: its Jacobian is then the identity.
    def f(x: Variable, y: Variable) -> tuple[Variable, Variable]:
        nodes = run_program(ops, x, y)
        return nodes[-1], nodes[len(nodes) // 2]

    values_out, blocks = calculus.jacobian(f, values)
    assert len(values_out) == len(blocks) == 2
    for k in range(2):
        for n in "xy":
            numeric = central(lambda v, k=k: forward_values(f, v)[k], values, n)
            np.testing.assert_allclose(blocks[k][n], numeric, rtol=1e-5, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(programs(), points)
def test_check_passes_on_registry_programs(ops: list, values: dict) -> None:
    def f(x: Variable, y: Variable) -> Variable:
        return fsum(run_program(ops, x, y)[-1])

    report = calculus.check(f, values, order=2, atol=1e-6)
    assert report.ok, calculus.format_table(report)


# --------------------------------------------------------------------------------------------
# Numerical differentiation and check
# --------------------------------------------------------------------------------------------


def test_numerical_grad_step_scales_with_the_point() -> None:
    # A fixed absolute step of 1e-6 would lose most digits to round-off at x = 1e8.
    g = calculus.numerical_grad(lambda x: x**2, {"x": 1e8})
    assert g["x"] == pytest.approx(2e8, rel=1e-6)


def test_numerical_jacobian_matches_analytic_jacobian() -> None:
    def f(x: Variable) -> tuple[Variable, Variable]:
        return sin(x) * x, fsum(x**2)

    x = np.array([0.2, -0.7, 1.1])
    numeric = calculus.numerical_jacobian(f, {"x": x})
    analytic = calculus.jacobian(f, {"x": x}).jacobian
    for k in range(2):
        np.testing.assert_allclose(numeric[k]["x"], analytic[k]["x"], rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    ("cls", "order", "ok"),
    [
        (Cube, 1, True),
        (Cube, 2, True),
        (CubeWrongBackward, 1, False),
        (CubeBackwardOnArrays, 1, True),
        (CubeBackwardOnArrays, 2, False),
    ],
)
def test_check_judges_custom_function_backward(cls: type[Function], order: int, ok: bool) -> None:
    report = calculus.check(lambda x, y: fsum(cls()(x) * y), {"x": [0.5, -1.2, 2.0], "y": 1.5}, order=order)
    assert report.ok is ok
    assert len(report.rows) == 4 + (16 if order == 2 else 0)


def test_check_failure_rows_name_the_wrong_entries() -> None:
    report = calculus.check(lambda x, y: CubeWrongBackward()(x) + y, {"x": 2.0, "y": 1.0})
    assert [(r.variable, r.ok) for r in report.rows] == [("x", False), ("y", True)]
    bad = report.failures[0]
    assert (bad.analytic, bad.numeric) == pytest.approx((8.0, 12.0))
    assert bad.abs_error == pytest.approx(4.0)


def test_check_table_fits_80_columns_and_marks_failures() -> None:
    report = calculus.check(
        lambda x, a_very_long_variable_name_indeed: fsum(
            CubeWrongBackward()(x) * a_very_long_variable_name_indeed
        ),
        {"x": np.ones((2, 2)), "a_very_long_variable_name_indeed": 2.0},
        order=2,
    )
    table = calculus.format_table(report)
    lines = table.splitlines()
    assert max(map(len, lines)) <= 80
    assert len(lines) == len(report.rows) + 2
    assert "FAIL" in table
    assert lines[-1].startswith(f"{len(report.failures)} of {len(report.rows)} derivatives differ")


def test_check_table_says_all_agree_when_ok() -> None:
    table = calculus.format_table(calculus.check(lambda x: sin(x), {"x": 0.3}))
    assert table.splitlines()[-1].startswith("all 1 derivatives agree")


# --------------------------------------------------------------------------------------------
# Errors that say how to fix them
# --------------------------------------------------------------------------------------------


def vector(x: Variable) -> Variable:
    return x * 2


def _keyword_without_default(x: Variable, *, scale: float) -> Variable:
    return scale * x


def _positional_only(x: Variable, y: Variable, /) -> Variable:
    return x * y


def _keyword_with_default(x: Variable, y: Variable, *, scale: float = 2.0) -> Variable:
    return scale * x * y


class _Product:
    def __call__(self, x: Variable, y: Variable) -> Variable:
        return x * y


def _wrapped(f: Any) -> Any:
    @functools.wraps(f)
    def call(*args: Any) -> Any:
        return f(*args)

    return call


@pytest.mark.parametrize(
    "f",
    [
        lambda x, y: x * y,
        _positional_only,
        _keyword_with_default,
        _Product(),
        _wrapped(lambda x, y: x * y),
        functools.partial(lambda s, x, y: s * x * y, 1.0),
    ],
    ids=["lambda", "positional only", "keyword with default", "object", "wrapper", "partial"],
)
def test_a_callables_inputs_are_its_positional_parameters(f: Any) -> None:
    names, _ = calculus.as_model(f)
    assert names == ("x", "y")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: calculus.derivatives(vector, {"x": [1.0, 2.0, 3.0]}, 2),
            r"shape \(3,\).*sum\(\.\.\.\).*jacobian",
        ),
        (lambda: calculus.hessian(vector, {"x": [1.0, 2.0, 3.0]}), r"shape \(3,\).*sum\(\.\.\.\).*jacobian"),
        (lambda: calculus.grad(vector, {"x": [1.0, 2.0]}), r"shape \(2,\)"),
        (lambda: calculus.check(vector, {"x": [1.0, 2.0]}, order=2), r"shape \(2,\)"),
        (lambda: calculus.hessian(lambda x: (x, x), {"x": 1.0}), r"2 outputs.*jacobian"),
        (lambda: calculus.evaluate(vector, {"x": 1.0}, wrt=["xx"]), r"'xx'.*did you mean 'x'"),
        (lambda: calculus.evaluate(lambda x, y: x, {"x": 1.0}), r"missing value for 'y' \(variables: x, y\)"),
        (lambda: calculus.evaluate(vector, {"x": 1.0, "z": 2.0}), r"no variable 'z' \(variables: x\)"),
        (lambda: calculus.evaluate(vector, {"x": "abc"}), r"value of 'x'"),
        (lambda: calculus.derivatives(vector, {"x": 1.0}, 0), r"order must be"),
        (lambda: calculus.check(vector, {"x": 1.0}, order=3), r"order must be a whole number from 1 to 2"),
        (lambda: calculus.evaluate(lambda *xs: xs[0], {"x": 1.0}), r"wrap it"),
        (lambda: calculus.evaluate(lambda x, **kw: x, {"x": 1.0}), r"\*kw.*wrap it"),
        (lambda: calculus.evaluate(_keyword_without_default, {"x": 1.0}), r"'scale' has no default"),
        (lambda: calculus.numerical_grad(lambda x: (x, x), {"x": 1.0}), r"numerical_jacobian"),
    ],
)
def test_errors_say_how_to_fix(call: Any, message: str) -> None:
    with pytest.raises(CalculusError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


_SQUARE = language.parse("x**2")
_WHOLE = "order must be a whole number"


@pytest.mark.parametrize(
    ("name", "options", "error", "message"),
    [
        ("numerical_grad", {"eps": "a"}, TypeError, "eps must be a number, got 'a'"),
        ("numerical_grad", {"eps": -1e-3}, CalculusError, "eps must be a finite number > 0"),
        ("numerical_grad", {"eps": 0}, CalculusError, "eps must be a finite number > 0"),
        ("numerical_jacobian", {"eps": np.nan}, CalculusError, "eps must be a finite number"),
        ("numerical_jacobian", {"eps": [1, 2]}, TypeError, "eps must be a number"),
        ("check", {"eps": -1.0}, CalculusError, "eps must be a finite number"),
        ("check", {"rtol": -1}, CalculusError, "rtol must be a finite number >= 0, got -1"),
        ("check", {"rtol": "a"}, TypeError, "rtol must be a number"),
        ("check", {"atol": np.nan}, CalculusError, "atol must be a finite number"),
        ("check", {"atol": None}, TypeError, "atol must be a number, got None"),
        ("check", {"order": True}, TypeError, _WHOLE),
        ("check", {"order": 1.5}, CalculusError, _WHOLE),
        ("derivatives", {"order": 2.5}, CalculusError, _WHOLE),
        ("derivatives", {"order": "2"}, TypeError, _WHOLE),
        ("derivatives", {"order": np.nan}, CalculusError, _WHOLE),
    ],
)
def test_steps_tolerances_and_orders_are_checked(
    name: str, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        getattr(calculus, name)(_SQUARE, {"x": 1.0}, **options)
    assert "\n" not in str(info.value)


def test_a_whole_order_given_as_a_float_or_numpy_integer_is_taken() -> None:
    cube = language.parse("x**3")
    assert calculus.derivatives(cube, {"x": 1.0}, 2.0)["x"] == [3.0, 6.0]
    assert calculus.derivatives(cube, {"x": 1.0}, np.int64(3))["x"] == [3.0, 6.0, 6.0]
    assert calculus.check(_SQUARE, {"x": 1.0}, order=2.0, rtol=np.float32(1e-4), atol=0).ok


_PRODUCT = language.parse("x * y")
_XY = {"x": 1.0, "y": 2.0}


@pytest.mark.parametrize("name", ["grad", "jacobian", "hessian", "evaluate"])
@pytest.mark.parametrize(
    ("values", "wrt", "error", "message"),
    [
        (_XY, 5, TypeError, "wrt is an input's name or a list of names, got 5"),
        (_XY, ["x", 1], TypeError, "wrt is an input's name or a list of names"),
        (_XY, [None], TypeError, "wrt is an input's name or a list of names"),
        (_XY, ["z"], CalculusError, "wrt: no variable 'z'"),
        ([1.0, 2.0], None, TypeError, "values map each input's name to its value"),
        (None, None, TypeError, "values map each input's name to its value"),
        ({1: 1.0, **_XY}, None, TypeError, "got the key 1"),
        (
            {"x": [[1.0, 2.0], [3.0]], "y": 2.0},
            None,
            CalculusError,
            "value of 'x': .*nested lists of different",
        ),
        ({"x": [1.0, [2.0]], "y": 2.0}, None, CalculusError, "value of 'x': .*nested lists of different"),
    ],
)
def test_bad_wrt_and_values_are_one_clear_error(
    name: str, values: Any, wrt: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        getattr(calculus, name)(_PRODUCT, values, wrt=wrt)
    assert "\n" not in str(info.value)


def test_a_ragged_nested_list_is_no_variable() -> None:
    with pytest.raises(ValueError, match="nested lists of different lengths"):
        Variable([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize(
    ("outputs", "inputs", "message"),
    [
        (1.0, [Variable(1.0)], "outputs must be a Variable or a list of Variables, got 1.0"),
        (Variable(1.0) * 2, "x", "inputs must be a Variable or a list of Variables, got 'x'"),
        (Variable(1.0) * 2, [1.0], "inputs must be a Variable or a list of Variables"),
        ([Variable(1.0) * 2, None], [Variable(1.0)], "outputs must be"),
    ],
)
def test_engine_grad_takes_variables_only(outputs: Any, inputs: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        gradcli.engine.grad(outputs, inputs)


def _returns_none(x: Any) -> Any:
    x * 2  # noqa: B018 - the return forgotten, as it is in the bug this pins


@pytest.mark.parametrize(
    "call",
    [
        lambda f: calculus.evaluate(f, {"x": 1.0}),
        lambda f: calculus.grad(f, {"x": 1.0}),
        lambda f: calculus.jacobian(f, {"x": 1.0}),
        lambda f: calculus.hessian(f, {"x": 1.0}),
        lambda f: calculus.derivatives(f, {"x": 1.0}, 2),
        lambda f: calculus.check(f, {"x": 1.0}),
        lambda f: calculus.numerical_grad(f, {"x": 1.0}),
        lambda f: calculus.evaluate_rows(f, {"x": [1.0, 2.0]}),
        lambda f: gradcli.minimize(f, {"x": 1.0}),
        lambda f: gradcli.root(f, {"x": 1.0}),
    ],
    ids=[
        "evaluate",
        "grad",
        "jacobian",
        "hessian",
        "derivatives",
        "check",
        "numerical_grad",
        "rows",
        "min",
        "root",
    ],
)
def test_a_callable_that_returns_none_is_told_so(call: Any) -> None:
    with pytest.raises(CalculusError, match="^the function returned None: return the result"):
        call(_returns_none)


def test_an_output_that_is_none_or_text_is_named() -> None:
    with pytest.raises(CalculusError, match="^output 1 of the function is None"):
        calculus.grad(lambda x: (x, None), {"x": 1.0})
    with pytest.raises(CalculusError, match="^the function returned a str, not a Variable or a number"):
        calculus.grad(lambda x: "x", {"x": 1.0})


@pytest.mark.parametrize(
    "f", [language.parse("sum(x) * y"), lambda x, y: fsum(x) * y], ids=["expression", "callable"]
)
def test_evaluate_rows_at_no_points_gives_empty_results_of_each_shape(f: Any) -> None:
    rows = calculus.evaluate_rows(f, {"x": np.zeros((0, 3)), "y": []})
    assert [v.shape for v in rows.value] == [(0,)]
    assert [{n: g.shape for n, g in gk.items()} for gk in rows.grad] == [{"x": (0, 3), "y": (0,)}]
    with pytest.raises(TypeError, match="rows map each input's name"):
        calculus.evaluate_rows(f, [[1.0], [2.0]])


@pytest.mark.parametrize("instance", [False, True], ids=["class", "object"])
def test_a_function_class_or_object_as_a_model_is_told_to_wrap_it(instance: bool) -> None:
    model = REGISTRY["sin"].cls
    with pytest.raises(
        CalculusError, match=r"a Function \(\w+\) is one operation .* e\.g\. lambda x: \w+\(\)\(x\)"
    ):
        calculus.grad(model() if instance else model, {"x": 1.0})


@pytest.mark.parametrize("text", [None, b"x + 1", 5, ["x"]])
def test_parse_of_anything_but_text_is_a_type_error(text: Any) -> None:
    with pytest.raises(TypeError, match=r"parse takes an expression as text \(str\)"):
        gradcli.parse(text)


# --------------------------------------------------------------------------------------------
# Parsed expressions: the SymPy oracle, and expressions that differentiate inside themselves
# --------------------------------------------------------------------------------------------

REFERENCE = Path("/work/shared/reference/scalar_cases.jsonl")


@pytest.mark.skipif(not REFERENCE.exists(), reason="reference cases not available")
def test_hessians_of_parsed_reference_cases_match_sympy() -> None:
    for line in REFERENCE.read_text().splitlines():
        case = json.loads(line)
        h = calculus.hessian(language.parse(case["expr"]), case["inputs"])
        assert float(h.value) == pytest.approx(case["value"], rel=1e-12, abs=1e-12), case["expr"]
        for a, row in case["hessian"].items():
            assert float(h.grad[a]) == pytest.approx(case["grad"][a], rel=1e-10, abs=1e-10), case["expr"]
            for b, expected in row.items():
                assert float(h.hessian[a][b]) == pytest.approx(expected, rel=1e-9, abs=1e-9), case["expr"]


def test_expression_with_grad_inside_evaluates_and_checks() -> None:
    program = language.parse("grad(x**2, x)**3 + x**2")
    ev = calculus.evaluate(program, {"x": 2.0})
    assert (float(ev.value[0]), float(ev.grad[0]["x"])) == (68.0, 100.0)
    assert calculus.numerical_grad(program, {"x": 2.0})["x"] == pytest.approx(100.0, rel=1e-8)
    assert calculus.check(program, {"x": 2.0}, order=2).ok


def test_inner_grad_over_a_variable_outside_wrt_still_differentiates() -> None:
    # f = x * d/dy(x**2 y**3) = 3 x**3 y**2: y is outside wrt, yet grad() inside needs its graph.
    h = calculus.hessian(language.parse("x * grad(x**2 * y**3, y)"), {"x": 2.0, "y": 1.5}, wrt=["x"])
    assert (float(h.value), float(h.grad["x"]), float(h.hessian["x"]["x"])) == (54.0, 81.0, 81.0)
    assert list(h.hessian) == ["x"]


def test_derivative_of_a_newton_step_expression() -> None:
    # N(x) = x - (3x**2 - 2) / (6x), so N'(x) = 1 - (18x**2 + 12) / (36x**2).
    program = language.parse("x - grad(x**3 - 2*x, x) / grad(grad(x**3 - 2*x, x), x)")
    d = calculus.derivatives(program, {"x": 2.0}, 1)
    assert float(d["x"][0]) == pytest.approx(1 - 84 / 144)


def test_numerical_differences_of_a_callable_with_an_empty_input() -> None:
    # A Python callable takes every row in one run: with no element, a chunk of 0 rows, and
    # "range() arg 3 must not be zero". The same expression was fine.
    empty = {"x": np.zeros(0)}
    assert calculus.check(lambda x: fsum(x), empty).ok
    assert calculus.check(language.parse("sum(x)"), empty).ok
    assert calculus.numerical_grad(lambda x: fsum(x), empty)["x"].shape == (0,)
    assert calculus.numerical_jacobian(lambda x: x * 2.0, empty)[0]["x"].shape == (0, 0)


def test_a_number_in_any_result_is_a_numpy_float64_scalar() -> None:
    # The README's promise; Hessian and Jacobian blocks, higher derivatives and numerical
    # gradients of numbers were 0-d arrays, which json.dumps refuses.
    values = {"x": 2.0, "y": 3.0}
    for f in (language.parse("x**3 * y"), lambda x, y: x**3 * y):
        h = calculus.hessian(f, values)
        found = [h.value, *h.grad.values(), *(v for row in h.hessian.values() for v in row.values())]
        found += list(calculus.jacobian(f, values).jacobian.values())
        found += [d for ds in calculus.derivatives(f, values, order=3).values() for d in ds]
        found += list(calculus.numerical_grad(f, values).values())
        assert all(type(v) is np.float64 for v in found), [type(v) for v in found]
        json.dumps([float(v) for v in found])


def test_a_value_that_is_an_input_is_a_copy_not_the_callers_array() -> None:
    # evaluate("x") gave back the caller's array itself: a write into the result wrote into it.
    for f in (language.parse("x"), lambda x: x, language.parse("reshape(x, [2, 1])")):
        a = np.array([1.0, 2.0])
        calculus.evaluate(f, {"x": a}).value[0][...] = 10.0
        calculus.jacobian(f, {"x": a}).value[...] = 10.0
        np.testing.assert_array_equal(a, [1.0, 2.0])
    big = np.ones(10)
    assert calculus.evaluate(language.parse("x * 2"), {"x": big}).value[0].base is None  # (fresh: no copy)


def test_a_real_number_numpy_does_not_know_is_taken_as_a_float() -> None:
    from fractions import Fraction

    assert calculus.grad(language.parse("x**2"), {"x": Fraction(1, 2)}) == {"x": 1.0}
    assert Variable(Fraction(3, 4)).data == 0.75


@pytest.mark.parametrize("value", [None, {}, object()], ids=["None", "dict", "object"])
def test_a_value_that_is_no_number_says_what_it_got(value: Any) -> None:
    with pytest.raises(CalculusError, match="value of 'x': expected a number or an array of numbers, got "):
        calculus.grad(language.parse("x**2"), {"x": value})
