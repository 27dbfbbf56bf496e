"""The batch axis (gradcli.batching): for every registered function, a batched call gives, row
by row, what the function gives on that row alone, values and gradients, whichever inputs carry
the batch axis. And a whole Program run batched agrees with runs line by line."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

from gradcli import batching
from gradcli.engine import Variable, grad
from gradcli.functions import REGISTRY, Spec
from gradcli.language import parse

ROWS = 3
SPECS = sorted(REGISTRY.values(), key=lambda s: s.name)


def _rng(*salt: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("/".join(map(str, salt)).encode()))


def _shapes(spec: Spec) -> tuple[tuple[int, ...], ...]:
    return spec.sample_shapes or ((2, 3),) * spec.arity[0]


def _as_list(ys: object) -> list[Variable]:
    return list(ys) if isinstance(ys, tuple) else [ys]  # type: ignore[list-item]


def _patterns(n: int) -> list[tuple[bool, ...]]:
    """All inputs batched, then each with one input left without a batch axis."""
    every = [(True,) * n]
    return every + [tuple(k != i for k in range(n)) for i in range(n)] if n > 1 else every


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_batched_function_gives_each_row_what_the_row_gives_alone(spec: Spec) -> None:
    shapes = _shapes(spec)
    lo, hi = spec.sample_domain
    for flags in _patterns(len(shapes)):
        rng = _rng(spec.name, flags)
        arrays = [rng.uniform(lo, hi, size=((ROWS,) if f else ()) + s) for s, f in zip(shapes, flags)]
        xs = [Variable(a) for a in arrays]
        outs = _as_list(batching.apply(spec, xs, flags, spec.sample_params, ROWS))
        weights = [rng.uniform(0.5, 1.5, size=o.shape) for o in outs]
        total = sum(((o * w).sum() for o, w in zip(outs, weights)), Variable(0.0))
        grads = grad(total, xs)
        row_grads = [np.zeros_like(a) for a in arrays]
        for r in range(ROWS):
            row = [Variable(a[r] if f else a) for a, f in zip(arrays, flags)]
            ys = _as_list(spec(*row, **spec.sample_params))
            assert len(ys) == len(outs)
            for k, (o, y) in enumerate(zip(outs, ys)):
                assert o.shape == (ROWS, *y.shape), f"{spec.name} {flags}: output {k} has shape {o.shape}"
                np.testing.assert_allclose(
                    o.data[r], y.data, rtol=1e-12, atol=1e-12, err_msg=f"{spec.name} {flags}"
                )
            row_total = sum(((y * w[r]).sum() for y, w in zip(ys, weights)), Variable(0.0))
            for k, g in enumerate(grad(row_total, row)):
                if flags[k]:
                    row_grads[k][r] = g.data
                else:
                    row_grads[k] = row_grads[k] + g.data
        for k, (g, want) in enumerate(zip(grads, row_grads)):
            np.testing.assert_allclose(
                g.data, want, rtol=1e-10, atol=1e-12, err_msg=f"{spec.name} {flags} d/d{k}"
            )


def test_every_function_that_is_not_elementwise_has_a_batching_rule() -> None:
    missing = [s.name for s in SPECS if not s.elementwise and s.name not in batching.RULES]
    assert missing == []


PROGRAMS = [
    ("x*y + sin(x)", {"x": (), "y": ()}),
    ("sum(x*x) + max(x, axis=0)", {"x": (3,)}),
    ("a = x @ A; b = softmax(a); sum(b * log(b + 2))", {"x": (2,), "A": (2, 3)}),
    ("u, v = split(x, 2); dot(u, v) + sum(transpose(A)[1:, 0])", {"x": (4,), "A": (2, 3)}),
    ("grad(x**3 * y, x) + grad(grad(sin(x*y), y), x)", {"x": (), "y": ()}),
    ("s, c = sincos(x); sum(linear(X, W, b)) * s + c", {"x": (), "X": (2, 3), "W": (3, 2), "b": (2,)}),
    ("y = 2; x*y, sum(x*[1, 2])", {"x": ()}),
    ("sum(cumsum(x)) + sum(cumprod(x, axis=0)) + sum(repeat(x, 2)) + sum(flip(x))", {"x": (2, 3)}),
    ("sum(squeeze(x) * roll(ravel(x), 1)) + sum(tile(x, [2, 1, 1]))", {"x": (1, 3)}),
    (
        "sum(einsum('ij,j', A, v)) + sum(outer(v, v)) + inner(v, v) + sum(solve(A @ transpose(A) + 3, v))",
        {"A": (3, 3), "v": (3,)},
    ),
    (
        "trace(A) + sum(swapaxes(B, 0, 1) * moveaxis(B, 0, 1)) + sum(cross(u, A))",
        {"A": (3, 3), "B": (2, 2, 4), "u": (3,)},
    ),
    ("sum(x @ A) + sum(B @ y) + x @ y + sum(B @ A)", {"x": (3,), "A": (3, 2), "B": (2, 3), "y": (3,)}),
]


@pytest.mark.parametrize("text, shapes", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_batched_program_agrees_with_runs_line_by_line(text: str, shapes: dict[str, tuple[int, ...]]) -> None:
    program = parse(text)
    rng = _rng(text)
    names = list(shapes)
    subsets = itertools.combinations(names, len(names) - 1) if len(names) > 1 else []
    for batched in [names, *subsets]:
        values = {n: rng.normal(size=((ROWS,) if n in batched else ()) + shapes[n]) for n in names}
        leaves = {n: Variable(v, name=n) for n, v in values.items()}
        outs = batching.run(program, leaves, list(batched))
        for k, out in enumerate(outs):
            grads = grad(out, [leaves[n] for n in names])
            summed = {n: np.zeros_like(values[n]) for n in names}
            for r in range(ROWS):
                row = {n: Variable(v[r] if n in batched else v) for n, v in values.items()}
                y = program.run_variables(row)[k]
                np.testing.assert_allclose(out.data[r], y.data, rtol=1e-12, err_msg=text)
                for n, g in zip(names, grad(y, [row[m] for m in names])):
                    if n in batched:
                        summed[n][r] = g.data
                    else:
                        summed[n] = summed[n] + g.data
            for n, g in zip(names, grads):
                np.testing.assert_allclose(
                    g.data, summed[n], rtol=1e-10, atol=1e-12, err_msg=f"{text} d/d{n}"
                )


def test_batched_matmul_of_vectors_of_different_lengths_fails_as_unbatched() -> None:
    x, y = Variable(np.ones((ROWS, 1))), Variable(np.ones(3))
    with pytest.raises(ValueError):
        REGISTRY["matmul"](Variable(np.ones(1)), y)
    with pytest.raises(ValueError):
        batching.apply(REGISTRY["matmul"], [x, y], [True, False], {}, ROWS)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_a_batched_call_on_arrays_gives_the_numbers_of_one_on_variables(spec: Spec) -> None:
    """Arrays in, arrays out (a Hessian's rows, which nothing differentiates): the same rule,
    the same numbers, bit for bit, as on Variables."""
    shapes = _shapes(spec)
    lo, hi = spec.sample_domain
    for flags in _patterns(len(shapes)):
        rng = _rng(spec.name, flags, "arrays")
        arrays = [rng.uniform(lo, hi, size=((ROWS,) if f else ()) + s) for s, f in zip(shapes, flags)]
        xs = [Variable(a) for a in arrays]
        on_variables = _as_list(batching.apply(spec, xs, flags, spec.sample_params, ROWS))
        on_arrays = batching.apply(spec, arrays, flags, spec.sample_params, ROWS)
        on_arrays = list(on_arrays) if isinstance(on_arrays, tuple) else [on_arrays]
        assert len(on_arrays) == len(on_variables)
        for y, z in zip(on_variables, on_arrays):
            assert not isinstance(z, Variable), f"{spec.name} {flags}: a Variable from arrays"
            np.testing.assert_array_equal(z, y.data, err_msg=f"{spec.name} {flags}")
            assert (np.shape(z), np.result_type(z)) == (y.shape, y.data.dtype), f"{spec.name} {flags}"


@pytest.mark.parametrize("text, shapes", [p for p in PROGRAMS if "grad(" not in p[0]], ids=lambda p: str(p))
def test_a_batched_program_on_arrays_gives_the_numbers_of_a_run_on_variables(
    text: str, shapes: dict[str, tuple[int, ...]]
) -> None:
    program = parse(text)
    rng = _rng(text, "arrays")
    names = list(shapes)
    values = {n: rng.normal(size=(ROWS, *shapes[n])) for n in names}
    batched = names[:1]  # the others shared by every row
    values.update({n: values[n][0] for n in names[1:]})
    want = batching.run(program, {n: Variable(v, name=n) for n, v in values.items()}, batched)
    got = batching.run(program, values, batched)
    for y, z in zip(want, got, strict=True):
        assert type(z) is type(y.data), text  # (float64 arrays, a number as a NumPy scalar)
        assert z.dtype == np.float64
        np.testing.assert_array_equal(z, y.data, err_msg=text)
