"""Run Lark's LALR(1) tables for a grammar without Lark: a table-driven parser and its contextual lexer.

The tables are what Lark itself builds from the grammar (``tools/build_parser.py`` writes them as
a module of literals, e.g. ``gradcli/_lalr_tables.py``); this module only runs them, doing what
``Lark(grammar, parser="lalr", maybe_placeholders=True, transformer=t).parse(text)`` does:

- the contextual lexer: in each parser state only the terminals that state accepts are tried, in
  Lark's order (priority, then longest possible match, then longest pattern, then name), with
  ``%ignore`` terminals skipped; a name-like string terminal (a keyword such as ``"if"``) is
  matched as the regex terminal it collides with (``NAME``) and retyped when the text is exactly
  the keyword, where that state accepts both; where a state's terminals do not match, the
  grammar's full set of terminals is tried so the error names the token found there;
- each reduction calls the transformer's method named after the rule's alias or rule (or builds a
  :class:`Tree` where it has none) with the children Lark would pass: anonymous and ``_UNDERSCORE``
  terminals filtered out, ``_rule`` children spliced in, ``None`` for each missing ``[optional]``
  part, and a ``?rule``'s single child passed up as it is; a transformer method named after a
  terminal is called on each token of that terminal as it is shifted (methods take the list of
  children as they are: Lark's ``v_args`` wrappers and ``__default__`` are not looked for);
- errors are :class:`UnexpectedCharacters` and :class:`UnexpectedToken` with Lark's attributes,
  expected sets and positions.

The parse is one loop over an explicit stack, so nesting depth is bounded by memory, not by Python's
recursion limit. Regular expressions are compiled on first use, one per distinct set of terminals;
a short text tries the full set's first, and most never need another. A long text also compiles,
per set of terminals that may start at some character, a regex of those alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any


class Token(str):
    """A piece of the text, as ``lark.Token``: a ``str`` with its terminal's name and position."""

    __slots__ = ("type", "start_pos", "value", "line", "column", "end_line", "end_column", "end_pos")

    type: str
    start_pos: int | None
    value: Any
    line: int | None
    column: int | None
    end_line: int | None
    end_column: int | None
    end_pos: int | None

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {self.value!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Token) and self.type != other.type:
            return False
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def _token(
    kind: str,
    value: str,
    start_pos: int | None = None,
    line: int | None = None,
    column: int | None = None,
    end_line: int | None = None,
    end_column: int | None = None,
    end_pos: int | None = None,
) -> Token:
    token = str.__new__(Token, value)
    token.type = kind
    token.start_pos = start_pos
    token.value = value
    token.line = line
    token.column = column
    token.end_line = end_line
    token.end_column = end_column
    token.end_pos = end_pos
    return token


def _advance(text: str, start: int, end: int, line: int, line_start: int) -> tuple[int, int]:
    """The line and where it starts after the text from ``start`` to ``end`` (Lark's line counter)."""
    count = text.count("\n", start, end)
    if count:
        return line + count, text.rindex("\n", start, end) + 1
    return line, line_start


# A token before it is built: terminal, start, line, column, end line, end column, end.
_Last = tuple[str, int, int, int, int, int, int]
# A lexer's ``match``, and per terminal: its keywords (text -> terminal, or None), whether it is
# %ignore'd, whether it may hold a newline (Lark counts lines only in those).
_Scanner = tuple[Callable[..., Any], dict[str, tuple[dict[str, str] | None, bool, bool]]]
# Per character that may start a token: the ``match`` of a regex of the only alternatives that
# may match there, or the terminal itself where that is one character, its only match.
_First = dict[str, Callable[..., Any] | str]
# A rule: its left-hand side, length, what a reduction calls (None: a unit rule, which calls
# nothing), and the positions of the filtered terminals to delete from the children, last first.
_Reducer = tuple[str, int, Callable[[list[Any]], Any] | None, tuple[int, ...]]


def _rebuild(text: str, last: _Last) -> Token:
    kind, start, line, column, end_line, end_column, end = last
    return _token(kind, text[start:end], start, line, column, end_line, end_column, end)


def _lookahead(text: str, kind: str, last: _Last | None, token: Token | None) -> Token:
    """The token the parser could not take, as Lark builds it: ``$END`` at the last token."""
    if kind != "$END":
        assert last is not None
        return _rebuild(text, last) if token is None else token
    if last is None:
        return _token("$END", "", 0, 1, 1)
    return _token("$END", "", *last[1:])


class Tree:
    """What a reduction builds where the transformer has no method for the rule, as ``lark.Tree``.

    Rules whose names start with ``_`` always get one: their children are spliced into the parent.
    """

    __slots__ = ("data", "children")

    def __init__(self, data: str, children: list[Any]) -> None:
        self.data = data
        self.children = children

    def __repr__(self) -> str:
        return f"Tree({self.data!r}, {self.children!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tree):
            return NotImplemented
        return self.data == other.data and self.children == other.children

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


class UnexpectedInput(Exception):  # noqa: N818 - Lark's names, which language.py maps to messages
    """A syntax error, as ``lark.UnexpectedInput``: where it is (``pos_in_stream``, ``line``,
    ``column``) and what the parser was doing (``state``: the stack of parser states)."""

    pos_in_stream: int | None
    line: int | str
    column: int | str
    state: Any
    token_history: list[Any] | None

    def get_context(self, text: str, span: int = 40) -> str:
        """The line of ``text`` around the error with a caret under it."""
        pos = self.pos_in_stream or 0
        before = text[max(pos - span, 0) : pos].rsplit("\n", 1)[-1]
        after = text[pos : pos + span].split("\n", 1)[0]
        return before + after + "\n" + " " * len(before.expandtabs()) + "^\n"


class UnexpectedCharacters(UnexpectedInput):
    """No terminal the parser accepts here matches the text at ``pos_in_stream``.

    ``allowed`` holds the names of the terminals that were tried.
    """

    def __init__(
        self,
        text: str,
        pos: int,
        line: int,
        column: int,
        allowed: set[str],
        state: Any = None,
        token_history: list[Any] | None = None,
    ) -> None:
        super().__init__()
        self.line = line
        self.column = column
        self.pos_in_stream = pos
        self.state = state
        self.allowed = allowed
        self.considered_tokens = None
        self.considered_rules = None
        self.token_history = token_history
        self.char = text[pos]
        self._context = self.get_context(text)

    def __str__(self) -> str:
        message = (
            f"No terminal matches {self.char!r} in the current parser context, "
            f"at line {self.line} col {self.column}\n\n{self._context}"
        )
        if self.allowed:
            message += "Expected one of: \n\t* " + "\n\t* ".join(sorted(self.allowed)) + "\n"
        if self.token_history:
            message += "\nPrevious tokens: " + ", ".join(map(repr, self.token_history)) + "\n"
        return message


class UnexpectedToken(UnexpectedInput):
    """The parser cannot take ``token`` here; ``expected`` holds the terminal names it could take
    (``$END`` where the text may end)."""

    def __init__(
        self,
        token: Token,
        expected: set[str],
        state: Any = None,
        token_history: list[Any] | None = None,
    ) -> None:
        super().__init__()
        self.line = getattr(token, "line", "?")
        self.column = getattr(token, "column", "?")
        self.pos_in_stream = getattr(token, "start_pos", None)
        self.state = state
        self.token = token
        self.expected = expected
        self.considered_rules = None
        self.interactive_parser = None
        self.token_history = token_history

    def __str__(self) -> str:
        message = (
            f"Unexpected token {self.token!r} at line {self.line}, column {self.column}.\n"
            "Expected one of: \n\t* " + "\n\t* ".join(sorted(self.expected)) + "\n"
        )
        if self.token_history:
            message += f"Previous tokens: {self.token_history!r}\n"
        return message


# -- what a reduction passes to the transformer, as Lark's parse-tree builder -------------------


def _expand_single_child(build: Callable[[list[Any]], Any]) -> Callable[[list[Any]], Any]:
    """A ``?rule`` without an alias: a lone child is passed up in place of a node."""

    def reduce(children: list[Any]) -> Any:
        return children[0] if len(children) == 1 else build(children)

    return reduce


def _child_filter(
    include: tuple[tuple[int, bool, int], ...], trailing: int, build: Callable[[list[Any]], Any]
) -> Callable[[list[Any]], Any]:
    """Keep the children at ``include`` (index, splice a ``_rule``'s children, Nones before it),
    then ``trailing`` Nones: placeholders for the ``[optional]`` parts this alternative lacks."""

    def reduce(children: list[Any]) -> Any:
        kept: list[Any] = []
        for i, splice, nones in include:
            if nones:
                kept += [None] * nones
            if not splice:
                kept.append(children[i])
            elif kept:
                kept += children[i].children
            else:  # a left-recursive list grows in place, as in Lark
                kept = children[i].children
        if trailing:
            kept += [None] * trailing
        return build(kept)

    return reduce


class Parser:
    """Parse text with the tables in ``tables`` (a module or namespace written by
    ``tools/build_parser.py``), calling ``transformer``'s methods as Lark's ``transformer=`` does."""

    #: The longest text (in characters) that tries the full lexer first (see :meth:`parse`).
    short_text = 4096

    def __init__(self, tables: Any, transformer: Any = None) -> None:
        self._actions: tuple[dict[str, int], ...] = tables.ACTIONS
        self._gotos: tuple[dict[str, int], ...] = tables.GOTOS
        self._start: int = tables.START
        self._end: int = tables.END
        self._ignore: frozenset[str] = tables.IGNORE
        self._newlines: frozenset[str] = tables.NEWLINES
        self._lexers: tuple[tuple[str, tuple[str, ...], dict[str, dict[str, str]]], ...] = tables.LEXERS
        self._state_lexer: tuple[int, ...] = tables.STATE_LEXER
        self._root_lexer: int = tables.ROOT_LEXER
        self._blank: str = tables.BLANK
        self._compiled: list[re.Pattern[str] | None] = [None] * len(self._lexers)
        # Per lexer and per state (built on first use): its regex's ``match``, and for each of its
        # terminals what the lexer does with a match of it, looked up once per token.
        self._scanners: list[_Scanner | None] = [None] * len(self._lexers)
        self._state_scanners: list[_Scanner | None] = [None] * len(self._actions)
        self._tables = tables  # (its PATTERNS and FIRST are read on a long text's first use)
        self._firsts: list[_First | None] = [None] * len(self._lexers)
        self._state_firsts: list[_First | None] = [None] * len(self._actions)
        self._some: dict[tuple[str, ...], Callable[..., Any]] = {}  # terminals -> their regex's match
        # (state below, top state, terminal) -> the top state after the unit reductions it causes
        self._unit_chains: dict[tuple[int, int, str], int] = {}
        self._reducers: list[_Reducer] = []
        for lhs, size, name, expand_single, include, trailing in tables.RULES:
            build: Callable[[list[Any]], Any] | None
            drop: tuple[int, ...] = ()
            if expand_single and include is None and size == 1:
                build = None  # a lone child, passed up as it is: the stack's top stays
            else:
                try:
                    build = getattr(transformer, name)
                except AttributeError:
                    build = partial(Tree, name)
                if expand_single:
                    build = _expand_single_child(build)
                if include is not None and trailing == 0 and not any(s or n for _, s, n in include):
                    # Only filtered terminals to leave out: the driver deletes them from the list.
                    kept = {i for i, _, _ in include}
                    drop = tuple(i for i in range(size - 1, -1, -1) if i not in kept)
                elif include is not None:
                    build = _child_filter(include, trailing, build)
            self._reducers.append((lhs, size, build, drop))
        self._token_callbacks: dict[str, Callable[[Any], Any]] = {}
        for terminal in tables.TERMINALS:
            callback = getattr(transformer, terminal, None)
            if callback is not None:
                self._token_callbacks[terminal] = callback
        # Tokens of other terminals are filtered out of every rule: the parser never builds them.
        self._kept = tables.KEPT | frozenset(self._token_callbacks)

    def _pattern(self, lexer: int) -> re.Pattern[str]:
        pattern = self._compiled[lexer]
        if pattern is None:
            pattern = self._compiled[lexer] = re.compile(self._lexers[lexer][0])
        return pattern

    def _scanner(self, lexer: int) -> _Scanner:
        scanner = self._scanners[lexer]
        if scanner is None:
            pattern, keywords = self._pattern(lexer), self._lexers[lexer][2]
            terminals = {
                name: (keywords.get(name), name in self._ignore, name in self._newlines)
                for name in pattern.groupindex
            }
            scanner = self._scanners[lexer] = (pattern.match, terminals)
        return scanner

    def _root_scanner(self) -> _Scanner:
        """The scanner of the grammar's full lexer (every terminal). A state's lexer holds the
        terminals the state accepts, in the same order, so where the full lexer's token is one the
        state accepts, the state's lexer finds the same: an earlier alternative that matched would
        have matched first in the full lexer too. The one difference is a keyword (``"if"``):
        the full lexer matches it as the name-like terminal it collides with and retypes it, as
        a state's lexer does where that state accepts both, and where a state accepts the
        keyword alone it matches the keyword's own text, the same token. tests/test_parser_sync.py
        holds the driver to Lark's own contextual lexer on every text it tries."""
        return self._scanner(self._root_lexer)

    def _state_scanner(self, state: int) -> _Scanner:
        scanner = self._state_scanners[state] = self._scanner(self._state_lexer[state])
        return scanner

    def _state_first(self, state: int) -> _First:
        """What a state's lexer tries at each character that may start a token (see FIRST in the
        tables): a regex of fewer alternatives, in the same order, finds the same token, since the
        others cannot match there, and is faster (Python's regex engine tries alternatives in
        turn, and a named group defeats its quick check of their first character). A character
        not listed, or one no terminal may start, takes the lexer's whole regex, as do its errors.
        """
        lexer = self._state_lexer[state]
        first = self._firsts[lexer]
        if first is None:
            match, terminals = self._scanner(lexer)
            patterns: dict[str, str] = self._tables.PATTERNS
            first = {}
            for chars, names in self._tables.FIRST[lexer]:
                how: Callable[..., Any] | str
                if len(names) == len(terminals):
                    how = match
                elif (  # one character, the only one its regex matches (Lark escapes literals)
                    len(names) == 1
                    and terminals[names[0]] == (None, False, False)
                    and patterns[names[0]] == re.escape(chars)
                ):
                    how = names[0]  # a one-character token, of a terminal with no keywords
                else:
                    how = self._some_match(names)
                for char in chars:
                    first[char] = how
            self._firsts[lexer] = first
        self._state_firsts[state] = first
        return first

    def _some_match(self, names: tuple[str, ...]) -> Callable[..., Any]:
        """The ``match`` of a regex of the terminals ``names`` alone, written as Lark writes a
        lexer's (one named group per terminal, in the order given); one per set, in any lexer."""
        match = self._some.get(names)
        if match is None:
            patterns: dict[str, str] = self._tables.PATTERNS
            regex = "|".join(f"(?P<{name}>{patterns[name]})" for name in names)
            match = self._some[names] = re.compile(regex).match
        return match

    def _unexpected_characters(
        self, text: str, pos: int, line: int, line_start: int, states: list[int], last: _Last | None
    ) -> UnexpectedInput:
        """No terminal of the state's lexer matches at ``pos``. As Lark's contextual lexer, try all
        the terminals: if one matches, the error is that token, unexpected here."""
        allowed = set(self._lexers[self._state_lexer[states[-1]]][1]) or {"<END-OF-FILE>"}
        previous = None if last is None else _rebuild(text, last)
        error = UnexpectedCharacters(
            text,
            pos,
            line,
            pos - line_start + 1,
            allowed,
            tuple(states),
            None if previous is None else [previous],
        )
        m = self._pattern(self._root_lexer).match(text, pos)
        if m is None or m.lastgroup in self._ignore:  # an %ignore terminal would have matched above
            return error
        name, end = m.lastgroup, m.end()
        assert name is not None  # every alternative of a lexer's regex is a named group
        kind = self._lexers[self._root_lexer][2].get(name, {}).get(text[pos:end], name)
        end_line, end_start = line, line_start
        if name in self._newlines:
            end_line, end_start = _advance(text, pos, end, line, line_start)
        found = (kind, pos, line, pos - line_start + 1, end_line, end - end_start + 1, end)
        return UnexpectedToken(_rebuild(text, found), error.allowed, tuple(states), [previous])

    def parse(self, text: str) -> Any:
        """What the transformer's method for the start rule returns (a :class:`Tree` without one)."""
        actions, gotos, reducers, chains = self._actions, self._gotos, self._reducers, self._unit_chains
        scanners, kept, callbacks = self._state_scanners, self._kept, self._token_callbacks
        firsts = self._state_firsts
        end_state, blank = self._end, self._blank
        new_str, count, rindex = str.__new__, text.count, text.rindex
        states = [self._start]
        values: list[Any] = []
        pos, size = 0, len(text)
        line, line_start = 1, 0  # where the lexer is, as Lark counts lines (see NEWLINES)
        last: _Last | None = None
        token: Token | None = None  # the last token, where a rule keeps its terminal
        # A short text tries the grammar's full lexer first: where the token it finds is one the
        # state accepts (or an %ignore'd one), it is the token the state's own lexer would find
        # (see _root_scanner), and a state's own lexer is compiled only where it is not. A
        # one-line expression then compiles one regular expression instead of about six (each
        # up to a millisecond, at every start). A long text takes the states' own lexers, whose
        # fewer alternatives match faster, and of those only the ones that may start with the
        # character there (see _state_first).
        short = size <= self.short_text
        root_match, root_terminals = self._root_scanner() if short else (None, {})
        while True:
            top = states[-1]
            accepts = actions[top]
            while pos < size:
                char = text[pos]
                if char == blank:  # the start of an ignored blank run in every lexer
                    pos += 1
                    continue
                m = None
                if root_match is not None:
                    m = root_match(text, pos)
                if m is not None:
                    name = m.lastgroup
                    retype, ignored, newline = root_terminals[name]
                    end = m.end()
                    kind = name if retype is None else retype.get(text[pos:end], name)
                    if not ignored and kind not in accepts:
                        m = None
                if m is None:
                    match, terminals = scanners[top] or self._state_scanner(top)
                    how = match if short else (firsts[top] or self._state_first(top)).get(char, match)
                    if isinstance(how, str):
                        kind, end, ignored, newline = how, pos + 1, False, False
                    else:
                        m = how(text, pos)
                        if m is None:
                            raise self._unexpected_characters(text, pos, line, line_start, states, last)
                        name = m.lastgroup
                        retype, ignored, newline = terminals[name]
                        end = m.end()
                        kind = name if retype is None else retype.get(text[pos:end], name)
                start, pos = pos, end
                start_line, start_column = line, start - line_start + 1
                if newline:
                    newlines = count("\n", start, pos)
                    if newlines:
                        line, line_start = line + newlines, rindex("\n", start, pos) + 1
                if ignored:
                    continue
                end_column = pos - line_start + 1
                last = (kind, start, start_line, start_column, line, end_column, pos)
                if kind in kept:  # _token's work, without a call per token
                    value = text[start:pos]
                    token = new_str(Token, value)
                    token.type, token.value, token.start_pos, token.end_pos = kind, value, start, pos
                    token.line, token.column, token.end_line, token.end_column = (
                        start_line,
                        start_column,
                        line,
                        end_column,
                    )
                else:
                    token = None
                break
            else:
                kind = "$END"
            while True:
                action = actions[top].get(kind)
                if action is None:
                    expected = {name for name in actions[top] if name.isupper()}
                    raise UnexpectedToken(_lookahead(text, kind, last, token), expected, tuple(states))
                if action >= 0:
                    break
                lhs, length, build, drop = reducers[~action]
                if build is None:
                    key = (states[-2], top, kind)
                    chained = chains.get(key)
                    if chained is None:
                        chained = chains[key] = self._unit_chain(*key)
                    states[-1] = top = chained
                # The two most common shapes without slicing the stacks and deleting from a copy:
                # one child (a name, a number), and two with a filtered terminal between them (an
                # operator); the result takes the place of the first child.
                elif length == 1 and not drop:
                    values[-1] = build([values[-1]])
                    states[-1] = top = gotos[states[-2]][lhs]
                elif length == 3 and drop == (1,):
                    children = [values[-3], values[-1]]
                    del values[-2:], states[-2:]
                    values[-1] = build(children)
                    states[-1] = top = gotos[states[-2]][lhs]
                else:
                    if length:
                        children = values[-length:]
                        del values[-length:]
                        del states[-length:]
                        for i in drop:
                            del children[i]
                    else:
                        children = []
                    values.append(build(children))
                    top = gotos[states[-1]][lhs]
                    states.append(top)
                if top == end_state:
                    return values[-1]
            states.append(action)
            values.append(callbacks[kind](token) if kind in callbacks else token)

    def _unit_chain(self, below: int, top: int, kind: str) -> int:
        """The top state after the unit reductions (``?a: b``) that ``kind`` causes in state ``top``
        over state ``below``: they call nothing, and only replace the top of the stack."""
        actions, gotos, reducers = self._actions, self._gotos, self._reducers
        while top != self._end:
            action = actions[top].get(kind)
            if action is None or action >= 0:
                break
            lhs, _, build, _ = reducers[~action]
            if build is not None:
                break
            top = gotos[below][lhs]
        return top
