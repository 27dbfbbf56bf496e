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
    """Seconds spent in each stage of one evaluation: where a big graph's time goes."""
    t0 = time.perf_counter()
    program = parse_expression(text)
    t1 = time.perf_counter()
    run = program.run(values)
    t2 = time.perf_counter()
    run.outputs[0].backward()
    t3 = time.perf_counter()
    del run
    t4 = time.perf_counter()
    return {"parse": t1 - t0, "run": t2 - t1, "backward": t3 - t2, "free": t4 - t3}
