"""gradcli.plugins: user Functions load only through explicit switches, and fail in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import gradcli
from gradcli.engine import Variable
from gradcli.functions import REGISTRY
from gradcli.plugins import PluginError, load_plugin_file, load_plugins

pytestmark = pytest.mark.usefixtures("clean_registry")  # plugins loaded here

LINE = Path(__file__).resolve().parent.parent / "examples" / "line.py"

PLUGIN_SQUARE_PLUS_ONE = """
import gradcli


@gradcli.register("{name}", rule="d/dx = 2*x")
class SquarePlusOne(gradcli.Function):
    def forward(self, x):
        return x * x + 1.0

    def backward(self, gy):
        return gy * 2.0 * self.inputs[0]
"""


def _plugin(tmp_path: Path, filename: str, source: str) -> Path:
    path = tmp_path / filename
    path.write_text(source)
    return path


# -- examples/line.py -----------------------------------------------------------------------------------


def test_line_example_registers_line_with_its_rule() -> None:
    assert load_plugin_file(str(LINE)) == ["line"]
    spec = REGISTRY["line"]
    assert spec.inputs == ("w", "x", "b")
    assert spec.rule == "d/dw = x, d/dx = w, d/db = 1"


def test_line_example_gradients_on_2x2_matrices() -> None:
    load_plugin_file(str(LINE))
    w = Variable([[1.0, 2.0], [3.0, 4.0]])
    x = Variable([[5.0, 6.0], [7.0, 8.0]])
    b = Variable([[0.5, -1.0], [2.0, 0.0]])
    y = REGISTRY["line"](w, x, b)
    np.testing.assert_array_equal(y.data, [[5.5, 11.0], [23.0, 32.0]])
    y.backward()
    np.testing.assert_array_equal(w.grad.data, x.data)
    np.testing.assert_array_equal(x.grad.data, w.data)
    np.testing.assert_array_equal(b.grad.data, np.ones((2, 2)))


def test_line_example_sums_gradient_back_over_broadcast_inputs() -> None:
    load_plugin_file(str(LINE))
    w = Variable([[1.0, 2.0], [3.0, 4.0]])
    x = Variable([[5.0, 6.0], [7.0, 8.0]])
    b = Variable([[1.0, 1.0]])  # broadcast over rows
    REGISTRY["line"](w, x, b).backward()
    np.testing.assert_array_equal(b.grad.data, [[2.0, 2.0]])


def test_line_example_with_a_scalar_bias() -> None:
    load_plugin_file(str(LINE))
    w = Variable([[1.0, 2.0], [3.0, 4.0]])
    x = Variable([[5.0, 6.0], [7.0, 8.0]])
    b = Variable(1.0)
    REGISTRY["line"](w, x, b).backward()
    assert float(b.grad.data) == 4.0


def test_line_example_backward_is_itself_differentiable() -> None:
    load_plugin_file(str(LINE))
    w = Variable([[1.0, 2.0], [3.0, 4.0]])
    x = Variable([[5.0, 6.0], [7.0, 8.0]])
    b = Variable([[0.0, 0.0], [0.0, 0.0]])
    REGISTRY["line"](w, x, b).backward(create_graph=True)
    gw = w.grad  # = x, so d(sum(gw))/dx = 1 everywhere
    x.grad = None
    gw.backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 2)))


# -- load_plugin_file -----------------------------------------------------------------------------------


def test_loading_the_same_file_twice_is_a_no_op(tmp_path: Path) -> None:
    path = _plugin(tmp_path, "sq.py", PLUGIN_SQUARE_PLUS_ONE.format(name="sq1"))
    assert load_plugin_file(str(path)) == ["sq1"]
    spec = REGISTRY["sq1"]
    again = tmp_path / "sub" / ".." / "sq.py"
    (tmp_path / "sub").mkdir()
    assert load_plugin_file(str(again)) == ["sq1"]
    assert REGISTRY["sq1"] is spec


def test_plugin_module_gets_a_private_name(tmp_path: Path) -> None:
    path = _plugin(tmp_path, "numpy.py", PLUGIN_SQUARE_PLUS_ONE.format(name="sq2"))
    load_plugin_file(str(path))
    module = REGISTRY["sq2"].cls.__module__
    assert module.startswith("gradcli_plugin_numpy_") and sys.modules["numpy"] is np


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os\n\nx = 1 / 0\n", ": ZeroDivisionError: division by zero (line 3)"),
        ("def f(:\n    pass\n", ": SyntaxError: invalid syntax (line 1)"),
        ("import no_such_module_for_gradcli\n", ": ModuleNotFoundError: No module named"),
        ("raise RuntimeError('two\\nlines')\n", ": RuntimeError: two lines (line 1)"),
        ("raise SystemExit(3)\n", ": SystemExit: 3 (line 1)"),
        (
            "import gradcli\n\n@gradcli.register('sin')\nclass S(gradcli.Function):\n    pass\n",
            ": function 'sin' is already registered",
        ),
    ],
)
def test_failing_plugin_is_one_line_error_naming_the_file(tmp_path: Path, source: str, expected: str) -> None:
    path = _plugin(tmp_path, "bad.py", source)
    with pytest.raises(PluginError) as info:
        load_plugin_file(str(path))
    message = str(info.value)
    assert message.startswith(f"plugin {path}") and expected in message
    assert "\n" not in message and "Traceback" not in message


def test_registering_a_name_twice_across_plugins_is_an_error(tmp_path: Path) -> None:
    first = _plugin(tmp_path, "first.py", PLUGIN_SQUARE_PLUS_ONE.format(name="twice"))
    second = _plugin(tmp_path, "second.py", PLUGIN_SQUARE_PLUS_ONE.format(name="twice"))
    load_plugin_file(str(first))
    with pytest.raises(PluginError, match=rf"^plugin {second}: function 'twice' is already registered"):
        load_plugin_file(str(second))


def test_failed_plugin_leaves_the_registry_as_it_was(tmp_path: Path) -> None:
    source = PLUGIN_SQUARE_PLUS_ONE.format(name="half_done") + "\nraise ValueError('late')\n"
    path = _plugin(tmp_path, "half.py", source)
    before = dict(REGISTRY)
    with pytest.raises(PluginError, match="ValueError: late"):
        load_plugin_file(str(path))
    assert REGISTRY == before


@pytest.mark.parametrize(("name", "fragment"), [("missing.py", "no such file"), ("", "not a file")])
def test_missing_file_or_directory_is_an_error(tmp_path: Path, name: str, fragment: str) -> None:
    with pytest.raises(PluginError, match=fragment):
        load_plugin_file(str(tmp_path / name))


# -- load_plugins -----------------------------------------------------------------------------------------


def test_plugins_from_files_and_env_var(tmp_path: Path) -> None:
    a = _plugin(tmp_path, "a.py", PLUGIN_SQUARE_PLUS_ONE.format(name="from_a"))
    b = _plugin(tmp_path, "b.py", PLUGIN_SQUARE_PLUS_ONE.format(name="from_b"))
    c = _plugin(tmp_path, "c.py", PLUGIN_SQUARE_PLUS_ONE.format(name="from_c"))
    env = {"GRADCLI_PLUGINS": os.pathsep.join([str(b), "", str(c)])}
    assert load_plugins([str(a)], env=env, entry_points=False) == ["from_a", "from_b", "from_c"]
    y = REGISTRY["from_c"](Variable(3.0))
    assert float(y.data) == 10.0


def test_missing_file_in_env_var_is_an_error(tmp_path: Path) -> None:
    env = {"GRADCLI_PLUGINS": str(tmp_path / "gone.py")}
    with pytest.raises(PluginError, match="gone.py: no such file"):
        load_plugins([], env=env, entry_points=False)


def test_nothing_is_loaded_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for filename in ("gradcli_plugins.py", "plugin.py", "line.py"):
        _plugin(tmp_path, filename, PLUGIN_SQUARE_PLUS_ONE.format(name="from_cwd"))
    monkeypatch.chdir(tmp_path)
    assert load_plugins([], env={}, entry_points=False) == []
    assert "from_cwd" not in REGISTRY


class _Tripled(gradcli.Function):
    def forward(self, x: Any) -> Any:
        return 3.0 * x

    def backward(self, gy: Variable) -> Variable:
        return 3.0 * gy


def _entry_point(name: str, load: Any) -> SimpleNamespace:
    return SimpleNamespace(name=name, value=f"somepackage:{name}", load=load)


def _fake_entry_points(monkeypatch: pytest.MonkeyPatch, eps: list[SimpleNamespace]) -> None:
    def entry_points(group: str) -> list[SimpleNamespace]:
        assert group == "gradcli.functions"
        return eps

    monkeypatch.setattr("importlib.metadata.entry_points", entry_points)


def test_entry_point_class_is_registered_under_the_entry_point_name(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, [_entry_point("tripled", lambda: _Tripled)])
    assert load_plugins([], env={}) == ["tripled"]
    assert REGISTRY["tripled"].cls is _Tripled
    assert load_plugins([], env={}) == []  # already registered: no duplicate error


def test_entry_point_module_registers_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    def load() -> Any:
        gradcli.register("by_module")(type("ByModule", (_Tripled,), {}))
        return sys.modules[__name__]

    _fake_entry_points(monkeypatch, [_entry_point("mod", load)])
    assert load_plugins([], env={}) == ["by_module"]


@pytest.mark.parametrize(
    ("load", "fragment"),
    [
        (lambda: 1 / 0, "ZeroDivisionError: division by zero"),
        (lambda: len, "expected a module or a gradcli.Function subclass, got builtin_function_or_method"),
    ],
)
def test_bad_entry_point_is_one_line_error(monkeypatch: pytest.MonkeyPatch, load: Any, fragment: str) -> None:
    _fake_entry_points(monkeypatch, [_entry_point("broken", load)])
    with pytest.raises(PluginError) as info:
        load_plugins([], env={})
    assert str(info.value).startswith("plugin entry point 'broken'") and fragment in str(info.value)


def test_entry_point_taking_a_builtin_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, [_entry_point("sin", lambda: _Tripled)])
    with pytest.raises(PluginError, match="function 'sin' is already registered"):
        load_plugins([], env={})


def test_importing_gradcli_does_not_import_importlib_metadata() -> None:
    code = "import sys, gradcli, gradcli.plugins; print('importlib.metadata' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- a hand-written backward's gradients are checked --------------------------------------------

WRONG_BACKWARD = """
import numpy as np
import gradcli


@gradcli.register("{name}")
class Wrong(gradcli.Function):
    def forward(self, x, y):
        return x * y

    def backward(self, gy):
        return {returns}
"""


@pytest.mark.parametrize(
    ("returns", "args", "message"),
    [
        (
            "np.ones((7, 7)), gy",
            ("--x", "3", "--y", "2"),
            "returned a gradient of shape (7, 7) for input 1, of shape ()",
        ),
        ("gy, gy, gy", ("--x", "3", "--y", "2"), "returned 3 gradients for 2 inputs"),
        ("gy", ("--x", "3", "--y", "2"), "returned 1 gradient for 2 inputs"),
        ("gy * 0.0 + 1.0, gy", ("--x", "[1, 2]", "--y", "2"), None),  # of the output's shape: fine
        (
            "np.ones(3), gy",
            ("--x", "[1, 2]", "--y", "2"),
            "returned a gradient of shape (3,) for input 1, of shape (2,)",
        ),
        (
            "'abc', gy",
            ("--x", "3", "--y", "2"),
            "returned 'abc' for input 1, not a number or an array of numbers",
        ),
        (
            "gy, {'x': 1}",
            ("--x", "[1, 2]", "--y", "2"),
            "returned a dict for input 2, not a number or an array of numbers",
        ),
        ("[1.0, 2.0], gy", ("--x", "[1, 2]", "--y", "2"), None),  # a list of numbers: an array
    ],
    ids=["shape", "too-many", "too-few", "broadcast", "unrelated", "text", "dict", "list"],
)
def test_a_backward_giving_the_wrong_gradients_is_one_line_naming_it(
    tmp_path: Path, returns: str, args: tuple[str, ...], message: str | None
) -> None:
    """These were taken silently: the (7, 7) gradient of a number summed to 49, a third
    gradient dropped, a missing one read as zero."""
    from conftest import invoke

    plugin = _plugin(tmp_path, "wrong.py", WRONG_BACKWARD.format(name="wrong", returns=returns))
    rc, out, err = invoke("eval", "wrong(x, y)", *args, "--plugin", str(plugin))
    if message is None:
        assert rc == 0, err
        return
    assert rc == 1 and out == ""
    assert err == f"error: wrong's backward {message}\n"


class _MySum(gradcli.Function):
    def forward(self, x: Any) -> Any:
        return x.sum()

    def backward(self, gy: Any) -> Any:
        return gy * np.ones(self.inputs[0].shape)


class _MyMatMul(gradcli.Function):
    def forward(self, a: Any, b: Any) -> Any:
        return a @ b

    def backward(self, gy: Any) -> Any:
        a, b = self.inputs
        return gy @ b.T, a.T @ gy


def test_a_backward_that_changes_the_shape_gives_each_input_a_gradient_of_its_shape() -> None:
    # A hand-written sum or matrix product was refused ("a gradient of shape (3,) for input 1,
    # of shape (3,)"): a gradient had to broadcast to the output's shape as well as fit its input.
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(gradcli.grad(lambda x: _MySum()(x), {"x": x})["x"], np.ones(3))
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4) / 7.0
    got = gradcli.grad(lambda a, b: gradcli.functions.sum(_MyMatMul()(a, b)), {"a": a, "b": b})
    np.testing.assert_allclose(got["a"], np.ones((2, 4)) @ b.T)
    np.testing.assert_allclose(got["b"], a.T @ np.ones((2, 4)))
    from gradcli import calculus

    report = calculus.check(
        lambda a, b: gradcli.functions.sum(_MyMatMul()(a, b) ** 2), {"a": a, "b": b}, order=2
    )
    assert report.ok


class _Cube(gradcli.Function):
    def forward(self, x: Any) -> Any:
        x = np.asarray(x)  # what a careful author writes
        self.save_for_backward(x)
        return x**3

    def backward(self, gy: Any) -> Any:
        (x,) = self.saved_tensors
        return gy * 3.0 * x * x


class _Exp(gradcli.Function):
    def forward(self, x: Any) -> Any:
        y = np.asarray(np.exp(x))
        self.save_for_backward(y)  # an output the engine then converts (a 0-d array: a number)
        return y

    def backward(self, gy: Any) -> Any:
        (y,) = self.saved_tensors
        return gy * y


@pytest.mark.parametrize("x", [2.0, [2.0]], ids=["number", "array"])
def test_saved_values_keep_their_graph_when_forward_converts_a_number(x: Any) -> None:
    # np.asarray of a number's NumPy scalar was a new array, a constant to backward: the second
    # derivative of a number came out 0 (12 for an array), and so it did through a saved output
    # of a number that the engine converted.
    from gradcli import calculus

    h = calculus.hessian(lambda x: gradcli.functions.sum(_Cube()(x)), {"x": x}).hessian["x"]["x"]
    assert np.ravel(h).tolist() == [12.0]
    e = calculus.hessian(lambda x: gradcli.functions.sum(_Exp()(x)), {"x": x}).hessian["x"]["x"]
    assert np.ravel(e).tolist() == [float(np.exp(2.0))]


def test_a_variadic_plugin_forward_takes_any_number_of_inputs(tmp_path: Path) -> None:
    plugin = tmp_path / "many.py"
    plugin.write_text(
        "import gradcli\n"
        "@gradcli.register('weighted')\n"
        "class Weighted(gradcli.Function):\n"
        "    '''w times the sum of the others'''\n"
        "    def forward(self, w, *xs):\n"
        "        return w * sum(xs)\n"
        "    def backward(self, gy):\n"
        "        w, *xs = self.inputs\n"
        "        total = xs[0]\n"
        "        for x in xs[1:]:\n"
        "            total = total + x\n"
        "        return (gy * total, *(gy * w for _ in xs))\n"
    )
    assert load_plugin_file(str(plugin)) == ["weighted"]
    assert REGISTRY["weighted"].variadic and REGISTRY["weighted"].inputs == ("w", "xs")
    g = gradcli.grad("weighted(w, x, y, x)", {"w": 2.0, "x": 1.0, "y": 3.0})
    assert g == {"w": 5.0, "x": 4.0, "y": 2.0}
    assert gradcli.check("sum(weighted(w, x, y))", {"w": 2.0, "x": 1.0, "y": [3.0, 4.0]}, order=2).ok


def test_registering_without_a_name_takes_the_class_name_in_lower_case() -> None:
    @gradcli.register
    class Double(gradcli.Function):
        """2x"""

        def forward(self, x: Any) -> Any:
            return 2 * x

        def backward(self, gy: Any) -> Any:
            return 2 * gy

    @gradcli.register()
    class Triple(Double):
        def forward(self, x: Any) -> Any:
            return 3 * x

        def backward(self, gy: Any) -> Any:
            return 3 * gy

    assert isinstance(Double, type) and Double.registry_name == "double"  # the class, not a decorator
    assert REGISTRY["double"].cls is Double and REGISTRY["triple"].cls is Triple
    assert gradcli.grad("double(x) + triple(x)", {"x": 1.0}) == {"x": 5.0}


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: gradcli.register(5), TypeError, "register takes the function's name \\(text\\), got 5"),
        (
            lambda: gradcli.register(int),
            gradcli.functions.registry.RegistryError,
            "expects a gradcli.Function",
        ),
        (
            lambda: gradcli.register("two words")(type("T", (gradcli.Function,), {})),
            Exception,
            "not an identifier",
        ),
    ],
)
def test_a_bad_name_to_register_is_one_clear_error(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()
