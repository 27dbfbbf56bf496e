"""The wheel is a working install: built from a copy of the source, installed into a fresh virtual
environment, and run from a directory that is not the checkout, it finds its grammar and answers
the README's main command.

No network is needed where the running interpreter's setuptools can build wheels itself (it then
builds without isolation); otherwise pip builds in isolation, as ``pip install .`` does. The new
environment borrows numpy, click and lark from the running interpreter through a ``.pth`` file
instead of downloading them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Builds a wheel and a virtual environment: left out of the quick loop.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
README_COMMAND = ["eval", "add(square(x), square(y))", "--x", "2", "--y", "3"]


def _setuptools_builds_wheels() -> bool:
    """Whether the running interpreter can build our wheel with --no-build-isolation."""
    try:
        import setuptools
    except ImportError:
        return False
    version = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
    if version < (61, 0):  # pyproject.toml's [project] table
        return False
    if version >= (70, 1):  # bdist_wheel moved into setuptools
        return True
    try:
        import wheel  # noqa: F401
    except ImportError:
        return False
    return True


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "GRADCLI_", "VIRTUAL_ENV"))
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def _dependency_dirs() -> list[str]:
    """Where the running interpreter finds the runtime dependencies."""
    import click
    import lark
    import numpy

    return sorted({str(Path(m.__file__).resolve().parent.parent) for m in (numpy, click, lark)})


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its bin directory."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".venv*",
            ".pytest_cache",
            ".ruff_cache",
            ".hypothesis",
            "tests",
            "bench",
        ),
    )
    wheels = root / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(source)]
    if _setuptools_builds_wheels():
        build.insert(5, "--no-build-isolation")
    _run(build, env=_clean_env())
    (wheel,) = wheels.glob("gradcli-*.whl")

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], env=_clean_env())
    python = venv / "bin" / "python"
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        env=_clean_env(),
    )
    # After installing, so that pip saw only the new environment.
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env=_clean_env()
    ).stdout.strip()
    Path(purelib, "_gradcli_test_dependencies.pth").write_text("\n".join(_dependency_dirs()) + "\n")
    return venv / "bin"


def _run_installed(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "gradcli"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_clean_env(XDG_CACHE_HOME=str(cwd / "cache")),
        timeout=120,
    )


def test_installed_wheel_runs_the_readme_command_from_another_directory(
    installed: Path, tmp_path: Path
) -> None:
    proc = _run_installed(installed, tmp_path, *README_COMMAND)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "value  13\ngrad x 4\ngrad y 6\n", "")


def test_installed_wheel_imports_gradcli_from_the_new_environment(installed: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            str(installed / "python"),
            "-c",
            "import gradcli.language as m; print(m.__file__, m.grammar_path())",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_clean_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    module, grammar = proc.stdout.split()
    venv = installed.parent.resolve()
    assert Path(module).resolve().is_relative_to(venv)
    assert Path(grammar).resolve().is_relative_to(venv)
    assert not Path(module).resolve().is_relative_to(REPO)


def test_installed_wheel_reports_its_version(installed: Path, tmp_path: Path) -> None:
    import gradcli

    proc = _run_installed(installed, tmp_path, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"gradcli, version {gradcli.__version__}"


def test_installed_wheel_parses_and_reports_errors(installed: Path, tmp_path: Path) -> None:
    proc = _run_installed(installed, tmp_path, "eval", "x + * y", "--x", "1", "--y", "2")
    assert proc.returncode == 2
    assert "^" in proc.stderr and "Traceback" not in proc.stderr
