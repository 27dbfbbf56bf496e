"""Every `$ gradcli` example of the README's section "The language" runs as shown: stdout line by
line, lines shown starting with ``error:`` (and the caret under them) on stderr with exit status 2
(an expression that does not parse), else exit status 0 and nothing on stderr."""

from __future__ import annotations

import shlex

import pytest
from conftest import invoke
from test_readme_optimize import examples, same

EXAMPLES = examples("## The language")


def test_the_section_has_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize(("command", "shown"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_language_example_prints_what_the_readme_shows(command: str, shown: list[str]) -> None:
    rc, out, err = invoke(*shlex.split(command)[1:], env={"COLUMNS": "80", "LINES": "24"})
    first_error = next((k for k, line in enumerate(shown) if line.startswith("error: ")), len(shown))
    expected_out, expected_err = shown[:first_error], shown[first_error:]
    assert rc == (2 if expected_err else 0), err
    assert err.splitlines() == expected_err
    actual = out.splitlines()
    assert len(actual) == len(expected_out), out
    for a, e in zip(actual, expected_out):
        assert same(a, e), f"\n{a}\n{e}"
