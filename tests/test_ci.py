"""What CI relies on: the oracle test cannot pass quietly without its oracle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, subprocess_env


@pytest.mark.slow
@pytest.mark.parametrize(("ci", "status"), [("true", 2), ("", 5)])
def test_the_reference_cases_fail_in_ci_and_are_skipped_elsewhere_when_missing(
    tmp_path: Path, ci: str, status: int
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(REPO / "tests" / "test_reference.py"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(CI=ci, GRADCLI_REFERENCE=str(tmp_path / "missing")),
        timeout=120,
    )
    # 2: a collection error; 5: nothing collected (the module skipped itself)
    assert proc.returncode == status, proc.stdout[-2000:]
