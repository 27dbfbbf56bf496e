"""The benchmark harness cannot rot: it runs end to end on tiny sizes (no peers, no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Runs the benchmark harness in a subprocess: left out of the quick loop.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# One table per row of issue 13's table, in its order.
TABLES = ("1. `--batch`", "2. A chain", "3. The", "4. A", "5. `sin(x)", "6. The Hessian", "7. Cold start")


def test_bench_harness_runs_on_tiny_sizes_and_records_every_row_against_its_peer_or_floor() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--peers", "none"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    titles = [line.removeprefix("### ") for line in done.stdout.splitlines() if line.startswith("### ")]
    assert len(titles) == len(TABLES)
    for title, start in zip(titles, TABLES):
        assert title.startswith(start)
    assert "| by hand (floor) |" in done.stdout
    assert "| gradcli, Python API |" in done.stdout
    # The summary: every row of the issue that needs no peer, each with a verdict.
    summary = done.stdout[done.stdout.index("| row of issue 13 |") :].splitlines()[2:]
    rows = [line for line in summary if line.startswith("| ")]
    for row in (
        "`--batch`",
        "as an expression file",
        "-term sum",
        "elements (gradcli, Python API)",
        "cold start",
    ):
        assert any(row in line for line in rows), row
    assert all(line.rstrip(" |").endswith(("met", "**not met**", "n/a")) for line in rows)
