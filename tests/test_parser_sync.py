"""The parser gradcli runs (gradcli/_lalr.py on gradcli/_lalr_tables.py) is Lark's LALR parser for
grammars/gradcli.lark: the tables are what Lark builds from this grammar today, and on every text
tried (the samples below, every string literal of the test suite, the README, the reference cases,
and generated soups of the grammar's tokens and mutations of valid expressions) both give the same
Program or the same error message, and the same tree or the same error, field by field.

If a test here fails after a grammar change, run `python tools/build_parser.py`.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from helpers_parser import ROOT, build_parser, outcome
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz import EXAMPLES, FUZZ, REFERENCE, SEEDS, grammar_chars, mutated, token_soup

from gradcli import _lalr, _lalr_tables
from gradcli.language import grammar_path, lark_parser, parse
from gradcli.program import ExpressionError

REBUILD = (
    "the grammar or Lark changed: run `python tools/build_parser.py` (if the parsers still disagree, "
    "gradcli/_lalr.py does not do what Lark does)"
)

SAMPLES = [
    "add(square(x), square(y))",
    "-x**2 + 2**3**2 ^ y",
    "a = x*y; b = sin(a)\n# comment\na + b;",
    "s, c = sincos(x); s*c, s+c",
    "sum(x[1:3, ::2] @ transpose(w), axis=0) / .5e1",
    "[[1, 2], [3, 4]] * x[-1] - grad(x**2, x)",
    "x + ",
    "sin(x",
    "x $ y",
    "[1 2]",
    "f(x,)",
    "a, b = sin(x); a",
    "",
    "# only a comment",
    "x +\n y",
    "x \\\n + y\r\n  z = 1 \t\f",
    "x[:]; x[::]; x[1:]; x[:2:]; x[::3]; [] ",
    "=",
    "x ** ** y",
    "f(a=1, 2)(3)",
]


@pytest.fixture(scope="module", autouse=True, params=["full lexer first", "states' lexers"])
def lexing(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test here runs both ways the driver lexes (see ``_lalr.Parser.parse``): a short text
    tries the grammar's full lexer first, a long one only the states' own lexers."""
    before = _lalr.Parser.short_text
    _lalr.Parser.short_text = 10**9 if request.param == "full lexer first" else -1
    yield
    _lalr.Parser.short_text = before


def _literals_of_the_test_suite() -> set[str]:
    texts: set[str] = set()
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.add(node.value)
    return texts


def _reference_expressions() -> set[str]:
    return {
        json.loads(line)["expr"]
        for path in sorted(REFERENCE.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }


CORPUS = sorted(
    set(SAMPLES)
    | set(SEEDS)
    | _literals_of_the_test_suite()
    | _reference_expressions()
    | set((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
)


@cache
def _lark_program_parser() -> Any:
    return lark_parser()


@cache
def _tree_parsers() -> tuple[Any, Any]:
    from lark import Lark

    lark = Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", maybe_placeholders=True)
    return _lalr.Parser(_lalr_tables).parse, lark.parse


def _program(text: str, parser: Any = None) -> str:
    try:
        program = parse(text, parser)
    except ExpressionError as exc:
        return f"error: {exc}"
    ops = [
        (op.kind, op.args, op.spec.name if op.spec else None, repr(op.params), op.n_outputs)
        for op in program.ops
    ]
    return json.dumps([program.inputs, program.outputs, ops, sorted(program.names.items())], default=str)


def _disagreements(texts: list[str]) -> list[str]:
    ours, theirs = _tree_parsers()
    return [
        text
        for text in texts
        if _program(text) != _program(text, _lark_program_parser())
        or outcome(ours, text) != outcome(theirs, text)
    ]


def test_tables_were_built_from_this_grammar() -> None:
    assert _lalr_tables.GRAMMAR_SHA256 == build_parser().grammar_digest(grammar_path()), REBUILD


def test_tables_are_what_lark_builds_from_the_grammar() -> None:
    built = build_parser().build(grammar_path().read_text(encoding="utf-8"))
    for name, value in built.items():
        assert getattr(_lalr_tables, name) == value, f"{name}: {REBUILD}"


def test_driver_and_lark_agree_on_the_corpus() -> None:
    assert len(CORPUS) > 1000  # the test suite's literals are found
    wrong = _disagreements(CORPUS)
    examples = ", ".join(repr(text[:60]) for text in wrong[:5])
    assert not wrong, f"{len(wrong)} of {len(CORPUS)} texts differ, e.g. {examples}; {REBUILD}"


@pytest.mark.parametrize("text", SAMPLES)
def test_driver_and_lark_give_the_same_program_or_message(text: str) -> None:
    assert _program(text) == _program(text, _lark_program_parser()), REBUILD


PARSER_FUZZ = settings(FUZZ, max_examples=5 * EXAMPLES)


@PARSER_FUZZ
@given(text=token_soup | grammar_chars | mutated() | st.text(max_size=40))
def test_driver_and_lark_agree_on_generated_text(text: str) -> None:
    assert not _disagreements([text]), REBUILD


@PARSER_FUZZ
@given(lines=st.lists(st.sampled_from(SEEDS) | token_soup, min_size=2, max_size=5), joins=st.data())
def test_driver_and_lark_agree_on_several_lines(lines: list[str], joins: st.DataObject) -> None:
    seps = joins.draw(
        st.lists(st.sampled_from(["\n", "; ", "\r\n", " \\\n", "\n# note\n"]), min_size=len(lines))
    )
    text = "".join(line + sep for line, sep in zip(lines, seps))
    assert not _disagreements([text]), REBUILD


def test_hundred_thousand_deep_nesting_parses_without_recursion() -> None:
    depth = 100_000
    assert sys.getrecursionlimit() < depth
    parse_tree = _lalr.Parser(_lalr_tables).parse
    for text in ("(" * depth + "x" + ")" * depth, "-" * depth + "x", "x" + "**x" * depth):
        assert parse_tree(text).data == "start"


def test_parsing_imports_no_lark_and_nothing_but_the_driver_and_its_tables() -> None:
    code = (
        "import sys, re, typing, collections.abc, gradcli\n"
        "sys.modules['lark'] = None  # importing lark now fails\n"
        "before = set(sys.modules)\n"
        "from gradcli import _lalr, _lalr_tables\n"
        "_lalr.Parser(_lalr_tables).parse('a = x*y; sin(a) + [1, 2][0]')\n"
        "print(sorted(set(sys.modules) - before))\n"
        "from gradcli.language import parse\n"
        "print(len(parse('a = x*y; sin(a) + [1, 2][0]').ops))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["['gradcli._lalr', 'gradcli._lalr_tables']", "7"]
