"""A Python callable's graph as a Program (gradcli.tracing): for every registered function, the
Program a callable's graph records computes what the callable computed, and the Hessian and the
Jacobian taken through it (one batched run) are those of one reverse pass per row. Where a graph
holds a function outside the registry there is no Program, and the answers are still right."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_registry_derivatives import SPECS, sample_inputs, weighted_sum, weights_for

from gradcli import Function, Variable, calculus, engine, language, tracing
from gradcli.engine import grad
from gradcli.functions import Spec


class _Model:
    """``spec`` at its sample inputs as a model of named inputs (a callable, not a Program)."""

    def __init__(self, spec: Spec, summed: bool) -> None:
        self.spec, self.summed = spec, summed
        self.arrays = sample_inputs(spec)
        self.weights = weights_for(spec, self.arrays)
        self.inputs = tuple(f"x{k}" for k in range(len(self.arrays)))

    def outputs(self, xs: list[Variable]) -> list[Variable]:
        ys = self.spec(*xs, **self.spec.sample_params)
        ys = list(ys) if isinstance(ys, tuple) else [ys]
        return [weighted_sum(ys, self.weights)] if self.summed else ys

    def run_variables(self, variables: dict[str, Variable]) -> list[Variable]:
        return self.outputs([variables[n] for n in self.inputs])

    def values(self) -> dict[str, np.ndarray]:
        return dict(zip(self.inputs, self.arrays))


def _rows_of(y: Variable, xs: list[Variable]) -> list[np.ndarray]:
    """d y / d xs by one reverse pass per element of y: blocks of shape y.shape + x.shape."""
    blocks = [np.zeros(y.shape + x.shape) for x in xs]
    for idx in np.ndindex(y.shape):
        seed = np.zeros(y.shape)
        seed[idx] = 1.0
        for block, g in zip(blocks, grad([y], xs, [Variable(seed)])):
            block[idx] = g.data
    return blocks


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_the_program_a_callable_records_computes_what_the_callable_computed(spec: Spec) -> None:
    model = _Model(spec, summed=False)
    xs = {n: Variable(a, name=n) for n, a in model.values().items()}
    ys = model.run_variables(xs)
    trace = tracing.program_of(ys, xs)
    assert trace is not None, f"{spec.name}: no Program for a graph of registered functions"
    again = trace.program.run_variables({n: Variable(a) for n, a in model.values().items()})
    for y, z in zip(ys, again, strict=True):
        np.testing.assert_array_equal(z.data, y.data, err_msg=spec.name)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_a_callables_hessian_is_that_of_one_reverse_pass_per_row(spec: Spec) -> None:
    model = _Model(spec, summed=True)
    got = calculus.hessian(model, model.values())
    xs = [Variable(a) for a in model.arrays]
    y = model.outputs(xs)[0]
    gs = grad([y], xs, create_graph=True)
    np.testing.assert_array_equal(got.value, y.data)
    for n, g in zip(model.inputs, gs):
        np.testing.assert_array_equal(got.grad[n], g.data)
        for m, block in zip(model.inputs, _rows_of(g, xs)):
            np.testing.assert_allclose(
                got.hessian[n][m], block, rtol=1e-10, atol=1e-12, err_msg=f"{spec.name} d2/d{n} d{m}"
            )


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_a_callables_jacobian_is_that_of_one_reverse_pass_per_row(spec: Spec) -> None:
    model = _Model(spec, summed=False)
    got = calculus.jacobian(model, model.values())
    xs = [Variable(a) for a in model.arrays]
    ys = model.outputs(xs)
    blocks = got.jacobian if len(ys) > 1 else [got.jacobian]
    for k, y in enumerate(ys):
        for n, want in zip(model.inputs, _rows_of(y, xs)):
            np.testing.assert_allclose(
                blocks[k][n], want, rtol=1e-10, atol=1e-12, err_msg=f"{spec.name} out{k} d/d{n}"
            )


def _backward_passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = engine.backward

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "backward", counted)
    return calls


@pytest.mark.parametrize("expression", [False, True], ids=["callable", "expression"])
def test_a_hessian_takes_two_backward_passes_not_one_per_row(
    monkeypatch: pytest.MonkeyPatch, expression: bool
) -> None:
    a = np.arange(36.0).reshape(6, 6) % 7 - 3

    def quadratic(x: Variable) -> Variable:
        return 0.5 * (x @ a @ x)

    calls = _backward_passes(monkeypatch)
    x = np.linspace(-1.0, 1.0, 6)
    if expression:
        h = calculus.hessian(language.parse("0.5 * x @ A @ x"), {"x": x, "A": a}, wrt=["x"])
    else:
        h = calculus.hessian(quadratic, {"x": x})
    np.testing.assert_allclose(h.hessian["x"]["x"], (a + a.T) / 2, rtol=1e-14)
    assert len(calls) == 2  # the gradient, then the pass through its graph that is traced


def test_a_strong_zero_in_the_pass_through_the_gradient_takes_rows_from_copies_and_is_right() -> None:
    # sqrt's derivative is NaN at -1, in a branch where() does not take: masked to a strong zero.
    h = calculus.hessian(language.parse("sum(where(x > 0, sqrt(x), 0))"), {"x": [4.0, -1.0]})
    np.testing.assert_allclose(h.hessian["x"]["x"], np.diag([-0.25 * 4.0**-1.5, 0.0]))
    assert np.isfinite(h.hessian["x"]["x"]).all()


class _Cube(Function):
    """A Function of the user's own, not registered: its graph has no Program."""

    def forward(self, x: Any) -> Any:
        return x**3

    def backward(self, gy: Any) -> Any:
        (x,) = self.inputs
        return gy * 3.0 * x * x


def _inner_gradient(x: Variable) -> Variable:
    # Broadcasting in the inner function puts the engine's own SumTo into the gradient's graph.
    (g,) = grad([(x * (x * x * np.ones((2, 1)))).sum()], [x], create_graph=True)  # 2 * sum(x**3)
    return g.sum()


@pytest.mark.parametrize(
    ("f", "traced", "gradient", "hessian"),
    [
        (lambda x: _Cube()(x).sum(), False, lambda x: 3.0 * x * x, lambda x: np.diag(6.0 * x)),
        (_inner_gradient, True, lambda x: 12.0 * x, lambda x: 12.0 * np.eye(len(x))),
    ],
    ids=["unregistered function", "grad taken inside"],
)
def test_a_graph_has_a_program_where_its_functions_are_known_and_the_answers_are_right_either_way(
    f: Any, traced: bool, gradient: Any, hessian: Any
) -> None:
    x = np.array([1.0, -2.0, 0.5])
    xs = {"x": Variable(x)}
    assert (tracing.program_of([f(xs["x"])], xs) is not None) == traced
    np.testing.assert_allclose(calculus.hessian(f, {"x": x}).hessian["x"]["x"], hessian(x))
    np.testing.assert_allclose(calculus.jacobian(f, {"x": x}).jacobian["x"], gradient(x))


def test_what_depends_on_no_input_is_a_constant_whatever_made_it() -> None:
    w = Variable(np.array([1.0, 2.0, 3.0]))  # a Variable of the caller's, not an input
    x = Variable(np.array([0.5, -1.0, 2.0]))
    trace = tracing.program_of([(x * _Cube()(w)).sum()], {"x": x})
    assert trace is not None
    assert [op.spec.name for op in trace.program.ops if op.spec is not None] == ["mul", "sum"]
    (value,) = trace.program.run_variables({"x": Variable(x.data)})
    assert float(value.data) == 0.5 - 8.0 + 54.0  # x * w**3, summed


def test_a_branch_on_the_inputs_values_is_taken_as_at_the_point() -> None:
    def f(x: Variable) -> Variable:
        return (x**2).sum() if x.data[0] > 0 else (x**3).sum()

    for x in (np.array([1.0, 2.0]), np.array([-1.0, 2.0])):
        want = np.diag(2.0 * np.ones(2)) if x[0] > 0 else np.diag(6.0 * x)
        np.testing.assert_array_equal(calculus.hessian(f, {"x": x}).hessian["x"]["x"], want)


def test_pure_partials_of_a_callable_come_from_its_program() -> None:
    got = calculus.derivatives(lambda x, y: (x**4 * y).sum(), {"x": [1.0, 2.0], "y": 3.0}, order=3)
    np.testing.assert_allclose(got["x"][2], 24.0 * np.array([1.0, 2.0]) * 3.0)
    np.testing.assert_allclose(got["y"], [16.0 + 1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "text",
    [
        "sum(x**2 * y[0]) + x[0] * sum(y**3) + sum(sin(x) * exp(y[1, 1]))",  # rows from the traced pass
        "sum(where(x > 0, sqrt(x), 0) * y[0]) + sum(y**3)",  # a strong zero: rows from copies
    ],
    ids=["traced pass", "copies"],
)
@pytest.mark.parametrize("numbers", [40, 150, 400])  # 1 to 9 rows per run, some across x and y
def test_a_hessian_in_chunks_is_the_hessian_in_one_run(
    monkeypatch: pytest.MonkeyPatch, text: str, numbers: int
) -> None:
    values = {"x": np.array([0.5, -1.0, 2.0]), "y": np.array([[1.0, -0.5, 0.25], [0.5, 2.0, -1.0]])}
    whole = calculus.hessian(language.parse(text), values).hessian
    monkeypatch.setattr(calculus, "CHUNK_ELEMENTS", numbers)
    chunked = calculus.hessian(language.parse(text), values).hessian
    for a in values:
        for b in values:
            np.testing.assert_allclose(chunked[a][b], whole[a][b], rtol=1e-14, atol=0.0, err_msg=f"{a} {b}")
            np.testing.assert_allclose(
                whole[a][b],
                np.moveaxis(whole[b][a], range(values[b].ndim), range(-values[b].ndim, 0)),
                rtol=1e-12,
            )


def test_a_plugins_class_with_options_is_not_traced_and_its_hessian_is_right() -> None:
    """A plugin may keep an option under another name or changed (``self.k = 2 * k``): read back
    as the registry lists it, it would be wrong, so such a graph keeps one reverse pass per row."""
    from gradcli.functions import REGISTRY, register

    before = dict(REGISTRY)

    class Scaled(Function):
        def __init__(self, k: float = 1.0) -> None:
            self.k = 2.0 * k  # not the option it was made with

        def forward(self, x: Any) -> Any:
            return self.k * x**3

        def backward(self, gy: Any) -> Any:
            (x,) = self.inputs
            return gy * 3.0 * self.k * x * x

    try:
        register("scaled_cube_for_tracing")(Scaled)
        x = np.array([1.0, -2.0, 0.5])
        xs = {"x": Variable(x)}

        def f(x: Variable) -> Variable:
            return Scaled(k=0.5)(x).sum()  # k = 1.0 inside: x**3

        assert tracing.program_of([f(xs["x"])], xs) is None
        np.testing.assert_allclose(calculus.hessian(f, {"x": x}).hessian["x"]["x"], np.diag(6.0 * x))
    finally:
        REGISTRY.clear()
        REGISTRY.update(before)


def test_a_product_with_a_constant_one_is_no_instruction_and_with_a_value_of_the_inputs_is_one() -> None:
    x, y = Variable(np.array([0.5, -0.0, np.inf, np.nan])), Variable(np.float64(1.0))
    ones = Variable(np.float64(1.0), requires_grad=False)
    trace = tracing.program_of([x * ones, ones * x], {"x": x})
    assert trace is not None
    assert [op.kind for op in trace.program.ops] == ["input"]  # both outputs are x itself
    # One that is 1.0 here but depends on an input is 1.0 at this point only: it stays.
    kept = tracing.program_of([x * y, x * (y * 0.0 + 1.0)], {"x": x, "y": y})
    assert kept is not None
    assert [op.spec.name for op in kept.program.ops if op.spec is not None] == ["mul", "mul", "add", "mul"]
    # So does a one that gives the product another shape than the input's (a broadcast).
    for ones in (np.ones(1), np.ones(3), np.ones((1, 1))):
        g = Variable(np.float64(2.0))
        grown = tracing.program_of([g * Variable(ones, requires_grad=False)], {"g": g})
        assert grown is not None
        assert [op.spec.name for op in grown.program.ops if op.spec is not None] == ["mul"], ones.shape
        (out,) = grown.program.run_variables({"g": Variable(np.float64(3.0))})
        assert out.shape == ones.shape


def test_the_rows_of_a_quadratic_forms_hessian_multiply_by_no_seed_of_ones() -> None:
    a = np.arange(9.0).reshape(3, 3) / 7.0
    program = language.parse("0.5 * x @ A @ x")
    traced: list[Any] = []
    real = tracing.program_of

    def spy(outputs: Any, inputs: Any) -> Any:
        traced.append(real(outputs, inputs))
        return traced[-1]

    tracing.program_of = spy  # type: ignore[assignment]
    try:
        h = calculus.hessian(program, {"x": np.array([1.0, -2.0, 0.5]), "A": a}, wrt=["x"])
    finally:
        tracing.program_of = real  # type: ignore[assignment]
    np.testing.assert_array_equal(h.hessian["x"]["x"], 0.5 * a.T + 0.5 * a)
    (rows,) = traced
    calls = [op.spec.name for op in rows.program.ops if op.spec is not None]
    assert sorted(calls) == ["add", "matmul", "matmul", "mul", "mul"]  # two by 0.5, none by 1.0
