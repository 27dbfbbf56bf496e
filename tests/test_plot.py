"""gradcli plot and minimize --plot, and gradcli.plotting beneath them.

Plots are checked by what was drawn: the sampled data (csv) against derivatives written by hand,
the image's size and that it decodes (matplotlib reads PNGs back), never by pixels.
"""

from __future__ import annotations

import io
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
from conftest import invoke

from gradcli import calculus, parse
from gradcli.plotting import draw_text, evaluate_points, nonfinite, path_ranges, sample

QUARTIC = "x**4 - 2*x**2"
ROSENBROCK = "100*(y - x**2)**2 + (1 - x)**2"


def csv_of(*args: str) -> tuple[list[str], np.ndarray]:
    rc, out, err = invoke("plot", *args, "--format", "csv")
    assert (rc, err) == (0, ""), err
    head, *rows = out.splitlines()
    return head.split(","), np.array([[float(c) for c in row.split(",")] for row in rows])


# -- the sampled data ----------------------------------------------------------------------------------


def test_csv_of_one_input_holds_f_and_its_derivatives_written_by_hand() -> None:
    head, data = csv_of(QUARTIC, "--x", "-2:2", "--points", "9", "--order", "3")
    x = np.linspace(-2, 2, 9)
    assert head == ["x", "f", "df/dx", "d2f/dx2", "d3f/dx3"]
    np.testing.assert_array_equal(data[:, 0], x)
    expected = np.column_stack([x**4 - 2 * x**2, 4 * x**3 - 4 * x, 12 * x**2 - 4, 24 * x])
    np.testing.assert_allclose(data[:, 1:], expected, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize(
    "args",
    [["x**2", "stray", "--x", "-1:1"], ["x**2", "--x", "-1:1", "--format", "csv", "extra", "more"]],
)
def test_a_stray_argument_is_refused_not_ignored(args: list[str]) -> None:
    stray = next(a for a in args if a in ("stray", "extra"))
    assert invoke("plot", *args)[:3] == (
        2,
        "",
        f"error: unexpected argument {stray!r}: the expression is one argument (quote it), "
        "variables are --NAME VALUE\n",
    )


def test_default_is_400_points_over_the_range() -> None:
    _, data = csv_of("sin(x)", "--x", "0:1")
    assert data.shape == (400, 3) and (data[0, 0], data[-1, 0]) == (0.0, 1.0)


def test_other_inputs_are_held_at_their_values() -> None:
    _, data = csv_of("sin(a*x)", "--x", "-3:3", "--a", "2", "--points", "7")
    x = data[:, 0]
    np.testing.assert_allclose(data[:, 1:], np.column_stack([np.sin(2 * x), 2 * np.cos(2 * x)]), atol=1e-15)


def test_csv_of_two_inputs_is_one_row_per_grid_point_with_the_gradient() -> None:
    head, data = csv_of("x**2 * y", "--x", "-1:1", "--y", "0:2", "--points", "3")
    assert head == ["x", "y", "f", "df/dx", "df/dy"]
    x, y = data[:, 0], data[:, 1]
    assert sorted(zip(x, y)) == sorted((a, b) for a in (-1.0, 0.0, 1.0) for b in (0.0, 1.0, 2.0))
    np.testing.assert_allclose(data[:, 2:], np.column_stack([x**2 * y, 2 * x * y, x**2]))


def test_not_finite_values_are_written_as_python_reads_them() -> None:
    rc, out, _ = invoke("plot", "log(x)", "--x", "0:2", "--points", "5", "--format", "csv")
    assert rc == 0 and out.splitlines()[1] == "0.0,-inf,inf"
    _, data = csv_of("sqrt(x)", "--x", "-1:1", "--points", "3")
    assert np.isnan(data[0, 1]) and data[2, 1] == 1.0


@pytest.mark.parametrize(
    "expr",
    [
        "sin(x) * exp(-x**2)",
        "mse(x, 2)",  # a reduction: over each point's own elements
        "sum(x * [1, 2])",  # an array constant
        "softmax(x * [1, 2])[0]",
        "x * grad(x**3, x)",  # a derivative inside
        "log1p(x**2) / (1 + x**2)",
        "sum(a * x)",  # a held array
    ],
)
def test_points_at_once_give_what_calculus_gives_at_each_point(expr: str) -> None:
    program = parse(expr)
    fixed = {"a": np.array([1.0, -2.0])} if "a" in program.inputs else {}
    points = np.linspace(-1.5, 1.5, 11)
    value, derivs = evaluate_points(program, fixed, {"x": points}, 3)
    for i, x in enumerate(points):
        at = {**fixed, "x": x}
        assert value[i] == pytest.approx(float(calculus.evaluate(program, at, wrt=()).value[0]), rel=1e-13)
        by_order = calculus.derivatives(program, at, 3, wrt=["x"])["x"]
        for k in range(3):
            assert derivs["x"][k][i] == pytest.approx(float(by_order[k]), rel=1e-12, abs=1e-12)


def test_a_python_function_is_sampled_point_by_point() -> None:
    value, derivs = evaluate_points(lambda x: (x * x).sum(), {}, {"x": np.array([1.0, 2.0, 3.0])}, 2)
    assert value.tolist() == [1.0, 4.0, 9.0] and derivs["x"][0].tolist() == [2.0, 4.0, 6.0]
    assert derivs["x"][1].tolist() == [2.0, 2.0, 2.0]


def test_many_points_are_run_in_chunks_with_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    program = parse("sin(x) * y")
    points = {"x": np.linspace(0, 1, 50), "y": np.linspace(1, 2, 50)}
    whole = evaluate_points(program, {}, points, 1)
    monkeypatch.setattr(calculus, "CHUNK_ELEMENTS", 7)  # a few points per run
    chunked = evaluate_points(program, {}, points, 1)
    np.testing.assert_array_equal(whole[0], chunked[0])
    for name in points:
        np.testing.assert_array_equal(whole[1][name][0], chunked[1][name][0])


def test_mse_of_each_point_is_right() -> None:
    _, data = csv_of("mse(x, 2)", "--x", "0:4", "--points", "5")
    x = data[:, 0]
    np.testing.assert_allclose(data[:, 1:], np.column_stack([(x - 2) ** 2, 2 * (x - 2)]))


def test_held_array_input_is_held_for_every_point() -> None:
    _, data = csv_of("sum(a * x)", "--x", "-1:1", "--a", "[1, 2]", "--points", "3")
    np.testing.assert_allclose(data[:, 1:], np.column_stack([3 * data[:, 0], [3.0, 3.0, 3.0]]))


@pytest.mark.parametrize(
    ("ranges", "options", "error", "message"),
    [
        ({"x": (-1, 1)}, {"points": 2.5}, ValueError, "points must be a whole number"),
        ({"x": (-1, 1)}, {"points": "5"}, TypeError, "points must be a whole number, got '5'"),
        ({"x": (-1, 1)}, {"points": 1}, ValueError, "points must be a whole number from 2 to"),
        ({"x": (-1, 1)}, {"order": 1.5}, ValueError, "order must be a whole number"),
        ({"x": (-1, 1, 2)}, {}, TypeError, "the range of 'x' is a pair"),
        ({"x": 1}, {}, TypeError, "the range of 'x' is a pair"),
        ({"x": ("a", 1)}, {}, TypeError, "each end of the range of 'x' must be a number"),
        ({"x": (None, 1)}, {}, TypeError, "each end of the range of 'x' must be a number"),
        ({"x": (np.nan, 1)}, {}, ValueError, "each end of the range of 'x' must be a finite number"),
        ({"x": (1, -1)}, {}, ValueError, "from a finite low end to a higher one"),
        ([("x", (0, 1))], {}, TypeError, "ranges map an input's name to"),
    ],
)
def test_bad_points_orders_and_ranges_are_one_clear_error(
    ranges: Any, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        sample("x**2", {}, ranges, **options)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("values", [None, [1.0]])
def test_values_that_are_not_a_mapping_are_a_type_error(values: Any) -> None:
    with pytest.raises(TypeError, match="values map each other input's name to its value"):
        sample("x**2 * y", values, {"x": (-1, 1)})


def test_a_whole_number_of_points_written_as_a_float_and_a_range_as_an_array_are_taken() -> None:
    s = sample("x**2", {}, {"x": np.array([-1.0, 1.0])}, points=3.0)
    assert s.axes[0].tolist() == [-1.0, 0.0, 1.0] and s.value.tolist() == [1.0, 0.0, 1.0]


def test_nonfinite_marks_where_f_or_its_derivative_is_not_finite() -> None:
    s = sample("sqrt(x)", {}, {"x": (-1.0, 1.0)}, points=5)
    # sqrt(0) = 0 is finite, but its derivative is inf.
    assert nonfinite(s).tolist() == [True, True, True, False, False]


def test_path_ranges_hold_every_point_with_a_margin() -> None:
    ranges = path_ranges([{"x": -1.0, "y": 2.0}, {"x": 3.0, "y": 2.0}], ["x", "y"])
    assert ranges["x"] == (-2.0, 4.0)
    lo, hi = ranges["y"]
    assert lo < 2.0 < hi


# -- images --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [QUARTIC, "--x", "-2:2", "--order", "2"],
        ["log(x)", "--x", "-1:2"],
        [ROSENBROCK, "--x", "-2:2", "--y", "-1:3", "--points", "40"],
    ],
)
def test_png_has_the_figure_size_and_decodes(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "plot.png"
    rc, stdout, err = invoke("plot", *args, "-o", str(out))
    assert (rc, stdout, err) == (0, "", "")
    image = matplotlib.image.imread(out)
    assert image.shape == (500, 800, 4)
    assert image[..., :3].std() > 0  # something was drawn


def test_svg_and_pdf_are_written_by_suffix(tmp_path: Path) -> None:
    assert invoke("plot", QUARTIC, "--x", "-2:2", "-o", str(tmp_path / "p.svg"))[0] == 0
    root = ET.parse(tmp_path / "p.svg").getroot()
    assert root.tag.endswith("svg") and root.get("width") == "576pt" and root.get("height") == "360pt"
    assert invoke("plot", QUARTIC, "--x", "-2:2", "-o", str(tmp_path / "p.pdf"))[0] == 0
    pdf = (tmp_path / "p.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")


def test_image_to_stdout_with_dash() -> None:
    rc, out, _ = invoke("plot", QUARTIC, "--x", "-2:2", "-o", "-", "--format", "svg")
    assert rc == 0 and ET.fromstring(out).tag.endswith("svg")


@pytest.mark.parametrize(
    ("args", "dims"),
    [
        (["x**4 - 2*x**2", "--x", "2", "--method", "newton"], 1),
        ([ROSENBROCK, "--x", "-1.2", "--y", "1"], 2),
        (["(x - a)**2 + y**2", "--x", "3", "--y", "1", "--a", "1", "--wrt", "x,y"], 2),
    ],
)
def test_minimize_plot_draws_the_iterates(tmp_path: Path, args: list[str], dims: int) -> None:
    out = tmp_path / "path.png"
    rc, stdout, err = invoke("minimize", *args, "--plot", str(out))
    assert rc == 0 and err == "" and "converged  yes" in stdout
    assert "|grad|" not in stdout  # the trace drawn is not printed unless asked for
    assert matplotlib.image.imread(out).shape == (500, 800, 4)


# -- the terminal --------------------------------------------------------------------------------------


def test_text_plot_without_a_title_starts_with_its_frame_not_the_word_none() -> None:
    text = draw_text(sample("x**2", {}, {"x": (-1, 1)}, points=5), width=30, height=5)
    assert "None" not in text and text.splitlines()[0].startswith("┌")


@pytest.mark.parametrize(("options", "error"), [({"width": 0}, ValueError), ({"height": "5"}, TypeError)])
def test_text_plot_size_is_checked(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match=f"{next(iter(options))} must be a whole number"):
        draw_text(sample("x**2", {}, {"x": (-1, 1)}, points=5), **options)


def test_text_plot_without_a_terminal_has_no_colour_and_names_its_curves() -> None:
    rc, out, err = invoke(
        "plot", QUARTIC, "--x", "-2:2", "--order", "2", env={"COLUMNS": "80", "LINES": "24"}
    )
    assert (rc, err) == (0, "")
    assert "\x1b[" not in out
    lines = out.splitlines()
    assert lines[0].strip() == QUARTIC
    assert "f" in lines[-2] and "df/dx" in lines[-2] and "d2f/dx2" in lines[-2]
    assert lines[-1] == "horizontal: x"
    assert max(len(line) for line in lines) <= 80


def test_text_plot_says_where_f_is_not_finite() -> None:
    rc, out, _ = invoke("plot", "log(x)", "--x", "-1:1", "--points", "5")
    assert rc == 0 and out.splitlines()[-1] == "f or its derivative is not finite where x is in [-1.25, 0.25]"


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["nan*x", "--x", "-1:1"], "f and its derivatives are nowhere finite on the range"),
        (["1/(x - x)", "--x", "-1:1"], "f and its derivatives are nowhere finite on the range"),
        (["nan*x + y", "--x", "-1:1", "--y", "-1:1"], "f has no contour line on the range"),
        (["0*x + 0*y", "--x", "-1:1", "--y", "-1:1"], "f has no contour line on the range"),
    ],
)
def test_a_plot_with_nothing_to_draw_says_so_and_a_file_of_it_is_drawn(
    tmp_path: Path, args: list[str], why: str
) -> None:
    """A function nowhere finite on the range was NumPy's words in the terminal ('zero-size array
    to reduction operation maximum ...', 'need at least one array to concatenate'), and its
    picture two lines of 'warning: numpy: invalid value' from matplotlib's drawing."""
    rc, out, err = invoke("plot", *args)
    assert (rc, err) == (0, "") and f"nothing to draw: {why}" in out
    rc, out, err = invoke("plot", *args, "-o", str(tmp_path / "p.png"))
    assert (rc, out, err) == (0, "", "")
    assert matplotlib.image.imread(tmp_path / "p.png").shape == (500, 800, 4)


@pytest.mark.parametrize(
    ("args", "drawing", "where", "widest"),
    [
        (["x", "--x", "-1e300:1e300"], "the terminal plot", "x spans 2e+300", "1e+150"),
        (["1e200*x", "--x", "-1:1"], "the terminal plot", "f and its derivatives spans 2.2e+200", "1e+150"),
        (["x*y", "--x", "0:1e200", "--y", "0:1"], "the terminal plot", "x spans 1e+200", "1e+150"),
        (
            ["x", "--x", "-1e308:1e308", "-o", "w.png"],
            "a plot in a file",
            "x spans more than the largest float",
            "1e+307",
        ),
    ],
)
def test_an_axis_too_wide_to_draw_is_one_error_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], drawing: str, where: str, widest: str
) -> None:
    monkeypatch.chdir(tmp_path)
    hint = "write the numbers with --format csv"
    if drawing == "the terminal plot":
        hint += ", or draw into a file (-o plot.png)"
    assert invoke("plot", *args)[::2] == (
        2,
        f"error: {drawing} cannot scale an axis that wide ({where}, at most {widest}): {hint}\n",
    )  # (they were "(34, 'Numerical result out of range')", "Axis limits cannot be NaN or Inf")


def test_a_text_plot_of_a_curve_far_past_its_view_is_drawn() -> None:
    # exp(200) is 1e77 heights above the view: uniplot drew the segment to it pixel by pixel
    rc, out, err = invoke("plot", "exp(x)", "--x", "0:200")
    assert (rc, err) == (0, ""), err
    assert out.splitlines()[-1] == "horizontal: x"


def test_a_text_plot_reports_no_warning_of_its_own_drawing() -> None:
    rc, out, err = invoke("plot", "x", "--x", "0:1e-320")  # (uniplot's 0/0 placing the labels)
    assert (rc, err) == (0, "") and out.splitlines()[-1] == "horizontal: x"


def test_text_plot_of_two_inputs_draws_contour_levels() -> None:
    rc, out, _ = invoke("plot", "x**2 + y**2", "--x", "-1:1", "--y", "-1:1", env={"COLUMNS": "80"})
    assert rc == 0 and "f = " in out and out.splitlines()[-1] == "horizontal: x, vertical: y"


def test_text_plot_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "plot.txt"
    assert invoke("plot", QUARTIC, "--x", "-2:2", "-o", str(out), "--format", "text")[0] == 0
    assert out.read_text().splitlines()[0].strip() == QUARTIC


# -- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([QUARTIC, "--x", "1"], "got 0 ranges"),
        (["x + y + z", "--x", "0:1", "--y", "0:1", "--z", "0:1"], "got 3 ranges"),
        ([QUARTIC, "--x", "3:-3"], "the low end 3 must be below the high end -3"),
        ([QUARTIC, "--x", "a:1"], "the low end 'a' is not a number"),
        ([QUARTIC, "--x", "0:inf"], "must be a finite number"),
        (
            ["x * a", "--x", "0:1"],
            "missing value for 'a' (variables: x, a): give a value, or a range (--a -3:3)",
        ),
        (["x * a", "--x", "0:1", "--b", "1"], "no variable 'b'"),
        (["x * y", "--x", "0:1", "--y", "0:1", "--order", "2"], "--order is for one variable"),
        ([QUARTIC, "--x", "0:1", "-o", "plot.jpg"], "name a file ending in .png"),
        ([QUARTIC, "--x", "0:1", "--format", "png"], "add -o FILE"),
        ([QUARTIC, "--x", "0:1", "-o", "p.svg", "--format", "png"], "ends in .svg, but --format is png"),
        (["x * [1, 2]", "--x", "0:1"], "a plot needs one scalar output"),
        (["x * y", "--x", "0:1", "--y", "0:1", "--points", "1001"], "more than 1,000,000"),
        ([QUARTIC, "--x", "0:1", "-o", "/no/such/dir/p.png"], "-o /no/such/dir/p.png: No such file"),
    ],
)
def test_plot_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    rc, out, err = invoke("plot", *args)
    assert (rc, out) == (2, "")
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("matplotlib", [QUARTIC, "--x", "0:1", "-o", "p.png"]),
        ("uniplot", [QUARTIC, "--x", "0:1"]),
    ],
)
def test_missing_drawing_package_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str, args: list[str]
) -> None:
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, module + ".figure", None)
    monkeypatch.chdir(tmp_path)
    rc, out, err = invoke("plot", *args)
    assert (rc, out) == (1, "")
    assert err.count("\n") == 1 and err.endswith(
        f'needs {module}, which cannot be imported: pip install "gradcli[plot]"\n'
    )
    # The data needs neither.
    assert invoke("plot", QUARTIC, "--x", "0:1", "--format", "csv")[0] == 0


def test_minimize_plot_without_matplotlib_fails_before_minimising(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    rc, out, err = invoke("minimize", QUARTIC, "--x", "2", "--plot", "p.png")
    assert (rc, out) == (1, "") and "pip install" in err


def test_csv_reads_back_with_numpy() -> None:
    rc, out, _ = invoke("plot", QUARTIC, "--x", "-1:1", "--points", "4", "--format", "csv")
    data = np.genfromtxt(io.StringIO(out), delimiter=",", names=True)
    assert data.dtype.names == ("x", "f", "dfdx") and len(data) == 4


def test_a_range_wider_than_the_largest_float_is_sampled_end_to_end() -> None:
    # 1e308 - (-1e308) overflows: linspace gave the points nan, inf, 1e308.
    rc, out, err = invoke("plot", "sin(x)", "--x=-1e308:1e308", "--points", "3", "--format", "csv", "-o", "-")
    assert (rc, err) == (0, "")
    assert [line.split(",")[0] for line in out.splitlines()] == ["x", "-1e+308", "0.0", "1e+308"]
