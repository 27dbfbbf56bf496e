"""The derivative each elementwise function documents (``Spec.partials``, an expression in
gradcli's own language, shown by ``gradcli functions`` and ``gradcli explain``) is the one its
rule computes: parsed by gradcli, evaluated at the registry's sample points, and compared with
the engine's gradient there. A wrong doc fails here, not in a user's head."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from gradcli import Variable
from gradcli.engine import grad
from gradcli.functions import REGISTRY, Spec
from gradcli.language import parse

DOCUMENTED = sorted(
    (s for s in REGISTRY.values() if any(p is not None for p in s.partials)), key=lambda s: s.name
)


def _points(spec: Spec) -> list[np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(f"{spec.name}/partials".encode()))
    lo, hi = spec.sample_domain
    shapes = spec.sample_shapes or ((2, 3),) * spec.arity[0]
    # Elementwise with the same shape for every input, so each output element has one partial.
    shape = np.broadcast_shapes(*shapes)
    return [rng.uniform(lo, hi, size=shape) for _ in spec.inputs]


@pytest.mark.parametrize("spec", DOCUMENTED, ids=lambda s: s.name)
def test_documented_partial_derivative_is_what_the_rule_computes(spec: Spec) -> None:
    arrays = _points(spec)
    xs = [Variable(a) for a in arrays]
    y = spec(*xs, **spec.sample_params)
    got = [g.data for g in grad(y.sum(), xs)]
    for k, text in enumerate(spec.partials):
        if text is None:
            continue
        program = parse(text)
        values = {n: a for n, a in zip(spec.inputs, arrays) if n in program.inputs}
        values.update(
            {n: v for n, v in {**dict(spec.params), **spec.sample_params}.items() if n in program.inputs}
        )
        documented = np.broadcast_to(program.run(values).outputs[0].data, arrays[k].shape)
        np.testing.assert_allclose(
            got[k], documented, rtol=1e-10, atol=1e-12, err_msg=f"{spec.name}: d/d{spec.inputs[k]} = {text}"
        )


def test_most_elementwise_functions_document_their_partials() -> None:
    elementwise = [s for s in REGISTRY.values() if s.elementwise and s.name != "clip"]
    documented = [s for s in elementwise if s.partials and all(p is not None for p in s.partials)]
    assert len(documented) >= 0.9 * len(elementwise)
