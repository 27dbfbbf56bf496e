"""The array seam: every registered function, its gradients and the batched derivatives stay in
an array library that refuses to mix with NumPy (CuPy's rule, cupy#1694), played on the CPU by
``StrictArray`` and, where CuPy and a GPU are there, by CuPy itself.

Constants, seeds of backward passes, unit vectors of Hessians and perturbed rows of checks must
all be made in the inputs' library; any NumPy array that leaks in raises, any result that comes
out as NumPy fails the type check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from registry_sweep import SPECS, run_in
from strict_array import MixingError, StrictArray, strict

from gradcli import calculus
from gradcli.backend import as_array, namespace, to_numpy
from gradcli.functions import Spec
from gradcli.language import parse


def _cupy() -> Any:
    try:
        import cupy  # type: ignore[import-not-found]

        cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return None
    return cupy


CUPY = _cupy()
LIBRARIES: list[Any] = [
    pytest.param((strict, StrictArray), id="strict"),
    pytest.param(
        (CUPY and CUPY.asarray, CUPY and CUPY.ndarray),
        id="cupy",
        marks=pytest.mark.skipif(CUPY is None, reason="CuPy with a GPU is not here"),
    ),
]


def _same(got: Any, want: Any, kind: type, what: str) -> None:
    assert isinstance(got, kind), f"{what}: a {type(got).__name__}, not the inputs' {kind.__name__}"
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-12, atol=1e-14, err_msg=what)


# --- the stand-in itself ------------------------------------------------------------------------------

MIXES: list[tuple[str, Callable[[Any], Any]]] = [
    ("a NumPy array", lambda x: x * np.ones(3)),
    ("a NumPy 0-d array", lambda x: x + np.array(2.0)),
    ("a NumPy array on the left", lambda x: np.ones(3) - x),
    ("a NumPy function with a NumPy array", lambda x: np.where(x > 0, x, np.zeros(3))),
    ("a concatenation with a NumPy array", lambda x: np.concatenate([x, np.ones(1)])),
]


@pytest.mark.parametrize("what, mix", MIXES, ids=[m[0] for m in MIXES])
def test_stand_in_refuses_numpy_arrays_as_cupy_does(what: str, mix: Callable[[Any], Any]) -> None:
    with pytest.raises(MixingError):
        mix(strict([1.0, -2.0, 3.0]))


def test_stand_in_takes_numbers_and_gives_its_own_arrays_and_0d_results() -> None:
    x = strict([1.0, -2.0, 3.0])
    for y in (x * 2.0, x * np.float64(2.0), np.sin(x), x[1:], x.sum(), x[0], np.zeros_like(x)):
        assert isinstance(y, StrictArray)
    assert namespace(x) is not np


# --- every function, every rule ----------------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_function_and_its_derivatives_stay_in_the_inputs_library(spec: Spec, library: Any) -> None:
    convert, kind = library
    want = run_in(spec, lambda a: a)
    got = run_in(spec, convert)
    for name, gots, wants in zip(("output", "gradient", "Hessian-vector product"), got, want):
        for k, (g, w) in enumerate(zip(gots, wants)):
            _same(g, w, kind, f"{spec.name}: {name} {k}")


EXPRESSIONS = [
    "sum(sin(x) * x**2) + s*sum(x)",  # a NumPy scalar input beside an array
    "sum(tanh(w @ [1.0, 2.0, 3.0]) * x)",  # an array constant written in the expression
    "norm(x)**s + x[1]*x[2:5][0] + sum(x[[0, 0, 3]])",  # slices and a repeated index
    "logsumexp(w[:, 1] * x) + det(w[:3, :] @ transpose(w[:3, :]) + 1)",
]


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("text", EXPRESSIONS)
def test_hessian_jacobian_derivatives_and_check_stay_in_the_inputs_library(text: str, library: Any) -> None:
    convert, kind = library
    rng = np.random.default_rng(5)
    program = parse(text)
    plain = {"x": rng.uniform(0.5, 2.0, 6), "w": rng.uniform(0.5, 2.0, (6, 3)), "s": 1.3}
    plain = {n: plain[n] for n in program.inputs}
    given = {n: convert(v) if np.ndim(v) else v for n, v in plain.items()}
    h, h0 = calculus.hessian(program, given), calculus.hessian(program, plain)
    for a in h0.hessian:
        for b in h0.hessian[a]:
            _same(h.hessian[a][b], h0.hessian[a][b], kind, f"hessian {a} {b}")
    j, j0 = calculus.jacobian(program, given), calculus.jacobian(program, plain)
    for n in j0.jacobian:
        _same(j.jacobian[n], j0.jacobian[n], kind, f"jacobian {n}")
    d, d0 = calculus.derivatives(program, given, 3), calculus.derivatives(program, plain, 3)
    for n in d0:
        for k, (got, want) in enumerate(zip(d[n], d0[n])):
            _same(got, want, kind, f"derivative {k + 1} of {n}")
    report = calculus.check(program, given, order=2)
    assert report.ok and len(report.rows) == len(calculus.check(program, plain, order=2).rows)


# --- inputs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.float32, np.bool_])
def test_foreign_integer_float32_and_boolean_arrays_become_float64_in_their_library(dtype: Any) -> None:
    x = as_array(np.arange(3).astype(dtype).view(StrictArray))
    assert isinstance(x, StrictArray) and x.dtype == np.float64


class Tagged(np.ndarray):
    """A NumPy subclass that keeps NumPy as its library (as np.matrix and masked arrays do)."""


def test_a_numpy_subclass_without_a_library_of_its_own_becomes_a_plain_array() -> None:
    x = as_array(np.arange(3).view(Tagged))
    assert type(x) is np.ndarray and x.dtype == np.float64


def test_foreign_arrays_of_other_kinds_are_refused_as_numpy_ones_are() -> None:
    with pytest.raises(TypeError, match="real numbers"):
        as_array(np.array(["a"]).view(StrictArray))
