"""Results stay what they were: every number of ``tools/results_snapshot.py`` (the reference cases'
values, gradients and Hessians; each registered function's value, gradient and Hessian-vector
product at fixed points) is compared with the snapshot in ``tests/data/results_snapshot.json``,
taken before the engine ran its rules on arrays (commit 5e5de71, with one deliberate change
applied there: sigmoid's accurate formula). Equal bits, or at most one ulp apart where a change
reorders floating-point operations. Functions added since the snapshot are not in it.

One exception, measured: Hessians of expressions are computed on a batch axis (all rows at
once), and NumPy's vectorised kernels for transcendental functions (used on arrays) can differ
in the last bit from its scalar ones; through two backward passes that grows to a few ulp. Of the
300 reference Hessians, 3 entries moved (4 to 12 ulp, about 1e-15 relative); Hessian entries may
differ by up to HESSIAN_ULPS.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "tests" / "data" / "results_snapshot.json"


def _tool() -> Any:
    return load_script("tools/results_snapshot.py")


def _ulps(a: str, b: str) -> float:
    x, y = float.fromhex(a), float.fromhex(b)
    if x == y or (math.isnan(x) and math.isnan(y)):
        return 0.0
    if not (math.isfinite(x) and math.isfinite(y)):
        return math.inf
    return abs(x - y) / math.ulp(max(abs(x), abs(y)))


HESSIAN_ULPS = 16


def _differences(old: Any, new: Any, path: str, out: list[str]) -> None:
    """Walk with a stack (the snapshot is data, but there is no need to recurse)."""
    stack = [(old, new, path)]
    while stack:
        a, b, where = stack.pop()
        if isinstance(a, dict):
            for k in a:
                if k not in b:
                    out.append(f"{where}/{k}: missing")
                else:
                    stack.append((a[k], b[k], f"{where}/{k}"))
        elif isinstance(a, list):
            if len(a) != len(b):
                out.append(f"{where}: {len(a)} numbers before, {len(b)} now")
            else:
                stack.extend((p, q, f"{where}[{i}]") for i, (p, q) in enumerate(zip(a, b)))
        elif _ulps(a, b) > (HESSIAN_ULPS if "/hessian/" in where else 1):
            out.append(f"{where}: {a} before, {b} now ({_ulps(a, b):.3g} ulp)")


@pytest.fixture(scope="module")
def snapshot() -> Any:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tool() -> Any:
    return _tool()


def test_registered_functions_give_the_numbers_they_gave_before(snapshot: Any, tool: Any) -> None:
    now = tool.registry_results()
    bad: list[str] = []
    for name, before in snapshot["registry"].items():
        assert name in now, f"{name} is no longer registered"
        _differences(before, now[name], name, bad)
    assert bad == [], "\n".join(bad[:20])


def test_reference_cases_give_the_numbers_they_gave_before(snapshot: Any, tool: Any) -> None:
    if not (tool.reference_dir() / "scalar_cases.jsonl").is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"reference cases missing from {tool.reference_dir()} on CI")
        pytest.skip("reference cases not found (set GRADCLI_REFERENCE)")
    bad: list[str] = []
    _differences(snapshot["reference"], tool.reference_results(), "reference", bad)
    assert bad == [], "\n".join(bad[:20])
