"""The engine's pinned behaviour (issue 2): the worked examples, graph bookkeeping, higher orders,
broadcasting, threads, custom Functions, operators, and the conventions at non-differentiable
points."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import threading
import weakref
from typing import Any

import numpy as np
import pytest
from numerics import numeric_grad

import gradcli
from gradcli import Function, Variable, no_grad
from gradcli import functions as F  # noqa: N812 - as torch.nn.functional is F
from gradcli.engine import grad


def value(v: Variable) -> np.ndarray:
    return np.asarray(v.data)


def grad_of(v: Variable) -> np.ndarray:
    assert v.grad is not None, "expected a gradient, got None"
    return np.asarray(v.grad.data)


# -- accumulation and ordering ---------------------------------------------------------------


def test_reused_variable_accumulates_gradient() -> None:
    x = Variable(3.0)
    (x + x).backward()
    assert grad_of(x) == 2.0


def test_shared_intermediate_accumulates_before_passing_on() -> None:
    x = Variable(2.0)
    a = x**2
    y = a**2 + a**2
    y.backward()
    assert value(y) == 32.0
    assert grad_of(x) == 64.0


def test_diamond_graph_gives_exact_gradients() -> None:
    x0, x1 = Variable(1.0), Variable(1.0)
    t = x0 + x1
    y = x0 + t
    y.backward()
    assert (grad_of(x0), grad_of(x1)) == (2.0, 1.0)


def test_backward_on_a_leaf_gives_one() -> None:
    x = Variable(5.0)
    x.backward()
    assert grad_of(x) == 1.0


def test_backward_on_an_array_leaf_gives_ones() -> None:
    x = Variable(np.arange(6.0).reshape(2, 3))
    x.backward()
    np.testing.assert_array_equal(grad_of(x), np.ones((2, 3)))


def test_repeated_backward_adds_into_grad_until_cleared() -> None:
    x = Variable(2.0)
    (x * x).backward()
    (x * x).backward()
    assert grad_of(x) == 8.0
    x.cleargrad()
    assert x.grad is None


def test_input_that_does_not_reach_the_output_gets_zero_gradient() -> None:
    x, unused = Variable(2.0), Variable(np.ones(3))
    gx, gu = grad(x * x, [x, unused])
    assert value(gx) == 4.0
    np.testing.assert_array_equal(value(gu), np.zeros(3))


def test_unused_output_of_sincos_contributes_nothing() -> None:
    x = Variable(0.7)
    s, c = F.sincos(x)
    s.backward()
    assert grad_of(x) == pytest.approx(np.cos(0.7), rel=1e-15)


def test_dead_unused_output_of_sincos_contributes_nothing() -> None:
    x = Variable(0.7)
    s, c = F.sincos(x)
    del c
    gc.collect()
    (s * 3.0).backward()
    assert grad_of(x) == pytest.approx(3.0 * np.cos(0.7), rel=1e-15)


def test_unused_output_of_split_contributes_nothing() -> None:
    x = Variable(np.arange(12.0).reshape(4, 3))
    a, b = F.split(x)
    (a * 2.0).sum().backward()
    np.testing.assert_array_equal(grad_of(x), np.r_[np.full((2, 3), 2.0), np.zeros((2, 3))])


# -- graph memory --------------------------------------------------------------------------

CHAIN = 100_000


def test_chain_of_100000_operations_runs_forward_and_backward() -> None:
    x = Variable(0.5)
    y = x
    for _ in range(CHAIN // 2):
        y = y * 1.0 + 1.0
    y.backward()
    assert value(y) == 0.5 + CHAIN // 2
    assert grad_of(x) == 1.0


def test_dropping_a_100000_operation_graph_does_not_crash() -> None:
    # In a child process so that a C-stack overflow while freeing the chain fails this test
    # alone instead of killing the test run.
    code = textwrap.dedent(
        f"""
        import gc
        from gradcli import Variable
        x = Variable(1.0)
        y = x
        for _ in range({CHAIN}):
            y = y + 1.0
        y.backward()
        del y
        gc.collect()
        print(float(x.grad.data))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1.0"


def test_function_holds_its_outputs_by_weak_reference() -> None:
    x = Variable(1.0)
    y = x * 2.0
    f = y.creator
    assert f is not None
    assert all(isinstance(r, weakref.ref) for r in f.outputs)
    assert f.outputs[0]() is y
    del y
    gc.collect()
    assert f.outputs[0]() is None


def test_intermediate_gradients_are_freed_by_default() -> None:
    x = Variable(2.0)
    a = x * x
    y = a * 3.0
    y.backward()
    assert grad_of(x) == 12.0
    assert a.grad is None
    assert y.grad is None


def test_retain_grad_keeps_intermediate_gradients() -> None:
    x = Variable(2.0)
    a = x * x
    y = a * 3.0
    y.backward(retain_grad=True)
    assert (grad_of(x), grad_of(a), grad_of(y)) == (12.0, 3.0, 1.0)


def test_no_grad_records_no_graph() -> None:
    x = Variable(2.0)
    with no_grad():
        y = F.sin(x * x)
        assert not gradcli.is_grad_enabled()
    assert y.creator is None
    assert value(y) == pytest.approx(np.sin(4.0))
    z = x * x
    assert z.creator is not None


def test_no_grad_and_the_engines_blocks_decorate_functions_and_nest() -> None:
    # As torch's @torch.no_grad() does; each call is a block of its own, so recursion nests.
    @no_grad()
    def depth(n: int) -> bool:
        assert not gradcli.is_grad_enabled()
        return depth(n - 1) if n else gradcli.is_grad_enabled()

    assert depth(3) is False
    assert gradcli.is_grad_enabled()

    @no_grad  # without the parentheses too, as torch takes it
    def bare() -> bool:
        return gradcli.is_grad_enabled()

    assert bare() is False and gradcli.is_grad_enabled()
    with no_grad():
        with gradcli.engine.using_grad(True):
            assert gradcli.is_grad_enabled()
        assert not gradcli.is_grad_enabled()
    assert gc.isenabled()
    with gradcli.engine.paused_gc():
        with gradcli.engine.paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # only the block that found it on turns it back on
    assert gc.isenabled()


def test_one_setting_object_entered_again_inside_its_block_restores_each_state() -> None:
    blocks = gradcli.engine.no_grad()
    with blocks:
        with blocks:
            assert not gradcli.is_grad_enabled()
        assert not gradcli.is_grad_enabled()
    assert gradcli.is_grad_enabled()
    paused = gradcli.engine.paused_gc()
    with paused:
        with paused:
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_no_grad_decorating_a_generator_applies_while_it_runs_not_between_steps() -> None:
    @no_grad
    def steps() -> Any:
        sent = yield gradcli.is_grad_enabled()
        try:
            yield sent, gradcli.is_grad_enabled()
        except KeyError:
            yield "caught", gradcli.is_grad_enabled()
        return "done"

    gen = steps()
    assert next(gen) is False and gradcli.is_grad_enabled()
    assert gen.send(3) == (3, False) and gradcli.is_grad_enabled()
    assert gen.throw(KeyError("k")) == ("caught", False) and gradcli.is_grad_enabled()
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"
    assert gradcli.is_grad_enabled()


def test_no_grad_decorating_a_coroutine_or_async_generator_applies_while_it_runs() -> None:
    @no_grad()
    async def work() -> bool:
        await asyncio.sleep(0)
        return gradcli.is_grad_enabled()

    @no_grad
    async def stream() -> Any:
        yield gradcli.is_grad_enabled()
        await asyncio.sleep(0)
        yield gradcli.is_grad_enabled()

    async def main() -> tuple[bool, list[tuple[bool, bool]]]:
        seen = [(v, gradcli.is_grad_enabled()) async for v in stream()]
        return await work(), seen

    assert asyncio.run(main()) == (False, [(False, True), (False, True)])
    assert gradcli.is_grad_enabled()


def test_one_setting_object_shared_by_threads_restores_each_threads_state() -> None:
    blocks, n = no_grad(), 4
    barrier = threading.Barrier(n, timeout=30)
    errors: list[str] = []

    def work() -> None:
        try:
            with blocks:  # all threads inside at once, leaving in a different order
                barrier.wait()
                if gradcli.is_grad_enabled():
                    errors.append("grad on inside the block")
            barrier.wait()
            if not gradcli.is_grad_enabled():
                errors.append("grad left off after the block")
        except Exception as e:  # noqa: BLE001 - reported through the assertion below
            errors.append(repr(e))

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert gradcli.is_grad_enabled()


# -- higher orders ---------------------------------------------------------------------------


def test_second_derivative_of_quartic() -> None:
    x = Variable(2.0)
    y = x**4 - 2.0 * x**2
    y.backward(create_graph=True)
    gx = x.grad
    assert value(gx) == 24.0
    x.cleargrad()
    gx.backward()
    assert grad_of(x) == 44.0


def test_sixth_derivative_of_tanh() -> None:
    x = Variable(1.0)
    F.tanh(x).backward(create_graph=True)
    for _ in range(5):
        gx = x.grad
        x.cleargrad()
        gx.backward(create_graph=True)
    assert grad_of(x) == pytest.approx(13.6240754413, rel=1e-9)


def test_double_backprop_through_a_gradient() -> None:
    x = Variable(2.0)
    y = x**2
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    z = gx**3 + y
    z.backward()
    assert grad_of(x) == 100.0


def test_gradient_without_create_graph_has_no_graph() -> None:
    x = Variable(2.0)
    (x**3).backward()
    assert x.grad.creator is None


# -- broadcasting ----------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_broadcast_binary_gives_each_input_a_gradient_of_its_own_shape(op: str) -> None:
    rng = np.random.default_rng(0)
    a0, b0 = rng.uniform(0.5, 2.0, (3, 1)), rng.uniform(0.5, 2.0, (4,))
    a, b = Variable(a0), Variable(b0)
    y = F.REGISTRY[op](a, b)
    assert y.shape == (3, 4)
    y.sum().backward()
    assert a.grad.shape == (3, 1)
    assert b.grad.shape == (4,)

    def total(p: np.ndarray, q: np.ndarray) -> float:
        return float(F.REGISTRY[op](Variable(p), Variable(q)).data.sum())

    na, nb = numeric_grad(total, [a0, b0])
    np.testing.assert_allclose(grad_of(a), na, rtol=1e-6)
    np.testing.assert_allclose(grad_of(b), nb, rtol=1e-6)


# -- test functions of optimisation ----------------------------------------------------------


def sphere(x: Variable, y: Variable) -> Variable:
    return x**2 + y**2


def matyas(x: Variable, y: Variable) -> Variable:
    return 0.26 * (x**2 + y**2) - 0.48 * x * y


def goldstein_price(x: Variable, y: Variable) -> Variable:
    a = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x**2 - 14 * y + 6 * x * y + 3 * y**2)
    b = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x**2 + 48 * y - 36 * x * y + 27 * y**2)
    return a * b


def rosenbrock(x: Variable, y: Variable) -> Variable:
    return 100 * (y - x**2) ** 2 + (1 - x) ** 2


@pytest.mark.parametrize(
    ("f", "point", "expected_value", "expected_grad"),
    [
        (sphere, (1.0, 1.0), 2.0, (2.0, 2.0)),
        (matyas, (1.0, 1.0), 0.04, (0.04, 0.04)),
        (goldstein_price, (1.0, 1.0), 1876.0, (-5376.0, 8064.0)),
        (rosenbrock, (0.0, 2.0), 401.0, (-2.0, 400.0)),
    ],
    ids=lambda p: getattr(p, "__name__", None),
)
def test_optimisation_benchmark_functions(f, point, expected_value, expected_grad) -> None:  # noqa: ANN001
    x, y = Variable(point[0]), Variable(point[1])
    z = f(x, y)
    z.backward()
    assert value(z) == pytest.approx(expected_value, rel=1e-12)
    assert grad_of(x) == pytest.approx(expected_grad[0], rel=1e-12, abs=1e-14)
    assert grad_of(y) == pytest.approx(expected_grad[1], rel=1e-12, abs=1e-14)


# -- threads ---------------------------------------------------------------------------------


def test_threads_evaluate_independently_while_one_is_in_no_grad() -> None:
    n = 8
    barrier = threading.Barrier(n, timeout=30)
    errors: list[str] = []

    def work(k: int) -> None:
        try:
            x = Variable(float(k + 1))
            if k == 0:
                with no_grad():
                    barrier.wait()  # every other thread computes while this one is in no_grad
                    y = x**3
                    barrier.wait()
                if y.creator is not None:
                    errors.append("no_grad thread recorded a graph")
                return
            barrier.wait()
            y = x**3
            for _ in range(200):
                y = y * 1.0
            barrier.wait()
            y.backward()
            if y.creator is None or x.grad is None or float(x.grad.data) != 3.0 * (k + 1) ** 2:
                errors.append(f"thread {k}: creator={y.creator!r} grad={x.grad!r}")
        except Exception as e:  # noqa: BLE001 - reported through the assertion below
            errors.append(f"thread {k}: {e!r}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert gradcli.is_grad_enabled()


# -- custom functions ------------------------------------------------------------------------


class Line(Function):
    """PyTorch's ``LinearFunction`` example reduced to scalars: w*x + b."""

    seen_saved: list[bool] = []

    def forward(self, w: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.save_for_backward(w, x, b)
        return w * x + b

    def backward(self, gy: Variable) -> tuple[Variable, Variable, Variable]:
        w, x, b = self.saved_tensors
        Line.seen_saved.append(all(s is i for s, i in zip((w, x, b), self.inputs)))
        return gy * x, gy * w, gy


def test_custom_function_with_saved_tensors_gives_correct_gradients() -> None:
    w, x, b = Variable(3.0), Variable(5.0), Variable(7.0)
    y = Line()(w, x, b)
    assert value(y) == 22.0
    y.backward()
    assert (grad_of(w), grad_of(x), grad_of(b)) == (5.0, 3.0, 1.0)


def test_saved_tensors_are_the_input_variables() -> None:
    Line.seen_saved.clear()
    w, x, b = Variable(3.0), Variable(5.0), Variable(7.0)
    Line()(w, x, b).backward()
    assert Line.seen_saved == [True]


def test_second_order_flows_through_saved_tensors() -> None:
    w, x, b = Variable(3.0), Variable(5.0), Variable(7.0)
    y = Line()(w, x, b)
    y = y * y  # d/dw = 2*(w*x+b)*x; d2/dw dx = 2*(w*x + b) + 2*w*x
    (gw,) = grad(y, [w], create_graph=True)
    assert value(gw) == 2 * 22 * 5
    gw.backward()
    assert grad_of(x) == 2 * 22 + 2 * 3 * 5
    assert grad_of(w) == 2 * 5 * 5
    assert grad_of(b) == 2 * 5


class TwoOut(Function):
    """A custom Function with several inputs and outputs: (x*y, x+y)."""

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x * y, x + y

    def backward(self, gp: Variable, gs: Variable) -> tuple[Variable, Variable]:
        x, y = self.inputs
        return gp * y + gs, gp * x + gs


def test_custom_function_with_several_outputs_returns_a_tuple() -> None:
    x, y = Variable(2.0), Variable(3.0)
    p, s = TwoOut()(x, y)
    (p * s).backward()  # d/dx (x*y)*(x+y) = y*(x+y) + x*y
    assert (value(p), value(s)) == (6.0, 5.0)
    assert grad_of(x) == 3 * 5 + 6
    assert grad_of(y) == 2 * 5 + 6


# -- operators -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "expected_value", "expected_grad"),
    [
        (lambda x: np.float64(2) * x, [2.0, 4.0, 6.0], [2.0, 2.0, 2.0]),
        (lambda x: x * np.float64(2), [2.0, 4.0, 6.0], [2.0, 2.0, 2.0]),
        (lambda x: np.ones(3) + x, [2.0, 3.0, 4.0], [1.0, 1.0, 1.0]),
        (lambda x: x + np.ones(3), [2.0, 3.0, 4.0], [1.0, 1.0, 1.0]),
        (lambda x: 5 - x, [4.0, 3.0, 2.0], [-1.0, -1.0, -1.0]),
        (lambda x: np.full(3, 5.0) - x, [4.0, 3.0, 2.0], [-1.0, -1.0, -1.0]),
        (lambda x: x - np.float64(5), [-4.0, -3.0, -2.0], [1.0, 1.0, 1.0]),
        (lambda x: 6 / x, [6.0, 3.0, 2.0], [-6.0, -1.5, -6.0 / 9]),
        (lambda x: np.float64(6) / x, [6.0, 3.0, 2.0], [-6.0, -1.5, -6.0 / 9]),
        (lambda x: 2**x, [2.0, 4.0, 8.0], [2 * np.log(2), 4 * np.log(2), 8 * np.log(2)]),
        (lambda x: x**2, [1.0, 4.0, 9.0], [2.0, 4.0, 6.0]),
        (lambda x: x ** np.float64(2), [1.0, 4.0, 9.0], [2.0, 4.0, 6.0]),
        (lambda x: -x, [-1.0, -2.0, -3.0], [-1.0, -1.0, -1.0]),
        (lambda x: np.array([1.0, 0.0, 2.0]) @ x, 7.0, [1.0, 0.0, 2.0]),
    ],
)
def test_operator_with_numpy_values_on_either_side(make, expected_value, expected_grad) -> None:  # noqa: ANN001
    x = Variable([1.0, 2.0, 3.0])
    y = make(x)
    assert isinstance(y, Variable)
    np.testing.assert_allclose(value(y), expected_value, rtol=1e-15)
    y.backward()
    np.testing.assert_allclose(grad_of(x), expected_grad, rtol=1e-15)


def test_constants_mixed_into_arithmetic_get_no_gradient() -> None:
    x = Variable(2.0)
    y = x * 3.0
    y.backward()
    assert grad_of(x) == 3.0
    assert not y.creator.inputs[1].requires_grad


def test_variable_converts_ints_and_lists_to_float64() -> None:
    for raw in (3, 2.5, [1, 2], np.arange(3, dtype=np.int32)):
        assert Variable(raw).data.dtype == np.float64


@pytest.mark.parametrize(
    ("shape", "index", "expected"),
    [
        ((3,), 1, [0.0, 1.0, 0.0]),
        ((4,), slice(1, 3), [0.0, 1.0, 1.0, 0.0]),
        ((3,), [0, 0], [2.0, 0.0, 0.0]),
        ((3,), [2, 0, 2, 2], [1.0, 0.0, 3.0]),
        ((2, 3), (slice(None), 0), [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
        ((2, 3), (1, slice(None, None, -1)), [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]),
    ],
)
def test_indexing_scatters_gradient_back_and_repeated_indices_add(shape, index, expected) -> None:  # noqa: ANN001
    x = Variable(np.arange(float(np.prod(shape))).reshape(shape))
    y = x[index]
    np.testing.assert_array_equal(value(y), np.arange(float(np.prod(shape))).reshape(shape)[index])
    y.sum().backward()
    np.testing.assert_array_equal(grad_of(x), expected)


def test_indexing_gradient_is_differentiable_again() -> None:
    x = Variable([1.0, 2.0, 3.0])
    y = (x[[0, 0]] ** 3).sum()  # 2 * x0**3: d2/dx0^2 = 12 * x0
    (gx,) = grad(y, [x], create_graph=True)
    gx[0].backward()
    np.testing.assert_array_equal(grad_of(x), [12.0, 0.0, 0.0])


@pytest.mark.parametrize(
    ("sa", "sb"),
    [((2, 3), (3, 4)), ((2, 3), (3,)), ((3,), (3, 4)), ((3,), (3,)), ((5, 2, 3), (3, 4))],
)
def test_matmul_operator_gradients_including_1d_operands(sa, sb) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    a0, b0 = rng.normal(size=sa), rng.normal(size=sb)
    a, b = Variable(a0), Variable(b0)
    y = a @ b
    np.testing.assert_allclose(value(y), a0 @ b0, rtol=1e-14)
    w = rng.normal(size=np.shape(a0 @ b0))
    (y * w).sum().backward()
    assert a.grad.shape == sa and b.grad.shape == sb
    na, nb = numeric_grad(lambda p, q: float(((p @ q) * w).sum()), [a0, b0])
    np.testing.assert_allclose(grad_of(a), na, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad_of(b), nb, rtol=1e-6, atol=1e-8)


# -- non-differentiable points (PyTorch's conventions) ---------------------------------------


def first_grads(f, *points):  # noqa: ANN001, ANN201
    xs = [Variable(p) for p in points]
    f(*xs).sum().backward()
    return [grad_of(x) for x in xs]


@pytest.mark.parametrize(
    ("name", "f", "points", "expected"),
    [
        ("abs'(0) = 0", F.abs, (0.0,), [0.0]),
        ("relu'(0) = 0", F.relu, (0.0,), [0.0]),
        ("maximum tie splits", F.maximum, (1.5, 1.5), [0.5, 0.5]),
        ("minimum tie splits", F.minimum, (1.5, 1.5), [0.5, 0.5]),
        ("maximum no tie", F.maximum, (2.0, 1.0), [1.0, 0.0]),
        ("minimum no tie", F.minimum, (2.0, 1.0), [0.0, 1.0]),
        ("max ties share evenly", F.max, ([1.0, 3.0, 3.0],), [[0.0, 0.5, 0.5]]),
        ("min ties share evenly", F.min, ([2.0, 1.0, 1.0, 1.0],), [[0.0, 1 / 3, 1 / 3, 1 / 3]]),
        ("max all equal", F.max, ([4.0, 4.0],), [[0.5, 0.5]]),
        ("sqrt'(0) = inf", F.sqrt, (0.0,), [np.inf]),
        ("norm'(0) = 0", F.norm, ([0.0, 0.0, 0.0],), [[0.0, 0.0, 0.0]]),
        ("d/dy 0**y = 0, y = 2", F.pow, (0.0, 2.0), [0.0, 0.0]),
        ("d/dy 0**y = 0, y = 0.5", F.pow, (0.0, 0.5), [np.inf, 0.0]),
    ],
    ids=lambda p: p if isinstance(p, str) else "",
)
def test_gradient_at_non_differentiable_point_follows_pytorch(name, f, points, expected) -> None:  # noqa: ANN001
    with np.errstate(divide="ignore", invalid="ignore"):
        got = first_grads(f, *points)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_max_min_along_axis_split_ties_per_row() -> None:
    x = Variable([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    F.max(x, axis=1).sum().backward()
    np.testing.assert_array_equal(grad_of(x), [[0.0, 0.5, 0.5], [0.5, 0.5, 0.0]])
    x.cleargrad()
    F.min(x, axis=0).sum().backward()
    np.testing.assert_array_equal(grad_of(x), [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])


def test_pow_with_zero_exponent_derivative_in_y_at_zero_base() -> None:
    x, y = Variable(0.0), Variable(0.0)
    z = x**y
    assert value(z) == 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        (gy,) = grad(z, [y])
    assert value(gy) == 0.0


def test_pow_with_zero_exponent_has_zero_derivative_in_x_at_zero_base() -> None:
    # x**0 is 1 for every x, so the true derivative exists and is 0 (PyTorch masks exponent == 0);
    # the textbook rule y * x**(y-1) gives 0 * inf = NaN here.
    x = Variable([0.0, 2.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        (x ** np.zeros(2)).sum().backward()
    np.testing.assert_array_equal(grad_of(x), [0.0, 0.0])


EXTREMES = [
    # (function, x, value, d/dx of the sum)
    (F.softplus, 1000.0, 1000.0, 1.0),
    (F.softplus, -1000.0, 0.0, 0.0),
    (F.log_sigmoid, 1000.0, 0.0, 0.0),
    (F.log_sigmoid, -1000.0, -1000.0, 1.0),
    (F.sigmoid, 1000.0, 1.0, 0.0),
    (F.sigmoid, -1000.0, 0.0, 0.0),
    (F.logsumexp, [1000.0, 1000.0], 1000.0 + np.log(2.0), [0.5, 0.5]),
    (F.logsumexp, [-1000.0, -1000.0], -1000.0 + np.log(2.0), [0.5, 0.5]),
    (F.logsumexp, [1000.0, -1000.0], 1000.0, [1.0, 0.0]),
    (F.log_softmax, [1000.0, -1000.0], [0.0, -2000.0], [-1.0, 1.0]),
    (F.log_softmax, [-1000.0, -1000.0], [-np.log(2.0)] * 2, [0.0, 0.0]),
    (F.softmax, [1000.0, -1000.0], [1.0, 0.0], [0.0, 0.0]),
]


@pytest.mark.parametrize(("f", "x0", "expected_value", "expected_grad"), EXTREMES)
def test_stable_primitives_are_finite_at_plus_minus_1000(f, x0, expected_value, expected_grad) -> None:  # noqa: ANN001
    # An overflow or a NaN inside forward or backward fails the test; underflow to 0 is the point.
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        x = Variable(x0)
        y = f(x)
        y.sum().backward(create_graph=True)
        g = x.grad
        x.cleargrad()
        g.sum().backward()
    np.testing.assert_allclose(value(y), expected_value, rtol=1e-15, atol=0)
    # exp(x - logsumexp(x)) at |x| = 1000 loses the last few bits of log(2): 1e-12, not 1e-15.
    np.testing.assert_allclose(value(g), expected_grad, rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(grad_of(x))), "second derivative must stay finite"


def test_a_function_object_used_twice_while_recording_is_an_error() -> None:
    f = F.REGISTRY["square"].cls()
    x = Variable(2.0)
    f(x)
    with pytest.raises(RuntimeError, match="call a new one for each use"):
        f(x)


def test_an_option_a_function_does_not_have_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        F.REGISTRY["mul"].cls(alpha=2.0)  # no options at all
    with pytest.raises(TypeError, match="has no option 'beta'"):
        F.REGISTRY["elu"].cls(beta=2.0)
    assert F.REGISTRY["elu"].cls(alpha=2.0).params == {"alpha": 2.0}
    assert F.REGISTRY["elu"].cls().params == {"alpha": 1.0}


def test_generation_queue_takes_higher_generations_first_and_arrivals_in_order() -> None:
    from gradcli.engine import GenerationQueue

    q = GenerationQueue()
    for gen, item in [(2, "a"), (5, "b"), (2, "c"), (5, "d"), (0, "e")]:
        q.push(gen, item)
    taken = [q.pop(), q.pop()]
    q.push(3, "f")  # what a generation-5 function adds: lower generations only
    q.push(2, "g")
    while (item := q.pop()) is not None:
        taken.append(item)
    assert taken == ["b", "d", "f", "a", "c", "g", "e"]
    assert q.pop() is None


# --- table rows: checked when defined, their classes made when first used -------------------------


def test_a_rule_that_takes_what_no_rule_can_is_refused_when_its_row_is_defined() -> None:
    from gradcli.engine import primitive_maker

    with pytest.raises(ValueError, match="a rule takes 'z'; rules take gy, x, out"):
        primitive_maker("twice", np.add, [lambda gy, z: gy], ("x",))
    with pytest.raises(ValueError, match="1 inputs need 1 rules, got 2"):
        primitive_maker("twice", np.add, [None, None], ("x",))


def test_a_table_rows_class_is_made_once_when_first_read_and_serves_every_route() -> None:
    from gradcli.functions.registry import REGISTRY

    spec = REGISTRY["expm1"]
    cls = spec.cls
    assert spec.cls is cls and cls.registry_name == "expm1" and cls.input_names == ("x",)
    x = Variable(np.array([0.5, -1.0]))
    y = spec(x)
    assert type(y.creator) is cls
    np.testing.assert_array_equal(y.data, np.expm1(x.data))
    np.testing.assert_array_equal(spec(x.data), np.expm1(x.data))  # arrays in: the forward alone


@pytest.mark.slow
def test_a_plain_eval_makes_the_classes_of_the_functions_it_calls_and_no_others() -> None:
    code = textwrap.dedent(
        """
        from gradcli.cli import run
        from gradcli.functions.registry import REGISTRY
        status = run(["eval", "sin(x) * y", "--x", "2", "--y", "3"])
        rows = [(n, s) for n, s in dict.items(REGISTRY) if s._make is not None]  # given by a row
        made = sorted(n for n, s in rows if "cls" in s.__dict__)
        print(status, len(rows) > 40, made)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.splitlines()[-1] == "0 True ['sin']", proc.stdout + proc.stderr


def test_a_name_a_table_row_took_is_refused_with_gradcli_as_its_owner() -> None:
    from gradcli.functions.registry import REGISTRY, RegistryError, register

    class Again(Function):
        def forward(self, x: np.ndarray) -> np.ndarray:
            return x

    assert "expm1" in REGISTRY
    owner = r"^function 'expm1' is already registered \(by gradcli itself\)$"
    with pytest.raises(RegistryError, match=owner):
        register("expm1")(Again)


def test_an_array_of_the_seeds_class_takes_in_place_operations() -> None:
    # np.zeros_like(seed) keeps the class of the seed of ones; an in-place add on it (out=) went
    # back into the class's own ufunc hook without end ("nested too deeply").
    from gradcli.engine import seed_like

    seed = seed_like(np.ones(3))
    zeros = np.zeros_like(seed)
    zeros[1:] += seed[1:]
    zeros *= 3.0
    np.testing.assert_array_equal(zeros, [0.0, 3.0, 3.0])


def test_grad_takes_a_single_variable_as_torch_does_and_refuses_a_seed_of_another_shape() -> None:
    # A bare Variable was iterated as the sequence of its elements: getitem nodes outside the
    # graph, and gradients of zeros (or none); a seed that broadcast to its output gave another sum.
    x = Variable(np.array([1.0, 2.0, 3.0]))
    (g,) = grad((x * x).sum(), x)
    np.testing.assert_array_equal(g.data, [2.0, 4.0, 6.0])
    y = Variable(2.0)
    assert [float(g.data) for g in grad(y**2, y)] == [4.0]
    z = Variable(2.0)
    gradcli.engine.backward(z * z)
    assert z.grad is not None and float(z.grad.data) == 4.0
    np.testing.assert_array_equal(grad(x * 2.0, [x], np.ones(3))[0].data, [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match=r"grad_outputs\[0\] has shape \(3, 1\), its output \(3,\)"):
        grad(x * 2.0, [x], [np.ones((3, 1))])
    with pytest.raises(ValueError, match=r"2 seeds \(grad_outputs\) for 1 outputs"):
        grad(x * 2.0, [x], [np.ones(3), np.ones(3)])


@pytest.mark.parametrize(("data", "truth"), [(0.0, False), (2.0, True), ([3.0], True), ([[0.0]], False)])
def test_truth_of_a_variable_of_one_element_is_that_of_the_element(data: Any, truth: bool) -> None:
    assert bool(Variable(data)) is truth


@pytest.mark.parametrize("data", [[1.0, 2.0], np.zeros(0), np.zeros((2, 2))])
def test_truth_of_a_variable_of_several_or_no_elements_is_ambiguous_as_numpys(data: Any) -> None:
    with pytest.raises(ValueError, match="truth value of a Variable of .* elements is ambiguous"):
        bool(Variable(data))


def test_len_and_iteration_of_a_scalar_variable_raise_as_numpys_and_of_a_vector_give_its_rows() -> None:
    with pytest.raises(TypeError, match=r"len\(\) of a Variable of no axes"):
        len(Variable(2.0))
    with pytest.raises(TypeError, match=r"len\(\) of a Variable of no axes"):
        list(Variable(2.0))  # it was [], silently
    x = Variable([[1.0, 2.0], [3.0, 4.0]])
    assert len(x) == 2 and [r.data.tolist() for r in x] == [[1.0, 2.0], [3.0, 4.0]]


class _ReturnsVariable(Function):
    def forward(self, x: Any) -> Any:
        return Variable(x * 2)

    def backward(self, gy: Any) -> Any:
        return 2 * gy


class _ReturnsNoneToo(Function):
    def forward(self, x: Any) -> Any:
        return x * 2, None

    def backward(self, gy: Any, gz: Any) -> Any:
        return 2 * gy


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (_ReturnsVariable, "_ReturnsVariable.forward returned a Variable"),
        (_ReturnsNoneToo, "forward returned None"),
    ],
)
def test_a_forward_that_returns_a_variable_or_none_is_told_to_return_arrays(cls: type, message: str) -> None:
    with pytest.raises(TypeError, match=f"{message}: forward computes on arrays and returns arrays"):
        cls()(Variable(1.0))


@pytest.mark.parametrize("enabled", ["no", None, 0, 1.0])
def test_using_grad_takes_true_or_false_only_as_torchs_set_grad_enabled(enabled: Any) -> None:
    with pytest.raises(TypeError, match="using_grad takes True or False"):
        gradcli.using_grad(enabled)
    with gradcli.using_grad(np.False_):
        assert gradcli.is_grad_enabled() is False
    x = Variable(2.0)
    (x * x).backward(create_graph=1)  # backward's own flag is read for its truth, as before
    assert x.grad is not None and x.grad.creator is not None


@pytest.mark.parametrize("argument", [5, "x", False])
def test_no_grad_given_something_that_is_not_a_function_is_a_type_error(argument: Any) -> None:
    with pytest.raises(TypeError, match="no_grad takes no arguments, or a function to decorate"):
        no_grad(argument)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("axes", "order"),
    [
        ((), (2, 1, 0)),
        (((2, 0, 1),), (2, 0, 1)),
        (([2, 0, 1],), (2, 0, 1)),
        ((2, 0, 1), (2, 0, 1)),
        ((None,), (2, 1, 0)),
    ],
    ids=["none", "tuple", "list", "separate", "None"],
)
def test_transpose_takes_its_axes_as_numpys_does(axes: tuple[Any, ...], order: tuple[int, ...]) -> None:
    data = np.arange(24.0).reshape(2, 3, 4)
    x = Variable(data)
    y = x.transpose(*axes)
    np.testing.assert_array_equal(y.data, data.transpose(order))
    weights = np.arange(24.0).reshape(y.shape)
    (y * weights).sum().backward()
    np.testing.assert_array_equal(x.grad.data, weights.transpose(np.argsort(order)))
