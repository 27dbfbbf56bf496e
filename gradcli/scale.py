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
import os
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


# What dask.array imports when it can and a client that only builds a graph never uses, with the
# resident memory each costs there: SciPy (``scipy.sparse`` to recognise sparse blocks, and
# ``scipy.fftpack`` for its FFT wrappers; 25 MiB) and jinja2 (the HTML templates of notebook
# reprs, ``dask.widgets``, which stands in a message where it is missing; 1.7 MiB).
_LEFT_OUT = ("scipy", "jinja2")


def dask_array() -> Any:
    """``dask.array``, imported without SciPy and jinja2 unless they are loaded already.

    Of the client of a cluster's memory, they would be about 27 MiB of 100 held for nothing.
    gradcli uses neither: its special functions import SciPy themselves when an expression names
    one, and its output is text. Only this import goes without them (the modules import as usual
    afterwards), only where dask.array is not loaded yet (in a program that loaded it, nothing
    changes), and the workers import dask.array as it is.
    """
    if "dask.array" not in sys.modules:
        left_out = [name for name in _LEFT_OUT if name not in sys.modules]
        for name in left_out:
            sys.modules[name] = None  # type: ignore[assignment]  # import fails, for now
        try:
            import dask.array
        finally:
            for name in left_out:
                del sys.modules[name]
    import dask.array

    return dask.array


def read_zarr(store: str, member: str | None, name: str) -> Any:
    """The array of ``store`` (a path or URL ending in .zarr; ``member`` names an array of a
    group) as a Dask array in the store's own chunks, read when computed.

    A store of the usual kinds (Zarr v2 or v3 metadata, a regular chunk grid, numbers) is
    described from its metadata alone and read by zarr where each block is computed: on the
    workers, with ``--dask``, so that the client neither imports zarr (a tenth of its memory)
    nor needs to see the store. Anything else, and every error, goes through zarr here.
    """
    da = dask_array()
    described = _described(store, member)
    if described is not None:
        token = f"from-zarr-{described.token()}"
        meta = np.empty((0,) * len(described.shape), dtype=described.dtype)
        return da.from_array(described, chunks=described.chunks, name=token, meta=meta)
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


class ZarrBlocks:
    """One array of a Zarr store as Dask's ``from_array`` sees it: its shape, dtype and chunks
    from the store's metadata, and blocks read by zarr in the process that computes them (opened
    there once; a copy sent to another process opens it anew)."""

    def __init__(
        self, store: str, path: str, shape: tuple[int, ...], dtype: np.dtype[Any], chunks: tuple[int, ...]
    ) -> None:
        self.store, self.path = store, path
        self.shape, self.dtype, self.chunks = shape, dtype, chunks
        self.ndim = len(shape)
        self._array: Any = None

    def token(self) -> str:
        from dask.base import tokenize

        return str(tokenize(self.store, self.path, self.shape, str(self.dtype), self.chunks))

    def __getitem__(self, key: Any) -> Any:
        if self._array is None:
            import zarr

            self._array = zarr.open_array(self.store, path=self.path, mode="r")
        return self._array[key]

    def __getstate__(self) -> dict[str, Any]:
        return {**vars(self), "_array": None}


def _described(store: str, member: str | None) -> ZarrBlocks | None:
    """The array ``member`` of ``store`` (or its only array) from the metadata alone, or None
    where the store is of another kind or cannot be read that way (zarr then says why)."""
    import json

    local = "://" not in store
    try:
        if local:  # read here without fsspec (a megabyte of the client's memory)
            fs: Any = _LocalFiles
            root = os.path.abspath(os.path.expanduser(store)).rstrip("/")
        else:
            from fsspec.core import url_to_fs
            from fsspec.implementations.local import LocalFileSystem

            fs, root = url_to_fs(store)
            root = root.rstrip("/")
            local = isinstance(fs, LocalFileSystem)  # (file://...)

        def metadata(path: str) -> dict[str, Any] | None:
            for name in ("zarr.json", ".zarray", ".zgroup"):
                try:
                    found = json.loads(fs.cat_file(f"{path}/{name}" if path else name))
                except OSError:  # not there, or a file where a folder would be
                    continue
                if name == ".zarray":
                    found["node_type"] = "array"
                elif name == ".zgroup":
                    found["node_type"] = "group"
                return found if isinstance(found, dict) else None
            return None

        node = metadata(root)
        path = ""
        if node is not None and node.get("node_type") == "group":
            if member is None:  # its only array, as zarr's array_keys() would list it
                children = [c.rstrip("/").rsplit("/", 1)[-1] for c in fs.ls(root, detail=False)]
                arrays = [c for c in children if (metadata(f"{root}/{c}") or {}).get("node_type") == "array"]
                if len(arrays) != 1:
                    return None
                path = arrays[0]
            else:
                path = member.strip("/")
            node = metadata(f"{root}/{path}")
        elif member is not None:
            return None
        if node is None or node.get("node_type") != "array":
            return None
        shape = tuple(int(n) for n in node["shape"])
        chunks = _chunk_shape(node)
        dtype = np.dtype(node["data_type"] if "data_type" in node else node["dtype"])
    except Exception:  # metadata of another kind, or unreadable: zarr has the last word
        return None
    if chunks is None or len(chunks) != len(shape) or dtype.kind not in "biuf":
        return None
    # A local store by its absolute path, so that worker processes find it wherever they run.
    return ZarrBlocks(root if local else store, path, shape, dtype, chunks)


class _LocalFiles:
    """The two reads :func:`_described` makes of a store, for one on this machine's file system:
    a file's bytes, and a folder's entries (as paths)."""

    @staticmethod
    def cat_file(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    @staticmethod
    def ls(path: str, detail: bool = False) -> list[str]:
        return [os.path.join(path, name) for name in os.listdir(path)]


def _chunk_shape(node: dict[str, Any]) -> tuple[int, ...] | None:
    """The shape of the blocks zarr reads (the inner chunks of a sharded v3 array), or None for
    a chunk grid that is not regular."""
    if "chunks" in node:  # v2
        return tuple(int(n) for n in node["chunks"])
    grid = node["chunk_grid"]
    if grid.get("name") != "regular":
        return None
    shape = grid["configuration"]["chunk_shape"]
    for codec in node.get("codecs", ()):
        if isinstance(codec, dict) and codec.get("name") == "sharding_indexed":
            shape = codec["configuration"]["chunk_shape"]
    return tuple(int(n) for n in shape)


def lazy_inputs(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` for a run on Dask: arrays as Dask arrays (in chunks Dask chooses), numbers as
    they are (they mix with Dask arrays as constants)."""
    da = dask_array()

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
    import zarr

    da = dask_array()
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
        writes.append(da.store(lazy, target, lock=False, compute=False))
    _computing(writes)


def address_of(option: str) -> str | None:
    """``--dask``'s value as a scheduler address: None for a local cluster."""
    return None if option in ("", "local") else option
