"""Linear algebra: products, determinants, inverses, decompositions and the triangles and
diagonals of matrices, batched over leading axes wherever NumPy batches them.

Rules are written with ``@``, :func:`~gradcli.functions.shape.swap_last` and the registered
functions themselves (``inv``, ``solve``, ``einsum``...), so they run on arrays and on Variables
and differentiate again. The decompositions that assume a symmetric matrix (``cholesky``,
``eigh``) symmetrize it first, (A + A^T)/2, as JAX does: for a symmetric input the result is
NumPy's, and the gradient is the symmetric one that central differences see.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .. import backend
from ..engine import Function, MatMul, Variable, data_of, matmul_backward, scatter, take
from .registry import REGISTRY, register
from .shape import interleave, moveaxis, swap_last

LINALG: dict[str, Any] = {"group": "linear algebra"}
LinAlgError = np.linalg.LinAlgError
# The index letters einsum takes (string.ascii_letters, without importing string at startup).
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

register(
    "matmul",
    doc="a @ b: matrix product (1-D operands promoted as in NumPy, batches broadcast)",
    rule="d/da = gy @ b.T, d/db = a.T @ gy",
    sample_shapes=((2, 3), (3, 4)),
    **LINALG,
)(MatMul)


class _Linalg(Function):
    raw_vjp = True
    uses_outputs = False


def _square(a: Any) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(
            f"expects a square matrix, or a stack of them (shape (..., n, n)); got shape {a.shape}"
        )


def _per_matrix(g: Any) -> Any:
    """A number per matrix of a stack, shaped to scale those matrices."""
    return g.reshape(g.shape + (1, 1))


def _symmetric(a: Any) -> Any:
    return (a + np.swapaxes(a, -1, -2)) * 0.5


def _unused(g: Any) -> bool:
    """The gradient of an output that nothing downstream used: constant zeros."""
    return not (isinstance(g, Variable) and g.requires_grad) and not backend.maybe_any(data_of(g) != 0)


@register("dot", rule="d/da dot(a, b) = b, d/db = a", sample_shapes=((3,), (3,)), **LINALG)
class Dot(_Linalg):
    """inner product of two vectors of equal length"""

    def forward(self, a: Any, b: Any) -> Any:
        if a.ndim != 1 or b.ndim != 1:
            raise ValueError(
                f"dot takes two vectors (1-D); got shapes {a.shape} and {b.shape}: use matmul or @"
            )
        return np.dot(a, b)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,), (a, b) = gys, xs
        return gy * b, gy * a


@register(
    "linear",
    rule="d/dx = gy @ W.T, d/dW = x.T @ gy, d/db = sum(gy)",
    sample_shapes=((2, 3), (3, 4), (4,)),
    **LINALG,
)
class Linear(_Linalg):
    """x @ W + b, the affine map of a dense layer (b optional)"""

    def forward(self, x: Any, W: Any, b: Any = None) -> Any:  # noqa: N803 - the usual name
        y = x @ W
        return y if b is None else y + b

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,) = gys
        need = self.needs_input_grad
        gx, gw = matmul_backward(xs[0], xs[1], gy, need[0], need[1])
        return (gx, gw, gy) if len(xs) == 3 else (gx, gw)


# --- determinants and inverses ----------------------------------------------------------------------


@register(
    "det",
    rule="d/dA det(A) = det(A) * inv(A)^T, the cofactor matrix",
    sample_shapes=((2, 3, 3),),
    **LINALG,
)
class Det(_Linalg):
    """determinant (of each matrix of a stack); its gradient is the cofactor matrix, singular A included"""

    uses_outputs = True

    def forward(self, a: Any) -> Any:
        _square(a)
        return backend.gufunc(np.linalg.det, "(n,n)->()", a)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,), (a,), (y,) = gys, xs, ys
        try:
            return _per_matrix(gy * y) * swap_last(inv(a))
        except LinAlgError:
            if isinstance(a, Variable):
                raise LinAlgError(
                    "det: derivatives of second and higher order at a singular matrix are not supported"
                ) from None
        return _per_matrix(gy) * _cofactors(a)


def _cofactors(a: Any) -> Any:
    """The cofactor matrix (the transposed adjugate) of each matrix, singular ones included:
    with A = U S V^T it is det(U) det(V) U diag(products of the other singular values) V^T."""
    from .reductions import products_of_others  # reductions imports this module

    u, s, vh = np.linalg.svd(a)
    sign = np.linalg.det(u) * np.linalg.det(vh)
    return _per_matrix(sign) * ((u * products_of_others(s, -1)[..., None, :]) @ vh)


@register(
    "slogdet",
    rule="d/dA slogdet(A) = (0, inv(A)^T): the sign has zero gradient",
    n_outputs=2,
    sample_shapes=((2, 3, 3),),
    **LINALG,
)
class Slogdet(_Linalg):
    """sign and log|det| (sign, logabsdet = slogdet(A)), without overflow; the sign has zero gradient"""

    def forward(self, a: Any) -> tuple[Any, Any]:
        _square(a)
        sign, logabsdet = backend.gufunc(np.linalg.slogdet, "(n,n)->(),()", a, outputs=2)
        return sign, logabsdet

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (_, g), (a,) = gys, xs
        if _unused(g):
            return None
        try:
            return _per_matrix(g) * swap_last(inv(a))
        except LinAlgError:
            raise LinAlgError("slogdet: log|det| is -inf at a singular matrix: it has no gradient") from None


@register("inv", rule="d/dA inv(A) = -inv(A)^T @ gy @ inv(A)^T", sample_shapes=((2, 3, 3),), **LINALG)
class Inv(_Linalg):
    """inverse matrix (of each matrix of a stack); an error for a singular matrix"""

    uses_outputs = True

    def forward(self, a: Any) -> Any:
        _square(a)
        return backend.gufunc(_inverse, "(n,n)->(n,n)", a)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        t = swap_last(ys[0])
        return -(t @ gys[0] @ t)


@register(
    "solve",
    rule="x = solve(a, b): d/db = solve(a^T, gy), d/da = -d/db @ x^T",
    sample_shapes=((2, 3, 3), (2, 3, 2)),
    **LINALG,
)
class Solve(_Linalg):
    """x with a @ x = b: b a vector (1-D) or matrices (..., n, k), as NumPy 2; batches broadcast"""

    uses_outputs = True

    def forward(self, a: Any, b: Any) -> Any:
        _square(a)
        if b.ndim == 1:
            return backend.gufunc(_solved, "(n,n),(n,k)->(n,k)", a, b[:, None])[..., 0]
        return backend.gufunc(_solved, "(n,n),(n,k)->(n,k)", a, b)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,), (a, b), (x,) = gys, xs, ys
        if b.ndim == 1:  # vectors: as columns of one
            gb = solve(swap_last(a), gy.reshape(gy.shape + (1,)))
            return -(gb @ x.reshape(x.shape[:-1] + (1,) + x.shape[-1:])), gb.reshape(gy.shape)
        gb = solve(swap_last(a), gy)
        return -(gb @ swap_last(x)), gb


# The NumPy functions as Dask runs them on each block (in a worker, so the error is told there).
def _inverse(a: Any) -> Any:
    try:
        return np.linalg.inv(a)
    except LinAlgError:
        raise LinAlgError("the matrix is singular") from None


def _solved(a: Any, b: Any) -> Any:
    try:
        return np.linalg.solve(a, b)
    except LinAlgError:
        raise LinAlgError("the matrix is singular") from None


def _cholesky(a: Any) -> Any:
    try:
        return np.linalg.cholesky(a)
    except LinAlgError:
        raise LinAlgError("the matrix is not positive definite") from None


# --- traces, diagonals, triangles -----------------------------------------------------------------


@register(
    "trace",
    rule="d/dx trace(x) = 1 on the diagonal, 0 elsewhere",
    sample_shapes=((3, 4),),
    sample_params={"offset": 1},
    **LINALG,
)
class Trace(_Linalg):
    """sum of the diagonal (offset above it when > 0) of the axes axis1, axis2, as numpy.trace"""

    def __init__(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> None:
        self.offset, self.axis1, self.axis2 = offset, axis1, axis2

    def forward(self, x: Any) -> Any:
        if x.ndim < 2:
            raise ValueError(f"takes an array of at least 2 axes; got shape {x.shape}")
        y = np.trace(x, self.offset, self.axis1, self.axis2)
        self.axes = (self.axis1 % x.ndim, self.axis2 % x.ndim)
        rows, cols = x.shape[self.axes[0]], x.shape[self.axes[1]]
        self.eye = backend.diagonal_mask(backend.namespace(x), rows, cols, self.offset) * 1.0
        return y

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        return moveaxis(_per_matrix(gys[0]) * self.eye, source=(-2, -1), destination=self.axes)


def _diagonal(rows: int, cols: int, k: int) -> tuple[Any, Any]:
    """The (row, column) indices of diagonal k of a rows x cols matrix."""
    i = np.arange(max(0, -k), max(0, min(rows, cols - k)))
    return i, i + k


@register(
    "diag",
    rule="d/dx diag(x) = the diagonal of gy (1-D x), gy placed on the diagonal (2-D x)",
    sample_shapes=((3, 4),),
    sample_params={"k": 1},
    **LINALG,
)
class Diag(_Linalg):
    """as numpy.diag: a 1-D x becomes a matrix with x on diagonal k; a 2-D x gives its diagonal k"""

    def __init__(self, k: int = 0) -> None:
        self.k = k

    def forward(self, x: Any) -> Any:
        if x.ndim not in (1, 2):
            raise ValueError(
                f"takes a vector (to build a matrix) or a matrix (to take a diagonal); got shape {x.shape}"
            )
        if x.ndim == 1:
            n = x.shape[0] + abs(self.k)
            self.index = _diagonal(n, n, self.k)
        else:
            self.index = _diagonal(x.shape[0], x.shape[1], self.k)
        return np.diag(x, self.k)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,), (x,) = gys, xs
        return take(gy, self.index) if x.ndim == 1 else scatter(gy, self.index, x.shape)


class _Triangle(_Linalg):
    """tril/triu: the rule keeps the same triangle of the gradient (they are projections)."""

    def __init__(self, k: int = 0) -> None:
        self.k = k

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        return REGISTRY[self.name](gys[0], k=self.k)


@register(
    "tril",
    rule="d/dx tril(x) = tril(gy)",
    sample_shapes=((2, 3, 4),),
    sample_params={"k": 1},
    **LINALG,
)
class Tril(_Triangle):
    """lower triangle: x on and below diagonal k of the last two axes, 0 above (numpy.tril)"""

    def forward(self, x: Any) -> Any:
        return np.tril(x, self.k)


@register(
    "triu",
    rule="d/dx triu(x) = triu(gy)",
    sample_shapes=((2, 4, 3),),
    sample_params={"k": -1},
    **LINALG,
)
class Triu(_Triangle):
    """upper triangle: x on and above diagonal k of the last two axes, 0 below (numpy.triu)"""

    def forward(self, x: Any) -> Any:
        return np.triu(x, self.k)


# --- products -------------------------------------------------------------------------------------------


@register("outer", rule="d/da outer(a, b) = gy @ b, d/db = a @ gy", sample_shapes=((3,), (2, 2)), **LINALG)
class Outer(_Linalg):
    """outer product a_i * b_j of the flattened a and b (numpy.outer)"""

    def forward(self, a: Any, b: Any) -> Any:
        return np.outer(a, b)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,), (a, b) = gys, xs
        need_a, need_b = self.needs_input_grad
        ga = (gy @ b.reshape(-1)).reshape(a.shape) if need_a else None
        gb = (a.reshape(-1) @ gy).reshape(b.shape) if need_b else None
        return ga, gb


@register("inner", rule="d/da inner(a, b) = gy . b, d/db = gy . a", sample_shapes=((2, 3), (4, 3)), **LINALG)
class Inner(_Linalg):
    """sum over the last axes of a and b, for every pair of their other indices (numpy.inner)"""

    def forward(self, a: Any, b: Any) -> Any:
        xp = backend.common_namespace((a, b))
        if hasattr(xp, "inner"):
            return xp.inner(a, b)
        return np.tensordot(a, b, axes=(-1, -1))  # the same sums, for libraries without inner (Dask)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,), (a, b) = gys, xs
        if a.ndim == 0 or b.ndim == 0:  # a scalar times an array
            return gy * b, gy * a
        # inner(a, b) = A @ B^T for the stacks of vectors A = a as (-1, n), B = b as (-1, n).
        n = a.shape[-1]
        a2, b2 = a.reshape(-1, n), b.reshape(-1, n)
        g2 = gy.reshape(a2.shape[0], b2.shape[0])
        return (g2 @ b2).reshape(a.shape), (g2.T @ a2).reshape(b.shape)


@register(
    "einsum",
    rule="d/dx_i einsum(...) = einsum of gy with the other operands, to x_i's subscripts",
    sample_shapes=((3, 3, 2),),
    sample_params={"subscripts": "iij->ji"},
    **LINALG,
)
class Einsum(_Linalg):
    """Einstein summation of any number of operands: einsum(a, b, subscripts="ij,jk->ik") (numpy.einsum)"""

    def __init__(self, subscripts: str = "") -> None:
        if not isinstance(subscripts, str):
            raise TypeError(f"subscripts must be a string such as 'ij,jk->ik', not {subscripts!r}")
        self.subscripts = subscripts

    def forward(self, *xs: Any) -> Any:
        self.terms, self.out = _spelled_out(self.subscripts, [x.shape for x in xs])
        self.xp = backend.common_namespace(xs)
        return np.einsum(self.subscripts, *xs, optimize=len(xs) > 2)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        grads: list[Any] = []
        for i, need in enumerate(self.needs_input_grad):
            if not need:
                grads.append(None)
                continue
            others = [x for j, x in enumerate(xs) if j != i]
            subscripts, constants = self._gradient_subscripts(i, xs[i].shape)
            grads.append(einsum(gys[0], *others, *constants, subscripts=subscripts))
        return tuple(grads)

    def _gradient_subscripts(self, i: int, shape: tuple[int, ...]) -> tuple[str, list[Any]]:
        """The einsum that gives operand i's gradient: gy and the other operands contracted to
        operand i's subscripts. Einsum cannot write a repeated index ("ii") nor one that no
        input has (summed out of operand i alone), so constants supply them: an identity
        matrix spreads the gradient over a diagonal, a vector of ones over a summed axis."""
        others = [t for j, t in enumerate(self.terms) if j != i]
        present = set(self.out).union(*others)
        spare = iter([c for c in LETTERS if c not in present and c not in self.terms[i]])
        target, extra = "", []
        constants: list[Any] = []
        for c, n in zip(self.terms[i], shape):
            if c in target:
                fresh = next(spare)
                target += fresh
                extra.append(c + fresh)
                constants.append(self.xp.eye(n))
            else:
                target += c
                if c not in present:
                    extra.append(c)
                    constants.append(self.xp.ones(n))
        return ",".join([self.out, *others, *extra]) + "->" + target, constants


def _spelled_out(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str]:
    """Each operand's subscripts and the output's, with '...' written as letters and the output
    made explicit (NumPy's implicit mode: the indices that appear once, in alphabetical order)."""
    text = subscripts.replace(" ", "")
    odd = sorted(set(text) - set(LETTERS) - set(",.->"))
    if odd:
        raise ValueError(f"subscripts are letters, ',', '->' and '...'; got {odd[0]!r} in {subscripts!r}")
    inputs, arrow, output = text.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"the subscripts {subscripts!r} are for {len(terms)} operands; got {len(shapes)}")
    widths = []
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        named = term.replace("...", "", 1)
        if "." in named or len(named) > len(shape) or ("..." not in term and len(named) != len(shape)):
            raise ValueError(f"operand {k} has {len(shape)} axes; its subscripts {term!r} do not fit")
        widths.append(len(shape) - len(named))
    spare = [c for c in LETTERS if c not in text]
    width = max(widths, default=0)
    if width > len(spare):
        raise ValueError(f"too many axes under '...' in {subscripts!r}")
    ellipsis = "".join(spare[:width])
    terms = [t.replace("...", ellipsis[width - w :]) for t, w in zip(terms, widths)]
    if arrow:
        out = output.replace("...", ellipsis, 1)
    else:
        counts = Counter("".join(terms))
        out = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis))
    indices = set("".join(terms))
    if "." in out or not set(out) <= indices or len(set(out)) != len(out):
        raise ValueError(f"the output subscripts {output!r} must name distinct indices of the operands")
    return terms, out


@register(
    "cross",
    rule="d/da cross(a, b) = cross(b, gy), d/db = cross(gy, a)",
    sample_shapes=((2, 3), (3,)),
    **LINALG,
)
class Cross(_Linalg):
    """cross product of 3-vectors along axis (default the last), broadcasting (numpy.cross)"""

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, a: Any, b: Any) -> Any:
        for v in (a, b):
            if v.ndim == 0 or not -v.ndim <= self.axis < v.ndim or v.shape[self.axis] != 3:
                raise ValueError(
                    f"takes vectors of length 3 along axis {self.axis}; got shapes {a.shape} and {b.shape}"
                )
        # NumPy's own formula (the same products and differences), in functions every array
        # library has: Dask has no cross.
        a, b = np.moveaxis(a, self.axis, -1), np.moveaxis(b, self.axis, -1)
        a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
        b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
        c = np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
        return np.moveaxis(c, -1, self.axis)

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gy,), (a, b) = gys, xs
        return cross(b, gy, axis=self.axis), cross(gy, a, axis=self.axis)


@register(
    "kron",
    rule="d/da kron(a, b) = sum of gy's blocks times b, and so for b",
    sample_shapes=((2, 2), (3, 2)),
    **LINALG,
)
class Kron(_Linalg):
    """Kronecker product: a block of a_ij * b for each element of a (numpy.kron)"""

    def forward(self, a: Any, b: Any) -> Any:
        d = max(a.ndim, b.ndim)
        self.sa, self.sb = (1,) * (d - a.ndim) + a.shape, (1,) * (d - b.ndim) + b.shape
        # NumPy's own product, a_i * b_j with the axes interleaved, then merged (Dask has no kron).
        ones = (1,) * d
        product = a.reshape(interleave(self.sa, ones)) * b.reshape(interleave(ones, self.sb))
        return backend.reshape(product, tuple(p * q for p, q in zip(self.sa, self.sb)))

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        # The output's axis k, split in two, is (index in a, index in b): gy = a (x) b elementwise.
        (gy,), (a, b) = gys, xs
        ones = (1,) * len(self.sa)
        g = gy.reshape(interleave(self.sa, self.sb))
        a_axes, b_axes = tuple(range(0, g.ndim, 2)), tuple(range(1, g.ndim, 2))
        ga = (g * b.reshape(interleave(ones, self.sb))).sum(axis=b_axes)
        gb = (g * a.reshape(interleave(self.sa, ones))).sum(axis=a_axes)
        return ga.reshape(a.shape), gb.reshape(b.shape)


# --- decompositions -----------------------------------------------------------------------------------


@register(
    "cholesky",
    rule="L = cholesky(A): d/dA = sym(L^-T Phi(L^T gy) L^-1), Phi: the lower triangle, half the diagonal",
    sample_shapes=((3, 1, 1),),
    sample_domain=(0.5, 2.0),
    **LINALG,
)
class Cholesky(_Linalg):
    """lower-triangular L with L @ L^T = A, for A symmetric positive definite (symmetrized first, as JAX)"""

    uses_outputs = True

    def forward(self, a: Any) -> Any:
        _square(a)
        return backend.gufunc(_cholesky, "(n,n)->(n,n)", _symmetric(a))

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gl,), (low,) = gys, ys
        n, xp = low.shape[-1], backend.namespace(data_of(low))
        phi = xp.tril(xp.ones((n, n))) - 0.5 * xp.eye(n)
        low_inv = inv(low)
        g = swap_last(low_inv) @ ((swap_last(low) @ gl) * phi) @ low_inv
        return (g + swap_last(g)) * 0.5


@register(
    "eigh",
    rule="w, V = eigh(A): d/dA = sym(V (diag(gw) + F * (V^T gV)) V^T), F_ij = 1/(w_j - w_i)",
    n_outputs=2,
    sample_shapes=((2, 3, 3),),
    **LINALG,
)
class Eigh(_Linalg):
    """w, V = eigh(A), ascending, of A symmetrized (as JAX); the gradient is undefined at repeated w"""

    uses_outputs = True

    def forward(self, a: Any) -> tuple[Any, Any]:
        _square(a)
        w, v = backend.gufunc(np.linalg.eigh, "(n,n)->(n),(n,n)", _symmetric(a), outputs=2)
        return w, v

    def vjp(self, gys: tuple[Any, ...], xs: tuple[Any, ...], ys: tuple[Any, ...]) -> Any:
        (gw, gv), (w, v) = gys, ys
        if w is None or v is None:  # an output that nothing used is freed: compute both again
            w, v = eigh(xs[0])
        n = w.shape[-1]
        eye = backend.namespace(data_of(w)).eye(n)
        middle = gw.reshape(gw.shape[:-1] + (1, n)) * eye
        if not _unused(gv):  # eigenvalues alone have a gradient even where they repeat
            gaps = w.reshape(w.shape[:-1] + (1, n)) - w.reshape(w.shape + (1,))
            middle = middle + (1.0 - eye) / (gaps + eye) * (swap_last(v) @ gv)
        g = v @ middle @ swap_last(v)
        return (g + swap_last(g)) * 0.5


inv, solve, einsum, cross, eigh = (REGISTRY[n] for n in ("inv", "solve", "einsum", "cross", "eigh"))
