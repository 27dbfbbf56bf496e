"""gradcli.inputs: what a user types -> float64 arrays, or one readable InputError."""

from __future__ import annotations

import io
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcli.inputs import InputError, parse_value, parse_vars, values_from_json_object


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", 2.0),
        ("-2", -2.0),
        ("+2", 2.0),
        ("2.5", 2.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e-3", 1e-3),
        ("-1.5E+2", -150.0),
        (" 3 ", 3.0),
        ("nan", math.nan),
        ("NaN", math.nan),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("Infinity", math.inf),
        ("-INFINITY", -math.inf),
    ],
)
def test_scalar_text_becomes_0d_float64(text: str, expected: float) -> None:
    a = parse_value(text, "x")
    assert a.shape == () and a.dtype == np.float64
    np.testing.assert_array_equal(a, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1, 2, 3]", [1.0, 2.0, 3.0]),
        ("[[1,2],[3,4]]", [[1.0, 2.0], [3.0, 4.0]]),
        ('[1, "NaN", "-Infinity"]', [1.0, math.nan, -math.inf]),
        ("[NaN, Infinity]", [math.nan, math.inf]),
        ("[[[1]], [[2]]]", [[[1.0]], [[2.0]]]),
    ],
)
def test_json_array_text_becomes_array_of_its_shape(text: str, expected: list) -> None:
    a = parse_value(text, "x")
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, np.array(expected))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[nan, 1]", ["NaN", 1.0]),
        ("[inf, -inf, +Infinity]", ["Infinity", "-Infinity", "Infinity"]),
        ("[.5, -.25, 1., 2e-1]", [0.5, -0.25, 1.0, 0.2]),
        ("[[.5, nan], [NaN, -INF]]", [[0.5, "NaN"], ["NaN", "-Infinity"]]),
    ],
)
def test_an_array_typed_on_the_command_line_takes_nan_inf_and_a_leading_dot(
    text: str, expected: list
) -> None:
    from conftest import invoke

    rc, out, err = invoke("eval", "x", "--x", text, "--json")
    assert (rc, err) == (0, "")
    assert json.loads(out)["value"] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[.5, 2", "not valid JSON (Expecting ',' delimiter at line 1, column 7)"),  # its place as typed
        ("[inf, nan,, 1]", "not valid JSON (Expecting value at line 1, column 11)"),
        ("[.5, foo]", "not valid JSON (Expecting value at line 1, column 2)"),
        ("[1e999, .5]", "1e999 is too large for a 64-bit float (at most about 1.8e308)"),
    ],
)
def test_a_bad_typed_array_is_one_error_saying_where(text: str, message: str) -> None:
    from conftest import invoke

    assert invoke("eval", "x", "--x", text)[::2] == (2, f"error: variable 'x': {message}\n")


def test_empty_json_arrays_keep_their_shape() -> None:
    assert parse_value("[]", "x").shape == (0,)
    assert parse_value("[[], []]", "x").shape == (2, 0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("abc", "expected a number"),
        ("1_000", "expected a number"),
        ("0x10", "expected a number"),
        ("__import__('os')", "expected a number"),
        ("", "expected a number"),
        ("[[1, 2], [3]]", "ragged"),
        ("[1, [2]]", "ragged"),
        ("[[1], 2]", "ragged"),
        ("[1, 2", "not valid JSON"),
        ("[true]", "expected numbers, found true"),
        ("[null]", "expected numbers, found null"),
        ('["2"]', 'expected numbers, found "2"'),
        ("[1" + "0" * 400 + "]", "too large"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[" * 40 + "]" * 40, "levels of nested lists"),
        ("@", "must be followed by a file name"),
        ("\u0661\u0662", "expected a number"),  # Arabic-Indic digits, which float() reads as 12
        ("1e400", "1e400 is too large for a 64-bit float"),  # read as infinity, silently, once
        ("-" + "9" * 5000, "(5,001 characters) is too large for a 64-bit float"),
        ("[1, 2e308]", "2e308 is too large for a 64-bit float"),
    ],
)
def test_bad_value_text_is_one_line_error_naming_the_variable(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_value(text, "velocity")
    message = str(info.value)
    assert "'velocity'" in message and fragment in message and "\n" not in message


# -- files -----------------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> Path:
    np.save(tmp_path / "m.npy", np.arange(4).reshape(2, 2))
    np.save(tmp_path / "obj.npy", np.array([1, None], dtype=object), allow_pickle=True)
    np.save(tmp_path / "cplx.npy", np.ones(2, dtype=complex))
    (tmp_path / "pickle.npy").write_bytes(pickle.dumps([1.0, 2.0]))
    np.savez(tmp_path / "two.npz", x=np.ones(2), y=np.zeros(3))
    np.savez(tmp_path / "one.npz", only=np.full(2, 7.0))
    np.savez(tmp_path / "objs.npz", x=np.array([1, None], dtype=object))
    (tmp_path / "v.json").write_text('[[1, 2], [3, "Infinity"]]')
    (tmp_path / "n.json").write_text("2.5")
    (tmp_path / "obj.json").write_text('{"x": 1}')
    (tmp_path / "matrix.csv").write_text("1,2\n3,4\n")
    (tmp_path / "header.csv").write_text("a, b\n1, 2\n3, 4\n")
    (tmp_path / "row.csv").write_text("1,2,3\n")
    (tmp_path / "column.csv").write_text("1\n2\n3\n")
    (tmp_path / "single.csv").write_text("5\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    (tmp_path / "words.csv").write_text("1,x\n")
    (tmp_path / "latin1.json").write_bytes(b"\xff\xfe[1]")
    return tmp_path


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("m.npy", [[0.0, 1.0], [2.0, 3.0]]),
        ("two.npz", [1.0, 1.0]),  # the array named like the variable, x
        ("two.npz:y", [0.0, 0.0, 0.0]),
        ("one.npz", [7.0, 7.0]),  # the only array
        ("v.json", [[1.0, 2.0], [3.0, math.inf]]),
        ("n.json", 2.5),
        ("matrix.csv", [[1.0, 2.0], [3.0, 4.0]]),
        ("header.csv", [[1.0, 2.0], [3.0, 4.0]]),
        ("row.csv", [1.0, 2.0, 3.0]),
        ("column.csv", [1.0, 2.0, 3.0]),
        ("single.csv", 5.0),
    ],
)
def test_at_file_loads_float64_array(files: Path, spec: str, expected: object) -> None:
    a = parse_value(f"@{files / spec}", "x")
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a, np.array(expected))


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("missing.npy", "No such file"),
        ("obj.npy", "refusing pickled data"),
        ("pickle.npy", "refusing pickled data"),
        ("objs.npz:x", "refusing pickled data"),
        ("cplx.npy", "real numbers"),
        ("two.npz:w", "no array 'w'"),
        ("m.npy:x", "':x' only applies to .npz files"),
        ("obj.json", "expected numbers"),
        ("latin1.json", "not UTF-8"),
        ("empty.csv", "no numbers"),
        ("ragged.csv", "number of columns changed"),
        ("words.csv", "not a table of numbers"),
        ("data.txt", "unknown kind of file"),
    ],
)
def test_bad_file_is_one_line_error_naming_variable_and_file(files: Path, spec: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_value(f"@{files / spec}", "x")
    message = str(info.value)
    assert "'x'" in message and spec.split(":")[0] in message
    assert fragment in message and "\n" not in message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("two.npz:", "from 'two.npz': ':' must be followed by the name of an array (the file holds a, b)"),
        ("one.npy:a", "from 'one.npy': ':a' only applies to .npz files"),
    ],
)
def test_a_key_that_cannot_name_an_array_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, message: str
) -> None:
    from conftest import invoke

    monkeypatch.chdir(tmp_path)
    np.savez("two.npz", a=np.ones(2), b=np.ones(3))
    np.save("one.npy", np.ones(2))
    assert invoke("eval", "sum(x)", "--x", f"@{spec}")[::2] == (2, f"error: variable 'x' {message}\n")


def test_npz_with_several_arrays_and_no_match_asks_for_a_key(files: Path) -> None:
    with pytest.raises(InputError, match=r"holds x, y .*:KEY"):
        parse_value(f"@{files / 'two.npz'}", "z")


def test_directory_is_a_readable_error(files: Path) -> None:
    (files / "dir.json").mkdir()
    with pytest.raises(InputError, match="cannot read the file"):
        parse_value(f"@{files / 'dir.json'}", "x")


# -- --vars and JSON objects -------------------------------------------------------------------------


def _equal(got: dict[str, np.ndarray], expected: dict[str, object]) -> None:
    assert list(got) == list(expected)
    for k, v in expected.items():
        assert got[k].dtype == np.float64
        np.testing.assert_array_equal(got[k], np.array(v))


@pytest.mark.parametrize("text", ["@", " @ "])
def test_vars_at_without_a_file_name_says_so(text: str) -> None:
    from conftest import invoke

    assert invoke("eval", "x", "--vars", text)[::2] == (
        2,
        "error: --vars: '@' must be followed by a file name\n",
    )


@pytest.mark.parametrize(
    ("args", "stdin", "source"),
    [
        (["--vars", ""], None, "--vars"),
        (["--vars", "-"], "", "--vars from stdin"),
        (["--vars", "-"], "\n", "--vars from stdin"),
    ],
)
def test_empty_vars_say_they_are_empty(args: list[str], stdin: str | None, source: str) -> None:
    from conftest import invoke

    assert invoke("eval", "x", *args, input=stdin)[::2] == (
        2,
        f'error: {source} is empty: expected a JSON object like {{"x": 2, "y": [1, 2]}}\n',
    )


def test_a_value_given_twice_in_vars_is_refused_as_on_the_command_line(tmp_path: Path) -> None:
    from conftest import invoke

    assert invoke("eval", "x", "--vars", '{"x": 1, "x": 2}')[::2] == (
        2,
        "error: --vars: 'x' is given twice\n",
    )
    path = tmp_path / "v.json"
    path.write_text('{"x": [1], "x": [2]}')
    assert invoke("eval", "x", "--vars", f"@{path}")[::2] == (
        2,
        f"error: --vars file '{path}': 'x' is given twice\n",
    )


def test_at_dash_says_how_to_give_values_on_standard_input() -> None:
    from conftest import invoke

    assert invoke("eval", "sum(x)", "--x", "@-", input="[1, 2]")[::2] == (
        2,
        "error: variable 'x': @- is not standard input; give values there with --vars - ({\"x\": ...})\n",
    )  # (it was "variable 'x' from '-': unknown kind of file")


def test_vars_json_object_text() -> None:
    _equal(parse_vars('{"x": 2, "y": [1, 2]}'), {"x": 2.0, "y": [1.0, 2.0]})


def test_vars_dash_reads_the_given_stdin() -> None:
    _equal(parse_vars("-", stdin=io.StringIO('{"x": "NaN"}\n')), {"x": math.nan})


def test_vars_dash_reads_sys_stdin_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"y": -1}'))
    _equal(parse_vars("-"), {"y": -1.0})


def test_vars_at_json_and_npz_files(files: Path) -> None:
    (files / "vars.json").write_text('{"a": [[1, 2]], "b": "-Infinity"}')
    _equal(parse_vars(f"@{files / 'vars.json'}"), {"a": [[1.0, 2.0]], "b": -math.inf})
    _equal(parse_vars(f"@{files / 'two.npz'}"), {"x": [1.0, 1.0], "y": [0.0, 0.0, 0.0]})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[1, 2]", "expected a JSON object"),
        ("2", "expected a JSON object"),
        ("{x: 1}", "not valid JSON"),
        ('{"x": "2"}', "variable 'x'"),
        ('{"x": {"y": 1}}', "expected numbers, found an object"),
        ('{"x": [1, [2]]}', "ragged"),
        ("@nowhere.json", "cannot read the file"),
        ("@data.npy", "expected a .json or .npz file"),
    ],
)
def test_bad_vars_is_one_line_error(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_vars(text)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_values_from_json_object_reads_back_our_own_json_output() -> None:
    written = {"value": 13.0, "grad": [1.0, "NaN", "Infinity", "-Infinity"]}
    got = values_from_json_object(json.loads(json.dumps(written)))
    np.testing.assert_array_equal(got["grad"], [1.0, math.nan, math.inf, -math.inf])
    assert got["value"].shape == ()


@pytest.mark.parametrize(
    ("line", "kind"), [([1, 2], "an array"), (3, "a number"), ("x", "a string"), (None, "null")]
)
def test_json_that_is_not_an_object_is_an_input_error_in_jsons_words(line: object, kind: str) -> None:
    """JSON's names for what was given: Python's were list, int, str and NoneType."""
    with pytest.raises(InputError, match=f"expected a JSON object .*, got {kind}$"):
        values_from_json_object(line)  # type: ignore[arg-type]


def test_tilde_in_a_file_name_means_home(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(files))
    np.testing.assert_array_equal(parse_value("@~/row.csv", "x"), [1.0, 2.0, 3.0])


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(finite, min_size=3, max_size=3), min_size=1, max_size=4))
def test_json_text_of_a_matrix_round_trips(rows: list[list[float]]) -> None:
    np.testing.assert_array_equal(parse_value(json.dumps(rows), "m"), np.array(rows))


@settings(max_examples=60, deadline=None)
@given(finite)
def test_repr_of_a_float_reads_back_exactly(x: float) -> None:
    assert float(parse_value(repr(x), "x")) == x


# -- bad input gets gradcli's own message ------------------------------------------------------------


def test_json_integers_past_float64_are_an_input_error_not_pythons_digit_limit(tmp_path: Path) -> None:
    digits = "1" * 5000  # more than Python's 4,300-digit limit for int(str)
    path = tmp_path / "big.json"
    path.write_text(f"[{digits}]")
    expected = "a number is too large for a 64-bit float (an integer of 5,000 digits)"
    for call in (
        lambda: parse_value(f"@{path}", "x"),
        lambda: parse_value(f"[{digits}]", "x"),
        lambda: parse_vars(f'{{"x": {digits}}}'),
    ):
        with pytest.raises(InputError, match=r"a number is too large") as info:
            call()
        assert str(info.value).endswith(expected) and "set_int_max_str_digits" not in str(info.value)


def test_escape_sequences_in_data_reach_the_message_escaped(tmp_path: Path) -> None:
    path = tmp_path / "evil\x1b[2J.json"
    path.write_text(json.dumps(["\x1b]0;PWNED\x07"]))
    with pytest.raises(InputError) as info:
        parse_value(f"@{path}", "x")
    message = str(info.value)
    assert "\x1b" not in message and "\x07" not in message
    assert "\\x1b]0;PWNED\\x07" in message and "evil\\x1b[2J.json" in message


def test_npz_member_names_reach_the_message_escaped(tmp_path: Path) -> None:
    path = tmp_path / "names.npz"
    np.savez(path, **{"a\x1b[31m": np.ones(1), "b": np.ones(1)})
    with pytest.raises(InputError) as info:
        parse_value(f"@{path}", "x")
    assert "\x1b" not in str(info.value) and "a\\x1b[31m, b" in str(info.value)


def test_npy_header_over_numpys_limit_is_not_called_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "long.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + (20_000).to_bytes(2, "little") + b" " * 20_000)
    with pytest.raises(InputError) as info:
        parse_value(f"@{path}", "x")
    message = str(info.value)
    assert "header is 20,000 bytes, more than the 10,000 NumPy reads" in message
    assert "pickle" not in message


def test_an_array_larger_than_the_budget_left_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gradcli import budget

    path = tmp_path / "m.npy"
    np.save(path, np.ones((1000, 1000)))
    monkeypatch.setattr(budget, "room", lambda: 1 << 20)
    with pytest.raises(InputError, match=r"shape \(1000, 1000\) needs 7.63M, more than the 1M left"):
        parse_value(f"@{path}", "x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1;2\n3;4\n", [[1.0, 2.0], [3.0, 4.0]]),
        ("a;b\n1;2\n", [1.0, 2.0]),
        ("1\t2\n3\t4\n", [[1.0, 2.0], [3.0, 4.0]]),
        ("\ufeff1,2\n3,4\n", [[1.0, 2.0], [3.0, 4.0]]),
        ("\ufeffx,y\n1,2\n", [1.0, 2.0]),
    ],
)
def test_csv_with_semicolons_tabs_or_a_byte_order_mark_keeps_every_row(
    tmp_path: Path, text: str, expected: object
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    np.testing.assert_array_equal(parse_value(f"@{path}", "x"), np.array(expected))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"1.5","2"\n"3",4\n', [[1.5, 2.0], [3.0, 4.0]]),  # the first line numbers, not names
        ('"a","b"\r\n"1.5", "2"\r\n', [1.5, 2.0]),
        ('"a";"b"\n"1";"-2.5e1"\n', [1.0, -25.0]),
    ],
)
def test_quoted_csv_numbers_are_read_as_numbers(tmp_path: Path, text: str, expected: object) -> None:
    from conftest import invoke

    (tmp_path / "t.csv").write_text(text)
    rc, out, err = invoke("eval", "x", "--x", f"@{tmp_path / 't.csv'}", "--json")
    assert (rc, err) == (0, "")
    assert json.loads(out)["value"] == expected


def test_a_quoted_csv_field_holding_the_delimiter_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('"1,5",2\n')
    with pytest.raises(InputError, match="not a table of numbers"):
        parse_value(f"@{path}", "x")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # the file's own lines, from 1, with or without a line of names before the numbers
        ("1,2\n3,x\n", "could not convert string 'x' to float64 on line 2, column 2"),
        ("a,b\n1,2\n3,x\n", "could not convert string 'x' to float64 on line 3, column 2"),
        ("1,2\n3\n", "the number of columns changed from 2 to 1 on line 2"),
        ("a,b\n1,2\n3\n", "the number of columns changed from 2 to 1 on line 3"),
    ],
)
def test_a_bad_csv_field_is_named_by_its_line_in_the_file(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        parse_value(f"@{path}", "x")
    assert str(info.value) == f"variable 'x' from '{path}': not a table of numbers ({reason})"


@pytest.mark.parametrize(("text", "shown"), [("1e999\n", "1e999"), ("a,b\n1,2\n-1E400,3\n", "-1E400")])
def test_a_csv_number_too_large_for_a_float_is_refused_as_everywhere(
    tmp_path: Path, text: str, shown: str
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        parse_value(f"@{path}", "x")
    assert (
        str(info.value)
        == f"variable 'x' from '{path}': {shown} is too large for a 64-bit float (at most about 1.8e308)"
    )
    path.write_text("1,-inf,inf,Infinity\n")  # infinity, written as such, is a value
    np.testing.assert_array_equal(parse_value(f"@{path}", "x"), [1.0, -np.inf, np.inf, np.inf])


def test_a_json_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_text("\ufeff[1, 2]", encoding="utf-8")
    np.testing.assert_array_equal(parse_value(f"@{path}", "x"), [1.0, 2.0])


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_text_files_are_read_no_further_than_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    from gradcli import inputs

    path = tmp_path / f"long{suffix}"
    path.write_text("[" + "1," * 100 + "1]" if suffix == ".json" else "1\n" * 100)
    monkeypatch.setattr(inputs, "text_cap", lambda: 150)
    with pytest.raises(InputError, match=r"more than 150B of text, 1/32 of the memory budget left"):
        parse_value(f"@{path}", "x")
    monkeypatch.setattr(inputs, "text_cap", lambda: 250)
    expected = (101,) if suffix == ".json" else (100,)
    assert parse_value(f"@{path}", "x").shape == expected


def test_vars_from_stdin_is_read_no_further_than_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from gradcli import inputs

    monkeypatch.setattr(inputs, "text_cap", lambda: 10)
    with pytest.raises(InputError, match="--vars from stdin: more than 10B of text"):
        parse_vars("-", stdin=io.StringIO('{"x": 1, "y": 2}'))
