"""Regenerate gradcli/_lalr_tables.py (and _lalr_tables_first.py): the LALR(1) tables Lark builds
for grammars/gradcli.lark.

    python tools/build_parser.py [GRAMMAR [TARGET]]

Lark (a build and test dependency only) analyses the grammar; its parse table, its contextual
lexer's terminals for each state and its parse-tree builder's rules are written out as plain
literals, which gradcli/_lalr.py runs without importing lark. The grammar stays the one description
of the syntax: tests/test_parser_sync.py fails if the grammar changed since this was run, if Lark
now builds other tables from it, or if the two parsers disagree.

Lark numbers its states in an order that changes from run to run (it iterates over sets); they are
renumbered here in breadth-first order from the start state, so the same grammar gives the same file.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR = ROOT / "grammars" / "gradcli.lark"
TARGET = ROOT / "gradcli" / "_lalr_tables.py"
# Fields only a long text reads (gradcli/_lalr.py's lexing by first character): they are written to
# a module of their own beside TARGET (its name + "_first"), which TARGET loads on first use, so a
# short text's start does not load them.
LATER = ("PATTERNS", "FIRST")

# The names of the generated module, in order, each with its type and what it holds.
FIELDS = {
    "START": ("int", "the parser state a parse starts in"),
    "END": ("int", "the state that means the start rule was reduced at the end of the text"),
    "ACTIONS": (
        "tuple[dict[str, int], ...]",
        "per state, terminal -> next state (a shift, >= 0) or ~rule (a reduction, < 0)",
    ),
    "GOTOS": ("tuple[dict[str, int], ...]", "per state, rule name -> the state after reducing that rule"),
    "RULES": (
        "tuple[tuple[str, int, str, bool, tuple[tuple[int, bool, int], ...] | None, int], ...]",
        "per rule: (name, symbols on its right, transformer method, whether a lone child is passed "
        "up ('?rule'), None or the children kept as (index, splice a '_rule', Nones before it), "
        "Nones at the end (missing [optional] parts))",
    ),
    "TERMINALS": (
        "tuple[str, ...]",
        "every terminal's name (a transformer method of that name is called on its tokens)",
    ),
    "KEPT": (
        "frozenset[str]",
        "terminals some rule passes to the transformer (the others are filtered out of all)",
    ),
    "IGNORE": ("frozenset[str]", "%ignore terminals: lexed, then skipped"),
    "NEWLINES": (
        "frozenset[str]",
        "terminals that may hold a newline (only they move the line count, as in Lark)",
    ),
    "LEXERS": (
        "tuple[tuple[str, tuple[str, ...], dict[str, dict[str, str]]], ...]",
        "per distinct set of terminals: (one regex with a named group per terminal, in Lark's "
        "order, the terminals it tries, {regex terminal: {keyword: keyword's terminal}})",
    ),
    "STATE_LEXER": ("tuple[int, ...]", "per state, the lexer of the terminals it accepts"),
    "BLANK": (
        "str",
        "a character that starts an %ignore'd run of blanks in every lexer, whatever follows: "
        "the driver steps over it without a regex ('' for none)",
    ),
    "ROOT_LEXER": ("int", "the lexer of all terminals, to name what is found where a state's fail"),
    "PATTERNS": (
        "dict[str, str]",
        "every terminal's regex, as each lexer's regex holds it in the terminal's named group",
    ),
    "FIRST": (
        "tuple[tuple[tuple[str, tuple[str, ...]], ...], ...]",
        "per lexer, (ASCII characters, the lexer's terminals in its order that may match a text "
        "starting with any of them): the only alternatives its regex can match there (a character "
        "not listed: none, or not worked out)",
    ),
}


def grammar_digest(path: Path = GRAMMAR) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class UnsupportedGrammarError(Exception):
    """The grammar uses a Lark feature gradcli/_lalr.py does not run."""


def build(grammar: str) -> dict[str, Any]:
    """The tables Lark builds for ``grammar``, renumbered and reduced to literals."""
    from lark import Lark
    from lark.lexer import PatternStr, UnlessCallback
    from lark.parse_tree_builder import ChildFilterLALR, ChildFilterLALR_NoPlaceholders, ExpandSingleChild
    from lark.parsers.lalr_analysis import Shift

    lark = Lark(grammar, parser="lalr", lexer="contextual", maybe_placeholders=True)
    frontend = lark.parser
    table = frontend.parser._parse_table
    if len(table.start_states) != 1:
        raise UnsupportedGrammarError("more than one start rule")
    (start_rule,) = table.start_states
    terminals = {t.name for t in lark.terminals} | {"$END"}

    order = [table.start_states[start_rule]]  # Lark's state numbers, in breadth-first order
    number = {order[0]: 0}
    for state in order:
        for symbol in sorted(table.states[state]):
            action, target = table.states[state][symbol]
            if action is Shift and target not in number:
                number[target] = len(order)
                order.append(target)

    builders = lark._parse_tree_builder.rule_builders  # (rule, what wraps its transformer method)
    rule_index = {rule: i for i, (rule, _) in enumerate(builders)}
    actions, gotos = [], []
    for state in order:
        acts, goes = {}, {}
        for symbol, (action, arg) in sorted(table.states[state].items()):
            if symbol not in terminals:
                goes[symbol] = number[arg]
            elif action is Shift:
                acts[symbol] = number[arg]
            else:
                acts[symbol] = ~rule_index[arg]
        actions.append(acts)
        gotos.append(goes)

    rules: list[tuple[Any, ...]] = []
    kept: set[str] = set()
    for rule, wrappers in builders:
        include, trailing, expand_single = None, 0, False
        for wrapper in wrappers:
            if wrapper is ExpandSingleChild:
                expand_single = True
            elif wrapper.func is ChildFilterLALR:
                picked, trailing = wrapper.args
                include = tuple((i, bool(splice), nones) for i, splice, nones in picked)
            elif wrapper.func is ChildFilterLALR_NoPlaceholders:
                (picked,) = wrapper.args
                include = tuple((i, bool(splice), 0) for i, splice in picked)
            else:
                raise UnsupportedGrammarError(f"rule {rule}: parse-tree wrapper {wrapper!r}")
        positions = range(len(rule.expansion)) if include is None else [i for i, _, _ in include]
        kept.update(rule.expansion[i].name for i in positions if rule.expansion[i].is_term)
        name = rule.alias or rule.options.template_source or rule.origin.name
        rules.append(
            (str(rule.origin.name), len(rule.expansion), str(name), expand_single, include, trailing)
        )

    lexers: list[tuple[str, tuple[str, ...], dict[str, dict[str, str]]]] = []
    ignore: set[frozenset[str]] = set()
    newlines: set[str] = set()
    patterns = {str(t.name): t.pattern.to_regexp() for t in lark.terminals}

    def lexer_of(basic: Any) -> int:
        scanner = basic.scanner
        if len(scanner._mres) != 1:
            raise UnsupportedGrammarError("a lexer needs more than one regex")
        keywords: dict[str, dict[str, str]] = {}
        for regex_terminal, callback in sorted(basic.callback.items()):
            if not isinstance(callback, UnlessCallback):
                raise UnsupportedGrammarError(f"lexer callback {callback!r} on {regex_terminal}")
            for keyword in callback.scanner.terminals:
                if not isinstance(keyword.pattern, PatternStr) or keyword.pattern.flags:
                    raise UnsupportedGrammarError(
                        f"keyword {keyword.name} with flags {keyword.pattern.flags}"
                    )
                keywords.setdefault(regex_terminal, {})[keyword.pattern.value] = keyword.name
        ignore.add(basic.ignore_types)
        newlines.update(basic.newline_types)
        regex = scanner._mres[0].pattern
        # The driver builds a regex of some of a lexer's alternatives from PATTERNS (see FIRST).
        order = sorted(re.compile(regex).groupindex.items(), key=lambda item: item[1])
        if "|".join(f"(?P<{name}>{patterns.get(name)})" for name, _ in order) != regex:
            raise UnsupportedGrammarError("a lexer's regex is not its terminals' patterns, one group each")
        spec = (
            regex,
            tuple(sorted(scanner.allowed_types - basic.ignore_types)),
            keywords,
        )
        if spec not in lexers:
            lexers.append(spec)
        return lexers.index(spec)

    state_lexer = tuple(lexer_of(frontend.lexer.lexers[state]) for state in order)
    root_lexer = lexer_of(frontend.lexer.root_lexer)
    if len(ignore) != 1:
        raise UnsupportedGrammarError("lexers that differ in what they ignore")
    (ignore_types,) = ignore

    return {
        "BLANK": _blank(lexers, ignore_types, newlines),
        "START": 0,
        "END": number[table.end_states[start_rule]],
        "ACTIONS": tuple(actions),
        "GOTOS": tuple(gotos),
        "RULES": tuple(rules),
        "TERMINALS": tuple(sorted(t.name for t in lark.terminals)),
        "KEPT": frozenset(kept),
        "IGNORE": frozenset(ignore_types),
        "NEWLINES": frozenset(newlines),
        "LEXERS": tuple(lexers),
        "STATE_LEXER": state_lexer,
        "ROOT_LEXER": root_lexer,
        "PATTERNS": patterns,
        "FIRST": tuple(_first_characters(pattern) for pattern, _, _ in lexers),
    }


# The character classes of a regex, as sre_parse names them, each as a regex of its own.
_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}


def _sre_parse() -> Any:
    """Python's regex parser (its opcodes are names in the module)."""
    import importlib

    return importlib.import_module("re._parser" if sys.version_info >= (3, 11) else "sre_parse")


def _may_start(items: Any, candidate: str) -> bool:
    """Whether the parsed regex ``items`` may match a text that starts with ``candidate`` (True
    wherever this is not worked out)."""
    c = _sre_parse()
    code = ord(candidate)

    def in_set(items: Any) -> bool:
        negate, found = False, False
        for op, av in items:
            if op is c.NEGATE:
                negate = True
            elif op is c.LITERAL:
                found = found or av == code
            elif op is c.RANGE:
                found = found or av[0] <= code <= av[1]
            elif op is c.CATEGORY and str(av) in _CATEGORIES:
                found = found or bool(re.fullmatch(_CATEGORIES[str(av)], candidate))
            else:
                return True  # not understood: it may
        return found != negate

    def may_start(items: Any) -> bool:
        for op, av in items:
            if op is c.LITERAL:
                return bool(av == code)
            if op is c.NOT_LITERAL:
                return bool(av != code)
            if op is c.IN:
                return in_set(av)
            if op is c.SUBPATTERN:  # a group (one that may match nothing, may: see the end)
                if (av[1] | av[2]) & ~re.IGNORECASE:
                    return True  # flags (other than a case): not worked out
                if av[1] & re.IGNORECASE and candidate.lower() != candidate.upper():
                    return True  # a letter in any case: not worked out
                return may_start(av[3])
            if op is c.BRANCH:
                return any(may_start(alt) for alt in av[1])
            if op in (c.MAX_REPEAT, c.MIN_REPEAT):
                if may_start(av[2]):
                    return True
                if av[0] > 0:
                    return False
                continue  # it may match nothing: what follows decides
            return True
        return True  # may match the empty text

    return may_start(items)


def _alternatives(pattern: str) -> list[tuple[str | None, Any]]:
    """A lexer's regex as its alternatives: (the terminal of its named group, its parsed regex)."""
    c = _sre_parse()
    names = {number: name for name, number in re.compile(pattern).groupindex.items()}
    parsed = c.parse(pattern)
    if parsed.state.flags & ~re.UNICODE:  # flags for the whole regex: not worked out
        return [(None, list(parsed))]
    tree = list(parsed)
    alternatives = tree[0][1][1] if len(tree) == 1 and tree[0][0] is c.BRANCH else [tree]
    named = []
    for alternative in alternatives:
        op, av = alternative[0]
        named.append((names.get(av[0]) if op is c.SUBPATTERN else None, alternative))
    return named


def _first_characters(pattern: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """For a lexer's regex: which of its terminals may match a text starting with each ASCII
    character, grouped by the terminals (in the regex's order). Where a text starts with one of
    those characters, a regex of those alternatives alone, in the same order, matches what the
    whole one does: the others cannot match there. A character no terminal may start is left out,
    as is any where an alternative is not a named group (the driver tries the whole regex)."""
    alternatives = _alternatives(pattern)
    if any(name is None for name, _ in alternatives):
        return ()
    groups: dict[tuple[str, ...], str] = {}
    for code in range(128):
        candidate = chr(code)
        names = tuple(str(name) for name, items in alternatives if _may_start(items, candidate))
        if names:
            groups[names] = groups.get(names, "") + candidate
    return tuple((chars, names) for names, chars in groups.items())


def _blank(lexers: list[Any], ignore: frozenset[str], newlines: set[str], candidate: str = " ") -> str:
    """``candidate`` where, in every lexer's regex, the first alternative that may match a text
    starting with it is an %ignore'd terminal that holds no newline and matches one or more
    characters of a set holding it: there, whatever follows, the lexer's token is that blank run,
    skipped; stepping over the character alone and lexing on from the next one finds the same
    tokens. '' where any lexer could read it otherwise."""
    c = _sre_parse()
    code = ord(candidate)

    def blank_run(items: Any) -> bool:
        """``items`` is one repetition (at least once) of a set that holds the candidate."""
        if len(items) != 1 or items[0][0] is not c.MAX_REPEAT or items[0][1][0] < 1:
            return False
        body = items[0][1][2]
        return len(body) == 1 and (
            body[0][0] is c.IN
            and _may_start(body, candidate)
            or body[0][0] is c.LITERAL
            and body[0][1] == code
        )

    for pattern, _, _ in lexers:
        for name, alternative in _alternatives(pattern):
            if not _may_start(alternative, candidate):
                continue
            (op, av), *rest = alternative
            if rest or name not in ignore or name in newlines or not blank_run(av[3]):
                return ""
            break
        else:
            return ""
    return candidate


# The end of TARGET: where it finds the fields of LATER.
_LATER_GETATTR = f'''

def __getattr__(name: str) -> object:
    """{" and ".join(LATER)}, which only a long text reads, from their own module, on first use."""
    if name in {LATER!r}:
        import importlib

        return getattr(importlib.import_module(__name__ + "_first"), name)
    raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}")
'''


def render(tables: dict[str, Any], digest: str, later: bool = False) -> str:
    """TARGET's text (``later``: the text of the module of the fields of LATER)."""
    import lark

    lines = [
        "# Generated by tools/build_parser.py from grammars/gradcli.lark: do not edit.",
        f"# Lark {lark.__version__}'s LALR(1) tables for the grammar, run by gradcli/_lalr.py"
        + (" (the lexing tables only a long text reads)." if later else "."),
        "from __future__ import annotations",
    ]
    if not later:
        lines += ["", f"GRAMMAR_SHA256 = {digest!r}"]
    for name, (kind, what) in FIELDS.items():
        if (name in LATER) != later:
            continue
        value = tables[name]
        if isinstance(value, frozenset):
            text = f"frozenset({sorted(value)!r})"
        elif isinstance(value, tuple):  # one item a line, numbered: a state, a rule or a lexer
            text = "(\n" + "".join(f"    {item!r},  # {i}\n" for i, item in enumerate(value)) + ")"
        else:
            text = repr(value)
        lines += ["", f"# {what}", f"{name}: {kind} = {text}"]
    return "\n".join(lines) + "\n" + ("" if later else _LATER_GETATTR)


def main(argv: list[str]) -> None:
    grammar_path = Path(argv[0]) if argv else GRAMMAR
    target = Path(argv[1]) if len(argv) > 1 else TARGET
    grammar = grammar_path.read_text(encoding="utf-8")
    tables, digest = build(grammar), grammar_digest(grammar_path)
    target.write_text(render(tables, digest), encoding="utf-8")
    first = target.with_name(target.stem + "_first.py")
    first.write_text(render(tables, digest, later=True), encoding="utf-8")
    print(f"wrote {target} and {first}")


if __name__ == "__main__":
    main(sys.argv[1:])
