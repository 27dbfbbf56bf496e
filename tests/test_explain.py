"""gradcli explain: the forward pass, the backward pass in the engine's order, accumulation, width.

The seed example's narration is pinned in tests/snapshots/explain_seed.txt. After an intended
change of wording, regenerate it with GRADCLI_UPDATE_SNAPSHOTS=1 and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradcli.explain import explain
from gradcli.graph import evaluate
from gradcli.language import parse

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
SEED = ["add(square(x), square(y))", "--x", "2", "--y", "3"]
DIAMOND = ["t = x0 + x1; x0 + t", "--x0", "1", "--x1", "2"]
GEN = re.compile(r"^  \[gen (\d+)\] ")


def invoke(*args: str) -> tuple[int, str, str]:
    from gradcli.cli import main

    result = CliRunner().invoke(main, list(args), prog_name="gradcli")
    return result.exit_code, result.stdout, result.stderr


def explained(*args: str) -> str:
    rc, out, err = invoke("explain", *args)
    assert rc == 0, err
    return out


def test_seed_example_matches_the_snapshot() -> None:
    out = explained(*SEED)
    snapshot = SNAPSHOTS / "explain_seed.txt"
    if os.environ.get("GRADCLI_UPDATE_SNAPSHOTS"):
        snapshot.write_text(out)
    assert out == snapshot.read_text()


def test_forward_pass_has_one_line_per_instruction_in_order() -> None:
    forward = explained(*SEED).split("\n\n")[0].splitlines()
    assert forward[1:] == [
        "  x = 2",
        "  t1 = square(x) = 4",
        "  y = 3",
        "  t2 = square(y) = 9",
        "  t3 = add(t1, t2) = 13",
    ]


def test_diamond_shows_gradient_accumulating_on_the_shared_input() -> None:
    out = explained(*DIAMOND)
    backward = out.split("\n\n")[1].splitlines()
    first = backward.index("  [gen 1] t1 = add(x0, t)")
    second = backward.index("  [gen 0] t = add(x0, x1)")
    assert "      out  grad x0 = 1" in backward[first:second]
    assert "      out  grad x0 += 1 -> 2" in backward[second:]
    assert out.endswith("  grad x0 = 2\n  grad x1 = 1\n")


def test_a_variable_used_twice_by_one_function_accumulates_within_the_step() -> None:
    backward = explained("x*x", "--x", "3").split("\n\n")[1].splitlines()
    assert backward[-2:] == ["      out  grad x = 3", "      out  grad x += 3 -> 6"]


def test_array_accumulation_shows_the_contribution_and_the_new_total() -> None:
    out = explained("sum(x * x)", "--x", "[1, 2]")
    assert "      out  grad x = [1 2]\n      out  grad x += [1 2]\n           -> grad x = [2 4]\n" in out


def test_backward_runs_from_the_highest_generation_down() -> None:
    out = explained("a = exp(x); b = a * y; c = b + a; sin(c) * a", "--x", "0.5", "--y", "2")
    gens = [int(m.group(1)) for line in out.splitlines() if (m := GEN.match(line))]
    assert len(gens) == 5
    assert gens == sorted(gens, reverse=True)


def test_backward_steps_are_those_the_engine_ran() -> None:
    graph = evaluate(parse("t = x0 + x1; x0 + t"), {"x0": 1.0, "x1": 2.0})
    steps = [line for line in explain(graph).splitlines() if GEN.match(line)]
    assert len(steps) == len(graph.steps)
    assert [f.generation for f, _, _ in graph.steps] == [1, 0]


def test_several_outputs_are_seeded_each_and_say_so() -> None:
    out = explained("x, x*2", "--x", "1")
    assert "several outputs" in out
    assert "  seed grad x = 1\n  seed grad t1 = 1\n" in out
    assert "out  grad x += 2 -> 3" in out


def test_multi_output_function_shows_each_incoming_gradient() -> None:
    out = explained("s, c = sincos(x); s*c", "--x", "0")
    assert "  [gen 0] s, c = sincos(x)\n      in   grad s = 1\n      in   grad c = 0\n" in out


def test_functions_inside_a_grad_are_marked() -> None:
    out = explained("grad(x**3, x)", "--x", "2")
    assert "(inside a grad(...))" in out
    assert out.endswith("  t2 = 12\n  grad x = 12\n")


def test_constant_output_has_no_backward_pass() -> None:
    assert "backward: nothing to do" in explained("sin(2)")


LONG_A = "a_rather_long_variable_name_for_a_weight_and_then_some"
LONG_B = "b_another_quite_long_name_for_the_sake_of_the_test"
ARRAY_CASES = [
    SEED,
    ["sum(x * [1, 2, 3])", "--x", "[4, 5, 6]"],
    [
        "a = x*2; sum(a @ w) + a[0, 0]",
        "--vars",
        '{"x": [[0.1, 0.2, 0.3, 0.4]], "w": [[1.5, 2.5], [1, 2], [3, 4], [5, 6]]}',
    ],
    ["sum(exp(x) / 7)", "--vars", '{"x": ' + str([[i / 3 for i in range(40)] for _ in range(5)]) + "}"],
    [
        f"{LONG_A} = exp(w); {LONG_B} = sin(w); sum({LONG_A} * {LONG_B} / 3 + {LONG_A})",
        "--w",
        "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]",
    ],
]


@pytest.mark.parametrize(
    "args", ARRAY_CASES, ids=["seed", "small-array", "matmul", "wide-array", "long-name"]
)
def test_every_line_fits_in_80_columns(args: list[str]) -> None:
    lines = explained(*args).splitlines()
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide


def test_long_arrays_are_summarised() -> None:
    out = explained("sum(x)", "--x", str(list(range(100))))
    assert "..." in out
    assert len(out.splitlines()) < 40


def test_values_are_required() -> None:
    rc, out, err = invoke("explain", "x*y", "--x", "2")
    assert rc == 2 and out == ""
    assert "missing value for --y" in err


def test_evaluation_errors_are_one_message_with_exit_status_1() -> None:
    rc, out, err = invoke("explain", "x @ y", "--x", "[1, 2]", "--y", "[1, 2, 3]")
    assert rc == 1 and out == ""
    assert err.startswith("error: matmul") and "Traceback" not in err


def test_floating_point_events_are_warnings_on_stderr() -> None:
    rc, out, err = invoke("explain", "log(x)", "--x", "0")
    assert rc == 0
    assert "t1 = log(x) = -inf" in out
    assert "warning: log: divide by zero" in err
