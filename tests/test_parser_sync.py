"""The generated standalone parser (gradcli/_parser.py) must match grammars/gradcli.lark.

If a test here fails after a grammar change, run `python tools/build_parser.py`.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from gradcli import _parser
from gradcli.language import grammar_path, lark_parser, parse
from gradcli.program import ExpressionError

REBUILD = "the grammar changed: run `python tools/build_parser.py`"

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
]


def test_generated_parser_was_built_from_this_grammar() -> None:
    digest = hashlib.sha256(grammar_path().read_bytes()).hexdigest()
    assert _parser.GRAMMAR_SHA256 == digest, REBUILD


def _outcome(text: str, parser: object = None) -> str:
    try:
        program = parse(text, parser)
    except ExpressionError as exc:
        return f"error: {exc}"
    ops = [
        (op.kind, op.args, op.spec.name if op.spec else None, repr(op.params), op.n_outputs)
        for op in program.ops
    ]
    return json.dumps([program.inputs, program.outputs, ops, sorted(program.names.items())], default=str)


@pytest.mark.parametrize("text", SAMPLES)
def test_generated_parser_and_lark_agree(text: str) -> None:
    assert _outcome(text) == _outcome(text, lark_parser()), REBUILD
