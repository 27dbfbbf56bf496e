"""The README tells the truth: every ``$ gradcli ...`` example in it is run, and what it prints
(stdout, then stderr) must be what the README shows under it, exactly. The section "Use the
gradients", whose numbers come from SciPy's iterations, is compared to 1e-6 instead, by
tests/test_readme_optimize.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO, run_shell

README = REPO / "README.md"


def examples(text: str) -> list[tuple[str, str]]:
    """(command, output) for each ``$ `` line of the README's indented code blocks. A command
    continues over lines ending with a backslash; its output is what follows, to the end of the
    block or the next ``$``."""
    found: list[tuple[str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("    $ "):
            i += 1
            continue
        command = [lines[i][6:]]
        while command[-1].endswith("\\"):
            i += 1
            command.append(lines[i].strip())
        output: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith("    $ "):
            if lines[i].strip() and not lines[i].startswith("    "):
                break
            output.append(lines[i][4:])
            i += 1
        found.append(("\n".join(command), "\n".join(output).strip("\n") + "\n"))
    return found


OPTIMIZE_SECTION = "## Use the gradients"


def _without_the_optimize_section(text: str) -> str:
    start = text.find(OPTIMIZE_SECTION)
    if start == -1:
        return text
    end = text.find("\n## ", start + 1)
    return text[:start] + (text[end:] if end != -1 else "")


EXAMPLES = examples(_without_the_optimize_section(README.read_text(encoding="utf-8")))


def test_the_readme_has_examples_of_every_command() -> None:
    commands = {re.match(r"(?:.*\| )?gradcli (\w+)", c).group(1) for c, _ in EXAMPLES}  # type: ignore[union-attr]
    assert {"eval", "hessian", "check", "explain"} <= commands
    assert len(EXAMPLES) >= 10


def test_the_example_finder_reads_continuations_and_blank_lines() -> None:
    text = "    $ gradcli a \\\n        --b 1\n    out\n\n    more\nprose\n    $ gradcli c\n    x\n"
    assert examples(text) == [("gradcli a \\\n--b 1", "out\n\nmore\n"), ("gradcli c", "x\n")]


@pytest.mark.slow
@pytest.mark.parametrize(("command", "shown"), EXAMPLES, ids=[c.split("\n")[0][:60] for c, _ in EXAMPLES])
def test_readme_example_prints_what_the_readme_shows(command: str, shown: str, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    _, out, err = run_shell(command, cwd=tmp_path)
    assert out + err == shown
