"""The operators of the language and of ``Variable`` (``+ - * / ** @``, indexing), registered
under their names. Their forward and backward live in the engine, beside ``Variable``."""

from __future__ import annotations

from ..engine import Add, Div, GetItem, Mul, Neg, Pow, Sub
from .registry import register

BINARY = {"elementwise": True}

register("neg", doc="-x: negation", rule="d/dx -x = -1")(Neg)
register("add", doc="x + y (broadcasting)", rule="d/dx = 1, d/dy = 1", **BINARY)(Add)
register("sub", doc="x - y (broadcasting)", rule="d/dx = 1, d/dy = -1", **BINARY)(Sub)
register("mul", doc="x * y (broadcasting)", rule="d/dx = y, d/dy = x", **BINARY)(Mul)
register(
    "div", doc="x / y (broadcasting)", rule="d/dx = 1/y, d/dy = -x/y**2", sample_domain=(0.5, 2.0), **BINARY
)(Div)
register(
    "pow",
    doc="x ** y (also x ^ y); d/dy at 0 ** y, y >= 0, is 0 as in PyTorch",
    rule="d/dx = y*x**(y-1), d/dy = log(x)*x**y",
    sample_domain=(0.5, 2.0),
    **BINARY,
)(Pow)
register(
    "getitem",
    doc="x[index]: indexing and slicing; repeated indices add their gradients",
    rule="d/dx x[i] = 1 at i, 0 elsewhere",
    sample_shapes=((4, 3),),
    sample_params={"index": (slice(1, 3), 0)},
)(GetItem)
