"""gradcli through an expression: parse once, then the library calls the CLI makes."""

from __future__ import annotations

import time

import numpy as np
from common import ARRAY_EXPR, QUADRATIC_EXPR

from gradcli import calculus
from gradcli.language import parse as parse_expression


def arrays(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = calculus.evaluate(parse_expression(ARRAY_EXPR), {"x": x, "y": y})
    return r.value[0], r.grad[0]["x"], r.grad[0]["y"]


def hessian(a: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    r = calculus.hessian(parse_expression(QUADRATIC_EXPR), {"x": x, "A": a}, wrt=["x"])
    return float(r.value), r.grad["x"], r.hessian["x"]["x"]


def parse(text: str) -> object:
    return parse_expression(text)


def phases(text: str, values: dict[str, float]) -> dict[str, float]:
    """Seconds spent in each stage of ``gradcli eval -f``'s work, in one process: where a long
    expression's time goes (evaluate is the tape: forward, then one reverse sweep)."""
    t0 = time.perf_counter()
    program = parse_expression(text)
    t1 = time.perf_counter()
    result = calculus.evaluate(program, values)
    t2 = time.perf_counter()
    del result, program
    t3 = time.perf_counter()
    return {"parse": t1 - t0, "evaluate": t2 - t1, "free": t3 - t2}
