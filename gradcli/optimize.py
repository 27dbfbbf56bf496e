"""Use the derivatives: minimise a scalar model, or solve a system of equations, from a start.

    >>> from gradcli.optimize import minimize, root
    >>> minimize("x**4 - 2*x**2", {"x": 2.0}, method="newton").point["x"]
    array(1.)
    >>> float(root("x**3 - 2*x - 5", {"x": 2.0}).point["x"])
    2.0945514815423265

A model is what :mod:`gradcli.calculus` accepts (a parsed expression, a callable of Variables),
or expression text. The unknowns (``wrt``, default every input) are flattened into one float64
vector in input order, as SciPy wants; the other inputs are parameters held at their values.

SciPy's methods get gradcli's gradient, and its Hessian (the full matrix) or Hessian-vector
products (two backward passes, the second through the first) where the method uses them; root
finding gets the Jacobian. SciPy is imported only when one of its methods runs. Two methods are
written here on the engine for learners, as in DeZero's steps 28 and 29: ``gd`` (x - lr * grad)
and ``newton`` (x - f'/f'' for one unknown, the solve with the Hessian or Jacobian for several).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import calculus
from .calculus import CalculusError, checked_number, checked_whole, is_real_number
from .engine import Variable, using_grad
from .engine import grad as engine_grad
from .failures import one_line

__all__ = ["MINIMIZE_METHODS", "ROOT_METHODS", "Solution", "Step", "minimize", "root"]

Bounds = Mapping[str, tuple[float | None, float | None]]

# gd and newton stop when the largest entry of the gradient (or of the residuals) is this small.
DEFAULT_TOL = 1e-10
DEFAULT_MAX_ITER = 1000
DEFAULT_LR = 0.001  # DeZero's step 28


class _Method(NamedTuple):
    scipy: str | None  # None: written here, on the engine
    hessian: str = ""  # "hess": the full matrix; "hessp": its products with vectors
    jacobian: bool = False  # root finding: the method takes the Jacobian
    bounds: bool = False
    max_iter: str = "maxiter"  # the SciPy option that --max-iter sets


MINIMIZE_METHODS = {
    "bfgs": _Method("BFGS"),
    "l-bfgs-b": _Method("L-BFGS-B", bounds=True),
    "cg": _Method("CG"),
    "newton-cg": _Method("Newton-CG", hessian="hessp"),
    "trust-ncg": _Method("trust-ncg", hessian="hessp"),
    "trust-krylov": _Method("trust-krylov", hessian="hessp"),
    "trust-exact": _Method("trust-exact", hessian="hess"),
    "dogleg": _Method("dogleg", hessian="hess"),
    "trust-constr": _Method("trust-constr", hessian="hessp", bounds=True),
    "tnc": _Method("TNC", bounds=True, max_iter="maxfun"),
    "slsqp": _Method("SLSQP", bounds=True),
    "gd": _Method(None),
    "newton": _Method(None, hessian="hess"),
}

ROOT_METHODS = {
    "hybr": _Method("hybr", jacobian=True, max_iter="maxfev"),
    "lm": _Method("lm", jacobian=True),
    "broyden1": _Method("broyden1"),
    "broyden2": _Method("broyden2"),
    "anderson": _Method("anderson"),
    "linearmixing": _Method("linearmixing"),
    "diagbroyden": _Method("diagbroyden"),
    "excitingmixing": _Method("excitingmixing"),
    "krylov": _Method("krylov"),
    "df-sane": _Method("df-sane", max_iter="maxfev"),
    "newton": _Method(None, jacobian=True),
}

# MINPACK reports no iterations and takes no callback: for these, an iteration is an evaluation.
_COUNTS_EVALUATIONS = {"hybr", "lm"}


class Step(NamedTuple):
    """One iteration: the point, the value there (the residuals, for root finding) and the
    Euclidean norm of the gradient (of the residuals)."""

    iteration: int
    point: dict[str, np.ndarray]
    value: Any
    norm: float


class Solution(NamedTuple):
    """Where a method stopped.

    ``point`` holds the unknowns. For :func:`minimize`, ``value`` is f there and ``grad`` its
    gradient ``{name: array}``; for :func:`root`, ``value`` is the residuals and ``grad`` the
    Jacobian, in the shapes of :func:`gradcli.calculus.jacobian` (one equation: an array and a
    dict of blocks; several: lists of them). ``trace`` lists the iterations when asked for,
    iteration 0 being the start; ``warnings`` are what SciPy warned, as text.
    """

    point: dict[str, np.ndarray]
    value: Any
    grad: Any
    iterations: int
    converged: bool
    method: str
    message: str
    trace: list[Step]
    warnings: list[str]


class _Unknowns:
    """A model with its unknowns as one vector: every evaluation the methods need, at a vector."""

    def __init__(self, f: Any, values: Mapping[str, Any], wrt: Sequence[str] | str | None) -> None:
        if isinstance(f, str):
            from .language import parse

            f = parse(f)
        self.model = f
        if isinstance(wrt, str):
            wrt = [wrt]
        # One evaluation up front reports missing or unknown inputs and a bad wrt in calculus's words.
        first = calculus.evaluate(f, values, wrt=wrt)
        self.wrt: tuple[str, ...] = first.wrt
        self.outputs = [np.asarray(v) for v in first.value]
        arrays = {n: np.array(_data(v), dtype=np.float64) for n, v in values.items()}
        self.fixed = {n: a for n, a in arrays.items() if n not in self.wrt}
        self.shapes = [arrays[n].shape for n in self.wrt]
        if not self.wrt or not any(arrays[n].size for n in self.wrt):
            raise CalculusError("there is nothing to solve for: the unknowns have no elements")
        self.x0 = self.flatten([arrays[n] for n in self.wrt])
        self._memo: dict[bytes, tuple[float, np.ndarray]] = {}

    @property
    def size(self) -> int:
        return self.x0.size

    def flatten(self, arrays: Sequence[Any]) -> np.ndarray:
        return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])

    def split(self, vec: np.ndarray) -> list[np.ndarray]:
        out, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            out.append(vec[start : start + size].reshape(shape))
            start += size
        return out

    def point(self, vec: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.wrt, (a.copy() for a in self.split(vec))))

    def values(self, vec: np.ndarray) -> dict[str, np.ndarray]:
        return {**self.fixed, **dict(zip(self.wrt, self.split(np.asarray(vec, dtype=np.float64))))}

    # --- minimisation -------------------------------------------------------------------------

    def value_and_grad(self, vec: np.ndarray) -> tuple[float, np.ndarray]:
        """f and its gradient; the last few points are remembered (SciPy asks again, and so
        does the trace)."""
        key = np.asarray(vec, dtype=np.float64).tobytes()
        if key not in self._memo:
            ev = calculus.evaluate(self.model, self.values(vec), wrt=self.wrt)
            if len(self._memo) >= 8:
                self._memo.clear()
            self._memo[key] = float(ev.value[0].reshape(())), self.flatten([ev.grad[0][n] for n in self.wrt])
        return self._memo[key]

    def hessian(self, vec: np.ndarray) -> np.ndarray:
        blocks = calculus.hessian(self.model, self.values(vec), wrt=self.wrt).hessian
        return np.block(
            [[blocks[a][b].reshape(self._size(a), self._size(b)) for b in self.wrt] for a in self.wrt]
        )

    def hessp(self, vec: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The Hessian times ``p``: backward through the gradient's own graph, seeded with ``p``."""
        _, call = calculus.as_model(self.model)
        inner = getattr(self.model, "differentiates_inside", True)
        leaves = {
            n: Variable(a, name=n, requires_grad=inner or n in self.wrt) for n, a in self.values(vec).items()
        }
        with using_grad(True):
            y = call(leaves)[0]
        xs = [leaves[n] for n in self.wrt]
        gs = engine_grad(y, xs, create_graph=True)
        return self.flatten([h.data for h in engine_grad(gs, xs, grad_outputs=self.split(np.asarray(p)))])

    def _size(self, name: str) -> int:
        return int(np.prod(self.shapes[self.wrt.index(name)]))

    # --- equations ----------------------------------------------------------------------------

    def residuals(self, vec: np.ndarray) -> np.ndarray:
        return self.flatten(calculus.evaluate(self.model, self.values(vec), wrt=()).value)

    def jacobian(self, vec: np.ndarray) -> np.ndarray:
        result = calculus.jacobian(self.model, self.values(vec), wrt=self.wrt)
        blocks = result.jacobian if isinstance(result.jacobian, list) else [result.jacobian]
        rows = []
        for block in blocks:
            out_size = block[self.wrt[0]].size // self._size(self.wrt[0])
            rows.append([block[n].reshape(out_size, self._size(n)) for n in self.wrt])
        return np.block(rows)


def _data(value: Any) -> Any:
    return value.data if isinstance(value, Variable) else value


def _norm(vec: np.ndarray) -> float:
    return float(np.linalg.norm(vec))


# --------------------------------------------------------------------------------------------
# Minimisation
# --------------------------------------------------------------------------------------------


def minimize(
    f: Any,
    values: Mapping[str, Any],
    wrt: Sequence[str] | str | None = None,
    method: str = "bfgs",
    *,
    lr: float | None = None,
    max_iter: int | None = None,
    tol: float | None = None,
    bounds: Bounds | None = None,
    trace: bool = False,
) -> Solution:
    """Minimise the scalar ``f`` over ``wrt`` (default: every input), starting at ``values``.

    ``method`` is a key of :data:`MINIMIZE_METHODS`: SciPy's gradient methods, or ``gd``
    (``lr``, default 0.001) and ``newton``, which stop when the largest entry of the gradient
    is at most ``tol`` (default 1e-10) or after ``max_iter`` (default 1000) iterations. For
    SciPy's methods ``tol`` and ``max_iter`` are passed on (TNC counts function evaluations).
    ``bounds`` maps a name to ``(low, high)`` (None: unbounded), for every element of that
    variable; only the methods that take bounds accept them, and the start is clipped into them.
    """
    method, spec = _method(MINIMIZE_METHODS, method, "minimize")
    if lr is not None and method != "gd":
        raise CalculusError(f"a learning rate is for method gd, not {method}")
    lr = None if lr is None else checked_number("lr", lr, above=True)
    max_iter, tol = _checked_stops(max_iter, tol)
    problem = _Unknowns(f, values, wrt)
    if len(problem.outputs) != 1 or problem.outputs[0].size != 1:
        shape = problem.outputs[0].shape if len(problem.outputs) == 1 else f"{len(problem.outputs)} outputs"
        raise CalculusError(
            f"minimize needs one scalar output, not {shape}: wrap it in sum(...), "
            "or solve equations with `gradcli root`"
        )
    box = _bounds(problem, bounds, spec, method)
    x0 = problem.x0 if box is None else np.clip(problem.x0, *box)
    steps: list[Step] = []

    def record(k: int, x: np.ndarray) -> None:
        if trace:
            value, g = problem.value_and_grad(x)
            steps.append(Step(k, problem.point(x), value, _norm(g)))

    if spec.scipy is None:
        lr_value = DEFAULT_LR if lr is None else lr

        def step(x: np.ndarray, g: np.ndarray) -> np.ndarray:
            return lr_value * g if method == "gd" else _solve(problem.hessian(x), g, "Hessian")

        x, iterations, converged, message = _engine_loop(
            lambda x: problem.value_and_grad(x)[1],
            step,
            x0,
            max_iter,
            tol,
            record,
            "gradient",
            method == "newton",
        )
        if converged and method == "newton":
            converged, message = _a_minimum(problem.hessian(x), message)
        caught: list[str] = []
    else:
        x, iterations, converged, message, caught = _scipy_minimize(
            problem, spec, x0, max_iter, tol, box, record
        )
    value, g = problem.value_and_grad(x)
    return Solution(
        problem.point(x),
        np.asarray(value),
        dict(zip(problem.wrt, problem.split(g))),
        iterations,
        converged,
        method,
        message,
        steps,
        caught,
    )


def _a_minimum(hessian: Any, message: str) -> tuple[bool, str]:
    """Newton's method stops where the gradient is zero, which is a maximum or a saddle point as
    readily as a minimum: converged only where the Hessian there is positive semi-definite (its
    least eigenvalue not below zero, up to rounding)."""
    h = np.atleast_2d(np.asarray(hessian, dtype=np.float64))
    h = 0.5 * (h + h.T)
    least = float(np.linalg.eigvalsh(h)[0]) if h.size else 0.0
    scale = float(np.max(np.abs(h))) if h.size else 0.0
    if np.isfinite(least) and least >= -1e-9 * max(scale, 1.0):
        return True, message
    return (
        False,
        f"not a minimum: the gradient is zero, but the Hessian has a negative eigenvalue ({least:.3g})",
    )


def _scipy_minimize(
    problem: _Unknowns,
    spec: _Method,
    x0: np.ndarray,
    max_iter: int | None,
    tol: float | None,
    box: tuple[np.ndarray, np.ndarray] | None,
    record: Callable[[int, np.ndarray], None],
) -> tuple[np.ndarray, int, bool, str, list[str]]:
    from .optional import need

    optimize = need("scipy.optimize", f"minimize --method {spec.scipy}")
    count = [0]
    record(0, x0)

    def callback(xk: np.ndarray, *_: Any) -> None:
        count[0] += 1
        record(count[0], np.asarray(xk, dtype=np.float64))

    model = _ModelCalls()
    extra: dict[str, Any] = {}
    if spec.hessian == "hess":
        extra["hess"] = model(problem.hessian)
    elif spec.hessian == "hessp":
        extra["hessp"] = model(problem.hessp)
    if box is not None:
        extra["bounds"] = optimize.Bounds(*box)
    options = {} if max_iter is None else {spec.max_iter: max_iter}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = optimize.minimize(
                model(problem.value_and_grad),
                x0,
                jac=True,
                method=spec.scipy,
                tol=tol,
                callback=model(callback),
                options=options,
                **extra,
            )
        except Exception as exc:  # noqa: BLE001 - SciPy's own failure is a run that did not converge
            return x0, count[0], False, model.failed(exc, spec), _texts(caught)
    x = np.asarray(res.x, dtype=np.float64).reshape(-1)
    iterations = int(getattr(res, "nit", count[0]))
    return x, iterations, bool(res.success), one_line(res.message), _texts(caught)


class _ModelCalls:
    """Wraps what SciPy calls back (the model's evaluations, the callback), to tell an error of
    the model, which is the caller's and is raised again, from one of SciPy's own method (NaN
    where it needs finite numbers, a singular matrix), which ends the run as not converged."""

    def __init__(self) -> None:
        self.raised: list[BaseException] = []

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            try:
                return function(*args)
            except BaseException as exc:
                self.raised.append(exc)
                raise

        return call

    def failed(self, exc: Exception, spec: _Method) -> str:
        """The message of a run SciPy's method ended by raising ``exc``; or ``exc`` again where
        it is (or came from) the model's."""
        if any(exc is e or exc.__cause__ is e or exc.__context__ is e for e in self.raised):
            raise exc
        return f"SciPy's {spec.scipy} failed: {one_line(exc)}"


def _texts(caught: list[warnings.WarningMessage]) -> list[str]:
    return list(dict.fromkeys(one_line(w.message) for w in caught))


def _method(table: Mapping[str, _Method], method: str, what: str) -> tuple[str, _Method]:
    """The method's name in the table (any case, as SciPy takes it) and its entry."""
    if not isinstance(method, str):
        raise TypeError(f"the method of {what} is a name (text), got {method!r}")
    if method.lower() not in table:
        raise CalculusError(f"{what} has no method {method!r}; the methods are: {', '.join(table)}")
    return method.lower(), table[method.lower()]


def _checked_stops(max_iter: Any, tol: Any) -> tuple[int | None, float | None]:
    return (
        None if max_iter is None else checked_whole("max_iter", max_iter, 0),
        None if tol is None else checked_number("tol", tol),
    )


def _checked_bound(name: str, end: Any, which: str) -> float | None:
    if end is None:
        return None
    if not is_real_number(end):
        raise TypeError(f"bounds of {name!r}: the {which} end must be a number or None, got {end!r}")
    value = float(end)
    if math.isnan(value):
        raise CalculusError(f"bounds of {name!r}: the {which} end is NaN")
    return value


def _bounds(
    problem: _Unknowns, bounds: Bounds | None, spec: _Method, method: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """``bounds`` as lower and upper arrays over the vector of unknowns."""
    if bounds is not None and not isinstance(bounds, Mapping):
        raise TypeError(f"bounds map a name to (low, high), e.g. {{'x': (0, 1)}}; got {bounds!r}")
    if not bounds:
        return None
    if not spec.bounds:
        takes = ", ".join(n for n, m in MINIMIZE_METHODS.items() if m.bounds)
        raise CalculusError(f"method {method} takes no bounds; the methods that do: {takes}")
    low = np.full(problem.size, -np.inf)
    high = np.full(problem.size, np.inf)
    start = 0
    for name, shape in zip(problem.wrt, problem.shapes):
        size = int(np.prod(shape))
        if name in bounds:
            pair = bounds[name]
            if not isinstance(pair, (tuple, list, np.ndarray)) or len(pair) != 2:
                raise TypeError(f"bounds of {name!r} are a pair (low, high), None for no bound; got {pair!r}")
            low_end, high_end = _checked_bound(name, pair[0], "low"), _checked_bound(name, pair[1], "high")
            lo = -np.inf if low_end is None else low_end
            hi = np.inf if high_end is None else high_end
            if not lo <= hi:
                raise CalculusError(f"bounds of {name!r}: the low end {lo:g} is above the high end {hi:g}")
            low[start : start + size], high[start : start + size] = lo, hi
        start += size
    unknown = [n for n in bounds if n not in problem.wrt]
    if unknown:
        raise CalculusError(f"bounds of {unknown[0]!r}: not one of the unknowns ({', '.join(problem.wrt)})")
    return low, high


# --------------------------------------------------------------------------------------------
# The methods written on the engine
# --------------------------------------------------------------------------------------------


def _solve(matrix: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    """The Newton step: b / f'' for one unknown (DeZero's x - f'/f''), else the solve."""
    if matrix.size == 1:
        if matrix[0, 0] == 0:
            raise np.linalg.LinAlgError(f"the {what} is 0 here")
        return b / matrix[0, 0]
    return np.linalg.solve(matrix, b)


def _engine_loop(
    measure: Callable[[np.ndarray], np.ndarray],
    step: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x: np.ndarray,
    max_iter: int | None,
    tol: float | None,
    record: Callable[[int, np.ndarray], None],
    what: str,
    newton: bool,
) -> tuple[np.ndarray, int, bool, str]:
    """``x <- x - step(x, b)``, b being ``measure(x)`` (the gradient, or the residuals), until
    b's largest entry is at most ``tol``. Returns the point, iterations, converged, message."""
    max_iter = DEFAULT_MAX_ITER if max_iter is None else max_iter
    tol = DEFAULT_TOL if tol is None else tol
    k = 0
    while True:
        b = measure(x)
        record(k, x)
        largest = float(np.max(np.abs(b)))
        if not (np.isfinite(b).all() and np.isfinite(x).all()):
            return x, k, False, f"diverged: the point or the {what} is no longer finite"
        if largest <= tol:
            return x, k, True, f"the largest entry of the {what} is {largest:.3g}, at most tol {tol:g}"
        if k >= max_iter:
            return x, k, False, f"the largest entry of the {what} is {largest:.3g}, above tol {tol:g}"
        try:
            new = x - step(x, b)
        except np.linalg.LinAlgError as exc:
            detail = str(exc) if str(exc).startswith("the ") else "the matrix is singular here"
            return x, k, False, f"cannot take a Newton step: {detail}"
        if newton and np.array_equal(new, x):
            # The step has rounded to nothing: no tolerance can be met more closely than this.
            return x, k, True, f"the Newton step no longer changes the point (the {what}: {largest:.3g})"
        x = new
        k += 1


# --------------------------------------------------------------------------------------------
# Equations
# --------------------------------------------------------------------------------------------


def root(
    f: Any,
    values: Mapping[str, Any],
    wrt: Sequence[str] | str | None = None,
    method: str = "hybr",
    *,
    max_iter: int | None = None,
    tol: float | None = None,
    trace: bool = False,
) -> Solution:
    """Solve ``f = 0`` for the unknowns ``wrt`` (default: every input), starting at ``values``.

    The outputs of ``f`` (several equations ``f1, f2``, or one vector output) have as many
    elements in all as the unknowns. ``method`` is a key of :data:`ROOT_METHODS`: SciPy's
    (``hybr`` and ``lm`` take the engine's Jacobian; they report function evaluations as
    iterations), or ``newton``, which stops when the largest residual is at most ``tol``
    (default 1e-10) or after ``max_iter`` (default 1000) iterations.
    """
    method, spec = _method(ROOT_METHODS, method, "root")
    max_iter, tol = _checked_stops(max_iter, tol)
    problem = _Unknowns(f, values, wrt)
    n_equations = sum(o.size for o in problem.outputs)
    if n_equations != problem.size:
        raise CalculusError(
            f"root needs as many equations as unknowns: {n_equations} equation"
            f"{'s' if n_equations != 1 else ''} (elements of the outputs), {problem.size} unknown"
            f"{'s' if problem.size != 1 else ''} ({', '.join(problem.wrt)}); choose the unknowns "
            "with wrt (--wrt)"
        )
    steps: list[Step] = []

    def record(k: int, x: np.ndarray, r: np.ndarray | None = None) -> None:
        if trace:
            r = problem.residuals(x) if r is None else r
            steps.append(Step(k, problem.point(x), _shaped(problem, r), _norm(r)))

    caught: list[str] = []
    if spec.scipy is None:
        x, iterations, converged, message = _engine_loop(
            problem.residuals,
            lambda x, r: _solve(problem.jacobian(x), r, "Jacobian"),
            problem.x0,
            max_iter,
            tol,
            record,
            "residuals",
            True,
        )
    else:
        x, iterations, converged, message, caught = _scipy_root(problem, spec, method, max_iter, tol, record)
    result = calculus.jacobian(problem.model, problem.values(x), wrt=problem.wrt)
    return Solution(
        problem.point(x),
        result.value,
        result.jacobian,
        iterations,
        converged,
        method,
        message,
        steps,
        caught,
    )


def _shaped(problem: _Unknowns, r: np.ndarray) -> Any:
    """The residual vector in the shapes of the outputs (one output: an array; several: a list)."""
    out, start = [], 0
    for o in problem.outputs:
        out.append(r[start : start + o.size].reshape(o.shape))
        start += o.size
    return out[0] if len(out) == 1 else out


#: SciPy's methods of root converge when they say so and the largest residual at their answer is
#: at most this (or ``tol``, where larger), times the largest at the start where that is more than
#: 1. Loose on purpose: SciPy's residual tests stop at 6e-6 (broyden1 and the other nonlin
#: methods); this one is for a stopping test on the steps (hybr's, lm's), which a stalled run
#: passes too, its residual as large as at the start.
ROOT_RESIDUAL = 1e-4


def _scipy_root(
    problem: _Unknowns,
    spec: _Method,
    method: str,
    max_iter: int | None,
    tol: float | None,
    record: Callable[..., None],
) -> tuple[np.ndarray, int, bool, str, list[str]]:
    from .optional import need

    optimize = need("scipy.optimize", f"root --method {method}")
    if max_iter == 0 and method in _COUNTS_EVALUATIONS:
        # MINPACK reads a limit of 0 as its default, 100 or 200 evaluations per unknown.
        record(0, problem.x0)
        return problem.x0, 0, False, "the limit of 0 iterations (max_iter) was reached", []
    count = [0]
    model = _ModelCalls()
    extra: dict[str, Any] = {}
    if spec.jacobian:
        extra["jac"] = model(problem.jacobian)
    residuals: Callable[[np.ndarray], np.ndarray] = problem.residuals
    if method in _COUNTS_EVALUATIONS:
        last = [b""]
        count[0] = -1

        def counted(x: np.ndarray) -> np.ndarray:
            x = np.array(x, dtype=np.float64)
            r = problem.residuals(x)
            if x.tobytes() != last[0]:  # SciPy evaluates the start twice (a check, then MINPACK)
                last[0] = x.tobytes()
                count[0] += 1
                record(count[0], x, r)
            return r

        residuals = counted
    else:
        record(0, problem.x0)

        def callback(x: np.ndarray, r: np.ndarray) -> None:
            count[0] += 1
            record(count[0], np.asarray(x, dtype=np.float64), np.asarray(r, dtype=np.float64))

        extra["callback"] = model(callback)
    options = {} if max_iter is None else {spec.max_iter: max_iter}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = optimize.root(
                model(residuals), problem.x0, method=spec.scipy, tol=tol, options=options, **extra
            )
        except Exception as exc:  # noqa: BLE001 - SciPy's own failure is a run that did not converge
            return problem.x0, max(count[0], 0), False, model.failed(exc, spec), _texts(caught)
    x = np.asarray(res.x, dtype=np.float64).reshape(-1)
    iterations = count[0] if method in _COUNTS_EVALUATIONS else int(getattr(res, "nit", count[0]))
    success, message = bool(res.success), one_line(res.message)
    if success:
        # SciPy's success is its stopping test (MINPACK's hybr: two iterates close together),
        # which a stalled run passes too: at x = 1, 1/x - 2 stays -1. A root has small residuals.
        with np.errstate(all="ignore"):
            start = float(np.max(np.abs(problem.residuals(problem.x0)), initial=0.0))
            left = float(np.max(np.abs(problem.residuals(x)), initial=0.0))
        bound = max(ROOT_RESIDUAL, tol or 0.0) * (max(1.0, start) if np.isfinite(start) else 1.0)
        if not left <= bound:
            success = False
            message = f"stopped where the largest residual is {left:.3g}, not a root (SciPy: {message})"
    return x, iterations, success, message, _texts(caught)
