"""``--batch`` reads its lines with orjson and reads again with the standard library each line
orjson refuses: the values and the words of every error are the standard library's own."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest
from conftest import invoke
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcli import batch

orjson = pytest.importorskip("orjson")


def read(raw: bytes, fast: bool) -> tuple[Any, ...]:
    """parse_line's answer as plain data: each value's dtype, shape and bytes, or the error.
    (A number is an ``np.float64`` or a 0-d array, as it comes; both are answered alike.)"""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(batch, "_orjson", orjson if fast else None)
        line = batch.parse_line(7, raw)
    if line.values is None:
        return ("error", line.error)
    return tuple(
        (name, np.asarray(v).dtype.str, np.shape(v), np.asarray(v).tobytes())
        for name, v in line.values.items()
    )


# Numbers as JSON writes them: integers of any length, decimals with long mantissas and
# exponents (rounding to a float is where two readers could differ), halfway cases.
digits = st.text("0123456789", min_size=1, max_size=40).map(lambda d: d.lstrip("0") or "0")
numbers = st.one_of(
    st.builds(lambda s, d: s + d, st.sampled_from(["", "-"]), digits),
    st.builds(
        lambda s, i, f, e: f"{s}{i}.{f}{e}",
        st.sampled_from(["", "-"]),
        digits,
        st.text("0123456789", min_size=1, max_size=30),
        st.sampled_from(["", "e5", "E-7", "e+300", "e-320", "e308", "e-330", "e22", "E-22"]),
    ),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
HARD = [
    "9007199254740993",  # 2**53 + 1: rounds to even
    "18446744073709551615",  # 2**64 - 1: orjson's largest integer
    "18446744073709551617",  # past it: orjson reads a float
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1.00000000000000011102230246251565404236316680908203125",  # halfway between 1 and the next
    "1.00000000000000011102230246251565404236316680908203126",
    "2.2250738585072011e-308",
    "4.9406564584124654e-324",
    "2.4703282292062327e-324",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "0.1",
    "-0.0",
    "-0",
    "1e-400",
]


@settings(max_examples=300, deadline=None)
@given(a=numbers, b=numbers)
def test_orjson_reads_every_number_as_the_standard_library_does(a: str, b: str) -> None:
    raw = f'{{"x": {a}, "y": [{b}, {a}]}}'.encode()
    assert read(raw, True) == read(raw, False)


@pytest.mark.parametrize("number", HARD)
def test_the_hard_numbers_read_the_same(number: str) -> None:
    raw = f'{{"x": {number}, "y": [[{number}], [1]]}}'.encode()
    assert read(raw, True) == read(raw, False)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"x": NaN, "y": 1}',
        b'{"x": Infinity}',
        b'{"x": [-Infinity, 1]}',
        b'{"x": "nan", "y": "-Infinity"}',
        b'{"x": 1e400}',
        b'{"x": [1, 2e999]}',
        b'{"x": ' + b"9" * 5000 + b"}",
        b'{"x": ' + b"9" * 400 + b"}",
        b'{"\\ud800": 1}',
        b'{"x": "\\udc00"}',
        b'{"x": 1,}',
        b'{"x": 01}',
        b'{"x": 1.}',
        b'{"x": .5}',
        b'{"x": +1}',
        b"",
        b"   ",
        b"\x0c",
        b"[1, 2]",
        b"3",
        b'"x"',
        b"null",
        b'{"x": true}',
        b'{"x": null}',
        b'{"x": {"y": 1}}',
        b'{"x": [1, [2]]}',
        b'{"x": "1.5"}',
        b'{"x": "file.npy"}',
        b'{"x": 1, "x": 2}',
        b'{"x": 1, "y": 2, "x": 3}',
        b'{"x": 1} trailing',
        b'{"x": 1}{"y": 2}',
        b'\t{"x": 1}  \r',
        b'{"x": [' + b"[" * 3000 + b"1" + b"]" * 3000 + b"]}",
        b'{"x": ' + b"[" * 70 + b"1" + b"]" * 70 + b"}",
        b'{"x": [[1, 2], [3]]}',
        b"\xff\xfe",
        b'{"caf\xc3\xa9": 2}',
        b'{"x": "\x01"}',
    ],
)
def test_lines_orjson_refuses_or_reads_otherwise_are_answered_as_before(raw: bytes) -> None:
    assert read(raw, True) == read(raw, False)


def test_a_good_line_is_read_once_by_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []

    def loads(raw: bytes) -> Any:
        calls.append(raw)
        return orjson.loads(raw)

    def standard(*args: Any) -> Any:
        raise AssertionError("a line orjson reads is not read again")

    monkeypatch.setattr(
        batch, "_orjson", types.SimpleNamespace(loads=loads, JSONDecodeError=orjson.JSONDecodeError)
    )
    monkeypatch.setattr(batch, "json_loads", standard)
    rc, out, err = invoke("eval", "x*y", "--batch", input='{"x": 2, "y": [1, 2.5]}\n')
    assert (rc, out, err) == (0, '{"value": [2.0, 5.0], "grad": {"x": 3.5, "y": [2.0, 2.0]}}\n', "")
    assert calls == [b'{"x": 2, "y": [1, 2.5]}']


def test_without_orjson_the_standard_library_reads_every_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "_orjson", None)
    rc, out, err = invoke("eval", "x*y", "--batch", input='{"x": 2, "y": 3}\n{"x": NaN, "y": 1}\nnot json\n')
    assert rc == 1
    assert out.splitlines() == [
        '{"value": 6.0, "grad": {"x": 3.0, "y": 2.0}}',
        '{"value": "NaN", "grad": {"x": 1.0, "y": "NaN"}}',
        '{"line": 3, "error": "not JSON: Expecting value at column 1"}',
    ]
    assert err.startswith("error: 1 of 3 lines failed")
