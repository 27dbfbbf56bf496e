"""The tape (gradcli.tape) against the graph, bit for bit, where its reverse sweep does the
engine's work its own way: a table row of two inputs runs its rules without Primitive.vjp, and
the queue is lists by generation, with calls of several outputs queued once.

Each expression runs on the tape (calculus.evaluate) and on the graph (calculus.grad), with
every input and with each input alone wanting a gradient (the other held constant: its rule does
not run)."""

from __future__ import annotations

import numpy as np
import pytest

from gradcli import calculus, tape
from gradcli.functions import REGISTRY, Spec
from gradcli.language import parse
from gradcli.program import ExpressionError

# Elementwise: they take any numbers, and arrays of shapes that broadcast.
TWO_INPUTS = sorted(
    (s for s in REGISTRY.values() if s.arity == (2, 2) and s.elementwise and not s.params),
    key=lambda s: s.name,
)


def assert_same_bits(text: str, values: dict[str, object]) -> None:
    program = parse(text)
    assert tape.runs_on_tape(program), text
    values = {n: values[n] for n in program.inputs}
    names = list(program.inputs)
    for wrt in (names, *([n] for n in names)):
        on_tape = calculus.evaluate(program, values, wrt=wrt).grad[0]
        on_graph = calculus.grad(program, values, wrt=wrt)
        for name in wrt:
            a, b = np.asarray(on_tape[name]), np.asarray(on_graph[name])
            assert a.shape == b.shape, (text, wrt, name)
            assert np.array_equal(a, b, equal_nan=True), (text, wrt, name, a, b)


def test_the_registry_has_two_input_rows_without_options() -> None:
    assert {"add", "sub", "mul", "div", "pow", "atan2", "hypot"} <= {s.name for s in TWO_INPUTS}


@pytest.mark.parametrize("spec", TWO_INPUTS, ids=lambda s: s.name)
def test_a_two_input_row_gives_the_graphs_gradients(spec: Spec) -> None:
    """Each input alone and both, a value used twice, numbers and arrays (whose gradients are
    summed to the input's shape), and a gradient that arrives twice at one call."""
    lo, hi = spec.sample_domain
    rng = np.random.default_rng(len(spec.name))
    x, y = rng.uniform(lo, hi, size=2)
    f = spec.name
    for text in (
        f"{f}(x, y)",
        f"{f}(x, y) * {f}(y, x)",
        f"u = {f}(x, y)\nu * x + u * y",
        f"{f}(x, x) + {f}(y, {(lo + hi) / 2!r})",
    ):
        assert_same_bits(text, {"x": float(x), "y": float(y)})
    a = rng.uniform(lo, hi, size=(2, 3))
    assert_same_bits(f"sum({f}(x, y) * {f}(y, x))", {"x": a, "y": float(y)})


@pytest.mark.parametrize(
    "text",
    [
        "s, c = sincos(x)\ns*c + s*y",
        "s, c = sincos(x*y)\nc + x",
        "s, c = sincos(x)\ns",
        "s, c = sincos(x)\nq, r = sincos(s)\nq*c + r*x + s*y",
        "s, c = sincos(x + y)\nt, d = sincos(s*c)\n(t + d)*(s - c) + x*y*c",
    ],
)
def test_a_call_with_several_outputs_runs_once_in_the_graphs_order(text: str) -> None:
    """Its outputs are reached one by one (one or both), at different generations: its function
    is queued at the first and runs once, with every output's gradient."""
    assert_same_bits(text, {"x": 0.3, "y": 1.7})
    assert_same_bits(text, {"x": -1.1, "y": 0.25})


def test_a_wide_sum_of_generations_adds_up_in_the_graphs_order() -> None:
    """Many calls in each generation, reached from several later ones in turn: the order within
    a generation (first come, first served) decides the last bits of x's gradient."""
    rng = np.random.default_rng(7)
    terms = [f"x*{float(c)!r}" for c in rng.uniform(0.1, 3.0, size=40)]
    nested = [f"(({a}) * y + ({b}) / (y + 2.0))" for a, b in zip(terms[::2], terms[1::2])]
    text = " + ".join(nested) + " + " + " + ".join(f"{t}*{t}" for t in terms[:10])
    assert_same_bits(text, {"x": 0.7, "y": 1.3})


@pytest.mark.parametrize(
    "text, values",
    [
        ("x + y", {"x": np.ones(2), "y": np.ones(3)}),
        ("x * y + 1.0", {"x": np.ones((2, 2)), "y": np.ones(3)}),
        ("atan2(x, y)", {"x": np.ones(4), "y": np.ones(5)}),
    ],
)
def test_a_two_argument_call_fails_on_the_tape_as_on_the_graph(text: str, values: dict[str, object]) -> None:
    """The tape runs a call of two arguments itself (not through _call): its failure is still
    the graph run's message, at the same place."""
    program = parse(text)
    with pytest.raises(ExpressionError) as on_graph:
        program.run(values)
    with pytest.raises(ExpressionError) as on_tape:
        calculus.evaluate(program, values)
    assert str(on_tape.value) == str(on_graph.value)
    assert "of shapes" in str(on_tape.value)


@pytest.mark.parametrize(
    "text", ["(x < y) * x + y", "where(x > y, x*y, x + y)", "maximum(x, 2.0) * (x >= 1.5)"]
)
@pytest.mark.parametrize("x", [1.0, 2.5])
def test_a_two_argument_call_that_gives_no_float_is_kept_as_the_graph_keeps_it(text: str, x: float) -> None:
    """Comparisons give booleans: the tape keeps what the graph's run keeps (as_array), in value
    and type, and the gradients match bit for bit."""
    program = parse(text)
    values = {n: v for n, v in {"x": x, "y": 2.0}.items() if n in program.inputs}
    on_tape = calculus.evaluate(program, values).value[0]
    on_graph = program.run(values).outputs[0].data
    assert type(on_tape) is type(on_graph) and np.array_equal(on_tape, on_graph)
    assert_same_bits(text, values)
