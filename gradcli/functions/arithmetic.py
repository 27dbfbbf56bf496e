"""The operators of the language and of ``Variable`` (``+ - * / ** @``, indexing), registered
under their names. Their forward and rules live in the engine, beside ``Variable``."""

from __future__ import annotations

from ..engine import Add, Div, GetItem, Mul, Neg, Pow, Sub
from .registry import register

ARITHMETIC = {"group": "arithmetic", "elementwise": True}

register("neg", doc="-x: negation", rule="d/dx -x = -1", partials=("-1",), **ARITHMETIC)(Neg)
register("add", doc="x + y (broadcasting)", rule="d/dx = 1, d/dy = 1", partials=("1", "1"), **ARITHMETIC)(Add)
register("sub", doc="x - y (broadcasting)", rule="d/dx = 1, d/dy = -1", partials=("1", "-1"), **ARITHMETIC)(
    Sub
)
register("mul", doc="x * y (broadcasting)", rule="d/dx = y, d/dy = x", partials=("y", "x"), **ARITHMETIC)(Mul)
register(
    "div",
    doc="x / y (broadcasting)",
    rule="d/dx = 1/y, d/dy = -x/y**2",
    partials=("1/y", "-x/y**2"),
    sample_domain=(0.5, 2.0),
    **ARITHMETIC,
)(Div)
register(
    "pow",
    doc="x ** y (also x ^ y); d/dy at 0 ** y, y >= 0, is 0 as in PyTorch",
    rule="d/dx = y*x**(y-1), d/dy = log(x)*x**y",
    partials=("y*x**(y-1)", "log(x)*x**y"),
    sample_domain=(0.5, 2.0),
    **ARITHMETIC,
)(Pow)
register(
    "getitem",
    doc="x[index]: indexing and slicing; repeated indices add their gradients",
    rule="d/dx x[i] = 1 at i, 0 elsewhere",
    group="shape",
    sample_shapes=((4, 3),),
    sample_params={"index": (slice(1, 3), 0)},
)(GetItem)
