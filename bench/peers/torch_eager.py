"""PyTorch in eager mode on the CPU, float64 throughout, default thread settings."""

from __future__ import annotations

import numpy as np
import torch
from common import CHAIN_START, A, B


def chain(n: int) -> tuple[float, float]:
    x = torch.tensor(CHAIN_START, dtype=torch.float64, requires_grad=True)
    y = x
    for i in range(n):
        k = i % 3
        if k == 0:
            y = y * A
        elif k == 1:
            y = y + B
        else:
            y = torch.relu(y)
    y.backward()
    return y.item(), x.grad.item()


def arrays(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.from_numpy(y).requires_grad_()
    z = torch.sin(tx) * torch.exp(-(ty**2)) + torch.log1p(tx**2)
    z.backward(torch.ones_like(z))
    return z.detach().numpy(), tx.grad.numpy(), ty.grad.numpy()


def hessian(a: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    return hessian_of(a, x, vectorize=False)


def hessian_of(a: np.ndarray, x: np.ndarray, vectorize: bool) -> tuple[float, np.ndarray, np.ndarray]:
    """Value, gradient and ``torch.autograd.functional.hessian``: one reverse pass per row of the
    Hessian, or with ``vectorize`` the rows as one batched pass (``torch.vmap`` over the basis).

    On one thread, as NumPy and gradcli run: at 100 variables a second thread only adds hand-offs,
    and on a 2-CPU machine with other load the batched products of ``vectorize`` stalled on it
    (0.6 ms a Hessian on one thread, 0.8 ms on two, 30 ms in some processes)."""
    torch.set_num_threads(1)
    ta = torch.from_numpy(a)

    def quadratic(v: torch.Tensor) -> torch.Tensor:
        return 0.5 * (v @ ta @ v)

    tx = torch.from_numpy(x).requires_grad_()
    value = quadratic(tx)
    (g,) = torch.autograd.grad(value, tx)
    h = torch.autograd.functional.hessian(quadratic, torch.from_numpy(x), vectorize=vectorize)
    return value.item(), g.numpy(), h.numpy()
