"""The reductions: values against references written here (NumPy's definitions, spelled out),
every axis and keepdims with derivatives against central differences, products and running
products with zeros (first, second and third derivatives), the norm's ords, and the gradient
conventions at kinks and ties written into the docs."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from derivative_checks import assert_derivatives, derivative_tensor

from gradcli import Variable
from gradcli.engine import grad
from gradcli.functions import REGISTRY

RNG = np.random.default_rng(20260101)
X = RNG.uniform(-2.0, 2.0, (2, 3, 4))  # no zeros, no ties
M = RNG.uniform(-2.0, 2.0, (3, 4))
V = np.array([0.5, -1.5, 2.0, -0.25])


def _var(x: np.ndarray, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> np.ndarray:
    n = x.size / np.size(np.sum(x, axis=axis))
    mean = np.sum(x, axis=axis, keepdims=True) / n
    return np.sum((x - mean) ** 2, axis=axis, keepdims=keepdims) / (n - ddof)


def _running(op: Callable[[float, float], float], x: np.ndarray, axis: int | None) -> np.ndarray:
    if axis is None:
        return np.array(list(itertools.accumulate(x.reshape(-1), op)))
    moved = np.moveaxis(x, axis, -1)
    out = np.array([list(itertools.accumulate(row, op)) for row in moved.reshape(-1, moved.shape[-1])])
    return np.moveaxis(out.reshape(moved.shape), -1, axis)


def _singular_values(a: np.ndarray) -> np.ndarray:
    # Square roots of the eigenvalues of A^T A (not numpy.linalg.norm, which the code calls).
    return np.sqrt(np.clip(np.linalg.eigvalsh(a.T @ a), 0.0, None))[::-1][: min(a.shape)]


Case = tuple[tuple[np.ndarray, ...], dict[str, Any], Callable[..., Any]]

#: name -> cases (inputs, options, reference). Every function of the group has an entry.
REFERENCES: dict[str, list[Case]] = {
    "sum": [
        (
            (X,),
            {"axis": (0, 2)},
            lambda x: np.array([sum(x[i, j, k] for i in range(2) for k in range(4)) for j in range(3)]),
        )
    ],
    "mean": [((X,), {"axis": 1}, lambda x: (x[:, 0] + x[:, 1] + x[:, 2]) / 3)],
    "max": [((M,), {"axis": 0}, lambda x: np.array([max(x[:, j]) for j in range(4)]))],
    "min": [((M,), {}, lambda x: min(x.reshape(-1)))],
    "prod": [
        ((M,), {"axis": 1}, lambda x: np.array([math.prod(r) for r in x])),
        ((np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.5]]),), {}, lambda x: 0.0),
    ],
    "var": [((X,), {"axis": -1, "ddof": 1}, lambda x: _var(x, -1, 1)), ((V,), {}, lambda x: _var(x))],
    "std": [((X,), {"axis": (0, 1), "ddof": 1}, lambda x: np.sqrt(_var(x, (0, 1), 1)))],
    "cumsum": [
        ((M,), {"axis": 1}, lambda x: _running(float.__add__, x, 1)),
        ((M,), {}, lambda x: _running(float.__add__, x, None)),
    ],
    "cumprod": [((M,), {"axis": 0}, lambda x: _running(float.__mul__, x, 0))],
    "logsumexp": [
        ((M,), {"axis": 1}, lambda x: np.log(np.exp(x).sum(axis=1))),
        ((np.array([1000.0, 1000.0]),), {}, lambda x: 1000.0 + math.log(2.0)),
    ],
    "softmax": [((M,), {}, lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True))],
    "log_softmax": [((M,), {"axis": 0}, lambda x: x - np.log(np.exp(x).sum(axis=0, keepdims=True)))],
    "norm": [
        ((V,), {}, lambda x: math.sqrt(sum(v * v for v in x))),
        ((V,), {"ord": 1}, lambda x: sum(abs(v) for v in x)),
        ((V,), {"ord": 2}, lambda x: math.sqrt(sum(v * v for v in x))),
        ((V,), {"ord": math.inf}, lambda x: max(abs(v) for v in x)),
        ((V,), {"ord": -math.inf}, lambda x: min(abs(v) for v in x)),
        ((V,), {"ord": 3}, lambda x: sum(abs(v) ** 3 for v in x) ** (1 / 3)),
        ((M,), {"ord": "fro"}, lambda x: math.sqrt((x * x).sum())),
        ((M,), {"ord": "nuc"}, lambda x: _singular_values(x).sum()),
        ((M,), {"ord": 1}, lambda x: max(abs(x).sum(axis=0))),
        ((M,), {"ord": -1}, lambda x: min(abs(x).sum(axis=0))),
        ((M,), {"ord": 2}, lambda x: _singular_values(x)[0]),
        ((M.T,), {"ord": -2}, lambda x: _singular_values(x)[-1]),
        ((M,), {"ord": math.inf}, lambda x: max(abs(x).sum(axis=1))),
        ((M,), {"ord": -math.inf}, lambda x: min(abs(x).sum(axis=1))),
        ((X,), {"axis": 1}, lambda x: np.sqrt((x * x).sum(axis=1))),
        ((X,), {"ord": "nuc", "axis": (2, 1)}, lambda x: np.array([_singular_values(m).sum() for m in x])),
        (
            (X,),
            {"ord": 1, "axis": (0, 2), "keepdims": True},
            lambda x: abs(x).sum(axis=0).max(axis=1).reshape(1, 3, 1),
        ),
    ],
}


def test_every_reduction_has_a_value_reference() -> None:
    group = {name for name, spec in REGISTRY.items() if spec.group == "reductions"}
    assert group == set(REFERENCES)


@pytest.mark.parametrize(
    ("name", "case"), [(n, c) for n, cases in REFERENCES.items() for c in cases], ids=lambda v: str(v)[:40]
)
def test_reduction_values_match_the_reference(name: str, case: Case) -> None:
    arrays, params, reference = case
    want = np.asarray(reference(*arrays), dtype=np.float64)
    on_arrays = REGISTRY[name](*arrays, **params)
    on_variables = REGISTRY[name](*(Variable(a) for a in arrays), **params).data
    assert on_arrays.shape == want.shape
    np.testing.assert_allclose(on_arrays, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(on_variables, on_arrays)


def test_reductions_keep_their_place_in_the_groups_listing() -> None:
    assert len([s for s in REGISTRY.values() if s.group == "reductions"]) <= 20


# --- every axis, negative axes, tuples, keepdims ------------------------------------------------

AXES = [None, 0, 1, 2, -1, -3, (0, 2), (-1, 0), (0, 1, 2), ()]
NUMPY_REDUCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "sum": np.sum,
    "mean": np.mean,
    "max": np.max,
    "min": np.min,
    "prod": np.prod,
    "var": lambda x, axis, keepdims: np.var(x, axis=axis, keepdims=keepdims),
    "std": lambda x, axis, keepdims: np.std(x, axis=axis, keepdims=keepdims),
    "logsumexp": lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
    "norm": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
}
AXIS_CASES = [
    (name, axis, keepdims)
    for name in NUMPY_REDUCTIONS
    for axis in AXES
    for keepdims in (False, True)
    if not (axis == () and name in ("max", "min", "std", "var"))  # nothing reduced: no derivative of interest
]


@pytest.mark.parametrize(("name", "axis", "keepdims"), AXIS_CASES, ids=str)
def test_reduction_along_axes_matches_numpy_and_central_differences(
    name: str, axis: Any, keepdims: bool
) -> None:
    got = REGISTRY[name](X, axis=axis, keepdims=keepdims)
    want = NUMPY_REDUCTIONS[name](X, axis=axis, keepdims=keepdims)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert_derivatives(name, [X], axis=axis, keepdims=keepdims)


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("ddof", [0, 1, 2])
def test_var_and_std_take_ddof_as_numpy(name: str, ddof: int) -> None:
    want = getattr(np, name)(X, axis=2, ddof=ddof, keepdims=True)
    np.testing.assert_allclose(REGISTRY[name](X, axis=2, ddof=ddof, keepdims=True), want, rtol=1e-12)
    assert_derivatives(name, [X], axis=2, ddof=ddof, keepdims=True)


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1])
def test_running_sums_and_products_along_each_axis(name: str, axis: Any) -> None:
    np.testing.assert_allclose(REGISTRY[name](X, axis=axis), getattr(np, name)(X, axis=axis), rtol=1e-12)
    assert_derivatives(name, [X], axis=axis)


@pytest.mark.parametrize("name", ["sum", "prod", "norm", "mean"])
def test_a_bad_axis_is_a_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match="out of bounds"):
        REGISTRY[name](X, axis=3)


# --- products with zeros ------------------------------------------------------------------------

ZEROS = {
    "one zero": np.array([2.0, 0.0, 3.0, -1.5]),
    "two zeros": np.array([0.0, 2.0, 0.0, -1.5]),
    "three zeros": np.array([0.0, 0.0, 0.0, 4.0]),
    "all zeros": np.zeros(4),
}


def _prod_derivatives(x: np.ndarray, order: int) -> np.ndarray:
    """d^order prod(x) / dx_i dx_j ...: the product of the elements not differentiated, where
    the indices are distinct, and 0 where one repeats (prod is linear in each element)."""
    n = x.size
    out = np.zeros((n,) * order)
    for idx in itertools.product(range(n), repeat=order):
        if len(set(idx)) == order:
            out[idx] = math.prod(x[k] for k in range(n) if k not in idx)
    return out


@pytest.mark.parametrize("case", ZEROS, ids=str)
@pytest.mark.parametrize("order", [1, 2, 3])
def test_prod_derivatives_with_zeros_are_the_products_of_the_other_elements(case: str, order: int) -> None:
    x = ZEROS[case]
    np.testing.assert_array_equal(derivative_tensor("prod", x, order), _prod_derivatives(x, order))


@pytest.mark.parametrize("case", ZEROS, ids=str)
@pytest.mark.parametrize("order", [1, 2, 3])
def test_cumprod_derivatives_with_zeros_are_those_of_each_prefix(case: str, order: int) -> None:
    x = ZEROS[case]
    want = sum(
        np.pad(_prod_derivatives(x[: i + 1], order), [(0, x.size - i - 1)] * order) for i in range(x.size)
    )
    np.testing.assert_allclose(derivative_tensor("cumprod", x, order), want, rtol=1e-15, atol=0)


WITH_ZEROS = np.array([[[1.5, 0.0, -2.0, 0.5], [0.0, 0.0, 3.0, 1.0], [2.0, -1.0, 0.5, 1.5]]] * 2) * [
    [[1.0]],
    [[0.5]],
]


@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, (0, 2), (1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_prod_with_zeros_along_axes_matches_central_differences(axis: Any, keepdims: bool) -> None:
    np.testing.assert_array_equal(
        REGISTRY["prod"](WITH_ZEROS, axis=axis, keepdims=keepdims),
        np.prod(WITH_ZEROS, axis=axis, keepdims=keepdims),
    )
    assert_derivatives("prod", [WITH_ZEROS], axis=axis, keepdims=keepdims)


@pytest.mark.parametrize("axis", [None, 0, 2])
def test_cumprod_with_zeros_matches_central_differences(axis: Any) -> None:
    assert_derivatives("cumprod", [WITH_ZEROS], axis=axis)


def test_prod_of_a_matrix_with_one_zero_gives_the_cofactor_like_gradient() -> None:
    x = Variable(np.array([[2.0, 0.0], [3.0, 4.0]]))
    REGISTRY["prod"](x).backward()
    np.testing.assert_array_equal(x.grad.data, [[0.0, 24.0], [0.0, 0.0]])


# --- norm: ords and conventions --------------------------------------------------------------------

VECTOR_ORDS = [None, 1, 2, math.inf, -math.inf, 3, 1.5]
MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf]


@pytest.mark.parametrize("ord", VECTOR_ORDS, ids=str)
@pytest.mark.parametrize("axis", [None, 1, -2])
def test_vector_norms_along_an_axis_match_numpy_and_central_differences(ord: Any, axis: Any) -> None:
    x = X[0] if axis is None else X
    x = x.reshape(-1) if axis is None else x
    np.testing.assert_allclose(
        REGISTRY["norm"](x, ord=ord, axis=axis), np.linalg.norm(x, ord, axis), rtol=1e-12
    )
    assert_derivatives("norm", [x], ord=ord, axis=axis)


@pytest.mark.parametrize("ord", MATRIX_ORDS, ids=str)
@pytest.mark.parametrize(
    ("shape", "axis"), [((3, 4), None), ((4, 3), None), ((2, 3, 4), (1, 2)), ((2, 3, 4), (-1, 0))], ids=str
)
@pytest.mark.parametrize("keepdims", [False, True])
def test_matrix_norms_match_numpy_and_central_differences(
    ord: Any, shape: tuple[int, ...], axis: Any, keepdims: bool
) -> None:
    x = np.random.default_rng(len(shape) + shape[0]).uniform(-2.0, 2.0, shape)
    np.testing.assert_allclose(
        REGISTRY["norm"](x, ord=ord, axis=axis, keepdims=keepdims),
        np.linalg.norm(x, ord, axis, keepdims),
        rtol=1e-12,
    )
    assert_derivatives("norm", [x], ord=ord, axis=axis, keepdims=keepdims)


def _grad(name: str, x: np.ndarray, **params: Any) -> np.ndarray:
    v = Variable(x)
    (g,) = grad(REGISTRY[name](v, **params).sum(), [v])
    return g.data


@pytest.mark.parametrize("ord", [None, 1, 2, math.inf, -math.inf, 3, "fro", "nuc"], ids=str)
def test_norm_gradient_at_zero_is_zero(ord: Any) -> None:
    x = np.zeros((2, 2)) if isinstance(ord, str) else np.zeros(3)
    np.testing.assert_array_equal(_grad("norm", x, ord=ord), np.zeros_like(x))


@pytest.mark.parametrize(
    ("ord", "x", "want"),
    [
        (math.inf, [3.0, -3.0, 1.0], [0.5, -0.5, 0.0]),
        (-math.inf, [1.0, -1.0, 2.0, 0.5], [0.0, 0.0, 0.0, 1.0]),
        (-math.inf, [1.0, -1.0, 2.0], [0.5, -0.5, 0.0]),
        (1, [2.0, 0.0, -1.0], [1.0, 0.0, -1.0]),
    ],
)
def test_vector_norm_ties_split_the_gradient_evenly_and_zero_elements_get_none(
    ord: Any, x: list[float], want: list[float]
) -> None:
    np.testing.assert_array_equal(_grad("norm", np.array(x), ord=ord), want)


def test_matrix_norm_ties_split_between_columns() -> None:
    x = np.array([[1.0, -2.0], [2.0, 1.0]])  # both columns sum to 3
    np.testing.assert_array_equal(_grad("norm", x, ord=1), [[0.5, -0.5], [0.5, 0.5]])


def test_nuclear_norm_of_a_rank_deficient_matrix_takes_the_nonzero_singular_values() -> None:
    x = np.array([[3.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(_grad("norm", x, ord="nuc"), [[1.0, 0.0], [0.0, 0.0]], atol=1e-15)


def test_norm_takes_numpys_ord_options_and_refuses_the_others() -> None:
    # NumPy's words were "Invalid norm order for matrices." with no list of the orders it takes.
    with pytest.raises(ValueError, match=r"^ord='fro' is not an order of a vector norm: take a number"):
        REGISTRY["norm"](V, ord="fro")  # 'fro' is for matrices
    with pytest.raises(ValueError, match=r"^ord=1 of an array of 3 axes needs axis: one axis"):
        REGISTRY["norm"](X, ord=1)  # an ord needs one or two axes
    matrix = Variable(np.array([[1.0, 2.0], [3.0, 4.0]]))
    for ord in (3, 1.5, 0, "abc"):
        with pytest.raises(ValueError, match=r"is not an order of a matrix norm: take 'fro', 'nuc', 1, -1"):
            REGISTRY["norm"](matrix, ord=ord)
    for ord in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):  # each of NumPy's, as NumPy gives it
        np.testing.assert_allclose(REGISTRY["norm"](matrix, ord=ord).data, np.linalg.norm(matrix.data, ord))
    along = REGISTRY["norm"](matrix, ord=3, axis=0).data  # a vector norm of each column
    np.testing.assert_allclose(along, np.linalg.norm(matrix.data, 3, 0))


def test_std_at_equal_elements_has_zero_gradient() -> None:
    np.testing.assert_array_equal(_grad("std", np.full(3, 0.5)), np.zeros(3))


def test_max_ties_split_the_gradient_evenly_along_each_axis() -> None:
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    np.testing.assert_array_equal(
        _grad("max", x, axis=1, keepdims=True), [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]]
    )
    np.testing.assert_array_equal(_grad("min", x, axis=(0, 1)), [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
