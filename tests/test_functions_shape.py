"""Shape functions: values against references built here with indexing and loops, derivatives
against central differences, and the errors users see for options that do not fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import invoke, run_cli
from derivative_checks import as_tuple, assert_derivatives

from gradcli import Variable
from gradcli.functions import REGISTRY

X = np.arange(24.0).reshape(2, 3, 4) / 7.0 - 1.0
M = X[0]

Case = tuple[tuple[np.ndarray, ...], dict[str, Any], Callable[..., Any]]


def _moved(x: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """x with out[idx] = x[idx permuted back]: an axis permutation spelled out element by element."""
    out = np.empty(tuple(x.shape[a] for a in order))
    for idx in np.ndindex(out.shape):
        src = [0] * x.ndim
        for k, a in enumerate(order):
            src[a] = idx[k]
        out[idx] = x[tuple(src)]
    return out


#: name -> cases (inputs, options, reference). Every function of the group has an entry.
REFERENCES: dict[str, list[Case]] = {
    "transpose": [((X,), {}, lambda x: _moved(x, (2, 1, 0)))],
    "reshape": [((M,), {"shape": (4, 3)}, lambda x: np.array(list(x.flat)).reshape(4, 3))],
    "split": [((M,), {"sections": 3}, lambda x: (x[0:1], x[1:2], x[2:3]))],
    "concat": [((M, M), {"axis": 1}, lambda a, b: np.array([list(r) + list(s) for r, s in zip(a, b)]))],
    "stack": [
        ((M, M), {"axis": -1}, lambda a, b: np.array([[[u, v] for u, v in zip(r, s)] for r, s in zip(a, b)]))
    ],
    "getitem": [((X,), {"index": (1, slice(None), 0)}, lambda x: np.array([x[1, i, 0] for i in range(3)]))],
    "squeeze": [((X[:, :1],), {}, lambda x: x[:, 0]), ((X[:1],), {"axis": 0}, lambda x: x[0])],
    "expand_dims": [
        ((M,), {"axis": 1}, lambda x: x[:, None]),
        ((M,), {"axis": (0, -1)}, lambda x: x[None, :, :, None]),
    ],
    "ravel": [((X,), {}, lambda x: np.array(list(x.flat)))],
    "flip": [((X,), {"axis": 1}, lambda x: x[:, ::-1]), ((M,), {}, lambda x: x[::-1, ::-1])],
    "roll": [
        ((M,), {"shift": 1, "axis": 1}, lambda x: np.concatenate([x[:, -1:], x[:, :-1]], axis=1)),
        ((M,), {"shift": -2}, lambda x: np.array(list(x.flat)[2:] + list(x.flat)[:2]).reshape(3, 4)),
    ],
    "tile": [
        ((M,), {"reps": 2}, lambda x: np.concatenate([x, x], axis=1)),
        ((M[0],), {"reps": (2, 1)}, lambda x: np.array([list(x), list(x)])),
    ],
    "repeat": [
        ((M,), {"repeats": 2, "axis": 0}, lambda x: np.array([r for r in x for _ in range(2)])),
        ((M[0],), {"repeats": (0, 1, 2, 3)}, lambda x: np.array([x[1], x[2], x[2], x[3], x[3], x[3]])),
        ((M[:2, :2],), {"repeats": 2}, lambda x: np.array([v for v in x.flat for _ in range(2)])),
    ],
    "swapaxes": [((X,), {"axis1": 0, "axis2": -1}, lambda x: _moved(x, (2, 1, 0)))],
    "moveaxis": [
        ((X,), {"source": 0, "destination": -1}, lambda x: _moved(x, (1, 2, 0))),
        ((X,), {"source": (0, 1), "destination": (2, 0)}, lambda x: _moved(x, (1, 2, 0))),
    ],
}


def test_every_shape_function_has_a_value_reference() -> None:
    group = {name for name, spec in REGISTRY.items() if spec.group == "shape"}
    assert group == set(REFERENCES)


def test_shape_functions_fit_their_page_of_the_listing() -> None:
    assert len(REFERENCES) <= 20


@pytest.mark.parametrize(
    ("name", "case"), [(n, c) for n, cases in REFERENCES.items() for c in cases], ids=lambda v: str(v)[:30]
)
def test_shape_function_values_match_the_reference_and_differentiate(name: str, case: Case) -> None:
    arrays, params, reference = case
    want = as_tuple(reference(*arrays))
    got = as_tuple(REGISTRY[name](*arrays, **params))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_array_equal(g, w)
    assert_derivatives(name, list(arrays), **params)


def test_repeat_with_counts_adds_the_gradient_of_every_copy() -> None:
    x = Variable(np.array([1.0, 2.0, 3.0]))
    y = REGISTRY["repeat"](x, repeats=(3, 0, 2))
    (y * np.arange(5.0)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0 + 1.0 + 2.0, 0.0, 3.0 + 4.0])


def test_tile_adds_the_gradient_of_every_copy() -> None:
    x = Variable(np.array([1.0, 2.0]))
    y = REGISTRY["tile"](x, reps=(2, 3))
    (y * np.arange(12.0).reshape(2, 6)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0 + 2 + 4 + 6 + 8 + 10, 1 + 3 + 5 + 7 + 9 + 11])


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("squeeze(x, axis=0)", "squeeze of shapes (2,): cannot select an axis to squeeze out"),
        ("moveaxis(x, source=3, destination=0)", "moveaxis of shapes (2,): source: axis 3 is out of bounds"),
        ("repeat(x, repeats=[1, 2, 3])", "repeat of shapes (2,): repeats must be one count or a list of 2"),
        ("swapaxes(x, axis1=0, axis2=1)", "swapaxes of shapes (2,): axis2: axis 1 is out of bounds"),
        ("tile(x, reps=[50000, 50000, 50000])", "out of memory"),
    ],
)
def test_options_that_do_not_fit_are_one_clear_error_line(expr: str, message: str) -> None:
    rc, out, err = invoke("eval", expr, "--x", "[1, 2]")
    first, *excerpt = err.splitlines()
    assert (rc, out) == (1, "")
    assert first.startswith("error: ") and message in first, err
    assert "Traceback" not in err and len(excerpt) in (0, 2)


# NumPy's ufunc.at (which sums the gradient of x[index] into place) crashed the process with a
# segmentation fault past 32 axes, where arrays may have 64: a .npy file of 40 axes and x[0].
DEEP = np.arange(3.0).reshape((1,) * 39 + (3,))


@pytest.mark.parametrize(
    ("index", "grad"),
    [
        ((0,), [1.0, 1.0, 1.0]),  # basic: each element once
        ((Ellipsis, slice(1, None)), [0.0, 1.0, 1.0]),
        ((Ellipsis, [0, 2, 2]), [1.0, 0.0, 2.0]),  # a list: repeated elements add up
        ((None,) * 20 + (Ellipsis, [2]), [0.0, 0.0, 1.0]),  # 60 axes in the result
    ],
)
def test_gradient_of_indexing_past_32_axes(index: tuple[Any, ...], grad: list[float]) -> None:
    x = Variable(DEEP)
    REGISTRY["sum"](REGISTRY["getitem"](x, index=index)).backward()
    assert x.grad is not None
    np.testing.assert_array_equal(x.grad.data, np.reshape(grad, DEEP.shape))


def test_the_gradient_of_an_index_from_the_seed_itself() -> None:
    # x[None, :] as the output: its gradient's seed (a broadcast of ones, of the engine's own
    # class) is what is summed into place, which an in-place add on that class recursed on.
    rc, out, err = invoke("eval", "x[None, :]", "--x", "[1, 2]", "--json")
    assert (rc, out, err) == (0, '{"value": [[1.0, 2.0]], "grad": {"x": [1.0, 1.0]}}\n', "")


def test_indexing_past_32_axes_from_the_command_line(tmp_path: Any) -> None:
    # (A process of its own: the crash was a segmentation fault. The command line runs the tape.)
    path = tmp_path / "deep.npy"
    np.save(path, DEEP)
    rc, out, err = run_cli("eval", "sum(x[..., [0, 2, 2]])", "--x", f"@{path}", "--json")
    assert (rc, err) == (0, "")
    assert out == '{"value": 4.0, "grad": {"x": ' + "[" * 39 + "[1.0, 0.0, 2.0]" + "]" * 39 + "}}\n"
    none33 = ", ".join(["None"] * 33)
    assert run_cli("eval", f"sum(x[{none33}])", "--x", "1", "--json") == (
        0,
        '{"value": 1.0, "grad": {"x": 1.0}}\n',
        "",
    )


@pytest.mark.parametrize(
    ("index", "said"),
    [
        ("0", "too many indices for array: array is 0-dimensional, but 1 were indexed"),
        (", ".join(["None"] * 65), "indexing result would have 65"),
    ],
)
def test_indexing_a_number_says_what_is_wrong_with_the_index(index: str, said: str) -> None:
    # (NumPy's own words for a number, "invalid index to scalar variable", named neither.)
    rc, out, err = invoke("eval", f"sum(x[{index}])", "--x", "2")
    assert (rc, out) == (1, "")
    assert err.startswith("error: getitem of shapes (): ") and said in err.splitlines()[0]


@pytest.mark.parametrize("name", ["concat", "stack"])
def test_a_list_of_variables_as_the_one_input_of_a_variadic_function_is_its_inputs(name: str) -> None:
    # As np.concatenate([a, b]) and torch.cat([a, b]) take them; it raised 'got an array of object'.
    f = REGISTRY[name]
    x, y = Variable([1.0, 2.0]), Variable([3.0, 4.0])
    listed = f([x, y])
    np.testing.assert_array_equal(listed.data, f(x, y).data)
    (listed * np.arange(4.0).reshape(listed.shape)).sum().backward()
    np.testing.assert_array_equal(np.concatenate([x.grad.data, y.grad.data]), np.arange(4.0))
