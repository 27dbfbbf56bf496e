"""Property: for random compositions of registry functions, backward agrees with central
differences.

Hypothesis draws a small program (SSA-style: each step applies a unary registry function, ``add``
or ``mul`` to earlier slots), built and run by a loop. Before a unary function its argument is
squashed into the function's ``sample_domain`` (``c + r * z / sqrt(1 + z**2)``, itself made of
engine operators), so that compositions stay where every function is smooth and finite however
deep they go. Input values come from a seeded NumPy generator rather than from Hypothesis, which
would otherwise home in on the kinks (norm at 0) where central differences mean nothing.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numerics import numeric_grad

from gradcli import Variable, no_grad
from gradcli.engine import grad
from gradcli.functions import REGISTRY, Spec

SHAPE = (3,)


def composable(spec: Spec) -> bool:
    """One input, one output, smooth, callable without parameters, shape kept or reduced to ()."""
    if spec.arity != (1, 1) or spec.n_outputs != 1 or not spec.smooth:
        return False
    lo, hi = spec.sample_domain
    try:
        with no_grad(), np.errstate(all="raise"):
            y = spec(Variable(np.linspace(lo, hi, 5)[1:4]))
    except Exception:  # noqa: BLE001 - a function that needs parameters is simply not used here
        return False
    return isinstance(y, Variable) and y.shape in {SHAPE, ()}


UNARY = sorted(name for name, spec in REGISTRY.items() if composable(spec))
BINARY = ["add", "mul"]

Step = tuple[str, int, int]

steps = st.lists(
    st.tuples(st.sampled_from(UNARY + BINARY), st.integers(0, 63), st.integers(0, 63)),
    min_size=1,
    max_size=6,
)


def squash_into(z: Variable, domain: tuple[float, float]) -> Variable:
    lo, hi = domain
    centre, radius = (lo + hi) / 2.0, 0.9 * (hi - lo) / 2.0
    return centre + radius * z / (1.0 + z * z) ** 0.5


def run(program: list[Step], x: Variable, y: Variable) -> Variable:
    slots = [x, y]
    for name, i, j in program:
        a, b = slots[i % len(slots)], slots[j % len(slots)]
        spec = REGISTRY[name]
        if name in BINARY:
            slots.append(spec(a, b))
        else:
            slots.append(spec(squash_into(a, spec.sample_domain)))
    return slots[-1]


def test_there_are_enough_composable_functions() -> None:
    assert {"sin", "exp", "log", "tanh", "sqrt", "softplus"} <= set(UNARY)


@settings(max_examples=60, deadline=None)
@given(program=steps, seed=st.integers(0, 2**32 - 1))
def test_composition_gradient_matches_central_differences(program: list[Step], seed: int) -> None:
    rng = np.random.default_rng(seed)
    x0, y0 = rng.uniform(-2.0, 2.0, SHAPE), rng.uniform(-2.0, 2.0, SHAPE)
    w = rng.uniform(0.5, 1.5, SHAPE)

    x, y = Variable(x0), Variable(y0)
    out = (run(program, x, y) * w).sum()
    got = grad(out, [x, y])

    def f(a: np.ndarray, b: np.ndarray) -> float:
        with no_grad():
            return float((run(program, Variable(a), Variable(b)) * w).sum().data)

    want = numeric_grad(f, [x0, y0])
    # Products of exp-like factors can reach 1e4 or more, so the tolerance scales with the gradient.
    scale = max(1.0, *(float(np.abs(n).max()) for n in want))
    for g, n in zip(got, want):
        np.testing.assert_allclose(g.data, n, rtol=1e-5, atol=1e-7 * scale)
