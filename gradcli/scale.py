"""Past one machine: Zarr stores read as Dask arrays, a Dask cluster to compute on, and results
computed there, then printed (small ones) or written to a Zarr store (any size).

The engine builds the whole computation, value and every derivative, as one lazy Dask graph
(see :mod:`gradcli.backend`); nothing is computed until :func:`finish` hands the graph to the
scheduler in one piece, so work that the value and the gradients share is done once. Array
results are never pulled whole into this process unless they are printed, and a printed result
is held to ``--max-output`` numbers: larger ones go to ``-o out.zarr``, written by the workers.

This module is imported only for a Zarr input, ``--dask`` or ``-o *.zarr``: an evaluation on
numbers and NumPy files loads none of Dask, distributed or Zarr.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .backend import is_lazy
from .inputs import InputError

__all__ = ["ClusterError", "address_of", "cluster", "finish", "lazy_inputs", "read_zarr", "write_zarr"]

# How long to wait for an existing scheduler (--dask tcp://host:8786) before giving up.
CONNECT_TIMEOUT = "10s"


class ClusterError(RuntimeError):
    """The Dask cluster could not be started, reached, or finish the computation; or a result is
    too large to bring into this process. ``status``: the exit status (1, or 2 for a request to
    change)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# --- inputs ---------------------------------------------------------------------------------------


def read_zarr(store: str, member: str | None, name: str) -> Any:
    """The array of ``store`` (a path or URL ending in .zarr; ``member`` names an array of a
    group) as a Dask array in the store's own chunks, read when computed."""
    import dask.array as da
    import zarr

    source = f"variable {name!r} from {store!r}"
    try:
        node = zarr.open(store, mode="r")
    except FileNotFoundError:
        raise InputError(f"{source}: no such Zarr store") from None
    except Exception as exc:  # zarr's errors for what is not a store have no common base
        raise InputError(f"{source}: not a Zarr store ({exc})") from None
    if isinstance(node, zarr.Group):
        names = sorted(node.array_keys())
        if member is None:
            if len(names) != 1:
                listed = ", ".join(names) or "none"
                raise InputError(f"{source}: the store holds several arrays ({listed}): give {store}:NAME")
            member = names[0]
        try:
            node = node[member]
        except KeyError:
            listed = ", ".join(names) or "none"
            raise InputError(f"{source}: no array {member!r} (arrays: {listed})") from None
        if isinstance(node, zarr.Group):
            raise InputError(f"{source}: {member!r} is a group, not an array")
    elif member is not None:
        raise InputError(f"{source}: the store is one array; ':{member}' names an array of a group")
    if np.dtype(node.dtype).kind not in "biuf":
        raise InputError(f"{source}: expected numbers, got an array of {node.dtype}")
    return da.from_zarr(node)


def lazy_inputs(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` for a run on Dask: arrays as Dask arrays (in chunks Dask chooses), numbers as
    they are (they mix with Dask arrays as constants)."""
    import dask.array as da

    return {n: v if is_lazy(v) or np.ndim(v) == 0 else da.from_array(v) for n, v in values.items()}


# --- the cluster ----------------------------------------------------------------------------------


@contextlib.contextmanager
def cluster(address: str | None) -> Iterator[Any]:
    """A ``distributed.Client`` that Dask computes with inside the block: of a ``LocalCluster``
    sized to this machine (address None), or of the scheduler at ``address``
    (``tcp://host:8786``).

    The local cluster's workers share the memory budget (``--max-memory``): Dask keeps each one
    under its share, spilling to disk and pausing before the kernel would end it.
    """
    import distributed

    from .budget import room

    # distributed reports each step of starting and stopping; gradcli's stderr is for errors.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    try:
        if address is None:
            workers, threads = distributed.deploy.utils.nprocesses_nthreads()
            left = room()
            memory = "auto" if left is None else max(left // workers, 1 << 28)
            local = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=threads, memory_limit=memory, dashboard_address=None
            )
            client = distributed.Client(local)
        else:
            local = None
            client = distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        where = "start a local Dask cluster" if address is None else f"reach the Dask scheduler at {address}"
        raise ClusterError(f"cannot {where}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
        if local is not None:
            local.close()


# --- results --------------------------------------------------------------------------------------


def _lazy_leaves(tree: Any) -> list[Any]:
    stack, found = [tree], []
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif is_lazy(item):
            found.append(item)
    return found


def _computing(collections: list[Any]) -> Any:
    """``dask.compute(*collections)`` with Dask's progress bar on stderr when it is a terminal,
    and its failures as :class:`ClusterError` (those of the numbers as they are)."""
    import dask

    try:
        client = _client()
        if client is None:
            with _local_progress():
                return dask.compute(*collections)
        futures = client.compute(list(collections))
        if sys.stderr.isatty():
            from distributed.diagnostics.progressbar import progress

            with contextlib.redirect_stdout(sys.stderr):  # its text bar writes to stdout
                progress(futures)
        return client.gather(futures)
    except (ValueError, ArithmeticError, TypeError, IndexError, MemoryError):
        raise
    except Exception as exc:
        import distributed

        if isinstance(exc, (distributed.client.FutureCancelledError, OSError, TimeoutError)) or (
            type(exc).__name__ == "KilledWorker"
        ):
            raise ClusterError(f"the Dask computation failed: {exc}") from None
        raise


def _client() -> Any:
    if "distributed" not in sys.modules:
        return None
    import distributed

    try:
        return distributed.get_client()
    except ValueError:  # no client: Dask's own scheduler in this process
        return None


@contextlib.contextmanager
def _local_progress() -> Iterator[None]:
    if not sys.stderr.isatty():
        yield
        return
    from dask.diagnostics import ProgressBar

    with ProgressBar(out=sys.stderr):
        yield


def finish(output: Any, limit: int) -> Any:
    """``output`` (a command's answer) with every Dask array in it computed, all in one
    computation. A result of more than ``limit`` numbers is refused before the work: it belongs
    in a Zarr store (``-o out.zarr``), not in this process."""
    leaves = _lazy_leaves(vars(output))
    count = sum(int(np.prod(a.shape)) for a in leaves)
    if count > limit:
        raise ClusterError(
            f"the result has {count:,} numbers, more than --max-output {limit:,} to bring into this "
            "process: write it with -o out.zarr (computed and stored by the workers), or narrow it "
            "with --wrt",
            2,
        )
    computed = dict(zip(map(id, leaves), _computing(leaves)))
    for key, value in vars(output).items():
        setattr(output, key, _replaced(value, computed))
    return output


def _replaced(item: Any, computed: dict[int, Any]) -> Any:
    """``item`` (an answer's attribute: arrays, and lists and dicts of them, a few levels deep)
    with each Dask array replaced by its computed value."""
    if isinstance(item, Mapping):
        return {k: _replaced(v, computed) for k, v in item.items()}
    if isinstance(item, (list, tuple)):
        return type(item)(_replaced(v, computed) for v in item)
    return computed.get(id(item), item)


def write_zarr(path: str, arrays: Mapping[str, Any]) -> None:
    """Write ``arrays`` (names like ``value`` and ``grad/x``: groups within the store) to a new
    Zarr store at ``path``, computed and written by the workers in one computation."""
    import dask.array as da
    import zarr

    try:
        root = zarr.open_group(path, mode="w")
    except (OSError, ValueError) as exc:
        raise ClusterError(f"cannot write {path}: {exc}") from None
    writes = []
    for name, a in arrays.items():
        lazy = a if is_lazy(a) else da.from_array(np.asarray(a, dtype=np.float64))
        # Blocks of one size (the largest), so that each is one chunk of the store and no two
        # workers write into the same chunk.
        chunks = tuple(max(max(c, default=1), 1) for c in lazy.chunks)
        lazy = lazy.rechunk(chunks).astype(np.float64)
        target = root.create_array(name, shape=lazy.shape, dtype=np.float64, chunks=chunks)
        writes.append(da.store(lazy, target, lock=False, compute=False))  # type: ignore[arg-type]
    _computing(writes)


def address_of(option: str) -> str | None:
    """``--dask``'s value as a scheduler address: None for a local cluster."""
    return None if option in ("", "local") else option
