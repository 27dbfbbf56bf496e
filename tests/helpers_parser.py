"""Running gradcli's LALR driver and Lark side by side: tables built now, and what each produced
(a tree or an error) reduced to plain values that compare equal exactly when the two agree."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> ModuleType:
    """tools/build_parser.py, the generator of the tables."""
    from conftest import load_script

    return load_script("tools/build_parser.py")


def tables(grammar: str) -> SimpleNamespace:
    """The tables tools/build_parser.py writes for ``grammar``, without writing them."""
    return SimpleNamespace(**build_parser().build(grammar))


def token_fields(token: Any) -> tuple[Any, ...]:
    return (
        token.type,
        str(token),
        token.value,
        token.start_pos,
        token.line,
        token.column,
        token.end_line,
        token.end_column,
        token.end_pos,
    )


def shape(result: Any) -> list[Any]:
    """A parse result flattened in pre-order (without recursion): each tree as its name and number
    of children, each token with all its fields, anything else (a transformer's value) as it is."""
    out: list[Any] = []
    stack = [result]
    while stack:
        node = stack.pop()
        if hasattr(node, "data") and hasattr(node, "children"):
            out.append(("tree", str(node.data), len(node.children)))
            stack.extend(reversed(node.children))
        elif isinstance(node, str) and hasattr(node, "type"):
            out.append(("token", *token_fields(node)))
        elif isinstance(node, (list, tuple)):
            out.append(("sequence", len(node)))
            stack.extend(reversed(node))
        else:
            out.append(node)
    return out


def error_fields(exc: BaseException) -> tuple[Any, ...]:
    """What a caller of either parser can read from a syntax error."""
    kind = type(exc).__name__
    history = getattr(exc, "token_history", None)
    common = (
        kind,
        exc.pos_in_stream,  # type: ignore[attr-defined]
        exc.line,  # type: ignore[attr-defined]
        exc.column,  # type: ignore[attr-defined]
        None if history is None else [None if t is None else token_fields(t) for t in history],
    )
    if kind == "UnexpectedCharacters":
        return (*common, exc.char, sorted(exc.allowed))  # type: ignore[attr-defined]
    assert kind == "UnexpectedToken", kind
    return (*common, token_fields(exc.token), sorted(exc.expected))  # type: ignore[attr-defined]


def outcome(parse: Any, text: str) -> tuple[str, Any]:
    """``parse(text)`` as ("ok", its shape) or ("error", the syntax error's fields)."""
    try:
        return "ok", shape(parse(text))
    except Exception as exc:
        if not any(c.__name__ == "UnexpectedInput" for c in type(exc).__mro__):
            raise
        return "error", error_fields(exc)
