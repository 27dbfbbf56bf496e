"""Deep and long expressions: parsing, running and backward are loops, never recursion, so none of
these may raise RecursionError (Python's default limit is 1,000 frames)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from conftest import run_cli

from gradcli import calculus
from gradcli.language import parse

N = 100_000
CHAIN = 10_000


def evaluate(text: str, x: float) -> tuple[float, float]:
    result = calculus.evaluate(parse(text), {"x": x})
    return float(result.value[0]), float(result.grad[0]["x"])


def test_recursion_limit_is_far_below_the_depths_tested() -> None:
    assert sys.getrecursionlimit() < CHAIN


@pytest.mark.slow
def test_hundred_thousand_nested_parentheses() -> None:
    assert evaluate("(" * N + "x" + ")" * N, 0.5) == (0.5, 1.0)


@pytest.mark.slow
def test_hundred_thousand_nested_parentheses_around_an_operation() -> None:
    assert evaluate("(" * N + "x*x" + ")" * N + " + 1", 3.0) == (10.0, 6.0)


@pytest.mark.slow
def test_hundred_thousand_term_sum() -> None:
    assert evaluate(" + ".join(["x"] * N), 0.5) == (N * 0.5, float(N))


def test_ten_thousand_deep_chain_of_calls() -> None:
    value, grad = evaluate("sin(" * CHAIN + "x" + ")" * CHAIN, 1.0)
    v, g = 1.0, 1.0
    for _ in range(CHAIN):  # the same chain in plain floats: d sin(u) = cos(u) du
        g *= math.cos(v)
        v = math.sin(v)
    assert value == pytest.approx(v, rel=1e-12)
    assert grad == pytest.approx(g, rel=1e-9)


@pytest.mark.slow
def test_hundred_thousand_unary_minus() -> None:
    # An odd count: -(-(...(-x))) * x is -x**2, so a dropped or doubled minus shows.
    assert evaluate("-" * (N + 1) + "x*x", 3.0) == (-9.0, -6.0)


def test_ten_thousand_statements_each_reading_the_last() -> None:
    lines = ["a0 = x"] + [f"a{k} = a{k - 1} + x" for k in range(1, CHAIN)] + [f"a{CHAIN - 1}"]
    assert evaluate("\n".join(lines), 1.5) == (1.5 * CHAIN, float(CHAIN))


def test_deep_expression_runs_many_times_from_one_parse() -> None:
    program = parse("-(" * CHAIN + "x" + ")" * CHAIN)
    for x in (1.0, -2.0):
        np.testing.assert_equal(program.run({"x": x}).outputs[0].data, x)


@pytest.mark.slow
def test_deep_expression_through_the_command_line() -> None:
    text = "(" * N + "sin(" * CHAIN + "x" + ")" * CHAIN + ")" * N
    # Through stdin: one argv string is limited to 128 KiB on Linux.
    rc, out, err = run_cli("eval", "-f", "-", "--vars", '{"x": 1}', "--json", input=text)
    assert rc == 0, err
    assert "Traceback" not in err
    data = json.loads(out)
    assert data["value"] == pytest.approx(evaluate("sin(" * CHAIN + "x" + ")" * CHAIN, 1.0)[0], rel=1e-12)
    assert set(data["grad"]) == {"x"}
