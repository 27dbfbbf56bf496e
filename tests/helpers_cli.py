"""Running the CLI the two ways tests need: in-process through click's CliRunner, and as a real
``python -m gradcli`` subprocess (which also covers ``__main__``, exit codes set by the
interpreter and what reaches the real stderr).

    from helpers_cli import invoke, run_cli
    rc, out, err = invoke("eval", "x*y", "--x", "2", "--y", "3")
    rc, out, err = run_cli("eval", "x*y", "--x", "2", "--y", "3")
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent


def _runner() -> CliRunner:
    try:  # click < 8.2 mixes stderr into stdout unless told not to
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        return CliRunner()


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``gradcli ARGS`` in-process: (exit status, stdout, stderr)."""
    from gradcli.cli import main

    result = _runner().invoke(main, list(args), input=input, prog_name="gradcli", env=env)
    return result.exit_code, result.stdout, result.stderr


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child interpreter that imports this checkout's gradcli."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("GRADCLI_DEBUG", None)
    env.pop("GRADCLI_PLUGINS", None)
    env.update(extra)
    return env


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
