"""The caps that keep a mistake from exhausting the machine, and the options that raise them."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
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
        (["jacobian", "x * 2", "--x", "[1, 2, 3]", "--json"], 9),
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


# -- each cap is checked before the work it bounds ------------------------------------------------


def _never(*args: object, **kwargs: object) -> None:
    raise AssertionError("the work ran although the cap refused it")


def test_expression_file_is_read_no_further_than_the_cap() -> None:
    rc, out, err = invoke("--max-expression", "100", "eval", "-f", "/dev/zero")
    assert (rc, out) == (2, "")
    assert err == "error: the expression is more than --max-expression 100 characters\n"


def test_an_expression_file_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "expr.txt"
    path.write_bytes(b"x\xff")
    rc, _, err = invoke("eval", "-f", str(path), "--x", "1")
    assert rc == 2 and err == f"error: -f {path}: not UTF-8 text\n"


def test_jacobian_over_the_output_cap_is_refused_before_it_is_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gradcli import calculus

    path = tmp_path / "x.npy"
    np.save(path, np.ones(20_000))  # the Jacobian would be 400,000,000 numbers (3.2 GB)
    monkeypatch.setattr(calculus, "jacobian", _never)
    rc, out, err = invoke("--max-output", "1000", "jacobian", "x * 2", "--x", f"@{path}")
    assert (rc, out) == (2, "")
    assert err.startswith("error: the result has 400,000,000 numbers, more than --max-output 1,000")


@pytest.mark.parametrize(("order", "numbers"), [(1, 4 * 1000), (2, 4 * (1000 + 1000 * 1000))])
def test_check_over_the_output_cap_is_refused_before_it_is_computed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: int, numbers: int
) -> None:
    from gradcli import calculus

    path = tmp_path / "x.npy"
    np.save(path, np.ones(1000))
    monkeypatch.setattr(calculus, "check", _never)
    rc, out, err = invoke(
        "--max-output", "1000", "check", "sum(x*x)", "--x", f"@{path}", "--order", str(order)
    )
    assert (rc, out) == (2, "")
    assert err.startswith(f"error: the result has {numbers:,} numbers, more than --max-output 1,000")


def test_check_within_the_cap_runs() -> None:
    rc, out, _ = invoke("--max-output", "8", "check", "x*y", "--x", "2", "--y", "3")
    assert rc == 0 and out.splitlines()[-1].startswith("all 2 derivatives agree")


def test_drawing_more_nodes_than_the_cap_is_refused_before_dot_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    # A dot that would fail: if it ran, the message would say so.
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/bin/false")
    expr = " + ".join(["x"] * 600)  # 1,199 nodes
    rc, out, err = invoke("graph", expr, "--format", "svg")
    assert (rc, out) == (2, "")
    assert err == (
        "error: the graph has 1,199 nodes, more than --max-render-nodes 1,000 that --format svg lays out: "
        "use --format dot or text, or raise --max-render-nodes\n"
    )
    rc, _, err = invoke("graph", expr, "--format", "svg", "--max-render-nodes", "1199")
    assert rc == 1 and "dot failed" in err


def test_dot_and_text_formats_have_no_node_cap() -> None:
    rc, out, _ = invoke("graph", " + ".join(["x"] * 600), "--format", "dot")
    assert rc == 0 and out.count(" -> ") == 3 * 599  # two edges into each addition, one out


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_DATA is enforced on Linux")
@pytest.mark.slow
def test_dot_runs_within_the_memory_budget(tmp_path: Path) -> None:
    from test_reliability import assert_one_error_line, gradcli

    expr = tmp_path / "sum.txt"
    expr.write_text(" + ".join(["x"] * 1000))  # dot wants 6 GB and more for this one
    out = tmp_path / "g.svg"
    proc = gradcli(
        "--max-memory", "400M", "graph", "-f", str(expr), "--format", "svg", "-o", str(out),
        "--max-render-nodes", "5000",
    )  # fmt: skip
    message = assert_one_error_line(proc, 1)
    assert message.startswith("error: out of memory: dot needed more than the ")
    assert message.endswith(
        "left in the memory budget to lay out this graph: use --format dot or text, or raise --max-memory"
    )


# -- --max-nodes: derivatives whose graph explodes --------------------------------------------------

NODES_ADVICE = (
    "each order of derivative can multiply the graph: lower --order, use `gradcli hessian` for "
    "second derivatives, or raise --max-nodes"
)


@pytest.mark.parametrize(
    "argv",
    [
        ["--max-nodes", "1000", "eval", "tanh(x)", "--x", "1", "--order", "64"],
        ["eval", "tanh(x)", "--x", "1", "--order", "64"],
        ["--max-nodes", "1000", "eval", "grad(" * 10 + "tanh(x)" + ", x)" * 10, "--x", "1"],
    ],
)  # fmt: skip
def test_higher_orders_past_the_node_cap_are_refused_with_what_to_do(argv: list[str]) -> None:
    env = {"GRADCLI_MAX_NODES": "1000"} if argv[0] != "--max-nodes" else None
    rc, out, err = invoke(*argv, env=env)
    assert (rc, out) == (2, "")
    assert err == f"error: the graph of derivatives grew past --max-nodes 1,000 functions: {NODES_ADVICE}\n"


def test_orders_within_the_node_cap_are_computed() -> None:
    rc, out, _ = invoke("--max-nodes", "1000", "eval", "tanh(x)", "--x", "0", "--order", "3", "--json")
    assert rc == 0 and json.loads(out)["derivatives"]["x"] == [1.0, 0.0, -2.0]


def test_a_batch_line_past_the_node_cap_is_that_lines_error() -> None:
    rc, out, _ = invoke(
        "--max-nodes", "1000", "eval", "tanh(x)", "--order", "30", "--batch", input='{"x": 1}\n{"x": 2}\n'
    )
    lines = [json.loads(line) for line in out.splitlines()]
    assert rc == 1 and [line["line"] for line in lines] == [1, 2]
    assert all(
        line["error"].startswith("the graph of derivatives grew past --max-nodes 1,000") for line in lines
    )


@pytest.mark.slow
def test_the_default_node_cap_allows_the_hessian_of_a_million_term_sum() -> None:
    from gradcli import engine
    from gradcli.cli import MAX_NODES

    x = engine.Variable(0.5)
    y = x
    for _ in range(999_999):  # 999,999 additions: the graph of a 1,000,000-term sum
        y = y + x
    with engine.limited_nodes(MAX_NODES):
        (g,) = engine.grad(y, [x], create_graph=True)
        (h,) = engine.grad(g, [x])
    assert (float(g.data), float(h.data)) == (1_000_000.0, 0.0)
    with engine.limited_nodes(999_998), pytest.raises(engine.GraphTooLarge, match="more than 999,998"):
        engine.grad(y, [x], create_graph=True)
