"""The README's list of functions is the registry's: every registered function, by group, its
aliases and the language's own forms (written by ``tools/readme_functions.py --write``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> Any:
    return load_script("tools/readme_functions.py")


def test_readme_lists_every_registered_function_by_group() -> None:
    tool = _tool()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert tool.START in text and tool.END in text, "the README has no generated list of functions"
    assert tool.rewritten(text) == text, (
        "README's list of functions is stale: run tools/readme_functions.py --write"
    )
