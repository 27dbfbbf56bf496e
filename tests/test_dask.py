"""Dask: every registered function on chunked Dask arrays builds a graph without computing it,
and gives NumPy's values and derivatives once computed; Hessians, Jacobians, higher derivatives
and checks are one graph; the command line reads Zarr stores, computes on a cluster (``--dask``)
and writes Zarr stores; a worker lost in the middle changes nothing.

"No compute" is counted by a Dask callback, which sees every computation Dask's own schedulers
run (``bool(a)``, ``float(a)``, ``np.asarray(a)`` included). The LocalClusters are the tests' own,
small (two workers of one thread), and stopped at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from registry_sweep import SPECS, run_in

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
distributed = pytest.importorskip("distributed")
import dask  # noqa: E402
from dask.callbacks import Callback  # noqa: E402

from gradcli import calculus, scale  # noqa: E402
from gradcli.engine import Variable, grad  # noqa: E402
from gradcli.functions import REGISTRY, Spec  # noqa: E402
from gradcli.language import parse  # noqa: E402

pytestmark = pytest.mark.usefixtures("clean_registry")  # plugins loaded here

LOSS = "mean((w*x + b - y)**2)"
# The tests' own LocalClusters: no dashboard, and the scheduler's HTTP server on a free port (not
# on 8787, where another cluster would make distributed warn).
QUIET: dict[str, Any] = {
    "dashboard_address": None,
    "scheduler_kwargs": {"dashboard": False, "dashboard_address": ":0"},
}


class Computations(Callback):  # type: ignore[misc]
    """Counts the computations Dask runs while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def _start(self, dsk: Any) -> None:
        self.count += 1


def chunked(a: np.ndarray) -> Any:
    """``a`` as a Dask array of two or more chunks along every axis longer than one."""
    return da.from_array(a, chunks=tuple(max(1, (n + 1) // 2) for n in a.shape))


# --- the library: lazy, and NumPy's numbers ------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_function_builds_a_graph_without_computing_and_gives_numpys_derivatives(spec: Spec) -> None:
    want = run_in(spec, lambda a: a)
    with Computations() as seen:
        got = run_in(spec, chunked)
    assert seen.count == 0, f"{spec.name}: {seen.count} computations before the result was asked for"
    leaves = [v for part in got for v in part]
    assert all(isinstance(v, da.Array) for v in leaves), f"{spec.name}: a result is not a Dask array"
    computed = dask.compute(*leaves)
    for g, w in zip(computed, [v for part in want for v in part]):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, err_msg=spec.name)


@pytest.mark.parametrize("dtype", [np.int64, np.float32, np.bool_])
def test_integer_float32_and_boolean_dask_inputs_are_made_float64_lazily(dtype: Any) -> None:
    x = da.from_array(np.arange(4).astype(dtype), chunks=2)
    with Computations() as seen:
        v = Variable(x)
    assert seen.count == 0 and isinstance(v.data, da.Array) and v.data.dtype == np.float64


@pytest.mark.parametrize(
    "index", [[0, 0, 3], ([0, 1, 1], [2, 0, 0]), (slice(None), [2, 2]), (1, slice(0, 3, 2))], ids=str
)
def test_indexing_and_its_gradient_on_dask_add_up_repeated_indices(index: Any) -> None:
    a = np.arange(12.0).reshape(4, 3) / 7.0
    x, x0 = Variable(chunked(a)), Variable(a)
    with Computations() as seen:
        (g,) = grad(REGISTRY["sum"](x[index] ** 2), [x])
    (g0,) = grad(REGISTRY["sum"](x0[index] ** 2), [x0])
    assert seen.count == 0
    np.testing.assert_allclose(g.data.compute(), g0.data, rtol=1e-15)


EXPRESSIONS = [
    "sum(sin(x) * x**2) + s*sum(x)",
    "sum(tanh(w @ [1.0, 2.0, 3.0]) * x)",
    "norm(x)**s + x[1]*x[2:5][0]",
    "mean((s*x - 1)**2) + logsumexp(w[:, 0])",
]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_hessian_jacobian_and_derivatives_are_one_lazy_graph_and_check_computes_once(text: str) -> None:
    rng = np.random.default_rng(2)
    program = parse(text)
    plain = {"x": rng.uniform(0.5, 2.0, 6), "w": rng.uniform(0.5, 2.0, (6, 3)), "s": 1.3}
    plain = {n: plain[n] for n in program.inputs}
    lazy = {n: chunked(v) if np.ndim(v) else v for n, v in plain.items()}
    vector = parse(text.replace("sum(", "(").replace("mean(", "("))
    with Computations() as seen:
        h = calculus.hessian(program, lazy).hessian
        j = calculus.jacobian(vector, lazy).jacobian
        d = calculus.derivatives(program, lazy, 3)
    assert seen.count == 0
    (h, j, d) = dask.compute(h, j, d)
    h0, j0, d0 = (
        calculus.hessian(program, plain).hessian,
        calculus.jacobian(vector, plain).jacobian,
        calculus.derivatives(program, plain, 3),
    )
    for a in h0:
        for b in h0[a]:
            np.testing.assert_allclose(h[a][b], h0[a][b], rtol=1e-12, atol=1e-14)
    for n in j0:
        np.testing.assert_allclose(j[n], j0[n], rtol=1e-12, atol=1e-14)
        for got, want in zip(d[n], d0[n]):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    with Computations() as seen:
        report = calculus.check(program, lazy, order=2)
    assert report.ok and seen.count == 2  # one for the gradients, one for the Hessian


# --- the command line -------------------------------------------------------------------------------


def _write_store(path: Path, arrays: dict[str, np.ndarray], chunk: int) -> None:
    root = zarr.open_group(str(path), mode="w")
    for name, a in arrays.items():
        root.create_array(name, shape=a.shape, chunks=(chunk,) * a.ndim, dtype=a.dtype)[...] = a


def _data(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    return {"x": x, "y": 3.0 * x + 1.0 + 0.1 * rng.standard_normal(n)}


def _numpy_loss(x: np.ndarray, y: np.ndarray, w: float, b: float) -> tuple[float, float, float]:
    r = w * x + b - y
    return float(np.mean(r * r)), float(np.mean(2.0 * r * x)), float(np.mean(2.0 * r))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Path, dict[str, np.ndarray]]]:
    data = _data(10_000)
    _write_store(tmp_path / "d.zarr", data, 1000)
    yield tmp_path / "d.zarr", data


def _gradcli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gradcli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_zarr_inputs_are_read_lazily_and_give_numpys_value_and_gradients(store: Any) -> None:
    from conftest import invoke

    path, data = store
    rc, out, err = invoke(
        "eval", LOSS, "--w", "0.5", "--b", "0", "--x", f"@{path}:x", "--y", f"@{path}:y", "--json"
    )
    assert rc == 0, err
    got = json.loads(out)
    # Data from Zarr stores is held constant unless --wrt names it: w and b only.
    assert set(got["grad"]) == {"w", "b"}
    numbers = [got["value"], got["grad"]["w"], got["grad"]["b"]]
    np.testing.assert_allclose(numbers, _numpy_loss(data["x"], data["y"], 0.5, 0.0), rtol=1e-12)


def test_a_gradient_with_respect_to_zarr_data_is_written_to_a_zarr_store(store: Any, tmp_path: Path) -> None:
    from conftest import invoke

    path, data = store
    out_path = tmp_path / "out.zarr"
    args = ("--w", "0.5", "--b", "0", "--x", f"@{path}:x", "--y", f"@{path}:y", "--wrt", "w,x")
    rc, out, err = invoke("eval", LOSS, *args, "-o", str(out_path))
    assert rc == 0 and out == "", err
    written = zarr.open_group(str(out_path), mode="r")
    residual = 0.5 * data["x"] - data["y"]
    np.testing.assert_allclose(written["grad/x"][...], 2.0 * residual * 0.5 / residual.size, rtol=1e-12)
    np.testing.assert_allclose(written["value"][...], np.mean(residual**2), rtol=1e-12)
    assert set(written["grad"].array_keys()) == {"w", "x"}


def test_a_result_past_max_output_is_refused_before_the_work_not_pulled_in(store: Any) -> None:
    from conftest import invoke

    path, _ = store
    args = ("--w", "0.5", "--b", "0", "--x", f"@{path}:x", "--y", f"@{path}:y", "--wrt", "x")
    rc, out, err = invoke("--max-output", "1000", "eval", LOSS, *args)
    assert rc == 2 and "-o out.zarr" in err and "10,001 numbers" in err  # the value and the gradient


def _stores(tmp_path: Path, a: np.ndarray) -> dict[str, str]:
    """``a`` in Zarr stores of every layout the metadata reader knows, each as an ``@`` value."""
    stores = {}
    for fmt in (2, 3):
        group = zarr.open_group(str(tmp_path / f"g{fmt}.zarr"), mode="w", zarr_format=fmt)
        group.create_array("a", shape=a.shape, chunks=(3, 2), dtype=a.dtype)[...] = a
        stores[f"v{fmt} group, its one array"] = f"@{tmp_path}/g{fmt}.zarr"
        stores[f"v{fmt} group, array by name"] = f"@{tmp_path}/g{fmt}.zarr:a"
        stores[f"v{fmt} group, array by path"] = f"@{tmp_path}/g{fmt}.zarr/a"
        alone = zarr.open_array(
            str(tmp_path / f"a{fmt}.zarr"),
            mode="w",
            shape=a.shape,
            chunks=(4, 3),
            dtype=a.dtype,
            zarr_format=fmt,
        )
        alone[...] = a
        stores[f"v{fmt} array"] = f"@{tmp_path}/a{fmt}.zarr"
    sharded = zarr.create_array(
        str(tmp_path / "s.zarr"), shape=a.shape, chunks=(2, 2), shards=(4, 4), dtype=a.dtype
    )
    sharded[...] = a
    stores["v3 sharded array"] = f"@{tmp_path}/s.zarr"
    return stores


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32"])
def test_a_zarr_store_is_described_from_its_metadata_in_zarrs_own_chunks(tmp_path: Path, dtype: str) -> None:
    from gradcli import scale
    from gradcli.inputs import zarr_source

    a = np.arange(54).reshape(9, 6).astype(dtype)
    for layout, value in _stores(tmp_path, a).items():
        source = zarr_source(value)
        assert source is not None
        store, member = source
        described = scale._described(store, member)
        assert described is not None, layout
        lazy = scale.read_zarr(store, member, "a")
        node = zarr.open(store, mode="r")
        want = (
            node
            if member is None and isinstance(node, zarr.Array)
            else zarr.open_array(store, path=described.path)
        )
        assert described.chunks == da.from_zarr(want).chunksize and lazy.dtype == a.dtype, layout
        # Dask's blocks hold whole chunks of the store (several, where the chunks are small)
        for blocks, chunk in zip(lazy.chunks, described.chunks):
            assert all(b % chunk == 0 for b in blocks[:-1]), (layout, lazy.chunks)
        np.testing.assert_array_equal(lazy.compute(), a, err_msg=layout)


def test_a_store_of_tiny_chunks_is_read_in_few_blocks(tmp_path: Path) -> None:
    """One number a chunk made a task a chunk: sum(x) over 100,000 of them took 72 s. Chunks of
    16 MB are blocks of their own."""
    from gradcli import scale

    z = zarr.create_array(str(tmp_path / "t.zarr"), shape=(100_000,), chunks=(1,), dtype="f8")
    z[:1000] = np.arange(1000.0)
    lazy = scale.read_zarr(str(tmp_path / "t.zarr"), None, "x")
    assert lazy.numblocks == (1,)
    zarr.create_array(str(tmp_path / "b.zarr"), shape=(4, 3_000_000), chunks=(1, 2_000_000), dtype="f8")
    assert scale.read_zarr(str(tmp_path / "b.zarr"), None, "x").chunks == ((1,) * 4, (2_000_000, 1_000_000))
    assert float(lazy[:1000].sum().compute()) == float(np.arange(1000.0).sum())  # (the rest: 99,000 keys)


def test_small_chunks_are_merged_last_axis_first_into_blocks_of_at_most_8_mib(tmp_path: Path) -> None:
    """Whole chunks in a block, as many as 8 MiB holds, the last axis first (C order: its chunks
    lie side by side), and the shape worked out without listing every chunk (Dask's "auto"
    listed all 10^8 chunks of the 10^11 numbers below, 28 s before any work)."""
    from gradcli import scale

    zarr.create_array(str(tmp_path / "c.zarr"), shape=(1000, 1000, 1000), chunks=(10, 10, 10), dtype="f8")
    lazy = scale.read_zarr(str(tmp_path / "c.zarr"), None, "x")
    assert lazy.chunksize == (10, 100, 1000) and lazy.nbytes / lazy.npartitions <= scale.MERGED_BLOCK_BYTES
    zarr.create_array(str(tmp_path / "h.zarr"), shape=(10**11,), chunks=(1000,), dtype="f8")
    lazy = scale.read_zarr(str(tmp_path / "h.zarr"), None, "x")
    assert lazy.chunksize == (1_048_000,) and lazy.numblocks == (95_420,)
    assert float(lazy[:3].sum().compute()) == 0.0  # (unwritten chunks are the fill value)


def test_a_store_by_url_is_described_through_fsspec_and_one_by_path_without_it(store: Any) -> None:
    path, data = store
    by_path, by_url = scale._described(str(path), "x"), scale._described(path.as_uri(), "x")
    assert by_path is not None and by_url is not None
    assert (by_path.shape, by_path.chunks, by_path.path) == (by_url.shape, by_url.chunks, by_url.path)
    assert by_path.store == by_url.store == os.path.abspath(path)  # the workers get the absolute path
    relative = os.path.relpath(path)
    np.testing.assert_array_equal(scale.read_zarr(relative, "x", "x").compute(), data["x"])
    np.testing.assert_array_equal(scale.read_zarr(path.as_uri(), "y", "y").compute(), data["y"])


def test_the_client_of_a_cluster_imports_no_dask_array_zarr_scipy_or_jinja2(store: Any) -> None:
    """The client checks the stores' metadata; a worker builds the graph, the workers read the
    data, the scheduler is another process. (jinja2: the templates of dask's notebook reprs;
    fsspec: a store on this machine is read without it.)"""
    path, data = store
    code = (
        "import sys; from gradcli._entry import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "left = ('dask.array', 'zarr', 'scipy', 'jinja2', 'fsspec', 'curses')\n"
        "print(sorted(m for m in left if m in sys.modules))"
    )
    args = [
        "eval",
        LOSS,
        "--w",
        "0.5",
        "--b",
        "0",
        "--x",
        f"@{path}:x",
        "--y",
        f"@{path}:y",
        "--dask",
        "--json",
    ]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer, modules = done.stdout.strip().splitlines()
    got = json.loads(answer)
    numbers = [got["value"], got["grad"]["w"], got["grad"]["b"]]
    np.testing.assert_allclose(numbers, _numpy_loss(data["x"], data["y"], 0.5, 0.0), rtol=1e-12)
    assert modules == "[]"


def test_a_special_function_on_zarr_data_imports_scipy_when_it_is_named(store: Any) -> None:
    from conftest import invoke
    from scipy.special import erf

    path, data = store
    rc, out, err = invoke("eval", "sum(w*erf(x))", "--w", "2", "--x", f"@{path}:x", "--json")
    assert rc == 0, err
    got = json.loads(out)
    np.testing.assert_allclose(
        [got["value"], got["grad"]["w"]], [2 * erf(data["x"]).sum(), erf(data["x"]).sum()], rtol=1e-12
    )


ZARR_ERRORS = [
    ("@{d}/none.zarr", "no such Zarr store"),
    ("@{d}/d.zarr", "several arrays (x, y): give"),
    ("@{d}/d.zarr:z", "no array 'z' (arrays: x, y)"),
    ("@{d}/d.zarr/x:y", "the store is one array"),
    ("@{d}/text.zarr", "expected numbers"),
]


@pytest.mark.parametrize("value, message", ZARR_ERRORS, ids=[e[1] for e in ZARR_ERRORS])
def test_a_zarr_input_that_cannot_be_read_is_one_line_of_error(store: Any, value: str, message: str) -> None:
    from conftest import invoke

    path, _ = store
    zarr.open_array(str(path.parent / "text.zarr"), mode="w", shape=(2,), dtype="c16")
    rc, out, err = invoke("eval", "sum(x)", "--x", value.format(d=path.parent))
    assert rc == 2 and err.startswith("error:") and message in err and "Traceback" not in err


def _damage(path: Path, how: str) -> None:
    """Spoil array x of the store at ``path`` as a disk, a copy cut short or an editor might."""
    chunk = path / "x" / "c" / "3"
    if how == "a chunk cut short":
        chunk.write_bytes(chunk.read_bytes()[:100])
    elif how == "a chunk of noise":
        chunk.write_bytes(np.random.default_rng(1).bytes(len(chunk.read_bytes())))
    else:  # the array's metadata
        meta = path / "x" / "zarr.json"
        meta.write_text(meta.read_text()[:40])


DAMAGE = ["a chunk cut short", "a chunk of noise", "broken metadata"]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_zarr_store_is_one_line_naming_the_variable_and_the_store(
    store: Any, scheduler: str, how: str
) -> None:
    """Data zarr cannot read (found by the block that reads it, on a worker with --dask) was an
    internal error in a codec's words, or a JSON parser's with status 1: it is the user's file,
    status 2, named, here and on a cluster alike; y, undamaged, still reads."""
    from conftest import invoke

    path, data = store
    _damage(path, how)
    for where in ((), ("--dask", scheduler)):
        rc, out, err = invoke("eval", "sum(x*y)", "--x", f"@{path}:x", "--y", f"@{path}:y", *where)
        assert rc == 2 and out == "", (where, err)
        assert err.startswith(f"error: variable 'x' from '{path}")
        assert "cannot read" in err and err.count("\n") == 1 and "Traceback" not in err
        rc, out, err = invoke("eval", "sum(y)", "--y", f"@{path}:y", "--json", *where)
        assert rc == 0 and json.loads(out)["value"] == pytest.approx(data["y"].sum(), rel=1e-12), err


@pytest.mark.parametrize("how", DAMAGE[:2])
def test_a_damaged_store_that_zarr_opens_itself_is_the_same_one_line(
    store: Any, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store the metadata reader does not describe (scale._described: None) is opened by zarr
    here and read through the same blocks: a damaged chunk is the same named error, status 2."""
    from conftest import invoke

    from gradcli import scale

    path, data = store
    monkeypatch.setattr(scale, "_described", lambda store, member: None)
    rc, out, err = invoke("eval", "sum(y)", "--y", f"@{path}:y", "--json")
    assert rc == 0 and json.loads(out)["value"] == pytest.approx(data["y"].sum(), rel=1e-12), err
    _damage(path, how)
    rc, out, err = invoke("eval", "sum(x*y)", "--x", f"@{path}:x", "--y", f"@{path}:y")
    assert rc == 2 and out == "" and err.startswith(f"error: variable 'x' from '{path}")
    assert "cannot read the data" in err and err.count("\n") == 1


def test_a_chunk_shape_of_zero_is_a_named_error_in_the_data(tmp_path: Path) -> None:
    """Dask divided by it: "integer division or modulo by zero", status 1, naming nothing."""
    import shutil

    from conftest import REPO, invoke

    path = tmp_path / "zero.zarr"
    shutil.copytree(REPO / "examples" / "line.zarr", path)
    meta = path / "x" / "zarr.json"
    node = json.loads(meta.read_text())
    node["chunk_grid"]["configuration"]["chunk_shape"] = [0]
    meta.write_text(json.dumps(node))
    rc, out, err = invoke("eval", "mean(x)", "--x", f"@{path}:x")
    assert (rc, out) == (2, "")
    reason = "its chunks are [0]: each axis needs 1 or more"
    assert err == f"error: variable 'x' from '{path}': not a Zarr array ({reason})\n"


def test_a_damaged_chunk_among_many_is_one_line_to_the_end_of_the_process(tmp_path: Path) -> None:
    """zarr reads a block's chunks as tasks on its own event loop; one failing left the others
    pending, and at exit asyncio logged each one destroyed: about 10,000 lines, with
    tracebacks, after the error, for a store of 10,000 chunks. A process of its own: that was
    said at exit."""
    from conftest import run_cli

    path = tmp_path / "many.zarr"
    z = zarr.create_array(str(path), shape=(1_000_000,), chunks=(100,), dtype="f8")
    z[:] = np.arange(1_000_000.0)
    chunk = path / "c" / "5000"
    chunk.write_bytes(chunk.read_bytes()[:20])
    rc, out, err = run_cli("eval", "mean(x)", "--x", f"@{path}")
    assert (rc, out) == (2, "")
    assert err.startswith(f"error: variable 'x' from '{path}': cannot read the data (")
    assert err.count("\n") == 1, err[:2000]


def test_plain_evaluation_loads_none_of_dask_distributed_or_zarr(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.arange(3.0))
    code = (
        "import sys; from gradcli._entry import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('dask', 'distributed', 'zarr') if m in sys.modules))"
    )
    plain = ["eval", "x*y", "--x", "2", "--y", "3"]
    for args in (plain, ["eval", "sum(v**2)", "--v", f"@{tmp_path}/v.npy", "--json"]):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
        assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


# --- on a cluster -------------------------------------------------------------------------------------


def _measured_cli() -> str:
    """The wrapper of bench/dask_loss.py: the CLI, with the client's resident memory just before
    its computation, its peak during it (reset just before) and its peak before it written to the
    file in argv[1]."""
    from conftest import load_script

    return str(load_script("bench/dask_loss.py").MEASURED)


def _must_show(tmp_path: Path, n: int, chunk: int) -> dict[str, Any]:
    """The issue's command on n values per array: its numbers against NumPy's on the same data,
    and the client's memory before and during the computation."""
    data = _data(n, seed=1)
    _write_store(tmp_path / "d.zarr", data, chunk)
    report = tmp_path / "memory.txt"
    store = tmp_path / "d.zarr"
    args = ["eval", LOSS, "--w", "0.5", "--b", "0", "--x", f"@{store}:x", "--y", f"@{store}:y"]
    args += ["--dask", "--json"]
    command = [sys.executable, "-c", _measured_cli(), str(report), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # distributed's reports and warnings stay out of it
    got = json.loads(done.stdout)
    want = _numpy_loss(data["x"], data["y"], 0.5, 0.0)
    np.testing.assert_allclose([got["value"], got["grad"]["w"], got["grad"]["b"]], want, rtol=1e-9)
    before, peak, private_before, private_peak, start = map(int, report.read_text().split())
    return {
        "data": sum(a.nbytes for a in data.values()),
        "before": before,
        "peak": peak,
        "private_before": private_before,
        "private_peak": private_peak,
        "whole_run": max(start, peak),  # the process's peak from its start to its answer
    }


def _assert_client_memory(memory: dict[str, Any]) -> None:
    quarter = memory["data"] // 4
    if memory["before"] < quarter:
        assert memory["peak"] < quarter, memory
    else:  # Python, NumPy, Dask and distributed alone are more than a quarter of small data
        assert memory["peak"] - memory["before"] < quarter, memory


def test_the_loss_on_a_local_cluster_is_numpys_and_the_client_holds_no_data(
    tmp_path: Path,
) -> None:
    # With the dashboard's usual port taken (as by another cluster on this machine), which would
    # make distributed warn that it used another: nothing but the answer is printed.
    with socket.socket() as taken:
        with contextlib.suppress(OSError):  # (or it is taken already)
            taken.bind(("0.0.0.0", 8787))
            taken.listen()
        _assert_client_memory(_must_show(tmp_path, 2_000_000, 100_000))


@pytest.mark.slow
def test_the_loss_on_two_times_ten_million_values_per_array(tmp_path: Path) -> None:
    memory = _must_show(tmp_path, 20_000_000, 1_000_000)
    # A quarter of the data is 76 MiB. The client's resident set at its peak, from its start to its
    # answer, is 60 to 70 MiB (its shared libraries' pages count as far as the page cache holds
    # them): Python, NumPy, click, gradcli, Dask's core and distributed. No dask.array, no graph:
    # a worker builds that. The computation adds little.
    assert memory["whole_run"] < memory["data"] // 4, memory
    assert memory["peak"] - memory["before"] < memory["data"] // 32, memory


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The address of a small LocalCluster of the tests' own, for ``--dask tcp://...``."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, **QUIET) as cluster:
        yield cluster.scheduler_address


def test_on_a_cluster_a_gradient_of_zarr_data_is_written_to_a_zarr_store_by_the_workers(
    store: Any, tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import invoke

    path, data = store
    monkeypatch.chdir(tmp_path)  # a relative -o: the workers write where the command was given
    args = ("--w", "0.5", "--b", "0", "--x", f"@{path}:x", "--y", f"@{path}:y", "--wrt", "w,x")
    rc, out, err = invoke("eval", LOSS, *args, "-o", "out.zarr", "--dask", scheduler)
    assert rc == 0 and out == "", err
    written = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")
    residual = 0.5 * data["x"] - data["y"]
    np.testing.assert_allclose(written["grad/x"][...], 2.0 * residual * 0.5 / residual.size, rtol=1e-12)
    np.testing.assert_allclose(written["grad/w"][...], np.mean(2.0 * residual * data["x"]), rtol=1e-12)


def test_on_a_terminal_the_progress_of_the_computation_is_dasks_bar_on_stderr(
    store: Any, scheduler: str
) -> None:
    """stderr a terminal (a pseudo-terminal here): Dask's own progress bar over the futures of
    the results, which the worker that built the graph handed over; stdout has the answer."""
    import pty

    from conftest import read_terminal, subprocess_env

    path, data = store
    leader, follower = pty.openpty()
    args = ["eval", LOSS, "--w", "0.5", "--b", "0", "--x", f"@{path}:x", "--y", f"@{path}:y", "--json"]
    with subprocess.Popen(
        [sys.executable, "-m", "gradcli", *args, "--dask", scheduler],
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        env=subprocess_env(),
    ) as proc:
        os.close(follower)
        shown = read_terminal(leader)
        out = proc.stdout.read() if proc.stdout else ""
    os.close(leader)
    assert proc.returncode == 0, shown
    assert b"100% Completed" in shown and b"[#" in shown, shown
    got = json.loads(out)
    np.testing.assert_allclose(got["value"], _numpy_loss(data["x"], data["y"], 0.5, 0.0)[0], rtol=1e-12)


def test_on_a_cluster_a_hessian_is_the_one_computed_here(store: Any, scheduler: str) -> None:
    from conftest import invoke

    path, _ = store
    args = ("hessian", "mean((w*x + b - y)**2) + w**2*b", "--w", "0.5", "--b", "0.25")
    args += ("--x", f"@{path}:x", "--y", f"@{path}:y", "--json")
    rc, out, err = invoke(*args, "--dask", scheduler)
    assert rc == 0, err
    rc_here, out_here, err_here = invoke(*args)
    assert rc_here == 0, err_here
    got, want = json.loads(out), json.loads(out_here)
    for a in ("w", "b"):
        for b in ("w", "b"):
            np.testing.assert_allclose(got["hessian"][a][b], want["hessian"][a][b], rtol=1e-12)


CLUSTER_ERRORS = [
    # (the arguments, what the error says): raised where a worker builds the graph (the first
    # two) or before the cluster starts (the third), each the line a run here gives.
    (("eval", "sum(x + [1, 2, 3])"), "broadcast"),
    (("--max-output", "1000", "eval", "x * 2", "--wrt", "x"), "-o out.zarr"),
    (("eval", "sum(x) + nosuch(x)"), "unknown function"),
]


@pytest.mark.parametrize("args, message", CLUSTER_ERRORS, ids=[m for _, m in CLUSTER_ERRORS])
def test_on_a_cluster_an_error_is_the_one_line_and_status_it_is_here(
    store: Any, scheduler: str, args: tuple[str, ...], message: str
) -> None:
    from conftest import invoke

    path, _ = store
    rc, out, err = invoke(*args, "--x", f"@{path}:x", "--dask", scheduler)
    rc_here, _, err_here = invoke(*args, "--x", f"@{path}:x")
    assert rc == rc_here != 0 and message in err and "Traceback" not in err
    assert err == err_here


def test_on_a_cluster_floating_point_warnings_come_back_as_here(store: Any, scheduler: str) -> None:
    from conftest import invoke

    path, _ = store
    args = ("eval", "sum(x) * log(w)", "--w", "-1", "--x", f"@{path}:x", "--json")
    rc, out, err = invoke(*args, "--dask", scheduler)
    rc_here, out_here, err_here = invoke(*args)
    assert rc == rc_here == 0 and out == out_here
    assert err == err_here and err.startswith("warning: log: invalid value")


def test_on_a_cluster_a_plugin_is_loaded_by_the_worker_that_builds_the_graph(
    store: Any, scheduler: str, tmp_path: Path
) -> None:
    from conftest import invoke

    path, data = store
    plugin = tmp_path / "cube.py"
    plugin.write_text(
        "import gradcli\n\n\n"
        "@gradcli.register('cube')\n"
        "class Cube(gradcli.Function):\n"
        "    def forward(self, x):\n"
        "        return x * x * x\n\n"
        "    def backward(self, gy):\n"
        "        (x,) = self.inputs\n"
        "        return gy * 3 * x * x\n"
    )
    rc, out, err = invoke(
        "eval",
        "sum(cube(w * x))",
        "--plugin",
        str(plugin),
        "--w",
        "0.5",
        "--x",
        f"@{path}:x",
        "--json",
        "--dask",
        scheduler,
    )
    assert rc == 0, err
    got = json.loads(out)
    x = data["x"]
    np.testing.assert_allclose(got["value"], np.sum((0.5 * x) ** 3), rtol=1e-12)
    np.testing.assert_allclose(got["grad"]["w"], np.sum(3 * 0.5**2 * x**3), rtol=1e-12)


def _write_plugin(path: Path, name: str, forward: str, backward: str | None = None) -> Path:
    """A plugin file registering the function ``name`` with the given bodies (one line each)."""
    lines = ["import time", "import gradcli", "", "", f"@gradcli.register({name!r})"]
    lines += ["class F(gradcli.Function):", "    def forward(self, x):", f"        {forward}"]
    if backward is not None:
        lines += ["", "    def backward(self, gy):", "        (x,) = self.inputs", f"        {backward}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_on_a_cluster_an_edited_plugin_is_the_version_the_worker_runs(
    store: Any, scheduler: str, tmp_path: Path
) -> None:
    """The workers of a cluster outlive a command: each run's plugins are the files as they are
    now, not as a worker loaded them before."""
    from conftest import invoke

    from gradcli.functions import REGISTRY

    path, data = store
    plugin = tmp_path / "scaled.py"
    before = dict(REGISTRY)
    for k in (2, 3, 4):  # three runs on two workers: one of them runs two
        _write_plugin(plugin, "scaled", f"return x * {k}", f"return gy * {k}")
        REGISTRY.clear()
        REGISTRY.update(before)  # this process too loads the file anew
        args = ("eval", "sum(scaled(w * x))", "--plugin", str(plugin), "--w", "1", "--x", f"@{path}:x")
        rc, out, err = invoke(*args, "--json", "--dask", scheduler)
        assert rc == 0, err
        got = json.loads(out)
        np.testing.assert_allclose([got["value"], got["grad"]["w"]], [k * data["x"].sum()] * 2, rtol=1e-12)


def test_on_a_cluster_a_graph_the_scheduler_cannot_read_is_one_line_of_error(tmp_path: Path) -> None:
    """A plugin's own Python function in the graph (its module is the worker's alone): the
    scheduler cannot read the graph, and says so, where the futures would wait for ever."""
    data = {"x": np.arange(1.0, 7.0)}
    _write_store(tmp_path / "d.zarr", data, 2)
    plugin = _write_plugin(tmp_path / "blocks.py", "blocks", "return x.map_blocks(one_more)")
    plugin.write_text(plugin.read_text() + "\n\ndef one_more(block):\n    return block + 1\n")
    command = ["eval", "sum(blocks(x))", "--plugin", str(plugin), "--x", f"@{tmp_path}/d.zarr:x", "--dask"]
    done = _gradcli(*command)
    assert done.returncode == 1 and done.stdout == "", done.stderr
    assert (
        done.stderr.startswith("error: the Dask scheduler could not read the graph")
        and done.stderr.count("\n") == 1
    )


def test_on_a_cluster_an_interrupt_raised_in_the_build_is_an_error_and_no_worker_is_lost(
    store: Any, scheduler: str, tmp_path: Path
) -> None:
    from conftest import invoke

    path, _ = store
    plugin = _write_plugin(tmp_path / "stop.py", "stop", "raise KeyboardInterrupt")
    with distributed.Client(scheduler) as client:
        workers = set(client.run(os.getpid).values())
        rc, out, err = invoke(
            "eval", "sum(stop(x))", "--plugin", str(plugin), "--x", f"@{path}:x", "--dask", scheduler
        )
        assert rc == 1 and err == "error: interrupted on the worker that builds the graph\n"
        assert set(client.run(os.getpid).values()) == workers
        assert not client.list_datasets()  # and no run left its results behind


def test_on_a_cluster_a_large_array_input_is_sent_without_a_word(scheduler: str, tmp_path: Path) -> None:
    from conftest import invoke

    x = np.linspace(0.0, 1.0, 2_000_000)  # 16 MB, sent in the job: distributed would warn
    np.save(tmp_path / "x.npy", x)
    rc, out, err = invoke(
        "eval", "sum(w * x)", "--w", "2", "--x", f"@{tmp_path}/x.npy", "--json", "--dask", scheduler
    )
    assert rc == 0 and err == "", err
    np.testing.assert_allclose(json.loads(out)["grad"]["w"], x.sum(), rtol=1e-12)


def test_a_local_cluster_that_cannot_start_is_one_line_of_error(store: Any, tmp_path: Path) -> None:
    from conftest import subprocess_env

    path, _ = store
    (tmp_path / "failing.py").write_text("raise ImportError('a preload that fails')\n")
    env = subprocess_env(DASK_DISTRIBUTED__WORKER__PRELOAD=f'["{tmp_path}/failing.py"]')
    done = subprocess.run(
        [sys.executable, "-m", "gradcli", "eval", "sum(x)", "--x", f"@{path}:x", "--dask"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert (
        done.stderr.startswith("error: cannot start a local Dask cluster: ") and done.stderr.count("\n") == 1
    )


@pytest.mark.slow
def test_a_command_interrupted_while_a_worker_builds_its_graph_leaves_nothing_on_the_cluster(
    store: Any, scheduler: str, tmp_path: Path
) -> None:
    path, _ = store
    plugin = _write_plugin(tmp_path / "slowly.py", "slowly", "time.sleep(4); return x")
    command = [sys.executable, "-m", "gradcli", "eval", "sum(slowly(x))", "--plugin", str(plugin)]
    proc = subprocess.Popen(
        [*command, "--x", f"@{path}:x", "--dask", scheduler], stderr=subprocess.PIPE, text=True
    )
    with distributed.Client(scheduler) as client:

        def building(dask_scheduler: Any) -> bool:
            return any(str(k).endswith("-driver") for k in dask_scheduler.tasks)

        deadline = time.monotonic() + 60
        while not client.run_on_scheduler(building) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and err == "interrupted\n", err
        time.sleep(6)  # the worker's build ends meanwhile
        assert not client.list_datasets()
        assert not client.run_on_scheduler(building)


# Each block takes 0.5 s (a lambda: sent by value, where a plugin's named function could not be).
SLOW_BLOCKS = "return x.map_blocks(lambda b: (time.sleep(0.5), b)[1], dtype=x.dtype)"


@pytest.mark.slow
def test_builds_with_plugins_take_turns_on_a_worker_without_holding_its_thread(
    store: Any, tmp_path: Path
) -> None:
    """One worker of one thread: a check (it computes while it builds, holding the plugins'
    turn) and, meanwhile, another build with plugins, which waits for the turn without the
    thread the check's tasks need."""
    path, _ = store
    plugin = _write_plugin(tmp_path / "slow.py", "slowblocks", SLOW_BLOCKS, "return gy")
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, **QUIET) as cluster,
        distributed.Client(cluster) as client,
    ):
        address = cluster.scheduler_address
        common = ["--plugin", str(plugin), "--w", "2", "--x", f"@{path}:x", "--dask", address]
        command = [sys.executable, "-m", "gradcli"]
        check = subprocess.Popen(
            [*command, "check", "sum(w * slowblocks(x))", *common], stdout=subprocess.PIPE, text=True
        )
        time.sleep(3)  # the check computes its blocks, one at a time
        assert check.poll() is None
        done = subprocess.run(
            [*command, "eval", "sum(w * slowblocks(x))", *common], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert check.wait(timeout=120) == 0
        assert not client.list_datasets()


@pytest.mark.slow
def test_a_worker_lost_after_the_build_leaves_nothing_on_the_cluster(
    store: Any, scheduler: str, tmp_path: Path
) -> None:
    """The worker holding the driver's answer is killed while the results are computed: the
    answer is the same, and the driver is not run again (it would publish a second time)."""
    path, data = store
    plugin = _write_plugin(tmp_path / "slow.py", "slowblocks", SLOW_BLOCKS, "return gy")
    args = ["eval", "sum(w * slowblocks(x))", "--plugin", str(plugin), "--w", "2", "--x", f"@{path}:x"]
    with distributed.Client(scheduler) as client:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gradcli", *args, "--json", "--dask", scheduler],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def driver(dask_scheduler: Any) -> tuple[str, str] | None:
            """The driver's state and the worker that runs or holds it (None once forgotten)."""
            for key, task in dask_scheduler.tasks.items():
                if str(key).endswith("-driver"):
                    where = task.processing_on or next(iter(task.who_has), None)
                    return task.state, where.address if where is not None else ""
            return None

        # The worker that runs the driver, and the moment the driver is done (its answer taken,
        # or held there): the results' blocks still take seconds.
        deadline, runner = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            seen = client.run_on_scheduler(driver)
            if seen is not None and seen[1]:
                runner = seen[1]
            if runner and (seen is None or seen[0] != "processing"):
                break
            time.sleep(0.02)
        assert runner, "the driver never ran"
        os.kill(client.run(os.getpid)[runner], signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        np.testing.assert_allclose(json.loads(out)["grad"]["w"], data["x"].sum(), rtol=1e-12)
        time.sleep(3)  # a driver run again would have built and published by now
        assert not client.list_datasets()
        assert client.run_on_scheduler(driver) is None


@pytest.mark.slow
def test_a_local_cluster_lost_in_the_middle_is_one_line_of_error(store: Any, tmp_path: Path) -> None:
    import psutil

    path, _ = store
    # 3 s a block, 10 blocks: computing outlasts the 5 s below on any number of workers up to 5
    # (0.5 s blocks could all be done by then on a quick machine, and the run end well)
    slower = SLOW_BLOCKS.replace("time.sleep(0.5)", "time.sleep(3)")
    assert slower != SLOW_BLOCKS
    plugin = _write_plugin(tmp_path / "slow.py", "slowblocks", slower, "return gy")
    command = [sys.executable, "-m", "gradcli", "eval", "sum(slowblocks(x))", "--plugin", str(plugin)]
    proc = subprocess.Popen(
        [*command, "--x", f"@{path}:x", "--dask"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline, helper = time.monotonic() + 60, None
    while helper is None and time.monotonic() < deadline:
        found = [
            p for p in psutil.Process(proc.pid).children() if "gradcli._cluster" in " ".join(p.cmdline())
        ]
        helper = found[0] if found else None
        time.sleep(0.05)
    assert helper is not None
    time.sleep(5)  # started, and computing the slow blocks
    for p in [helper, *helper.children(recursive=True)]:
        p.kill()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err


@pytest.mark.slow
def test_a_scheduler_without_workers_is_one_line_of_error(store: Any) -> None:
    path, _ = store
    with distributed.LocalCluster(n_workers=0, **QUIET) as empty:
        done = _gradcli("eval", "sum(x)", "--x", f"@{path}:x", "--dask", empty.scheduler_address)
    assert done.returncode == 1 and done.stderr.startswith("error: the Dask scheduler at ")
    assert "has no workers" in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.slow
def test_the_local_cluster_ends_with_the_command_even_when_it_is_killed(store: Any, tmp_path: Path) -> None:
    """``--dask`` without an address: the cluster's process and its workers end when gradcli
    does, even killed in the middle, when nothing could stop them in order."""
    import psutil

    path, _ = store
    plugin = tmp_path / "slow.py"
    plugin.write_text(
        "import time\nimport gradcli\n\n\n"
        "@gradcli.register('slow')\n"
        "class Slow(gradcli.Function):\n"
        "    def forward(self, x):\n"
        "        time.sleep(600)\n"
        "        return x\n"
    )
    command = [sys.executable, "-m", "gradcli", "eval", "sum(slow(x))", "--plugin", str(plugin)]
    proc = subprocess.Popen([*command, "--x", f"@{path}:x", "--dask"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        helpers: list[Any] = []
        while time.monotonic() < deadline and len(helpers) < 3:  # the cluster and its 2+ workers
            helpers = psutil.Process(proc.pid).children(recursive=True)
            time.sleep(0.2)
        assert any("gradcli._cluster" in " ".join(p.cmdline()) for p in helpers), helpers
        time.sleep(3)  # the worker that builds the graph is asleep in slow()
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.kill()
        proc.wait()
        gone, alive = psutil.wait_procs(helpers, timeout=60)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        proc.kill()


@pytest.mark.slow  # waits out the connection timeout
def test_dask_with_an_unreachable_scheduler_is_one_line_of_error(store: Any) -> None:
    path, _ = store
    done = _gradcli("eval", "sum(x)", "--x", f"@{path}:x", "--dask", "tcp://127.0.0.1:9")
    assert done.returncode == 1 and done.stderr.startswith("error: cannot reach the Dask scheduler")


@pytest.mark.slow
def test_a_worker_killed_in_the_middle_of_the_computation_changes_nothing() -> None:
    data = _data(400_000, seed=3)
    want = _numpy_loss(data["x"], data["y"], 0.5, 0.0)

    def slowly(block: np.ndarray) -> np.ndarray:
        time.sleep(0.05)
        return block

    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, **QUIET) as cluster,
        distributed.Client(cluster) as client,
    ):
        values = {n: da.from_array(a, chunks=10_000).map_blocks(slowly) for n, a in data.items()}
        values.update(w=0.5, b=0.0)
        ev = calculus.evaluate(parse(LOSS), values, wrt=["w", "b"])
        futures = client.compute([ev.value[0], ev.grad[0]["w"], ev.grad[0]["b"]])

        def done_tasks(dask_scheduler: Any) -> int:
            return sum(ts.state == "memory" for ts in dask_scheduler.tasks.values())

        deadline = time.monotonic() + 60
        while client.run_on_scheduler(done_tasks) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not all(f.done() for f in futures), "finished before a worker could be killed"
        victim = sorted(client.run(os.getpid).values())[0]
        os.kill(victim, signal.SIGKILL)
        got = client.gather(futures)
        assert victim not in client.run(os.getpid).values()  # the nanny started a new worker
    np.testing.assert_allclose(got, want, rtol=1e-9)
