"""SymPy, the symbolic route: differentiate the formula once, then evaluate it with NumPy.

Timed end to end (differentiate, lambdify, evaluate), since that is what a user of this route
pays for each new expression.
"""

from __future__ import annotations

import numpy as np
import sympy as sp


def arrays(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sx, sy = sp.symbols("x y")
    z = sp.sin(sx) * sp.exp(-(sy**2)) + sp.log(1 + sx**2)
    f = sp.lambdify((sx, sy), (z, sp.diff(z, sx), sp.diff(z, sy)), "numpy")
    return f(x, y)
