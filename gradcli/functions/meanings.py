"""What users type for what gradcli has under another name or as an operator: the suggestions of
an "unknown function" error, tried before spellings that are merely close (``mod`` is nearer
``sigmoid`` than ``%`` to difflib). Imported only when a name is unknown."""

from __future__ import annotations

import difflib
from collections.abc import Set

MEANINGS: dict[str, str] = {
    **dict.fromkeys(["mod", "fmod", "remainder"], "%"),
    **dict.fromkeys(["floordiv", "floor_div", "idiv"], "//"),
    "power": "**",
    **dict.fromkeys(["multiply", "mult", "times"], "*"),
    **dict.fromkeys(["divide", "true_divide", "truediv"], "/"),
    "plus": "+",
    **dict.fromkeys(["subtract", "minus"], "-"),
    **dict.fromkeys(["mm", "matrix_multiply"], "@"),
    **{"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!=", "neq": "!="},
    **dict.fromkeys(["ln", "loge"], "log"),
    **{f"arc{f}": f"a{f}" for f in ("sin", "cos", "tan", "sinh", "cosh", "tanh", "tan2")},
    **dict.fromkeys(["absolute", "fabs"], "abs"),
    **dict.fromkeys(["negative", "negate"], "neg"),
    **dict.fromkeys(["sq", "sqr"], "square"),
    "amax": "max",
    "amin": "min",
    **dict.fromkeys(["average", "avg"], "mean"),
    **dict.fromkeys(["expit", "logistic"], "sigmoid"),
    "clamp": "clip",
    **dict.fromkeys(["concatenate", "cat"], "concat"),
    **dict.fromkeys(["ifelse", "if_else", "iif", "select"], "where"),
    "lse": "logsumexp",
    **dict.fromkeys(["derivative", "diff", "gradient"], "grad"),
}

# The function each operator calls: an operator is only suggested where it works.
OPERATOR_FUNCTIONS = {
    "%": "mod",
    "//": "floor_divide",
    "**": "pow",
    "*": "mul",
    "/": "div",
    "+": "add",
    "-": "sub",
    "@": "matmul",
    "<": "less",
    "<=": "less_equal",
    ">": "greater",
    ">=": "greater_equal",
    "==": "equal",
    "!=": "not_equal",
}
# Names the language itself understands (gradcli.language), which no registry entry holds.
LANGUAGE_NAMES = frozenset({"grad"})


def suggestion(name: str, known: Set[str]) -> str:
    """``"; did you mean ...?"`` for an unknown ``name`` given the ``known`` function names, or ""."""
    lower = name.lower()
    available = {*known, *LANGUAGE_NAMES}
    meant = MEANINGS.get(lower)
    if meant is not None:  # spellings close to a name of known meaning are noise (mod ~ sigmoid)
        if meant in OPERATOR_FUNCTIONS:
            return f"; did you mean the operator '{meant}'?" if OPERATOR_FUNCTIONS[meant] in known else ""
        return f"; did you mean {meant!r}?" if meant in available else ""
    if lower != name and lower in available:
        return f"; did you mean {lower!r}?"
    close = difflib.get_close_matches(name, sorted(available), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
