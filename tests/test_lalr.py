"""gradcli/_lalr.py runs the tables of any grammar as Lark's LALR parser does, not only gradcli's
today: on a grammar using the Lark features gradcli's grammar uses or may come to use (keywords that
are also names, terminal priorities, ``?rule``, ``_rule``, ``!rule``, templates, aliases,
``[optional]`` placeholders, unicode, several ``%ignore``, terminals that only some states accept),
the driver and Lark give the same tree or the same error, and call the same transformer methods in
the same order with the same children."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from helpers_parser import build_parser, outcome, shape, tables
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz import EXAMPLES, FUZZ

from gradcli import _lalr

GRAMMAR = r"""
start: _NL* (_stmt _NL*)*
_stmt: if_stmt | for_stmt | assign | print_stmt | expr_stmt
if_stmt: "if" expr ":" block ["else" ":" block]
for_stmt: "for" NAME "in" expr ":" block
block: "{" _NL* (_stmt _NL*)* "}"
assign: NAME "=" expr _END
!print_stmt: "print" _args{expr} _END
?expr_stmt: expr _END
_args{item}: item ("," item)*
?expr: or_test ["if" or_test "else" expr]
?or_test: or_test "or" and_test -> or_
        | and_test
?and_test: and_test "and" not_test -> and_
         | not_test
?not_test: "not" not_test -> not_
         | comparison
?comparison: sum (COMPARE sum)*
?sum: sum ("+"|"-") term -> add
    | term
?term: term MULOP atom -> mul
     | atom
?atom: NAME -> var
     | NUMBER -> number
     | HEX -> number
     | STRING
     | "(" expr ")"
     | "[" [_args{expr}] "]" -> list
     | NAME "(" [_args{expr}] ")" -> call
     | KW_TRUE
MULOP: "*" | "/" | "//" | "%" | "×"
COMPARE: "<" | ">" | "==" | "!=" | "<=" | ">=" | "≤"
KW_TRUE.2: "True"
HEX.3: /0x[0-9a-f]+/i
NUMBER: /\d+(\.\d+)?/
STRING: /"[^"\n]*"/
NAME: /[^\W\d]\w*/
_END: ";" | /\r?\n/
_NL: /\r?\n/
COMMENT: /#[^\n]*/
%ignore COMMENT
%ignore /[ \t\u00a0]+/
"""

SEEDS = [
    "x = 1;\nprint x, y + 2;\n",
    "if a < b <= c ≤ d: { y = [1, 2, f(x), []]\n } else: { print not x and y or z; }\n",
    "for i in [0x1F, 2]: { x = x * i // 2 % 3 × 4;\n }\n",
    "x = a if b else c if d else e;",
    "True; Truth; iffy; index; fore; notx;\n",
    "for x index: {}\n",  # where only the keyword fits, "index" starts with it
    'θ = "s" + f();  # comment\r\n\n',
    "if x: {} else: {}\nprint (x);",
]
# Each fails in its own way: a keyword glued to a name, a token no state here takes, one that
# exists but not here, a character no terminal starts with, an unfinished string, the end too soon.
BROKEN = ["Truex;", "x = ;", "if x: { print }", "for x in y {}", "x $ y;", 'print "s;\n', "x = (1"]
TOKENS = [
    *("if", "else", "for", "in", "print", "not", "and", "or", "True", "Truex", "iffy", "index"),
    *("x", "y1", "θ", "_", "0x1F", "0XAB", "12", "3.5", '"s"', '"', "+", "-", "*", "/", "//"),
    *("%", "×", "<", "<=", "≤", "==", "!=", "=", "(", ")", "[", "]", "{", "}", ",", ":", ";"),
    *("\n", "\r\n", "# c\n", " ", "\u00a0", "\t", "$", "\\", "é", "0"),
]


@pytest.fixture(scope="module", autouse=True, params=["full lexer first", "states' lexers"])
def lexing(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test here runs both ways the driver lexes (see ``_lalr.Parser.parse``): a short text
    tries the grammar's full lexer first, a long one only the states' own lexers, and of those
    only the terminals that may start at each character (FIRST in the tables)."""
    before = _lalr.Parser.short_text
    _lalr.Parser.short_text = 10**9 if request.param == "full lexer first" else -1
    yield
    _lalr.Parser.short_text = before


def _lark(transformer: Any = None) -> Any:
    from lark import Lark

    return Lark(GRAMMAR, parser="lalr", maybe_placeholders=True, transformer=transformer)


TABLES = tables(GRAMMAR)
OURS, THEIRS = _lalr.Parser(TABLES).parse, _lark().parse


class Recorder:
    """A transformer with methods for some rules and one terminal: it notes each call."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def _note(self, name: str, children: Any) -> tuple[str, int]:
        self.calls.append((name, shape(children)))
        return (name, len(self.calls))

    def assign(self, children: list[Any]) -> Any:
        return self._note("assign", children)

    def add(self, children: list[Any]) -> Any:
        return self._note("add", children)

    def call(self, children: list[Any]) -> Any:
        return self._note("call", children)

    def if_stmt(self, children: list[Any]) -> Any:
        return self._note("if_stmt", children)

    def print_stmt(self, children: list[Any]) -> Any:
        return self._note("print_stmt", children)

    def NAME(self, token: Any) -> Any:  # noqa: N802 - named after the terminal, as Lark requires
        return self._note("NAME", token)


OUR_RECORDER, THEIR_RECORDER = Recorder(), Recorder()
OURS_RECORDING = _lalr.Parser(TABLES, OUR_RECORDER).parse
THEIRS_RECORDING = _lark(THEIR_RECORDER).parse


def _same_calls(text: str) -> tuple[Any, Any]:
    OUR_RECORDER.calls.clear()
    THEIR_RECORDER.calls.clear()
    ours = outcome(OURS_RECORDING, text)
    theirs = outcome(THEIRS_RECORDING, text)
    return (ours, list(OUR_RECORDER.calls)), (theirs, list(THEIR_RECORDER.calls))


soup = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=30).map("".join)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        piece = draw(st.sampled_from(TOKENS) | st.just(""))
        text = text[:i] + piece + text[i + draw(st.integers(0, 3)) :]
    return text


@pytest.mark.parametrize("text", SEEDS)
def test_valid_programs_give_the_same_tree(text: str) -> None:
    ours = outcome(OURS, text)
    assert ours[0] == "ok", ours
    assert ours == outcome(THEIRS, text)


@pytest.mark.parametrize("text", BROKEN)
def test_broken_programs_give_the_same_error(text: str) -> None:
    ours = outcome(OURS, text)
    assert ours[0] == "error", ours
    assert ours == outcome(THEIRS, text)


@settings(FUZZ, max_examples=5 * EXAMPLES)
@given(text=soup | mutated())
def test_any_text_gives_the_same_tree_or_error(text: str) -> None:
    assert outcome(OURS, text) == outcome(THEIRS, text)


@pytest.mark.parametrize("text", SEEDS)
def test_the_same_transformer_methods_are_called_with_the_same_children(text: str) -> None:
    ours, theirs = _same_calls(text)
    assert ours[1], "the transformer was never called"
    assert ours == theirs


@settings(FUZZ, max_examples=2 * EXAMPLES)
@given(text=mutated())
def test_broken_programs_call_the_same_methods_before_the_error(text: str) -> None:
    ours, theirs = _same_calls(text)
    assert ours == theirs


def test_a_case_insensitive_keyword_is_refused_at_build_time() -> None:
    generator = build_parser()
    with pytest.raises(generator.UnsupportedGrammarError, match="flags"):
        generator.build('start: "select"i NAME\nNAME: /[a-z]+/\n%ignore " "\n')


def test_a_blank_that_every_lexer_ignores_is_stepped_over() -> None:
    """The driver steps over a space without a regex only where the tables say that every lexer
    takes it as the start of an ignored run of blanks, whatever follows; this file's grammar is
    one, so every test above runs that path against Lark."""
    assert TABLES.BLANK == " "


SPACE_GRAMMARS = {
    # a terminal tried before the blanks (a higher priority) that starts with a space
    "a terminal starts with it": 'start: (NAME | SPACED)+\nNAME: /[a-z]+/\nSPACED.2: / +x/\n%ignore " "\n',
    # the same, case-insensitive
    "a terminal with flags starts with it": 'start: (NAME | X)+\nNAME: /[a-z]+/\nX.2: / x/i\n%ignore " "\n',
    # the ignored run may hold a newline, which moves the line count
    "the run holds a newline": "start: NAME+\nNAME: /[a-z]+/\n%ignore /[ \\n]+/\n",
    # a space is a token of its own
    "it is not ignored": 'start: NAME (SPACE NAME)*\nNAME: /[a-z]+/\nSPACE: / /\n%ignore "\\t"\n',
}


@pytest.mark.parametrize("why", SPACE_GRAMMARS)
def test_a_space_is_lexed_where_some_lexer_could_read_it_otherwise(why: str) -> None:
    from lark import Lark

    grammar = SPACE_GRAMMARS[why]
    built = tables(grammar)
    assert built.BLANK == ""
    ours, theirs = _lalr.Parser(built).parse, Lark(grammar, parser="lalr").parse
    for text in ["ab cd", "ab  x", "ab X", "ab\n cd x", "a b", "a\tb"]:
        assert outcome(ours, text) == outcome(theirs, text)


FIRST_GRAMMAR = r"""
start: (NAME | NUMBER | OP | SELECT | "<" | "<=" | "-")+
NAME: /[a-zA-Z]+/
SELECT.2: /sel[a-z]*/i
NUMBER: /-?[0-9]+/
OP: "->" | "<-"
%ignore " "
"""


@pytest.mark.parametrize(
    "text",
    ["SELECT x", "Selected sel Sx", "a <= b < c -> d <- -3 - 4", "-x", "<", "x y$", "sEl -", "x <"],
)
def test_only_the_terminals_that_may_start_at_a_character_are_tried_there(text: str) -> None:
    """A case-insensitive terminal that starts with a letter in either case, one-character
    terminals that start longer ones, a number that may start with the character of an operator:
    each is among those tried where it may start, and a character where none may takes the whole
    regex, whose error is the same."""
    from lark import Lark

    built = tables(FIRST_GRAMMAR)
    ours, theirs = _lalr.Parser(built).parse, Lark(FIRST_GRAMMAR, parser="lalr").parse
    assert outcome(ours, text) == outcome(theirs, text)


SUFFIXES = ["", " ", "x", "X1", "_", "0", "9.5e-3", "=", "*", "**", "/", "<=", "'", '"s"', ".", "é"]
SUFFIXES += ["\n", "\r\n", "\\\n", "# c"]


def test_a_regex_of_the_terminals_that_may_start_at_a_character_matches_as_the_whole_one() -> None:
    """For each lexer of this file's grammars and gradcli's, at each character FIRST lists: the
    regex of the terminals listed, in order, matches every text tried starting there as the
    lexer's whole regex does (the same terminal, the same length, or no match)."""
    from gradcli import _lalr_tables

    for built in (TABLES, tables(FIRST_GRAMMAR), _lalr_tables):
        assert len(built.FIRST) == len(built.LEXERS)
        for (pattern, _, _), first in zip(built.LEXERS, built.FIRST):
            whole = re.compile(pattern)
            for chars, names in first:
                some = re.compile("|".join(f"(?P<{n}>{built.PATTERNS[n]})" for n in names))
                for char in chars:
                    for suffix in SUFFIXES:
                        text = char + suffix
                        m, n = whole.match(text), some.match(text)
                        assert (m and (m.lastgroup, m.end())) == (n and (n.lastgroup, n.end())), text
