"""Every registered function on another array library, for comparison with NumPy: the sweep that
``test_array_seam.py`` (CuPy's mixing rule) and ``test_dask.py`` (lazy, chunked) share.

Inputs, options and output weights are those of ``test_registry_derivatives.py``. Each run gives
the outputs, the first-order gradients (rules run on arrays) and a Hessian-vector product (rules
run on Variables, then a backward pass through their graph), all in the library the inputs were
given in, nothing converted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from test_registry_derivatives import SPECS, rng_for, sample_inputs, weighted_sum, weights_for

from gradcli import Variable
from gradcli.engine import grad
from gradcli.functions import Spec

__all__ = ["SPECS", "Outcome", "run_in"]


class Outcome(NamedTuple):
    values: list[Any]
    grads: list[Any]
    hvp: list[Any]


def run_in(spec: Spec, convert: Callable[[np.ndarray], Any]) -> Outcome:
    """``spec`` at its sample point with every array given as ``convert(array)``."""
    arrays = sample_inputs(spec)
    weights = [convert(w) for w in weights_for(spec, arrays)]
    rng = rng_for(spec, "direction")
    directions = [convert(rng.uniform(-1.0, 1.0, size=a.shape)) for a in arrays]
    xs = [Variable(convert(a)) for a in arrays]
    ys = spec(*xs, **spec.sample_params)
    ys = list(ys) if isinstance(ys, tuple) else [ys]
    loss = weighted_sum(ys, weights)
    first = grad(loss, xs)
    differentiable = grad(loss, xs, create_graph=True)
    hvp = grad(weighted_sum(differentiable, directions), xs)
    return Outcome([y.data for y in ys], [g.data for g in first], [g.data for g in hvp])
