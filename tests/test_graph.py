"""gradcli graph: DOT (structure and what Graphviz accepts), the text tree, rendering through dot."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import invoke

from gradcli.graph import MAX_TITLE, dot_quote, evaluate, structure, to_dot, to_text
from gradcli.language import parse
from gradcli.render import Style

SEED = "add(square(x), square(y))"
SEED_VALUES = ["--x", "2", "--y", "3"]
NODE = re.compile(r"^  ([vf]\d+) \[(.*)\];$")
EDGE = re.compile(r"^  ([vf]\d+) -> ([vf]\d+)( \[.*\])?;$")
DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz's dot is not installed")


def parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Node id -> attributes, and the edges, of the DOT that to_dot writes."""
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for line in text.splitlines():
        if m := NODE.match(line):
            nodes[m.group(1)] = m.group(2)
        elif m := EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
    return nodes, edges


# -- the structure of the DOT text ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "values", "variables", "functions", "edges"),
    [
        (SEED, {"x": 2.0, "y": 3.0}, 5, 3, 7),
        ("x*x", {"x": 3.0}, 2, 1, 3),  # one x, read twice: two edges into mul
        ("t = x0 + x1; x0 + t", {"x0": 1.0, "x1": 2.0}, 4, 2, 6),
        ("s, c = sincos(x); s*c + 2", {"x": 1.0}, 6, 3, 9),  # sincos: one box, two outputs
        ("sum(x * [1, 2, 3])", {"x": [4.0, 5.0, 6.0]}, 4, 2, 5),
        ("grad(x**3, x)", {"x": 2.0}, 4, 2, 6),
    ],
)
def test_dot_has_one_node_per_variable_and_function(
    expr: str, values: dict[str, object], variables: int, functions: int, edges: int
) -> None:
    for graph in (structure(parse(expr)), evaluate(parse(expr), values)):
        nodes, found = parse_dot(to_dot(graph))
        assert sum(n.startswith("v") for n in nodes) == variables
        assert sum(n.startswith("f") for n in nodes) == functions
        assert len(found) == edges
        assert {a for edge in found for a in edge} <= set(nodes)


def test_variables_are_ellipses_and_functions_are_boxes() -> None:
    nodes, _ = parse_dot(to_dot(evaluate(parse(SEED), {"x": 2.0, "y": 3.0})))
    for node_id, attrs in nodes.items():
        assert ("shape=ellipse" if node_id.startswith("v") else "shape=box") in attrs


def test_edges_follow_the_data_flow_from_inputs_to_output() -> None:
    _, edges = parse_dot(to_dot(structure(parse(SEED))))
    # x (slot 0) -> square (1) -> t1 (1) -> add (4) -> output (4)
    assert {("v0", "f1"), ("f1", "v1"), ("v1", "f4"), ("f4", "v4"), ("v2", "f3"), ("f3", "v3")} <= set(edges)


def test_shared_variable_is_drawn_once_with_an_edge_per_use() -> None:
    nodes, edges = parse_dot(to_dot(structure(parse("x*x"))))
    assert [n for n, attrs in nodes.items() if 'label="x' in attrs] == ["v0"]
    assert edges.count(("v0", "f1")) == 2


def test_node_ids_are_the_same_from_run_to_run() -> None:
    first = invoke("graph", SEED, *SEED_VALUES)
    second = invoke("graph", SEED, *SEED_VALUES)
    assert first[0] == 0 and first == second
    assert to_dot(evaluate(parse(SEED), {"x": 2, "y": 3})) == to_dot(evaluate(parse(SEED), {"x": 2, "y": 3}))


def test_labels_show_name_shape_value_and_gradient_with_values() -> None:
    nodes, _ = parse_dot(to_dot(evaluate(parse(SEED), {"x": 2.0, "y": 3.0})))
    assert 'label="x\\nshape ()\\nvalue 2\\ngrad 4"' in nodes["v0"]
    assert 'label="t3\\nshape ()\\nvalue 13\\ngrad 1"' in nodes["v4"]
    assert "peripheries=2" in nodes["v4"]  # the output


def test_labels_without_values_show_the_structure_only() -> None:
    nodes, _ = parse_dot(to_dot(structure(parse(SEED))))
    assert 'label="x"' in nodes["v0"]
    assert 'label="add"' in nodes["f4"]
    assert "value" not in "".join(nodes.values())


def test_function_parameters_appear_in_the_box() -> None:
    nodes, _ = parse_dot(to_dot(structure(parse("sum(x, axis=0) + x[1:]"))))
    assert 'label="sum\\naxis=0"' in nodes["f1"]
    assert 'label="getitem\\nindex=1:"' in nodes["f2"]


def test_edges_are_numbered_by_argument_position_not_named_like_variables() -> None:
    text = to_dot(structure(parse("y - x")))
    assert '  v0 -> f2 [label="#1"];' in text  # y, the first argument of sub(x, y)
    assert '  v1 -> f2 [label="#2"];' in text
    assert 'label="x"];' not in text.split("f2 [")[1]


def test_a_long_expression_gives_a_short_title_and_a_long_name_a_short_label() -> None:
    name = "v" * 20_000
    program = parse(" + ".join([name] + [f"x{k}" for k in range(5000)]))
    text = to_dot(structure(program))
    title = text.splitlines()[1]
    assert title.startswith('  label="') and len(title) <= MAX_TITLE + 12 and title.endswith('...";')
    assert max(len(line) for line in text.splitlines()) <= MAX_TITLE + 12


def test_labels_follow_the_precision() -> None:
    graph = evaluate(parse("x / 3"), {"x": 1.0})
    assert "value 0.3333333333333333" in to_dot(graph)
    assert "value 0.333\\n" in to_dot(graph, Style(precision=3))


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("x", '"x"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("two\nlines", '"two\\nlines"'),
        ("\\n is not a newline", '"\\\\n is not a newline"'),
    ],
)
def test_dot_labels_are_escaped(text: str, quoted: str) -> None:
    assert dot_quote(text) == quoted


# -- what Graphviz accepts -----------------------------------------------------------------------

DOT_CASES = [
    (SEED, {"x": 2.0, "y": 3.0}),
    ("x*x", {"x": 1.5}),
    ("t = x0 + x1; x0 + t", {"x0": 1.0, "x1": 2.0}),
    ("s, c = sincos(x); s*c + 2", {"x": 0.5}),
    # quotes and backslashes reach the graph's label through the comment and a line continuation
    ('a = x * 2  # a "quoted" \\ comment\nb = a + \\\n  y\nb', {"x": 1.0, "y": 2.0}),
    ("sum(x[1:] * [[1, 2, 3], [4, 5, 6]])", {"x": [1.0, 2.0, 3.0, 4.0]}),
    ("sum(x @ w)", {"x": [[0.1] * 12] * 9, "w": [[0.5] * 7] * 12}),  # summarised array labels
]


@needs_dot
@pytest.mark.parametrize(("expr", "values"), DOT_CASES)
def test_dot_accepts_the_graph(expr: str, values: dict[str, object]) -> None:
    program = parse(expr)
    for graph in (structure(program), evaluate(program, values)):
        proc = subprocess.run(
            [DOT, "-Tsvg"], input=to_dot(graph), capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert "<svg" in proc.stdout


@needs_dot
def test_dot_accepts_the_graph_of_a_very_long_expression() -> None:
    # Graphviz refuses labels over 16,384 characters: the title (the expression) and the names
    # are cut.
    program = parse(f"{'v' * 20_000} * w + w  # {'a comment ' * 2000}")
    proc = subprocess.run(
        [DOT, "-Tsvg"],
        input=to_dot(structure(program)),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-500:]


@needs_dot
def test_format_svg_renders_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    rc, _, err = invoke("graph", SEED, *SEED_VALUES, "--format", "svg", "-o", str(out))
    assert rc == 0, err
    assert "<svg" in out.read_text()


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_missing_dot_is_one_clear_line_saying_how_to_install_it(
    fmt: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    rc, out, err = invoke("graph", SEED, "--format", fmt, "-o", str(tmp_path / f"g.{fmt}"))
    assert rc == 1 and out == ""
    assert err.count("\n") == 1
    assert "'dot' program (Graphviz) is not installed" in err
    assert "apt-get install graphviz" in err and "brew install graphviz" in err
    assert not (tmp_path / f"g.{fmt}").exists()


@pytest.mark.skipif(shutil.which("false") is None, reason="no 'false' program to stand in for a failing dot")
def test_dot_that_fails_is_reported_with_exit_status_1(monkeypatch: pytest.MonkeyPatch) -> None:
    failing = shutil.which("false")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: failing)
    rc, _, err = invoke("graph", SEED, "--format", "svg")
    assert rc == 1
    assert err.startswith("error: dot failed")


def test_png_needs_an_output_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/usr/bin/dot")
    rc, _, err = invoke("graph", SEED, "--format", "png")
    assert rc == 2 and "-o FILE" in err


# -- the command ---------------------------------------------------------------------------------


def test_graph_prints_dot_on_stdout() -> None:
    rc, out, err = invoke("graph", SEED, *SEED_VALUES)
    assert rc == 0 and err == ""
    assert out.startswith("digraph gradcli {\n") and out.endswith("}\n")


def test_graph_writes_dot_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "g.dot"
    rc, stdout, _ = invoke("graph", SEED, "-o", str(out))
    assert rc == 0 and stdout == ""
    assert out.read_text() == to_dot(structure(parse(SEED)))


def test_some_values_but_not_all_is_a_usage_error() -> None:
    rc, out, err = invoke("graph", SEED, "--x", "2")
    assert rc == 2 and out == ""
    assert "missing value for 'y'" in err and "or for none" in err


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["add(x,"], 2),  # does not parse
        (["x @ y", "--x", "[1, 2]", "--y", "[1, 2, 3]"], 1),  # evaluation fails
        (["x", "--z", "1"], 2),  # no such variable
    ],
)
def test_graph_errors_have_the_usual_exit_codes(args: list[str], code: int) -> None:
    rc, out, err = invoke("graph", *args)
    assert rc == code and out == ""
    assert err.startswith("error:") and "Traceback" not in err


# -- the text tree -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "tree"),
    [
        (
            [SEED, *SEED_VALUES],
            """\
t3 = add(t1, t2)  value 13  grad 1
|-- t1 = square(x)  value 4  grad 1
|   `-- x  value 2  grad 4
`-- t2 = square(y)  value 9  grad 1
    `-- y  value 3  grad 6
""",
        ),
        (
            ["x*x"],
            """\
t1 = mul(x, x)
|-- x
`-- x (see above)
""",
        ),
        (
            ["t = x0 + x1; x0 + t", "--x0", "1", "--x1", "2"],
            """\
t1 = add(x0, t)  value 4  grad 1
|-- x0  value 1  grad 2
`-- t = add(x0, x1)  value 3  grad 1
    |-- x0 (see above)
    `-- x1  value 2  grad 1
""",
        ),
        (
            ["s, c = sincos(x); s*c"],
            """\
t1 = mul(s, c)
|-- s = sincos(x)[0]
|   `-- x
`-- c = sincos(x)[1]
    `-- x (see above)
""",
        ),
        (
            ["sum(x * [1, 2, 3])", "--x", "[4, 5, 6]"],
            """\
t2 = sum(t1)  value 32  grad 1
`-- t1 = mul(x, c1)  shape (3,)  value [ 4 10 18]  grad [1 1 1]
    |-- x  shape (3,)  value [4 5 6]  grad [1 2 3]
    `-- c1 = [1 2 3]  shape (3,)
""",
        ),
    ],
)
def test_format_text_draws_an_indented_tree(args: list[str], tree: str) -> None:
    rc, out, err = invoke("graph", *args, "--format", "text")
    assert rc == 0, err
    assert out == tree


def test_text_tree_of_a_very_deep_expression_has_bounded_lines() -> None:
    depth = 3000
    graph = structure(parse("sin(" * depth + "x" + ")" * depth))
    lines = to_text(graph).splitlines()
    assert len(lines) == depth + 1
    assert max(map(len, lines)) < 200
    assert lines[-1].endswith("x")


@pytest.mark.parametrize(
    ("name", "starts"), [("g.txt", b"t1 = mul(x, y)"), ("g.dot", b"digraph"), ("g", b"digraph")]
)
def test_without_format_the_output_file_name_says_which(tmp_path: Path, name: str, starts: bytes) -> None:
    rc, _, err = invoke("graph", "x*y", "-o", str(tmp_path / name))
    assert rc == 0, err
    assert (tmp_path / name).read_bytes().startswith(starts)


@needs_dot
@pytest.mark.parametrize(("name", "magic"), [("g.png", b"\x89PNG"), ("g.svg", b"<?xml")])
def test_an_image_file_name_gets_that_image(tmp_path: Path, name: str, magic: bytes) -> None:
    """``-o g.png`` once received DOT text, which image viewers open as a broken file."""
    rc, _, err = invoke("graph", "x*y", "-o", str(tmp_path / name))
    assert rc == 0, err
    assert (tmp_path / name).read_bytes().startswith(magic)


def test_an_image_file_name_with_another_format_is_refused(tmp_path: Path) -> None:
    rc, out, err = invoke("graph", "x*y", "--format", "dot", "-o", str(tmp_path / "g.png"))
    assert rc == 2 and out == "" and not (tmp_path / "g.png").exists()
    assert err.startswith("error: -o ") and "names a PNG image, but --format is dot" in err


@pytest.mark.parametrize("name", ["g.pdf", "g.jpg", "g.gif"])
def test_an_image_file_graph_does_not_draw_is_refused_not_filled_with_dot_text(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    assert invoke("graph", "x*y", "-o", str(path))[:3] == (
        2,
        "",
        f"error: -o {path}: graph draws .svg and .png images (--format dot or text writes into any file)\n",
    )
    assert not path.exists()
    rc, _, err = invoke("graph", "x*y", "--format", "dot", "-o", str(path))  # asked for by name: written
    assert rc == 0 and path.read_bytes().startswith(b"digraph"), err
