"""Every `$ gradcli` example of the README's section "Use the gradients" runs as shown.

The output shown is compared line by line: the text exactly (runs of spaces as one), numbers to
1e-6 relative, so that the last digits SciPy's next release finds do not break the README. Lines
shown starting with ``error:`` are stderr, and then the exit status is 1; an example with no
output shown must exit 0.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from conftest import REPO, invoke

SECTION = "## Use the gradients"
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def examples(section: str = SECTION) -> list[tuple[str, list[str]]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(section)
    end = text.find("\n## ", start + 1)
    lines = text[start : end if end != -1 else len(text)].splitlines()
    found: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("    $ gradcli "):
            i += 1
            continue
        command = line[len("    $ ") :]
        while command.endswith("\\"):
            i += 1
            command = command[:-1] + lines[i].strip()
        i += 1
        shown = []
        while i < len(lines) and lines[i].startswith("    ") and not lines[i].startswith("    $ "):
            shown.append(lines[i][4:])
            i += 1
        found.append((command, shown))
    return found


EXAMPLES = examples()


def same(actual: str, expected: str) -> bool:
    if actual == expected:
        return True
    skeleton = [" ".join(NUMBER.sub("#", t).split()) for t in (actual, expected)]
    numbers = [[float(n) for n in NUMBER.findall(t)] for t in (actual, expected)]
    return (
        skeleton[0] == skeleton[1]
        and len(numbers[0]) == len(numbers[1])
        and all(a == pytest.approx(b, rel=1e-6, abs=1e-9) for a, b in zip(*numbers))
    )


def test_the_section_has_examples_of_each_command() -> None:
    commands = {shlex.split(c)[1] for c, _ in EXAMPLES}
    assert commands == {"minimize", "root", "plot"}


@pytest.mark.parametrize(("command", "shown"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_example_prints_what_the_readme_shows(
    command: str, shown: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    rc, out, err = invoke(*shlex.split(command)[1:], env={"COLUMNS": "80", "LINES": "24"})
    errors = [line for line in shown if line.startswith("error: ")]
    assert rc == (1 if errors else 0), err
    assert err.splitlines() == errors or not shown and err == ""
    if shown:
        expected = [line for line in shown if not line.startswith("error: ")]
        actual = out.splitlines()
        assert len(actual) == len(expected), out
        for a, e in zip(actual, expected):
            assert same(a, e), f"\n{a}\n{e}"
