"""Fuzzing the newer forms of the language through the CLI (the judge is test_fuzz's): soups of
their tokens, and valid expressions of them with one token changed, end with exit status 0, 1 or
2 and at most one ``error:`` message, never a traceback."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test_fuzz import FUZZ, NUMBERS, check_expression

TOKENS = [
    *("<", "<=", ">", ">=", "==", "!=", "and", "or", "not", "if", "else", "%", "//", "+", "-", "*", "**"),
    *("²", "³²", "×", "·", "÷", "−", "≤", "≥", "≠", "θ", "π", "x", "y", "where", "max", "min", "log", "sum"),
    *("None", "True", "inf", "nan", "...", "'fro'", '"ij,jk->ik"', "axis", "base", "grad", "stack"),
    *("(", ")", "[", "]", ",", ":", "=", ";", "\n", "\u00a0", "１", "٠", "&", "|", "~", "!", ".", "'", "np"),
    *NUMBERS,
]

FORMS = [
    "0 < x <= 1 and not y == 2 or x != 3",
    "x if x > 0 else -x if x < 0 else 0",
    "where(x > 0, sqrt(x), 0) + where(x != 0, sin(x)/x, 1)",
    "max(x, y, 1) * min(x) - max(x, axis=0)",
    "θ = x; θ² · y − 1 ÷ x ≤ 2",
    "[x, [1, 2]] @ [[x, y], [y, x]]",
    "x[[0, 1]] + x[None, ..., 0] + log(x, 2) + log(x, base=y)",
    "y = 2; grad(x*y, y) + grad(where(x > 0, x**1.5, 0), x)",
    "sum(x, axis=None) + mean(x, axis=0)",
]

soup = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=20).map(" ".join)


@st.composite
def one_token_changed(draw: st.DrawFn) -> str:
    words = draw(st.sampled_from(FORMS)).split(" ")
    i = draw(st.integers(0, len(words) - 1))
    edit = draw(st.sampled_from(["delete", "replace", "insert"]))
    token = draw(st.sampled_from(TOKENS))
    if edit == "delete":
        del words[i]
    elif edit == "replace":
        words[i] = token
    else:
        words.insert(i, token)
    return " ".join(words)


@FUZZ
@given(expr=soup, data=st.data())
def test_soups_of_the_new_forms_end_cleanly(expr: str, data: st.DataObject) -> None:
    check_expression(expr, data)


@FUZZ
@given(expr=one_token_changed(), data=st.data())
def test_new_forms_with_a_token_changed_end_cleanly(expr: str, data: st.DataObject) -> None:
    check_expression(expr, data)


@FUZZ
@given(expr=st.sampled_from(FORMS), data=st.data())
def test_the_new_forms_themselves_end_cleanly(expr: str, data: st.DataObject) -> None:
    check_expression(expr, data)
