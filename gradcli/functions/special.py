"""Functions computed by SciPy (``scipy.special``): the error and gamma families, Bessel's j_n,
and the elementwise functions whose forward or derivative needs one of them (xlogy, sinc, gelu).

SciPy is imported the first time one of them runs, never when gradcli starts: importing it takes
longer than everything ``gradcli eval "x*y"`` does. Each rule is written with registered
functions, so derivatives of every order follow: digamma' = polygamma(x, n=1), polygamma's own
derivative raises n, and j_n' is a combination of j_(n-1) and j_(n+1).
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from ..backend import via_numpy
from ..engine import data_of
from .elementwise import EXP_LOG, NN, TRIG, exp, whole_number
from .registry import Spec, alias, binary, define, unary

SPECIAL: dict[str, Any] = {"group": "special"}
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
HALF_SQRT_PI = math.sqrt(math.pi) / 2.0
SQRT_HALF = math.sqrt(0.5)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _scipy() -> Any:
    """``scipy.special``, imported on first use (Python caches it from then on), the first time
    as the budget says native libraries load (:func:`gradcli.budget.loading`)."""
    special = sys.modules.get("scipy.special")
    if special is None:
        from ..budget import loading

        with loading():
            import scipy.special  # type: ignore[import-untyped,unused-ignore]

        special = scipy.special
    return special


# --- error function ------------------------------------------------------------------------------

erf = unary(
    "erf",
    lambda x: _scipy().erf(x),
    lambda gy, x: gy * TWO_OVER_SQRT_PI * exp(-x * x),
    "2/sqrt(pi)*exp(-x**2)",
    doc="error function 2/sqrt(pi) * integral of exp(-t**2) from 0 to x",
    **SPECIAL,
)
erfc = unary(
    "erfc",
    lambda x: _scipy().erfc(x),
    lambda gy, x: -gy * TWO_OVER_SQRT_PI * exp(-x * x),
    "-2/sqrt(pi)*exp(-x**2)",
    doc="1 - erf(x), accurate where erf(x) is close to 1",
    **SPECIAL,
)
erfinv = unary(
    "erfinv",
    lambda x: _scipy().erfinv(x),
    lambda gy, out: gy * HALF_SQRT_PI * exp(out * out),
    "sqrt(pi)/2*exp(erfinv(x)**2)",
    doc="inverse of erf, for -1 <= x <= 1; erfinv(1) = inf, NaN outside",
    sample_domain=(-0.8, 0.8),
    **SPECIAL,
)

# --- gamma family ----------------------------------------------------------------------------------

GAMMA_DOMAIN: dict[str, Any] = {"sample_domain": (0.5, 3.0), **SPECIAL}

gamma = unary(
    "gamma",
    lambda x: _scipy().gamma(x),
    lambda gy, x, out: gy * out * digamma(x),
    "gamma(x)*digamma(x)",
    doc="the gamma function, gamma(n) = (n-1)!; inf at 0, NaN at negative whole numbers (SciPy)",
    **GAMMA_DOMAIN,
)
lgamma = unary(
    "lgamma",
    lambda x: _scipy().gammaln(x),
    lambda gy, x: gy * digamma(x),
    "digamma(x)",
    doc="log(abs(gamma(x))) without overflow (SciPy's gammaln); inf at 0 and negative whole numbers",
    **GAMMA_DOMAIN,
)
digamma: Spec = unary(
    "digamma",
    lambda x: _scipy().psi(x),
    lambda gy, x: gy * polygamma(x, n=1),
    "polygamma(x, n=1)",
    doc="d/dx log(gamma(x)); digamma(0) = -inf (PyTorch), NaN at negative whole numbers",
    **GAMMA_DOMAIN,
)


def _polygamma(x: Any, n: Any) -> Any:
    n = whole_number("polygamma", "n", n, least=0)
    special = _scipy()
    return special.psi(x) if n == 0 else via_numpy(lambda v: special.polygamma(n, v), x)


polygamma: Spec = define(
    "polygamma",
    _polygamma,
    [lambda gy, x, n: gy * polygamma(x, n=n + 1)],
    [None],
    inputs=("x",),
    params={"n": 0},
    rule="d/dx polygamma(x, n) = polygamma(x, n+1)",
    doc="n-th derivative of digamma: SciPy's polygamma(n, x), written polygamma(x, n) (n=1: trigamma)",
    sample_params={"n": 1},
    **GAMMA_DOMAIN,
)

# --- Bessel ----------------------------------------------------------------------------------------


def _spherical_jn(x: Any, n: Any) -> Any:
    n = whole_number("spherical_jn", "n", n, least=0)
    # SciPy gives NaN for subnormal x; there j_n(x) is its series' first term, x**n / (2n+1)!!,
    # taken only there (elsewhere x**n overflows for a large n, and warned). Past n = 3 it is
    # x**n alone, a zero (|x| < 1e-100): (2n+1)!! is no float past n = 150, and no quick integer.
    tiny = np.abs(x) < 1e-100
    t = np.where(tiny, x, 0.0)
    first = t**n / math.prod(range(1, 2 * n + 2, 2)) if n <= 3 else t**n
    return np.where(tiny, first, via_numpy(lambda v: _scipy().spherical_jn(n, v), x))


def _spherical_jn_rule(gy: Any, x: Any, n: int) -> Any:
    """j_n' = (n*j_(n-1) - (n+1)*j_(n+1)) / (2n+1): no division by x, so it is exact at 0."""
    up = spherical_jn(x, n=n + 1) * ((n + 1.0) / (2.0 * n + 1.0))
    if n == 0:
        return -gy * up
    return gy * (spherical_jn(x, n=n - 1) * (n / (2.0 * n + 1.0)) - up)


spherical_jn: Spec = define(
    "spherical_jn",
    _spherical_jn,
    [_spherical_jn_rule],
    [None],
    inputs=("x",),
    params={"n": 0},
    rule="d/dx spherical_jn(x, n) = (n*spherical_jn(x, n-1) - (n+1)*spherical_jn(x, n+1))/(2n+1)",
    doc="spherical Bessel function j_n(x) (SciPy's spherical_jn(n, x)); j_0(x) = sin(x)/x, 1 at 0",
    sample_params={"n": 2},
    **SPECIAL,
)

# --- elementwise functions that need one of the above ------------------------------------------------

sinc = unary(
    "sinc",
    np.sinc,
    lambda gy, x: gy * -math.pi * spherical_jn(math.pi * x, n=1),
    "-pi*spherical_jn(pi*x, n=1)",
    doc="sin(pi*x)/(pi*x), 1 at 0 (NumPy's normalised sinc); derivatives of every order exact at 0",
    **TRIG,
)


def _xlogy_dx(gy: Any, x: Any, y: Any) -> Any:
    # log(y), except where x == 0 and y <= 0: there x*log(y) is the constant 0 along x = 0 (PyTorch).
    keep = 1.0 - ((data_of(x) == 0) & (data_of(y) <= 0))
    return gy * xlogy(keep, y)


def _xlogy_dy(gy: Any, x: Any, y: Any) -> Any:
    # x/y, taken as 0 at x = y = 0, where x*log(y) is 0 for every y.
    both_zero = (data_of(x) == 0) & (data_of(y) == 0)
    return gy * x / (y + both_zero * 1.0)


xlogy = binary(
    "xlogy",
    lambda x, y: _scipy().xlogy(x, y),
    (_xlogy_dx, _xlogy_dy),
    ("log(y)", "x/y"),
    doc="x*log(y), 0 wherever x == 0 (even at y = 0); d/dx = 0 where x == 0 and y <= 0 (PyTorch)",
    sample_domain=(0.2, 3.0),
    **EXP_LOG,
)

gelu = unary(
    "gelu",
    lambda x: 0.5 * x * _scipy().erfc(-x * SQRT_HALF),
    lambda gy, x: gy * (0.5 * erfc(-x * SQRT_HALF) + x * exp(-0.5 * x * x) * INV_SQRT_2PI),
    "0.5*erfc(-x/sqrt(2)) + x*exp(-x**2/2)/sqrt(2*pi)",
    doc="x*P(X <= x) for a standard normal X: PyTorch's gelu (its exact, erf form)",
    **NN,
)

# SciPy's names.
alias("gammaln", "lgamma")
alias("psi", "digamma")
