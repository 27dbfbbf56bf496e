"""The benchmark harness cannot rot: it runs end to end on tiny sizes (no peers, no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Runs the benchmark harness in a subprocess: left out of the quick loop.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_bench_harness_runs_on_tiny_sizes_and_prints_every_table() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--peers", "none"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for title in ("1. Cold start", "2. Per operation", "3. Big arrays", "4. Big graphs", "Hessian"):
        assert f"### {title}" in done.stdout
    assert "| by hand (floor) |" in done.stdout
    assert "| gradcli, Python API |" in done.stdout
