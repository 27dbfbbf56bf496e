"""The caps that keep a mistake from exhausting the machine, and the options that raise them."""

from __future__ import annotations

import pytest
from conftest import invoke


def test_expression_longer_than_the_cap_is_a_usage_error() -> None:
    rc, out, err = invoke("--max-expression", "10", "eval", "x + x + x + x", "--x", "1")
    assert rc == 2 and out == ""
    assert err.startswith("error: the expression is 13 characters, more than --max-expression 10")


def test_raising_the_expression_cap_lets_it_through() -> None:
    rc, out, _ = invoke("--max-expression", "13", "eval", "x + x + x + x", "--x", "1", "--json")
    assert (rc, out) == (0, '{"value": 4.0, "grad": {"x": 4.0}}\n')


@pytest.mark.parametrize(
    ("argv", "numbers"),
    [
        (["eval", "x * 2", "--x", "[1, 2, 3]", "--json"], 6),
        (["jacobian", "x * 2", "--x", "[1, 2, 3]", "--json"], 12),
        (["hessian", "sum(x * x)", "--x", "[1, 2, 3]", "--json"], 9),
    ],
)
def test_json_output_over_the_cap_is_refused_before_it_is_written(argv: list[str], numbers: int) -> None:
    rc, out, err = invoke("--max-output", "5", *argv)
    assert rc == 2 and out == ""
    assert f"has {numbers} numbers, more than --max-output 5" in err


def test_output_cap_from_the_environment() -> None:
    rc, _, err = invoke("eval", "x * 2", "--x", "[1, 2, 3]", "--json", env={"GRADCLI_MAX_OUTPUT": "2"})
    assert rc == 2 and "--max-output 2" in err


def test_text_output_is_summarised_so_the_cap_does_not_apply() -> None:
    rc, out, _ = invoke("--max-output", "5", "eval", "x * 2", "--x", "[1, 2, 3]")
    assert rc == 0 and out.startswith("value  [2 4 6]")


def test_a_batch_line_over_the_output_cap_is_reported_in_place_and_the_stream_goes_on() -> None:
    lines = '{"x": [1, 2, 3]}\n{"x": 1}\n'
    rc, out, _ = invoke("--max-output", "3", "eval", "x * 2", "--batch", input=lines)
    first, second = out.splitlines()
    assert rc == 1
    assert first.startswith('{"line": 1, "error": "the result has 6 numbers, more than --max-output 3')
    assert second == '{"value": 2.0, "grad": {"x": 2.0}}'
