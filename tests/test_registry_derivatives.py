"""Every registered function, checked against central differences: first and second derivatives,
and broadcasting for the elementwise ones.

Driven by the registry alone: a new ``@register`` entry gets these tests without editing this file.
Inputs come from the Spec: ``sample_shapes`` (default: every required input (2, 3)), values
uniform on ``sample_domain``, keyword arguments from ``sample_params``. Several outputs, and outputs
that are not scalars, are folded into one number with fixed random weights, so every output and
every element counts.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import pytest
from numerics import numeric_grad

from gradcli import Variable, no_grad
from gradcli.engine import grad
from gradcli.functions import REGISTRY, Spec

SPECS = sorted(REGISTRY.values(), key=lambda s: s.name)
ELEMENTWISE = [s for s in SPECS if s.elementwise]
BROADCAST_SHAPES = [((3, 1), (4,)), ((4,), (3, 1))]

RTOL, ATOL = 1e-5, 1e-7

REQUIRED = (
    # issue 2
    "neg add sub mul div pow square sqrt exp log log1p expm1 sin cos tan asin acos atan sinh cosh tanh "
    "sigmoid log_sigmoid relu abs softplus maximum minimum sum mean max min norm logsumexp softmax "
    "log_softmax matmul dot transpose reshape linear mse clip "
    # issue 10: elementwise, piecewise, neural network
    "log10 log2 exp2 cbrt reciprocal atan2 hypot asinh acosh atanh sec csc cot sinc deg2rad rad2deg "
    "logaddexp logit xlogy erf erfc erfinv gamma lgamma digamma floor ceil round trunc sign heaviside "
    "mod floor_divide gelu silu elu leaky_relu softsign hardtanh huber cross_entropy binary_cross_entropy "
    # issue 10: reductions, linear algebra, shape, logic
    "prod var std cumsum cumprod det slogdet inv solve trace diag outer inner einsum cross kron cholesky "
    "eigh tril triu stack concat split squeeze expand_dims flip roll tile repeat swapaxes moveaxis ravel "
    "less less_equal greater greater_equal equal not_equal logical_and logical_or logical_not where"
).split()
ALIASES_REQUIRED = "ln arcsin arccos arctan arcsinh arccosh arctanh arctan2 fabs".split()


def rng_for(spec: Spec, salt: str = "") -> np.random.Generator:
    """A generator seeded by the function's name: stable across runs and test orderings."""
    return np.random.default_rng(zlib.crc32(f"{spec.name}/{salt}".encode()))


def sample_inputs(spec: Spec, shapes: tuple[tuple[int, ...], ...] | None = None) -> list[np.ndarray]:
    shapes = shapes or spec.sample_shapes or ((2, 3),) * spec.arity[0]
    lo, hi = spec.sample_domain
    rng = rng_for(spec, str(shapes))
    return [rng.uniform(lo, hi, size=s) for s in shapes]


def outputs_of(spec: Spec, arrays: list[np.ndarray], requires_grad: bool = True) -> list[Variable]:
    xs = [Variable(a, requires_grad=requires_grad) for a in arrays]
    ys = spec(*xs, **spec.sample_params)
    return list(ys) if isinstance(ys, tuple) else [ys]


def weights_for(spec: Spec, arrays: list[np.ndarray]) -> list[np.ndarray]:
    with no_grad():
        ys = outputs_of(spec, arrays)
    rng = rng_for(spec, "weights")
    return [rng.uniform(0.5, 1.5, size=y.shape) for y in ys]


def weighted_sum(ys: list[Variable], weights: list[np.ndarray]) -> Variable:
    total = (ys[0] * weights[0]).sum()
    for y, w in zip(ys[1:], weights[1:]):
        total = total + (y * w).sum()
    return total


def scalar_fn(spec: Spec, weights: list[np.ndarray]) -> Callable[..., float]:
    """The function central differences see: same folding, plain forward, no graph."""

    def f(*arrays: np.ndarray) -> float:
        with no_grad():
            ys = outputs_of(spec, list(arrays), requires_grad=False)
        return float(sum((y.data * w).sum() for y, w in zip(ys, weights)))

    return f


def analytic_grads(spec: Spec, arrays: list[np.ndarray], weights: list[np.ndarray]) -> list[np.ndarray]:
    xs = [Variable(a) for a in arrays]
    ys = spec(*xs, **spec.sample_params)
    ys = list(ys) if isinstance(ys, tuple) else [ys]
    return [g.data for g in grad(weighted_sum(ys, weights), xs)]


def check_first_derivatives(spec: Spec, arrays: list[np.ndarray]) -> None:
    weights = weights_for(spec, arrays)
    got = analytic_grads(spec, arrays, weights)
    want = numeric_grad(scalar_fn(spec, weights), arrays)
    for k, (g, n, a) in enumerate(zip(got, want, arrays)):
        assert g.shape == a.shape, f"{spec.name}: gradient of input {k} has shape {g.shape}, input {a.shape}"
        np.testing.assert_allclose(
            g, n, rtol=RTOL, atol=ATOL, err_msg=f"{spec.name}: d/d{spec.arg_names(len(arrays))[k]}"
        )


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_first_derivatives_match_central_differences(spec: Spec) -> None:
    check_first_derivatives(spec, sample_inputs(spec))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_second_derivatives_match_central_differences_of_the_gradient(spec: Spec) -> None:
    """d/dx (sum_k v_k . dL/dx_k): the Hessian of L times a random vector v, built by create_graph."""
    arrays = sample_inputs(spec)
    weights = weights_for(spec, arrays)
    rng = rng_for(spec, "direction")
    directions = [rng.uniform(-1.0, 1.0, size=a.shape) for a in arrays]

    xs = [Variable(a) for a in arrays]
    ys = spec(*xs, **spec.sample_params)
    ys = list(ys) if isinstance(ys, tuple) else [ys]
    gs = grad(weighted_sum(ys, weights), xs, create_graph=True)
    gv = weighted_sum(gs, directions)
    got = [g.data for g in grad(gv, xs)]

    def first_dot_v(*a: np.ndarray) -> float:
        return float(sum((g * v).sum() for g, v in zip(analytic_grads(spec, list(a), weights), directions)))

    want = numeric_grad(first_dot_v, arrays)
    for k, (g, n) in enumerate(zip(got, want)):
        np.testing.assert_allclose(
            g, n, rtol=RTOL, atol=ATOL, err_msg=f"{spec.name}: d2/d{spec.arg_names(len(arrays))[k]}"
        )


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_rule_gives_the_same_gradient_on_arrays_and_on_variables(spec: Spec) -> None:
    """One rule, two modes: a first-order pass runs it on arrays, create_graph on Variables."""
    arrays = sample_inputs(spec)
    weights = weights_for(spec, arrays)
    on_arrays = analytic_grads(spec, arrays, weights)
    xs = [Variable(a) for a in arrays]
    ys = spec(*xs, **spec.sample_params)
    ys = list(ys) if isinstance(ys, tuple) else [ys]
    on_variables = [g.data for g in grad(weighted_sum(ys, weights), xs, create_graph=True)]
    for k, (a, v) in enumerate(zip(on_arrays, on_variables)):
        np.testing.assert_array_equal(a, v, err_msg=f"{spec.name}: d/d{spec.arg_names(len(arrays))[k]}")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_function_computes_on_arrays_when_given_no_variable(spec: Spec) -> None:
    arrays = sample_inputs(spec)
    direct = spec(*arrays, **spec.sample_params)
    with no_grad():
        ys = outputs_of(spec, arrays)
    direct = list(direct) if isinstance(direct, tuple) else [direct]
    assert not any(isinstance(d, Variable) for d in direct)
    for d, y in zip(direct, ys):
        np.testing.assert_array_equal(d, y.data)


@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
@pytest.mark.parametrize("spec", ELEMENTWISE, ids=lambda s: s.name)
def test_elementwise_function_broadcasts_and_unbroadcasts_gradients(
    spec: Spec, shapes: tuple[tuple[int, ...], ...]
) -> None:
    n = len(spec.inputs) - spec.optional
    check_first_derivatives(spec, sample_inputs(spec, tuple(shapes[k % len(shapes)] for k in range(n))))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_spec_is_documented_and_has_a_derivative_rule(spec: Spec) -> None:
    assert spec.doc.strip(), f"{spec.name} has no doc"
    assert "\n" not in spec.doc, f"{spec.name}: the doc is one line"
    assert spec.rule.strip(), f"{spec.name} has no derivative rule"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_spec_declares_its_number_of_outputs(spec: Spec) -> None:
    with no_grad():
        ys = outputs_of(spec, sample_inputs(spec))
    assert len(ys) == spec.n_outputs


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_registered_function_is_callable_by_its_name(spec: Spec) -> None:
    import gradcli.functions as functions

    assert getattr(functions, spec.name) is spec
    assert spec.name in functions.__all__


def test_registry_holds_every_function_the_issues_require() -> None:
    from gradcli.functions.registry import ALIASES, lookup

    missing = [name for name in REQUIRED if name not in REGISTRY]
    assert missing == []
    assert [name for name in ALIASES_REQUIRED if name not in ALIASES] == []
    assert lookup("ln") is REGISTRY["log"] and lookup("arctan2") is REGISTRY["atan2"]


def test_registry_has_at_least_two_functions_with_several_outputs() -> None:
    assert sum(s.n_outputs > 1 for s in SPECS) >= 2


def test_a_call_with_inputs_beyond_a_functions_arity_is_refused_and_writes_nowhere() -> None:
    # One input too many went to NumPy's out=: log(x, b) wrote the natural log of x into b.
    x, b = Variable(np.array([8.0, 4.0])), Variable(np.array([2.0, 2.0]))
    with pytest.raises(TypeError, match=r"^log\(\) takes 1 input, got 2 \(the signature: log\(x\)\)$"):
        REGISTRY["log"](x, b)
    with pytest.raises(
        TypeError, match=r"^sum\(\) takes 1 input, got 2; options go by name: sum\(\.\.\., axis=\.\.\.\)"
    ):
        REGISTRY["sum"](x, 0)
    with pytest.raises(TypeError, match=r"^concat\(\) takes at least 1 input, got 0"):
        REGISTRY["concat"]()
    for spec in SPECS:  # every function, on arrays as on Variables
        least, most = spec.arity
        if most is None:
            continue
        args = [np.array([0.5, 0.25])] * (most + 1)
        with pytest.raises(TypeError, match=rf"^{spec.name}\(\) takes "):
            spec(*args)
    np.testing.assert_array_equal(b.data, [2.0, 2.0])
