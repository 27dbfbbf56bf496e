"""A first-order pass over big arrays hands the buffers it lets go of to the results of the
elementwise rules still to run (:class:`gradcli.engine.Spare`): the same ufuncs writing into a
buffer of their own instead of a new one. What a user depends on: the numbers are the ones the
pass gives without it, bit for bit, for every elementwise function of the registry and through
the tape as through the graph; and no gradient shares memory with an input, an output, another
gradient or a value the graph still holds (a buffer thought free that was not would be silent
wrong numbers). How many new buffers it saves is measured in bench/run.py (row 5)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz import point, smooth_expression
from test_registry_derivatives import ELEMENTWISE, rng_for, sample_inputs, weighted_sum

from gradcli import Variable, calculus
from gradcli import functions as F  # noqa: N812 - as torch.nn.functional is F
from gradcli.engine import Spare, grad
from gradcli.language import parse

ROWS = 40_000  # with a few elements each: every value is past the size a pass lets go of


def _big(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The sample inputs, each repeated along a new leading axis of ROWS (broadcasting as before:
    a number becomes a column) and perturbed, so that every value is a big array."""
    ndim = max(a.ndim for a in arrays)
    out = []
    for k, a in enumerate(arrays):
        shape = (ROWS,) + (1,) * (ndim - a.ndim) + a.shape
        jitter = 1.0 + 1e-3 * np.random.default_rng(k).uniform(-1.0, 1.0, size=shape)
        out.append(np.broadcast_to(a.reshape(shape[1:]), shape) * jitter)
    return out


def _first_order(spec: Any, arrays: list[np.ndarray]) -> tuple[list[np.ndarray], list[Variable], Any]:
    """The gradients of a weighted sum of ``spec``'s outputs, in a chain that lets go of values
    before its rule runs (the products with the weights, which no rule of ``+ 0.5`` reads), and
    what they must not share memory with."""
    xs = [Variable(a.copy()) for a in arrays]
    ys = spec(*xs, **spec.sample_params)
    ys = list(ys) if isinstance(ys, tuple) else [ys]
    rng = rng_for(spec, "weights")
    weights = [rng.uniform(0.5, 1.5, size=y.shape) for y in ys]
    grads = grad(weighted_sum([y * w + 0.5 for y, w in zip(ys, weights)], [1.0] * len(ys)), xs)
    return [g.data for g in grads], xs, ys


@pytest.mark.parametrize("spec", ELEMENTWISE, ids=lambda s: s.name)
def test_every_elementwise_rule_gives_the_same_bits_with_spare_buffers(
    spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrays = _big(sample_inputs(spec))
    with_spare, xs, ys = _first_order(spec, arrays)
    monkeypatch.setattr(Spare, "KEEP", 0)  # nothing kept: every result a new buffer, as before
    without, _, _ = _first_order(spec, arrays)
    for k, (a, b) in enumerate(zip(with_spare, without, strict=True)):
        assert a.dtype == np.float64 and type(a) is np.ndarray, spec.name
        assert np.array_equal(a, b, equal_nan=True), f"{spec.name}: gradient {k} differs"
    held = [x.data for x in xs] + [y.data for y in ys]
    for k, g in enumerate(with_spare):
        others = held + [h for j, h in enumerate(with_spare) if j != k]
        assert not any(np.shares_memory(g, o) for o in others), f"{spec.name}: gradient {k} shares memory"


@settings(max_examples=40, deadline=None)
@given(exprs=st.lists(smooth_expression(), min_size=1, max_size=3), at=point)
def test_the_tape_and_the_graph_on_big_arrays_give_the_bits_they_give_without_spare_buffers(
    exprs: list[str], at: dict[str, float]
) -> None:
    """Random compositions of the registry's smooth functions on arrays of 40,000 points: the
    tape (the CLI's first order) and the graph (the Python API), with and without the pass
    handing its spare buffers on, all four the same bits; the inputs as they were."""
    expr = "sum(" + " + ".join(f"({e})*{k + 1}.1" for k, e in enumerate(exprs)) + " + x*y*z)"
    program = parse(expr)
    rng = np.random.default_rng(len(expr))
    values = {n: at[n] + rng.uniform(-0.5, 0.5, ROWS) for n in program.inputs}
    before = {n: v.copy() for n, v in values.items()}
    runs = []
    for keep in (Spare.KEEP, 0):
        saved, Spare.KEEP = Spare.KEEP, keep
        try:
            runs.append([calculus.evaluate(program, values).grad[0], calculus.grad(program, values)])
        finally:
            Spare.KEEP = saved
    for n in program.inputs:
        assert np.array_equal(values[n], before[n]), f"input {n} was written into"
        first = runs[0][0][n]
        for run in runs:
            for got in run:
                assert np.array_equal(got[n], first, equal_nan=True), (expr, n)
        assert not np.shares_memory(runs[0][0][n], values[n])


def test_a_rule_that_hands_an_argument_back_hands_back_the_argument_itself() -> None:
    """A product with the seed is the other factor itself (no pass, no buffer), and it stays so
    when that factor was lent to the rule as a view (a gradient that is a view is never added
    into in place)."""
    rng = np.random.default_rng(3)
    x, y = Variable(rng.uniform(0.5, 2.0, ROWS)), Variable(rng.uniform(0.5, 2.0, ROWS))
    s = F.sin(x)
    z = s * F.exp(-(y**2)) + F.log1p(x**2)
    gs, gz = grad([z], [s, z])
    assert gs.data.base is None and gs.data.flags.writeable
    assert not np.shares_memory(gs.data, s.data)  # handed to the caller as its own copy
    assert np.array_equal(gs.data, np.exp(-(y.data**2)))
    assert np.all(gz.data == 1.0)
