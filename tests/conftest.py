"""Shared test helpers: running the CLI the two ways tests need, in-process through click's
CliRunner, and as a real ``python -m gradcli`` subprocess (which also covers ``__main__``, exit
codes set by the interpreter and what reaches the real stderr)::

    from conftest import invoke, run_cli
    rc, out, err = invoke("eval", "x*y", "--x", "2", "--y", "3")
    rc, out, err = run_cli("eval", "x*y", "--x", "2", "--y", "3")

and loading a script of the repository that is not part of the package (``tools/``, ``bench/``)
as a module: ``load_script("tools/results_snapshot.py")``.

Tests that start subprocesses or work at the 100,000 scale are marked ``slow``: the quick loop
is ``pytest -m "not slow"``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
# Text output follows the terminal's width: the tests pin it (subprocesses inherit it).
COLUMNS = "80"


@pytest.fixture(autouse=True)
def fixed_terminal_width(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("COLUMNS", COLUMNS)
    yield


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Whatever a test registers (its plugins, loaded in this process) is gone afterwards, so
    that other tests see the built-in registry. A module that loads plugins uses it for every
    test: ``pytestmark = pytest.mark.usefixtures("clean_registry")``."""
    from gradcli.functions import REGISTRY

    before = dict(REGISTRY)
    yield
    REGISTRY.clear()
    REGISTRY.update(before)


def load_script(path: str) -> Any:
    """The file ``path`` (relative to the repository) imported as a module of its own."""
    import importlib.util

    file = REPO / path
    spec = importlib.util.spec_from_file_location(file.stem, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke(
    *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """``gradcli ARGS`` in-process: (exit status, stdout, stderr)."""
    from gradcli.cli import main

    result = CliRunner().invoke(main, list(args), input=input, prog_name="gradcli", env=env)
    return result.exit_code, result.stdout, result.stderr


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child interpreter that imports this checkout's gradcli, free of
    settings that would change what is tested."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADCLI_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["COLUMNS"] = COLUMNS
    env.update(extra)
    return env


def read_terminal(leader: int) -> bytes:
    """Everything a child process shows on the pseudo-terminal whose ``leader`` end this is,
    until it closes with the process."""
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    return shown


def run_cli(
    *args: str,
    input: str | None = None,
    cwd: str | Path | None = None,
    timeout: float = 120,
    env_extra: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    """``python -m gradcli ARGS`` in a real subprocess: (exit status, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "gradcli", *args],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=subprocess_env(**(env_extra or {})),
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr


def run_shell(script: str, *, cwd: str | Path = REPO, timeout: float = 120) -> tuple[int, str, str]:
    """A bash ``script`` in which ``gradcli`` is this checkout's (``python -m gradcli``)."""
    prelude = f'gradcli() {{ "{sys.executable}" -m gradcli "$@"; }}\n'
    proc = subprocess.run(
        ["bash", "-c", prelude + script],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=subprocess_env(),
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr
