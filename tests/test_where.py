"""``where(cond, a, b)`` and ``a if cond else b``: the derivative of the branch taken, also where
the other branch is NaN or infinite, in every mode (first order on arrays, create_graph, Hessians,
higher orders, grad inside the expression, batched runs); where that stops; and no floating-point
warning from a branch not taken, while a branch taken still warns."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from conftest import invoke

from gradcli import calculus
from gradcli.language import parse

INF = math.inf

# expression, x, value, d/dx, d2/dx2: the derivatives of the branch taken at x.
TAKEN = [
    ("where(x > 0, sqrt(x), 0)", -1.0, 0.0, 0.0, 0.0),
    ("where(x > 0, sqrt(x), 0)", 0.0, 0.0, 0.0, 0.0),
    ("where(x > 0, sqrt(x), 0)", 4.0, 2.0, 0.25, -1 / 32),
    ("where(x != 0, sin(x)/x, 1)", 0.0, 1.0, 0.0, 0.0),
    ("sin(x)/x if x != 0 else 1", 0.0, 1.0, 0.0, 0.0),
    (
        "where(x != 0, sin(x)/x, 1)",
        1.0,
        math.sin(1),
        math.cos(1) - math.sin(1),
        -2 * math.cos(1) + math.sin(1),
    ),
    ("where(x > 0, log(x), -x)", 0.0, 0.0, -1.0, 0.0),
    ("where(x > 0, x*log(x), 0)", 0.0, 0.0, 0.0, 0.0),
    ("where(x < 1, 1/(1 - x), 0)", 1.0, 0.0, 0.0, 0.0),
    ("where(x > 0, where(x > 1, log(x - 1), sqrt(x)), 0)", -1.0, 0.0, 0.0, 0.0),
    ("where(x > 0, where(x > 1, log(x - 1), sqrt(x)), 0)", 0.25, 0.5, 1.0, -2.0),
    ("0 if x <= 0 else x**1.5", -2.0, 0.0, 0.0, 0.0),
    ("where(x > 0, sqrt(x), 0) * 2 + x**2", -1.0, 1.0, -2.0, 2.0),
    ("s = sqrt(x); where(x > 0, s*s, -x)", -4.0, 4.0, -1.0, 0.0),
]
IDS = [f"{t} at {x}" for t, x, *_ in TAKEN]


@pytest.mark.parametrize(("text", "x", "value", "d1", "d2"), TAKEN, ids=IDS)
def test_first_derivative_is_that_of_the_branch_taken(
    text: str, x: float, value: float, d1: float, d2: float
) -> None:
    result = calculus.evaluate(parse(text), {"x": x})
    assert float(result.value[0]) == pytest.approx(value, rel=1e-14, abs=0)
    assert float(result.grad[0]["x"]) == pytest.approx(d1, rel=1e-14, abs=0)


@pytest.mark.parametrize(("text", "x", "value", "d1", "d2"), TAKEN, ids=IDS)
def test_hessian_is_that_of_the_branch_taken(text: str, x: float, value: float, d1: float, d2: float) -> None:
    h = calculus.hessian(parse(text), {"x": x})
    assert float(h.grad["x"]) == pytest.approx(d1, rel=1e-14, abs=0)
    assert float(h.hessian["x"]["x"]) == pytest.approx(d2, rel=1e-13, abs=0)


@pytest.mark.parametrize(("text", "x", "value", "d1", "d2"), TAKEN, ids=IDS)
def test_derivatives_of_higher_order_are_those_of_the_branch_taken(
    text: str, x: float, value: float, d1: float, d2: float
) -> None:
    orders = calculus.derivatives(parse(text), {"x": x}, 3)["x"]
    assert [float(o) for o in orders[:2]] == pytest.approx([d1, d2], rel=1e-13, abs=0)
    assert math.isfinite(float(orders[2]))


@pytest.mark.parametrize(("text", "x", "value", "d1", "d2"), TAKEN, ids=IDS)
def test_grad_inside_the_expression_is_that_of_the_branch_taken(
    text: str, x: float, value: float, d1: float, d2: float
) -> None:
    *head, last = text.split("; ")
    inner = "; ".join([*head, f"f = {last}", "grad(f, x), grad(grad(f, x), x)"])
    result = calculus.evaluate(parse(inner), {"x": x})
    assert [float(v) for v in result.value] == pytest.approx([d1, d2], rel=1e-13, abs=0)


def test_array_gradient_takes_each_element_from_its_own_branch() -> None:
    x = [-1.0, 0.0, 4.0, 9.0]
    g = calculus.grad(parse("sum(where(x > 0, sqrt(x), -x))"), {"x": x})["x"]
    np.testing.assert_array_equal(g, [-1.0, -1.0, 0.25, 1 / 6])
    h = calculus.hessian(parse("sum(where(x > 0, sqrt(x), -x))"), {"x": x}).hessian["x"]["x"]
    np.testing.assert_array_equal(np.diag(h), [0.0, 0.0, -1 / 32, -1 / 108])
    assert np.all(np.isfinite(h))


def test_the_branch_taken_at_the_boundary_keeps_its_own_derivative() -> None:
    # At x = 0 the first branch is taken, and sqrt'(0) is infinite: that is its derivative.
    assert float(calculus.grad(parse("where(x >= 0, sqrt(x), 0)"), {"x": 0.0})["x"]) == INF


def test_a_condition_given_as_a_variable_gets_no_gradient() -> None:
    g = calculus.grad(parse("sum(where(c, x, 2*x))"), {"c": [1.0, 0.0], "x": [3.0, 3.0]})
    np.testing.assert_array_equal(g["c"], [0.0, 0.0])
    np.testing.assert_array_equal(g["x"], [1.0, 2.0])


# --- where it stops (as the README says) -----------------------------------------------------------


def test_strong_zeros_stop_at_a_function_that_is_not_elementwise() -> None:
    # dot's rule multiplies the zero of the untaken branch by the other operand, sqrt(x), which is
    # NaN at x = -1: that element of v's gradient is NaN, as in PyTorch.
    g = calculus.grad(
        parse("where(c > 0, dot(v, sqrt(x)), 0)"), {"c": -1.0, "v": [1.0, 1.0], "x": [-1.0, 4.0]}
    )
    np.testing.assert_array_equal(g["v"], [np.nan, 0.0])
    np.testing.assert_array_equal(g["x"], [0.0, 0.0])  # through sqrt, elementwise, zeros stay zero


def test_reductions_of_the_branch_only_spread_the_zero() -> None:
    g = calculus.grad(parse("where(c > 0, sum(sqrt(x)), 0)"), {"c": -1.0, "x": [-1.0, 4.0]})
    np.testing.assert_array_equal(g["x"], [0.0, 0.0])


# --- no warning from a branch not taken ------------------------------------------------------------

QUIET = [
    ("eval", "where(x > 0, sqrt(x), 0)", "-1"),
    ("eval", "where(x != 0, sin(x)/x, 1)", "0"),
    ("eval", "sin(x)/x if x != 0 else 1", "[0, 1]"),
    ("eval", "where(x > 0, log(x), 0)", "[-1, 0, 2]"),
    ("eval", "where(x > 0, where(x > 1, log(x - 1), sqrt(x)), 0)", "[-1, 0.5, 2]"),
    ("eval", "where(x > 0, sqrt(x), 0) + where(x < 0, sqrt(-x), 0)", "[-4, 0, 4]"),
    ("eval", "where(x > 0, sqrt(x), 0)", "-1", "--order", "3"),
    ("hessian", "where(x != 0, sin(x)/x, 1)", "0"),
    ("hessian", "sum(where(x > 0, sqrt(x), 0))", "[-1, 0, 4]"),
    ("jacobian", "where(x > 0, log(x), 0)", "[-1, 0, 2]"),
    ("check", "where(x > 0, sqrt(x), 0)", "-1"),
    ("check", "where(x > 0, sqrt(x), 0)", "-1", "--order", "2"),
    ("eval", "grad(where(x > 0, sqrt(x), 0), x)", "-1"),
    ("eval", "where(x > 0, grad(sqrt(x), x), 0)", "-1"),
    ("eval", "a = log(x); where(x > 0, grad(a, x), 0)", "[-1, 2]"),
    ("eval", "grad(sqrt(x), x) if x > 0 else 0", "-1", "--order", "3"),
    ("hessian", "where(x > 0, grad(sqrt(x), x)**2, x)", "-1"),
]


@pytest.mark.parametrize("args", QUIET, ids=[" ".join(a) for a in QUIET])
def test_a_branch_not_taken_warns_of_nothing(args: tuple[str, ...]) -> None:
    command, text, x, *rest = args
    rc, _, err = invoke(command, text, "--x", x, *rest)
    assert (rc, err) == (0, "")


def test_a_branch_not_taken_warns_of_nothing_in_batch_mode() -> None:
    rc, out, err = invoke("eval", "where(x > 0, sqrt(x), 0)", "--batch", input='{"x": -1}\n{"x": 4}\n')
    assert (rc, err) == (0, "")
    assert out.splitlines() == ['{"value": 0.0, "grad": {"x": 0.0}}', '{"value": 2.0, "grad": {"x": 0.25}}']


TAKEN_WARNS = [
    (("eval", "where(x > -5, sqrt(x), 0)", "--x", "-1"), ["warning: sqrt: invalid value"]),
    (("eval", "where(x > -2, sqrt(x), 0)", "--x", "[-4, -1]"), ["warning: sqrt: invalid value"]),
    (("eval", "where(x > 0, log(x), 1/x)", "--x", "0"), ["warning: div: divide by zero"]),  # not log's -inf
    (("eval", "where(x > 0, 1/x, sqrt(x))", "--x", "[-1, 0]"), ["warning: sqrt: invalid value"]),
    (("hessian", "where(x > -5, sqrt(x), 0)", "--x", "-1"), ["warning: sqrt: invalid value"]),
    (("eval", "s = sqrt(x); where(x > 0, s, 0) + s", "--x", "-1"), ["warning: sqrt: invalid value"]),
    # a branch with grad() inside, taken where its derivative is infinite: computed again with
    # the graph that grad() needs, so the warning is the one any expression gives
    (
        ("eval", "where(x > -1, grad(sqrt(x), x), 0)", "--x", "0"),
        ["warning: sqrt (in backward): divide by zero"],
    ),
]


@pytest.mark.parametrize(("args", "lines"), TAKEN_WARNS, ids=[" ".join(a) for a, _ in TAKEN_WARNS])
def test_a_branch_taken_warns_as_any_expression(args: tuple[str, ...], lines: list[str]) -> None:
    rc, _, err = invoke(*args)
    assert (rc, err.splitlines()) == (0, lines)


def test_the_python_api_raises_no_runtime_warning_for_a_branch_not_taken() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calculus.hessian(parse("where(x != 0, sin(x)/x, 1)"), {"x": 0.0})
    assert [str(w.message) for w in caught] == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calculus.evaluate(parse("where(x > -5, sqrt(x), 0)"), {"x": -1.0})
    assert any("invalid value" in str(w.message) for w in caught)


def test_instructions_that_only_feed_branches_run_quietly() -> None:
    program = parse("c = x > 0; s = sqrt(x); t = sin(s); where(c, t, 0) + cos(x)")
    names = {i: op.spec.name for i, op in enumerate(program.ops) if op.spec is not None}
    assert sorted(names[i] for i in program.quiet) == ["sin", "sqrt"]
    assert [names[i] for i in program.guards] == ["where"]


def _quiet_names(text: str) -> list[str]:
    program = parse(text)
    return sorted(op.spec.name for i, op in enumerate(program.ops) if i in program.quiet and op.spec)


@pytest.mark.parametrize(
    ("text", "quiet"),
    [
        ("where(x > 0, sqrt(x), 0)", ["sqrt"]),
        ("where(sqrt(x) > 0, x, 0)", []),  # the condition is always computed for a result
        ("s = sqrt(x); where(x > 0, s, 0) + s", []),  # also used outside the branch
        ("where(x > 0, where(x > 1, log(x), sqrt(x)), 0)", ["greater", "log", "sqrt", "where"]),
        ("grad(where(x > 0, sqrt(x), 0), x)", ["sqrt"]),
        # grad(...) in a branch, and what it differentiates: quiet too (a grad is no function)
        ("where(x > 0, grad(sqrt(x), x), 0)", ["sqrt"]),
    ],
)
def test_which_instructions_are_quiet(text: str, quiet: list[str]) -> None:
    assert _quiet_names(text) == quiet


def test_a_program_without_where_has_nothing_quiet() -> None:
    program = parse("sqrt(x) + log(x) * (x > 0)")
    assert (program.quiet, program.guards) == (frozenset(), {})


def test_values_kept_for_a_branch_to_be_computed_again_are_freed_after_the_where() -> None:
    program = parse("where(x > 0, sqrt(x), 0) + 1")
    where_at = next(i for i, op in enumerate(program.ops) if op.spec is not None and op.spec.name == "where")
    freed_by_where = {program.ops[j].spec.name for j in program.frees[where_at] if program.ops[j].spec}
    assert "sqrt" in freed_by_where


def _run(text: str, x: Any) -> float:
    return float(parse(text).run({"x": x}).outputs[0].data)


def test_comparisons_inside_a_condition_are_values_too() -> None:
    assert _run("(x > 0) + (x > 1) + (x > 2)", 1.5) == 2.0
