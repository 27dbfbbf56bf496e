"""A first-order pass works in place only in buffers it owns (issue 13's big arrays): it adds
gradients into arrays its rules made, skips products with its seed of ones, and the tape writes a
ufunc's result into a temporary nothing reads any more. None of that may write into an array the
caller or a rule still holds: the inputs, the outputs, values kept for backward, the seed."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from gradcli import Variable, calculus
from gradcli import functions as F  # noqa: N812 - as torch.nn.functional is F
from gradcli.engine import grad, sole
from gradcli.language import parse

# Each expression with its outputs written with the Python API. Between them: gradients that are
# an input itself (x*y: d/dx is y), the seed passed on (x + y), a gradient added to one that is an
# input, a chain of temporaries (neg, exp), outputs that other outputs are computed from.
CASES: list[tuple[str, Callable[[Any, Any], tuple[Any, ...]]]] = [
    ("x*y", lambda x, y: (x * y,)),
    ("x + y", lambda x, y: (x + y,)),
    ("x*y + y", lambda x, y: (x * y + y,)),
    ("sin(x)*y + x*y", lambda x, y: (F.sin(x) * y + x * y,)),
    ("exp(-(x*y)) * y", lambda x, y: (F.exp(-(x * y)) * y,)),
    ("sin(x)*exp(-y**2) + log1p(x**2)", lambda x, y: (F.sin(x) * F.exp(-(y**2)) + F.log1p(x**2),)),
    ("a = -(x*y); b = exp(a); a, b + a", lambda x, y: _shared(-(x * y), lambda a: (a, F.exp(a) + a))),
    ("s = sin(x); s*y, s", lambda x, y: _shared(F.sin(x), lambda s: (s * y, s))),
    (
        "where(x > 1, -(x*y), exp(-(x*y)))",
        lambda x, y: (F.where(F.greater(x, 1.0), -(x * y), F.exp(-(x * y))),),
    ),
    # temporaries smaller than the result they are combined into (broadcast: not reused)
    ("exp(-(sum(x, axis=0))) * y", lambda x, y: (F.exp(-F.sum(x, axis=0)) * y,)),
    ("(-(x*y))[0] * y", lambda x, y: ((-(x * y))[0] * y,)),
]


def _shared(a: Any, outputs: Callable[[Any], tuple[Any, ...]]) -> tuple[Any, ...]:
    """``outputs`` of one node ``a`` (as a name in an expression is one node)."""
    return outputs(a)


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(13)
    return {"x": rng.uniform(0.5, 2.0, (3, 4)), "y": rng.uniform(0.5, 2.0, (3, 4))}


def _shares(a: Any, arrays: list[Any]) -> bool:
    return any(np.shares_memory(a, b) for b in arrays if isinstance(b, np.ndarray))


@pytest.mark.parametrize(("text", "api"), CASES, ids=[c[0] for c in CASES])
def test_an_evaluation_writes_into_no_input_and_hands_back_arrays_of_its_own(text: str, api: Any) -> None:
    arrays = _inputs()
    before = {n: a.copy() for n, a in arrays.items()}
    r = calculus.evaluate(parse(text), arrays)
    for n in arrays:
        assert np.array_equal(arrays[n], before[n]), f"input {n} was written into"
    # The numbers of the graph (no tape, nothing in place), from copies of the inputs: the same bits.
    x, y = Variable(before["x"].copy()), Variable(before["y"].copy())
    outs = api(x, y)
    values = [np.asarray(v) for v in r.value]
    for v, out in zip(values, outs, strict=True):
        assert np.array_equal(v, out.data)
    for k, grads in enumerate(r.grad):
        want = grad([outs[k]], [x, y])
        for (n, g), w in zip(grads.items(), want, strict=True):
            others = list(arrays.values()) + values
            others += [h for j, hs in enumerate(r.grad) for m, h in hs.items() if (j, m) != (k, n)]
            assert g.flags.writeable, f"gradient {k} {n} is read-only"
            assert not _shares(g, others), f"gradient {k} {n} shares memory with an input, output or gradient"
            assert np.array_equal(g, w.data)


@pytest.mark.parametrize(("text", "api"), CASES, ids=[c[0] for c in CASES])
def test_backward_leaves_every_value_of_the_graph_and_the_inputs_as_they_were(text: str, api: Any) -> None:
    arrays = _inputs()
    before = {n: a.copy() for n, a in arrays.items()}
    x, y = Variable(arrays["x"]), Variable(arrays["y"])
    z = api(x, y)[0]
    held, todo = [], [z]  # every value the graph holds (what its rules read), as it is now
    while todo:
        v = todo.pop()
        if v.creator is not None:
            held.append((v, v.data.copy()))
            todo.extend(v.creator.inputs)
    z.backward()
    for v, data in held:
        assert np.array_equal(v.data, data), f"{v.creator.name}'s output was written into"
    for n, leaf in (("x", x), ("y", y)):
        assert np.array_equal(leaf.data, before[n]), f"input {n} was written into"
        assert leaf.grad is not None
        graph = [x.data, y.data, *(v.data for v, _ in held)]
        assert not _shares(leaf.grad.data, graph), f"gradient {n} shares memory with a value of the graph"
    assert x.grad is not None and y.grad is not None
    assert not np.shares_memory(x.grad.data, y.grad.data)
    assert np.array_equal(x.grad.data, calculus.evaluate(parse(text), before).grad[0]["x"])


def test_an_array_is_sole_only_while_nothing_else_holds_it_or_a_view_of_it() -> None:
    # (Worked out before each assert: pytest's rewritten asserts hold what they evaluate.)
    held = [np.empty(4)]
    alone, with_one_more = sole(held[0], 1), sole(held[0], 0)
    assert (alone, with_one_more) == (True, False)
    other = held[0]
    counted = sole(held[0], 1)
    assert not counted, "held twice"
    del other
    view = held[0][1:]
    viewed, of_view = sole(held[0], 1), sole(view, 5)
    assert not viewed, "a view of it is held"
    assert not of_view, "a view writes into another's memory"
    seed = sole(np.broadcast_to(np.float64(1.0), (4,)), 5)
    assert not seed, "read-only"


def _graph_values(z: Variable) -> dict[str, weakref.ref[np.ndarray]]:
    """A weak reference to the value of each intermediate of z's graph, by its function's name."""
    found, todo = {}, [z]
    while todo:
        v = todo.pop()
        if v.creator is not None:
            found[v.creator.name] = weakref.ref(v.data)
            todo.extend(v.creator.inputs)
    return found


BIG = (300, 300)  # 720 kB: a value this large is let go once nothing needs it


def test_backward_lets_go_of_big_values_no_rule_reads_and_no_name_holds() -> None:
    rng = np.random.default_rng(5)
    x, y = Variable(rng.uniform(0.5, 2.0, BIG)), Variable(rng.uniform(0.5, 2.0, BIG))
    named = F.square(y)  # held by a name: kept, though no rule reads it
    z = F.sin(x) * F.exp(-named) + F.log1p(x**2)
    values = _graph_values(z)
    z.backward()
    assert x.grad is not None and y.grad is not None
    grads = [x.grad.data, y.grad.data]
    # Gone: freed, or its buffer taken again by the pass for a gradient (gradcli.engine.Spare).
    gone = sorted(name for name, ref in values.items() if ref() is None or any(ref() is g for g in grads))
    # The product and log1p's output (add reads nothing) and neg's (exp reads its own output) go;
    # sin and exp (mul reads them), x**2 (log1p reads it) and the named one stay.
    assert gone == ["log1p", "mul", "neg"]
    assert np.isfinite(named.data).all() and np.isfinite(z.data).all()


def test_a_value_no_rule_reads_is_let_go_once_its_last_reader_has_run_not_at_its_own_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``-(y**2)``, the input of ``exp`` (whose rule reads its own output), is dead once ``exp``'s
    rule has run; its buffer serves ``log1p``'s rule, which runs before ``neg`` is reached. So do
    the product and log1p's output, once ``add``'s rule has run. Five rules' results land in
    buffers the pass let go of (mul's hands its argument back and takes none; ``-gy`` is not
    lent): with the values let go only at their own functions, four."""
    from gradcli.engine import Spare

    hits = []
    take = Spare.take

    def counted(self: Spare, shape: tuple[int, ...]) -> object:
        got = take(self, shape)
        hits.append(got is not None)
        return got

    monkeypatch.setattr(Spare, "take", counted)
    rng = np.random.default_rng(7)
    a, b = rng.uniform(0.5, 2.0, BIG), rng.uniform(0.5, 2.0, BIG)
    x, y = Variable(a), Variable(b)
    z = F.sin(x) * F.exp(-(y**2)) + F.log1p(x**2)
    z.backward()
    assert sum(hits) == 5
    assert x.grad is not None and y.grad is not None
    assert np.array_equal(x.grad.data, np.cos(a) * np.exp(-(b**2)) + 1.0 / (1.0 + a**2) * (a * 2.0))
    np.testing.assert_allclose(y.grad.data, -2.0 * b * np.sin(a) * np.exp(-(b**2)), rtol=1e-12)


def test_a_second_backward_and_a_higher_order_through_the_same_graph_after_values_went() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.uniform(0.5, 2.0, BIG), rng.uniform(0.5, 2.0, BIG)

    def model(x: Variable, y: Variable) -> Variable:
        return F.sin(x) * F.exp(-(y**2)) + F.log1p(x**2)

    x, y = Variable(a), Variable(b)
    z = model(x, y)
    z.backward()
    assert x.grad is not None and y.grad is not None
    once_x, once_y = x.grad.data.copy(), y.grad.data.copy()
    z.backward()  # the values no rule reads are gone: only their shapes are needed
    assert np.array_equal(x.grad.data, once_x + once_x) and np.array_equal(y.grad.data, once_y + once_y)
    (gx,) = grad([z], [x], create_graph=True)
    fresh = Variable(a)
    (fresh_gx,) = grad([model(fresh, Variable(b))], [fresh], create_graph=True)
    assert np.array_equal(gx.data, fresh_gx.data)
    assert np.array_equal(grad([gx.sum()], [x])[0].data, grad([fresh_gx.sum()], [fresh])[0].data)
