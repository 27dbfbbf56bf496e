"""Write every number gradcli computes on a fixed set of problems, exactly (float.hex), so that a
change to the engine can be shown to keep results bit-identical (or within one ulp).

    python tools/results_snapshot.py > tests/data/results_snapshot.json

The problems: the reference cases of ../shared/reference (value, gradient, Hessian of the scalar
cases; value and gradient of the array cases), and for every registered function its value,
first derivatives and a Hessian-vector product at fixed sample points. ``tests/test_bit_identity.py``
compares the running code with the snapshot.
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradcli import Variable, calculus  # noqa: E402
from gradcli.engine import grad  # noqa: E402
from gradcli.functions import REGISTRY  # noqa: E402
from gradcli.language import parse  # noqa: E402


def reference_dir() -> Path:
    configured = os.environ.get("GRADCLI_REFERENCE")
    return Path(configured) if configured else ROOT.parent / "shared" / "reference"


def exact(a: Any) -> list[str]:
    return [float(v).hex() for v in np.asarray(a, dtype=np.float64).reshape(-1)]


def reference_results() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("scalar", "array"):
        path = reference_dir() / f"{kind}_cases.jsonl"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            case = json.loads(line)
            program = parse(case["expr"])
            ev = calculus.evaluate(program, case["inputs"])
            entry = {"value": exact(ev.value[0]), "grad": {n: exact(g) for n, g in ev.grad[0].items()}}
            if kind == "scalar":
                h = calculus.hessian(program, case["inputs"]).hessian
                entry["hessian"] = {a: {b: exact(v) for b, v in row.items()} for a, row in h.items()}
            out[f"{kind}:{number}"] = entry
    return out


def sample(spec: Any) -> list[np.ndarray]:
    shapes = spec.sample_shapes or ((2, 3),) * spec.arity[0]
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()))
    lo, hi = spec.sample_domain
    return [rng.uniform(lo, hi, size=s) for s in shapes]


def as_list(ys: Any) -> list[Variable]:
    return list(ys) if isinstance(ys, tuple) else [ys]


def registry_results() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted(REGISTRY):
        spec = REGISTRY[name]
        arrays = sample(spec)
        rng = np.random.default_rng(zlib.crc32(f"{name}/weights".encode()))
        xs = [Variable(a) for a in arrays]
        ys = as_list(spec(*xs, **spec.sample_params))
        weights = [rng.uniform(0.5, 1.5, size=y.shape) for y in ys]
        total = sum(((y * w).sum() for y, w in zip(ys, weights)), Variable(0.0))
        first = grad(total, xs, create_graph=True)
        directions = [rng.uniform(-1.0, 1.0, size=a.shape) for a in arrays]
        gv = sum(((g * v).sum() for g, v in zip(first, directions)), Variable(0.0))
        second = grad(gv, xs)
        out[name] = {
            "value": [exact(y.data) for y in ys],
            "grad": [exact(g.data) for g in first],
            "hvp": [exact(g.data) for g in second],
        }
    return out


if __name__ == "__main__":
    json.dump({"reference": reference_results(), "registry": registry_results()}, sys.stdout, indent=0)
    sys.stdout.write("\n")
