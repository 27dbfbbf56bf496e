"""PyTorch's Hessian with ``vectorize=True``: every row in one batched reverse pass, the peer
issue 13's Hessian row aims at (its plain ``hessian`` is in torch_eager)."""

from __future__ import annotations

import numpy as np
from torch_eager import hessian_of


def hessian(a: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    return hessian_of(a, x, vectorize=True)
