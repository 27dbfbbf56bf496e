"""Linear algebra: values against references written here (Leibniz determinants, cofactor
inverses, loops), derivatives against central differences for ordinary, batched and
broadcast inputs, the outputs of slogdet and eigh, cholesky and eigh of symmetrized inputs,
the cofactor gradient of det at singular matrices, and errors for bad shapes through the CLI."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import invoke
from derivative_checks import as_tuple, assert_derivatives

from gradcli import Variable
from gradcli.engine import grad
from gradcli.functions import REGISTRY

RNG = np.random.default_rng(7)


def _uniform(*shape: int) -> np.ndarray:
    return RNG.uniform(-1.0, 1.0, shape)


def _positive_definite(*shape: int) -> np.ndarray:
    """Symmetric positive definite matrices with well-separated eigenvalues (1, 2, ..., n
    rotated by a random orthogonal matrix), as cholesky and eigh need."""
    n = shape[-1]
    q, _ = np.linalg.qr(RNG.normal(size=shape))
    return q @ (np.arange(1.0, n + 1.0)[:, None] * np.swapaxes(q, -1, -2))


A3 = _uniform(3, 3) + 2.0 * np.eye(3)
STACK = _uniform(2, 3, 3) + 2.0 * np.eye(3)
SPD = _positive_definite(2, 4, 4)


def _det(a: np.ndarray) -> float:
    """Leibniz: the sum over permutations of signed products."""
    n = len(a)
    total = 0.0
    for perm in itertools.permutations(range(n)):
        inversions = sum(perm[i] > perm[j] for i in range(n) for j in range(i + 1, n))
        total += (-1) ** inversions * math.prod(a[i, perm[i]] for i in range(n))
    return total


def _minor(a: np.ndarray, i: int, j: int) -> np.ndarray:
    return np.delete(np.delete(a, i, axis=0), j, axis=1)


def _cofactors(a: np.ndarray) -> np.ndarray:
    n = len(a)
    return np.array([[(-1) ** (i + j) * _det(_minor(a, i, j)) for j in range(n)] for i in range(n)])


def _inverse(a: np.ndarray) -> np.ndarray:
    return _cofactors(a).T / _det(a)


def _stacked(f: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda a: np.array([f(m) for m in a])


def _diag(x: np.ndarray, k: int) -> np.ndarray:
    if x.ndim == 1:
        n = len(x) + abs(k)
        out = np.zeros((n, n))
        for i, v in enumerate(x):
            out[i + max(0, -k), i + max(0, k)] = v
        return out
    return np.array([x[i, i + k] for i in range(x.shape[0]) if 0 <= i + k < x.shape[1]])


def _triangle(x: np.ndarray, keep: Callable[[int, int], bool]) -> np.ndarray:
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        if keep(idx[-2], idx[-1]):
            out[idx] = x[idx]
    return out


def _kron(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0] * b.shape[0], a.shape[1] * b.shape[1]))
    for i, j, k, m in itertools.product(*(range(n) for n in a.shape + b.shape)):
        out[i * b.shape[0] + k, j * b.shape[1] + m] = a[i, j] * b[k, m]
    return out


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.broadcast_arrays(a, b)
    return np.stack(
        [
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        ],
        axis=-1,
    )


Case = tuple[tuple[np.ndarray, ...], dict[str, Any], Callable[..., Any]]
P, Q, R = _uniform(2, 3), _uniform(3, 4), _uniform(4)

#: name -> cases (inputs, options, reference). Every function of the group has an entry;
#: cholesky and eigh are checked by what defines them (below), with a worked example here.
REFERENCES: dict[str, list[Case]] = {
    "matmul": [
        (
            (P, Q),
            {},
            lambda a, b: np.array(
                [[sum(a[i, k] * b[k, j] for k in range(3)) for j in range(4)] for i in range(2)]
            ),
        )
    ],
    "dot": [((R, R), {}, lambda a, b: sum(a * b))],
    "linear": [((P, Q, R), {}, lambda x, w, b: x @ w + b)],
    "det": [((A3,), {}, _det), ((STACK,), {}, _stacked(_det))],
    "slogdet": [((STACK,), {}, lambda a: (np.sign(_stacked(_det)(a)), np.log(abs(_stacked(_det)(a)))))],
    "inv": [((A3,), {}, _inverse), ((STACK,), {}, _stacked(_inverse))],
    "solve": [
        ((A3, R[:3]), {}, lambda a, b: _inverse(a) @ b),
        ((STACK, _uniform(3, 2)), {}, lambda a, b: np.array([_inverse(m) @ b for m in a])),
        ((STACK, R[:3]), {}, lambda a, b: np.array([_inverse(m) @ b for m in a])),
    ],
    "trace": [
        ((Q,), {}, lambda x: sum(x[i, i] for i in range(3))),
        ((Q,), {"offset": 1}, lambda x: sum(x[i, i + 1] for i in range(3))),
        (
            (_uniform(2, 3, 3),),
            {"axis1": 1, "axis2": 2},
            lambda x: np.array([sum(m[i, i] for i in range(3)) for m in x]),
        ),
    ],
    "diag": [
        ((R,), {}, lambda x: _diag(x, 0)),
        ((R,), {"k": -2}, lambda x: _diag(x, -2)),
        ((Q,), {"k": 1}, lambda x: _diag(x, 1)),
    ],
    "tril": [((_uniform(2, 3, 4),), {"k": -1}, lambda x: _triangle(x, lambda i, j: j <= i - 1))],
    "triu": [((Q,), {}, lambda x: _triangle(x, lambda i, j: j >= i))],
    "outer": [((P, R), {}, lambda a, b: np.array([[u * v for v in b.reshape(-1)] for u in a.reshape(-1)]))],
    "inner": [
        ((P, Q.T), {}, lambda a, b: np.array([[sum(a[i] * b[j]) for j in range(4)] for i in range(2)]))
    ],
    "einsum": [
        ((P, Q), {"subscripts": "ij,jk->ik"}, lambda a, b: a @ b),
        ((A3,), {"subscripts": "ii"}, lambda a: a[0, 0] + a[1, 1] + a[2, 2]),
        ((A3,), {"subscripts": "ii->i"}, lambda a: np.array([a[0, 0], a[1, 1], a[2, 2]])),
        ((P, P), {"subscripts": "ij,ij->j"}, lambda a, b: (a * b).sum(axis=0)),
        ((P,), {"subscripts": "ji"}, lambda a: a.T),
        ((STACK, R[:3]), {"subscripts": "...ij,j"}, lambda a, v: a @ v),
    ],
    "cross": [((_uniform(2, 3), _uniform(3)), {}, _cross)],
    "kron": [((P, _uniform(2, 2)), {}, _kron)],
    "cholesky": [((np.array([[4.0, 2.0], [2.0, 5.0]]),), {}, lambda a: np.array([[2.0, 0.0], [1.0, 2.0]]))],
    "eigh": [
        (
            (np.array([[2.0, 0.0], [0.0, -1.0]]),),
            {},
            lambda a: (np.array([-1.0, 2.0]), np.array([[0.0, 1.0], [1.0, 0.0]])),
        )
    ],
}


def test_every_linear_algebra_function_has_a_value_reference() -> None:
    group = {name for name, spec in REGISTRY.items() if spec.group == "linear algebra"}
    assert group == set(REFERENCES)


def test_linear_algebra_fits_its_page_of_the_listing() -> None:
    assert len(REFERENCES) <= 20


@pytest.mark.parametrize(
    ("name", "case"), [(n, c) for n, cases in REFERENCES.items() for c in cases], ids=lambda v: str(v)[:30]
)
def test_linear_algebra_values_match_the_reference(name: str, case: Case) -> None:
    arrays, params, reference = case
    want = as_tuple(reference(*arrays))
    got = as_tuple(REGISTRY[name](*arrays, **params))
    on_variables = as_tuple(REGISTRY[name](*(Variable(a) for a in arrays), **params))
    assert len(got) == len(want)
    for g, w, v in zip(got, want, on_variables):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)
        np.testing.assert_array_equal(v.data, g)


# --- derivatives -----------------------------------------------------------------------------

DERIVATIVE_CASES: list[tuple[str, tuple[np.ndarray, ...], dict[str, Any]]] = [
    ("det", (A3,), {}),
    ("det", (STACK,), {}),
    ("det", (_uniform(1, 1),), {}),
    ("slogdet", (STACK,), {}),
    ("inv", (STACK,), {}),
    ("solve", (A3, R[:3]), {}),
    ("solve", (STACK, R[:3]), {}),  # one right-hand side for every matrix: gradients summed
    ("solve", (A3, _uniform(2, 3, 2)), {}),  # one matrix for every right-hand side
    ("trace", (_uniform(3, 3),), {}),
    ("trace", (_uniform(2, 3, 4),), {"offset": -1, "axis1": 2, "axis2": 0}),
    ("diag", (R,), {"k": 1}),
    ("diag", (_uniform(4, 3),), {"k": -1}),
    ("tril", (_uniform(2, 3, 3),), {}),
    ("tril", (R,), {}),  # NumPy makes a 1-D input a matrix
    ("triu", (_uniform(3, 4),), {"k": 2}),
    ("outer", (P, R), {}),
    ("inner", (P, Q.T), {}),
    ("inner", (R, R), {}),
    ("inner", (np.array(1.5), P), {}),
    ("einsum", (P, Q), {"subscripts": "ij,jk->ik"}),
    ("einsum", (A3,), {"subscripts": "ii"}),
    ("einsum", (A3,), {"subscripts": "ii->i"}),
    ("einsum", (P,), {"subscripts": "ij->"}),
    ("einsum", (R, R), {"subscripts": "i,i"}),
    ("einsum", (_uniform(2, 2, 3), Q), {"subscripts": "...ij,...jk"}),
    ("einsum", (P, _uniform(2, 1)), {"subscripts": "ij,kl->ijkl"}),
    ("einsum", (_uniform(2, 2, 3), _uniform(2, 3, 2), _uniform(2, 2, 2)), {"subscripts": "bij,bjk,bkl->bil"}),
    ("einsum", (_uniform(2, 2, 3), R[:3]), {"subscripts": "iij,j"}),
    ("einsum", (_uniform(1, 3), P), {"subscripts": "ab,ab->ab"}),  # a length-1 axis broadcast
    ("einsum", (P, P[:, 0]), {"subscripts": "ij,i->"}),
    ("einsum", (P, Q, R), {"subscripts": "ij,jk,k"}),
    ("cross", (_uniform(2, 3), _uniform(3)), {}),
    ("cross", (_uniform(3, 2), _uniform(3, 1)), {"axis": 0}),
    ("kron", (P, _uniform(2, 2)), {}),
    ("kron", (R[:2], _uniform(3, 2)), {}),
    ("cholesky", (SPD,), {}),
    ("eigh", (SPD,), {}),
    ("eigh", (_positive_definite(3, 3) + 0.3 * _uniform(3, 3),), {}),  # not symmetric: symmetrized
    ("matmul", (_uniform(2, 2, 3), Q), {}),
    ("linear", (P, Q, R), {}),
]


@pytest.mark.parametrize(("name", "arrays", "params"), DERIVATIVE_CASES, ids=lambda v: str(v)[:40])
def test_linear_algebra_derivatives_match_central_differences(
    name: str, arrays: tuple[np.ndarray, ...], params: dict[str, Any]
) -> None:
    assert_derivatives(name, list(arrays), **params)


@pytest.mark.parametrize("name", ["det", "inv", "cholesky", "eigh", "slogdet"])
def test_a_stack_of_matrices_gives_what_each_matrix_gives_alone(name: str) -> None:
    a = SPD
    xs = Variable(a)
    outs = as_tuple(REGISTRY[name](xs))
    weights = [RNG.uniform(0.5, 1.5, o.shape) for o in outs]
    (g,) = grad(sum(((o * w).sum() for o, w in zip(outs, weights)), Variable(0.0)), [xs])
    for i in range(len(a)):
        xi = Variable(a[i])
        alone = as_tuple(REGISTRY[name](xi))
        (gi,) = grad(sum(((o * w[i]).sum() for o, w in zip(alone, weights)), Variable(0.0)), [xi])
        for o, oi in zip(outs, alone):
            np.testing.assert_allclose(o.data[i], oi.data, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(g.data[i], gi.data, rtol=1e-10, atol=1e-12)


# --- slogdet, eigh, cholesky: their outputs ------------------------------------------------------


def test_slogdet_gives_the_sign_and_the_log_of_the_absolute_determinant_without_overflow() -> None:
    big = np.diag([1e200, -1e200, 1e200])
    sign, logabsdet = REGISTRY["slogdet"](big)
    assert sign == -1.0
    assert logabsdet == pytest.approx(3 * 200 * math.log(10))


def test_the_sign_of_slogdet_has_zero_gradient() -> None:
    a = Variable(STACK)
    sign, _ = REGISTRY["slogdet"](a)
    (g,) = grad((sign.reshape((2, 1, 1)) * a).sum(), [a])  # only through the factor a itself
    np.testing.assert_array_equal(g.data, np.broadcast_to(sign.data[:, None, None], a.shape))


def test_the_logabsdet_gradient_is_the_inverse_transposed() -> None:
    a = Variable(STACK)
    _, logabsdet = REGISTRY["slogdet"](a)
    (g,) = grad(logabsdet.sum(), [a])
    np.testing.assert_allclose(g.data, np.swapaxes(_stacked(_inverse)(STACK), -1, -2), rtol=1e-12)


def test_eigh_gives_ascending_eigenvalues_and_orthonormal_eigenvectors() -> None:
    w, v = REGISTRY["eigh"](SPD)
    assert np.all(np.diff(w, axis=-1) > 0)
    np.testing.assert_allclose(SPD @ v, v * w[..., None, :], atol=1e-12)
    np.testing.assert_allclose(np.swapaxes(v, -1, -2) @ v, np.broadcast_to(np.eye(4), SPD.shape), atol=1e-12)


def test_eigh_and_cholesky_read_a_matrix_as_its_symmetric_part() -> None:
    skew = _uniform(4, 4)
    skew = 0.1 * (skew - skew.T)
    for name in ("eigh", "cholesky"):
        a, b = REGISTRY[name](SPD[0] + skew), REGISTRY[name](SPD[0])
        for x, y in zip(as_tuple(a), as_tuple(b)):
            np.testing.assert_allclose(x, y, atol=1e-12)


@pytest.mark.parametrize("name", ["eigh", "cholesky"])
def test_decomposition_gradients_are_symmetric(name: str) -> None:
    a = Variable(SPD)
    outs = as_tuple(REGISTRY[name](a))
    (g,) = grad(sum(((o * RNG.uniform(size=o.shape)).sum() for o in outs), Variable(0.0)), [a])
    np.testing.assert_allclose(g.data, np.swapaxes(g.data, -1, -2), atol=1e-12)


def test_cholesky_factor_is_lower_triangular_and_rebuilds_the_matrix() -> None:
    low = REGISTRY["cholesky"](SPD)
    np.testing.assert_array_equal(low, np.tril(low))
    assert np.all(np.diagonal(low, axis1=-2, axis2=-1) > 0)
    np.testing.assert_allclose(low @ np.swapaxes(low, -1, -2), SPD, atol=1e-12)


def test_eigenvalues_alone_have_a_gradient_where_they_repeat() -> None:
    a = Variable(np.eye(3))
    w, _ = REGISTRY["eigh"](a)
    (g,) = grad((w * np.array([1.0, 1.0, 1.0])).sum(), [a])  # the trace
    np.testing.assert_allclose(g.data, np.eye(3), atol=1e-15)


# --- det at singular matrices ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "cofactors"),
    [
        ([[1.0, 2.0], [2.0, 4.0]], [[4.0, -2.0], [-2.0, 1.0]]),
        ([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], None),
        (np.zeros((3, 3)), np.zeros((3, 3))),
        ([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], np.zeros((3, 3))),
    ],
    ids=["rank 1 of 2", "rank 2 of 3", "zero", "rank 1 of 3"],
)
def test_det_gradient_at_a_singular_matrix_is_the_cofactor_matrix(a: Any, cofactors: Any) -> None:
    a = np.array(a)
    want = _cofactors(a) if cofactors is None else np.array(cofactors)
    x = Variable(a)
    REGISTRY["det"](x).backward()
    np.testing.assert_allclose(x.grad.data, want, atol=1e-12)


def test_higher_derivatives_of_det_at_a_singular_matrix_are_refused_clearly() -> None:
    x = Variable(np.array([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(ValueError, match="singular matrix are not supported"):
        grad(REGISTRY["det"](x), [x], create_graph=True)


# --- errors, through the command line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "value", "message"),
    [
        ("det(x)", "[1, 2]", "det of shapes (2,): expects a square matrix"),
        ("inv(x)", "[[1, 2, 3], [4, 5, 6]]", "inv of shapes (2, 3): expects a square matrix"),
        ("inv(x)", "[[1, 2], [2, 4]]", "inv of shapes (2, 2): the matrix is singular"),
        ("solve(x, x[0])", "[[1, 2], [2, 4]]", "the matrix is singular"),
        ("cholesky(x)", "[[1, 2], [2, 1]]", "cholesky of shapes (2, 2): the matrix is not positive definite"),
        ("a, b = eigh(x); a", "[[1, 2, 3]]", "eigh of shapes (1, 3): expects a square matrix"),
        ("a, b = slogdet(x); b", "[1, 2]", "slogdet of shapes (2,): expects a square matrix"),
        ("trace(x)", "[1, 2]", "trace of shapes (2,): takes an array of at least 2 axes"),
        ("diag(x)", "[[[1]]]", "diag of shapes (1, 1, 1): takes a vector"),
        ("cross(x, x)", "[1, 2]", "cross of shapes (2,), (2,): takes vectors of length 3"),
        ("einsum(x, subscripts=2)", "[1, 2]", "subscripts must be a string"),
        ("a, b = slogdet(x); b", "[[1, 2], [2, 4]]", "log|det| is -inf at a singular matrix"),
        ("x @ x", "2", "matmul of shapes (), (): @ multiplies vectors and matrices; a number has no axis"),
        ("x @ [1, 2]", "2", "matmul of shapes (), (2,): @ multiplies vectors and matrices"),
        (
            "x @ [1, 2, 3]",
            "[[1, 2], [3, 4]]",
            "error: matmul: shapes (2, 2) and (3,) do not match for @: the first's last axis has 2 "
            "elements, the second's only axis 3",
        ),
        (
            "x @ x",
            "[[1, 2, 3]]",
            "error: matmul: shapes (1, 3) and (1, 3) do not match for @: the first's last axis has 3 "
            "elements, the second's second-to-last axis 1",
        ),
    ],
)
def test_bad_shapes_and_singular_matrices_are_one_clear_error_line(
    expr: str, value: str, message: str
) -> None:
    rc, out, err = invoke("eval", expr, "--x", value)
    first, *excerpt = err.splitlines()
    assert (rc, out) == (1, "")
    assert first.startswith("error: ") and message in first, err
    assert "Traceback" not in err and len(excerpt) in (0, 2)


def test_einsum_subscripts_that_do_not_fit_the_operands_are_clear_errors() -> None:
    for subscripts, message in [
        ("ij,jk", "for 2 operands; got 1"),
        ("ijk", "its subscripts 'ijk' do not fit"),
        ("ij->k", "must name distinct indices"),
        ("ij->ii", "must name distinct indices"),
        ("i1", "got '1'"),
    ]:
        with pytest.raises(ValueError, match=message):
            REGISTRY["einsum"](P, subscripts=subscripts)


# --- outputs an expression does not use --------------------------------------------------------------

TWO_BY_TWO = "[[2, 1], [1, 3]]"


def _python_gradient(pick: Callable[[Any, Any], Any], create_graph: bool = False) -> Any:
    x = Variable(np.array([[2.0, 1.0], [1.0, 3.0]]))
    (g,) = grad(pick(*REGISTRY["eigh"](x)), [x], create_graph=create_graph)
    return x, g


@pytest.mark.parametrize(
    ("text", "pick"),
    [("w, V = eigh(x); w[1]", lambda w, v: w[1]), ("w, V = eigh(x); V[1, 1]", lambda w, v: v[1, 1])],
)
def test_eigh_gradients_need_no_use_of_the_other_output(text: str, pick: Callable[[Any, Any], Any]) -> None:
    # The program frees an output nothing reads; the rule must not depend on it being alive.
    import json

    rc, out, err = invoke("eval", text, "--x", TWO_BY_TWO, "--json")
    assert rc == 0, err
    np.testing.assert_allclose(json.loads(out)["grad"]["x"], _python_gradient(pick)[1].data, rtol=1e-12)
    rc, out, err = invoke("hessian", text, "--x", TWO_BY_TWO, "--json")
    assert rc == 0, err
    x, g = _python_gradient(pick, create_graph=True)
    rows = [grad(g[i, j], [x])[0].data for i in range(2) for j in range(2)]
    np.testing.assert_allclose(
        np.array(json.loads(out)["hessian"]["x"]["x"]).reshape(4, 4),
        np.array(rows).reshape(4, 4),
        rtol=1e-10,
        atol=1e-12,
    )
