"""Past one machine: Zarr stores read as Dask arrays, a Dask cluster to compute on, and results
computed there, then printed (small ones) or written to a Zarr store (any size).

The engine builds the whole computation, value and every derivative, as one lazy Dask graph
(see :mod:`gradcli.backend`); nothing is computed until :func:`finish` hands the graph to the
scheduler in one piece, so work that the value and the gradients share is done once. On a
cluster (``--dask``) a worker builds the graph and hands it over (:func:`on_cluster`): the
gradcli process is a client, holding neither the graph nor the modules that make one. Array
results are never pulled whole into this process unless they are printed, and a printed result
is held to ``--max-output`` numbers: larger ones go to ``-o out.zarr``, written by the workers.

This module is imported only for a Zarr input, ``--dask`` or ``-o *.zarr``: an evaluation on
numbers and NumPy files loads none of Dask, distributed or Zarr.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import logging
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .backend import is_lazy
from .failures import one_line
from .inputs import InputError

__all__ = [
    "ClusterError",
    "ZarrInput",
    "address_of",
    "cluster",
    "filled",
    "finish",
    "for_a_cluster",
    "lazy_inputs",
    "on_cluster",
    "planned",
    "read_zarr",
    "without_arrays",
    "write_zarr",
    "zarr_value",
    "zarr_writes",
]

# How long to wait for an existing scheduler (--dask tcp://host:8786) before giving up.
CONNECT_TIMEOUT = "10s"
# Seconds for the local cluster to start (its workers are processes: about 2 s), and to stop.
CLUSTER_START_TIMEOUT = 120
CLUSTER_STOP_TIMEOUT = 30


class ClusterError(RuntimeError):
    """The Dask cluster could not be started, reached, or finish the computation; or a result is
    too large to bring into this process. ``status``: the exit status (1, or 2 for a request to
    change)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# --- inputs ---------------------------------------------------------------------------------------


# What dask.array and distributed import when they can and gradcli never uses, with the resident
# memory each costs: SciPy (``scipy.sparse`` to recognise sparse blocks, and ``scipy.fftpack``
# for dask.array's FFT wrappers; 25 MiB), jinja2 (the HTML templates of notebook reprs,
# ``dask.widgets``, which stands in a message where it is missing; 1.7 MiB) and curses (tornado's
# coloured log lines on a terminal; distributed writes its own, and gradcli silences them; 0.5 MiB).
_LEFT_OUT = ("scipy", "jinja2", "curses")


def _imported(name: str) -> Any:
    """The module ``name`` (``dask.array``, ``distributed``), imported without SciPy, jinja2 and
    curses unless they are loaded already.

    gradcli uses none of them: its special functions import SciPy themselves when an expression
    names one, and its output is text. Only this import goes without them (they import as usual
    afterwards), only where ``name`` is not loaded yet (in a program that loaded it, nothing
    changes), and the workers import both as they are.
    """
    if name not in sys.modules:
        left_out = [m for m in _LEFT_OUT if m not in sys.modules]
        for m in left_out:
            sys.modules[m] = None  # type: ignore[assignment]  # import fails, for now
        try:
            importlib.import_module(name)
        finally:
            for m in left_out:
                del sys.modules[m]
    return importlib.import_module(name)


def dask_array() -> Any:
    """``dask.array``, imported as :func:`_imported` says."""
    return _imported("dask.array")


def read_zarr(store: str, member: str | None, name: str) -> Any:
    """The array of ``store`` (a path or URL ending in .zarr; ``member`` names an array of a
    group) as a Dask array in blocks of whole chunks of the store (:func:`_blocks`), read when
    computed.

    A store of the usual kinds (Zarr v2 or v3 metadata, a regular chunk grid, numbers) is
    described from its metadata alone and read by zarr where each block is computed: on the
    workers, with ``--dask``, so that the process that builds the graph neither imports zarr nor
    needs to see the store. Anything else, and every error, goes through zarr here.
    """
    return _as_dask(_described(store, member), store, member, name)


def _as_dask(described: ZarrBlocks | None, store: str, member: str | None, name: str) -> Any:
    """:func:`read_zarr`'s Dask array, from the store's description where it has one (then
    nothing is read here), else through zarr."""
    if described is None:  # a store of another kind: zarr opens it here
        opened = _opened(store, member, name)
        shape, dtype, chunks = opened.shape, np.dtype(opened.dtype), opened.chunks
        described = ZarrBlocks(store, opened.path, shape, dtype, chunks, opened)
    described.source = _source(store, name)
    if min(described.chunks, default=1) < 1:
        listed = ", ".join(str(c) for c in described.chunks)
        raise InputError(
            f"{described.source}: not a Zarr array (its chunks are [{listed}]: each axis needs 1 or more)"
        )
    token = f"from-zarr-{described.token()}"
    meta = np.empty((0,) * len(described.shape), dtype=described.dtype)
    chunks = _blocks(described.shape, described.dtype, described.chunks)
    return dask_array().from_array(described, chunks=chunks, name=token, meta=meta)


def _source(store: str, name: str) -> str:
    """How messages name a Zarr input."""
    return f"variable {name!r} from {store!r}"


# What a Dask block of a Zarr input's smaller chunks holds at most (8 MiB). A store of tiny
# chunks (one number each: 100,000 of them in 8 KB on disk) once made a task per chunk, and took
# 72 s for sum(x).
MERGED_BLOCK_BYTES = 1 << 23


def _blocks(shape: tuple[int, ...], dtype: Any, chunks: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of Dask's blocks for a store's ``chunks``: the chunks themselves, or, where a
    chunk holds less than :data:`MERGED_BLOCK_BYTES`, as many whole chunks as fit in that (each
    block reads whole chunks, none twice): along the last axis first, whose chunks lie next to
    each other in C order, then the one before it once a block spans the whole last axis.

    Worked out from the chunk shape alone: Dask's ``normalize_chunks("auto", previous_chunks=...)``
    lists every chunk, and took 28 s for a store of 10^8 of them."""
    itemsize = np.dtype(dtype).itemsize
    block = list(chunks)
    for axis in reversed(range(len(shape))):
        size = math.prod(block) * itemsize
        along = -(-shape[axis] // chunks[axis]) if chunks[axis] else 1  # chunks along the axis
        fit = MERGED_BLOCK_BYTES // size if size else along
        if fit <= 1:
            break
        block[axis] = min(shape[axis], chunks[axis] * min(fit, along))
        if fit < along:
            break
    return tuple(block)


def zarr_value(store: str, member: str | None, name: str) -> Any:
    """A Zarr input's value: a Dask array (:func:`read_zarr`), or inside :func:`for_a_cluster`
    the input checked and described (:class:`ZarrInput`) for the worker that builds the graph."""
    if not _for_a_cluster.get():
        return read_zarr(store, member, name)
    described = _described(store, member)
    if described is None:
        _opened(store, member, name)  # zarr's own checks, and their messages, here
    # A store on this machine by its absolute path: the workers run elsewhere.
    return ZarrInput(store if "://" in store else os.path.abspath(store), member, name, described)


_for_a_cluster: contextvars.ContextVar[bool] = contextvars.ContextVar("gradcli_for_a_cluster", default=False)


@contextlib.contextmanager
def for_a_cluster() -> Iterator[None]:
    """Inside the block, Zarr inputs are read as :class:`ZarrInput`: the run is on a cluster."""
    token = _for_a_cluster.set(True)
    try:
        yield
    finally:
        _for_a_cluster.reset(token)


class ZarrInput:
    """A Zarr input of a run on a cluster, checked where the command line was given and made a
    Dask array on the worker that builds the graph (:func:`on_cluster`): from the description
    of its metadata read there (``described``), or where it has none, through zarr."""

    __slots__ = ("store", "member", "name", "described")

    def __init__(self, store: str, member: str | None, name: str, described: ZarrBlocks | None) -> None:
        self.store, self.member, self.name, self.described = store, member, name, described

    def __repr__(self) -> str:
        return f"ZarrInput({self.store!r}, {self.member!r}, {self.name!r})"


def _opened(store: str, member: str | None, name: str) -> Any:
    """The zarr array ``member`` of ``store`` (or its only array), opened by zarr; each way it
    is not one, an :class:`InputError` that says so."""
    import zarr

    source = _source(store, name)
    try:
        node = zarr.open(store, mode="r")
    except FileNotFoundError:
        raise InputError(f"{source}: no such Zarr store") from None
    except Exception as exc:  # zarr's errors for what is not a store have no common base
        raise InputError(f"{source}: not a Zarr store ({exc})") from None
    if isinstance(node, zarr.Group):
        try:
            names = sorted(node.array_keys())
        except Exception as exc:  # a member's metadata unreadable
            raise InputError(f"{source}: cannot read the store's arrays ({one_line(exc)})") from None
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
        except Exception as exc:  # its metadata unreadable (zarr's errors have no common base)
            raise InputError(f"{source}: not a Zarr array ({one_line(exc)})") from None
        if isinstance(node, zarr.Group):
            raise InputError(f"{source}: {member!r} is a group, not an array")
    elif member is not None:
        raise InputError(f"{source}: the store is one array; ':{member}' names an array of a group")
    if np.dtype(node.dtype).kind not in "biuf":
        raise InputError(f"{source}: expected numbers, got an array of {node.dtype}")
    return node


class ZarrBlocks:
    """One array of a Zarr store as Dask's ``from_array`` sees it: its shape, dtype and chunks
    from the store's metadata (or from ``array``, the array zarr opened), and blocks read by zarr
    in the process that computes them (opened there once; a copy sent to another process opens it
    anew). What zarr cannot read (a chunk cut short or corrupt, metadata that is not what it
    says) is an error in the user's data, naming it, with zarr's reason (status 2; once an
    internal error in a codec's words)."""

    def __init__(
        self,
        store: str,
        path: str,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        chunks: tuple[int, ...],
        array: Any = None,
    ) -> None:
        self.store, self.path = store, path
        self.shape, self.dtype, self.chunks = shape, dtype, chunks
        self.ndim = len(shape)
        self.source = f"{store!r}"  # (how messages name it: the variable's name, once known)
        self._array: Any = array

    def token(self) -> str:
        from dask.base import tokenize

        return str(tokenize(self.store, self.path, self.shape, str(self.dtype), self.chunks))

    def __getitem__(self, key: Any) -> Any:
        try:
            if self._array is None:
                import zarr

                self._array = zarr.open_array(self.store, path=self.path, mode="r")
            return self._array[key]
        except MemoryError:
            raise
        except Exception as exc:  # zarr's and its codecs' errors have no common base
            raise InputError(f"{self.source}: cannot read the data ({one_line(exc)})") from None

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
    """``values`` for a run on Dask: Zarr inputs (:class:`ZarrInput`) read, arrays as Dask arrays
    (in chunks Dask chooses), numbers as they are (they mix with Dask arrays as constants)."""
    da = dask_array()

    def lazy(v: Any) -> Any:
        if isinstance(v, ZarrInput):
            return _as_dask(v.described, v.store, v.member, v.name)
        return v if is_lazy(v) or np.ndim(v) == 0 else da.from_array(v)

    return {n: lazy(v) for n, v in values.items()}


# --- the cluster ----------------------------------------------------------------------------------


@contextlib.contextmanager
def cluster(address: str | None) -> Iterator[Any]:
    """A ``distributed.Client`` of a ``LocalCluster`` sized to this machine (address None), or of
    the scheduler at ``address`` (``tcp://host:8786``).

    The local cluster runs in a process of its own (:mod:`gradcli._cluster`), scheduler and
    workers, and ends when this process closes its standard input, or ends however it ends. So
    this process holds neither the scheduler's copy of the graph nor what the scheduler imports
    to read it (dask.array): with :func:`on_cluster` building the graph on a worker, it is a
    client and nothing more. The workers share the memory budget (``--max-memory``): Dask keeps
    each one under its share, spilling to disk and pausing before the kernel would end it.
    """
    helper = _LocalCluster() if address is None else None
    try:
        distributed = _imported("distributed")
        with _quiet():
            if helper is not None:
                address = helper.address()
            assert address is not None
            local = helper is not None
            where = "start a local Dask cluster" if local else f"reach the Dask scheduler at {address}"
            try:
                client = distributed.Client(address, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ClusterError(f"cannot {where}: {one_line(exc)}") from None
            try:
                try:  # (a scheduler of its own has its workers before it says its address)
                    client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
                except (OSError, TimeoutError) as exc:
                    raise ClusterError(f"the Dask scheduler at {address} has no workers ({exc})") from None
                yield client
            finally:
                client.close()
    finally:
        if helper is not None:
            helper.stop()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """distributed's logs and warnings kept off gradcli's stderr, which is for gradcli's errors:
    the steps of connecting and closing, the tracebacks of a lost connection, the asyncio tasks
    that a Ctrl-C leaves unfinished, the size of a graph."""
    import warnings

    # Every logger of theirs, each of which may have a level and a handler of its own
    # (``distributed.client`` has both), as they are once distributed is imported.
    theirs = ("distributed", "asyncio", "tornado")
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in theirs]
    loggers = [logging.getLogger(name) for name in {*theirs, *names}]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="distributed")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class _LocalCluster:
    """The process of the local cluster, ``python -m gradcli._cluster``: its standard error goes
    to a file of its own, read only for the reason it could not start."""

    def __init__(self) -> None:
        import tempfile

        from .budget import room

        left = room()
        command = [sys.executable, "-m", "gradcli._cluster", "auto" if left is None else str(left)]
        self.errors = tempfile.TemporaryFile(mode="w+")
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, text=True
            )
        except OSError as exc:
            self.errors.close()
            raise ClusterError(f"cannot start a local Dask cluster: {exc}") from None

    def address(self) -> str:
        """The scheduler's address, the first line the process writes (or why it could not
        start: its ``error: ...`` line, the last line of its standard error, or the time out)."""
        import select

        out = self.process.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], CLUSTER_START_TIMEOUT)
        line = out.readline().strip() if ready else ""
        if line and not line.startswith("error: "):
            return line
        if not ready:
            why = f"no scheduler after {CLUSTER_START_TIMEOUT} s"
        elif line:
            why = line.removeprefix("error: ")
        else:  # it ended without a word on its standard output
            status = self.process.wait()
            self.errors.seek(0)
            written = [text.strip() for text in self.errors.read().splitlines() if text.strip()]
            why = written[-1] if written else f"it ended with status {status}"
        raise ClusterError(f"cannot start a local Dask cluster: {why}")

    def stop(self) -> None:
        """Close its standard input: it stops its workers and ends (or is killed after a while)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.close()
            self.process.wait(CLUSTER_STOP_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            self.process.stdout.close()
            self.errors.close()


def on_cluster(client: Any, build: Callable[[Any], tuple[Any, list[Any]]], job: Any) -> tuple[Any, list[Any]]:
    """``build(job)`` run on a worker of ``client``'s cluster (:func:`cluster`), then what it asks
    for computed on the cluster: ``build`` returns an answer and a list of Dask collections;
    this returns the answer and the collections' computed values, in one computation.

    The worker builds the graph and hands it to the scheduler, and the futures of its results
    come here (a published dataset, taken and unpublished at once), so the progress bar and the
    results are this process's, the graph never is. ``build`` is a module-level function (sent
    by reference), ``job`` plain data; an exception ``build`` raises is raised here. Stopped
    before it took the futures (Ctrl-C, an error), it cancels the worker's task and the dataset,
    so that nothing is left on the cluster.
    """
    import uuid

    name = f"gradcli-{uuid.uuid4().hex}"
    driver, taken = None, False
    try:
        driver = client.submit(_drive, build, job, name, pure=False, key=f"{name}-driver")
        answer, published = driver.result()
        futures = client.get_dataset(name) if published else []
        if published:
            client.unpublish_dataset(name)
        taken = True
        # Let go of the driver's task: a worker lost now would otherwise run it again (the
        # scheduler keeps what a client holds), building and publishing a second time.
        driver.release()
        driver = None
        return answer, _gathered(client, futures) if futures else []
    except BaseException as exc:
        raise _cluster_error(exc) from None
    finally:
        if not taken and client.status == "running":
            with contextlib.suppress(Exception):
                if driver is not None:
                    driver.cancel()
                client.unpublish_dataset(name)


def _drive(build: Callable[[Any], tuple[Any, list[Any]]], job: Any, name: str) -> tuple[Any, bool]:
    """On a worker: ``build(job)``, and its collections handed to the scheduler as futures
    published under ``name`` (they outlive this task; the client takes them from there), once
    the scheduler has them. Published, then taken back if this task is no longer wanted (its
    client cancelled it, or went): the scheduler handles the client's withdrawal and this
    check in some order, and either way one of them unpublishes."""
    import distributed

    answer, collections = build(job)
    if not collections:
        return answer, False
    client = distributed.get_client()
    futures = client.compute(list(collections))
    _taken_by_the_scheduler(client, futures)
    client.publish_dataset(futures, name=name, override=True)
    if not _still_wanted(client):
        with contextlib.suppress(Exception):
            client.unpublish_dataset(name)
    return answer, True


def _taken_by_the_scheduler(client: Any, futures: list[Any]) -> None:
    """Return once the scheduler holds every future's task (whatever becomes of them: a task's
    own failure comes back when the results are gathered). Raise :class:`ClusterError` where it
    could not read the graph: then it holds none of them and has marked the futures failed,
    which would otherwise leave them waiting for ever."""
    import time

    keys, pause = [f.key for f in futures], 0.005
    while True:
        states = client.sync(client.scheduler.get_task_status, keys=keys)
        if all(state is not None for state in states.values()):
            return
        for f in futures:
            if f.status == "error" and states.get(f.key) is None:
                raise ClusterError(
                    f"the Dask scheduler could not read the graph ({one_line(f.exception())}): "
                    "its process needs gradcli[dask] installed, and the graph cannot hold a "
                    "plugin's own Python functions"
                )
        time.sleep(pause)
        pause = min(2 * pause, 0.2)


def _still_wanted(client: Any) -> bool:
    """Whether the scheduler still runs the task of this worker thread for a client (it was not
    cancelled, and its client did not go)."""
    import distributed

    try:
        key = distributed.get_worker().get_current_task()
    except (AttributeError, ValueError):  # not a worker's task
        return True
    state = client.sync(client.scheduler.get_task_status, keys=[key]).get(key)
    return state == "processing"


def _gathered(client: Any, futures: list[Any]) -> list[Any]:
    if sys.stderr.isatty():
        from distributed.diagnostics.progressbar import progress

        with contextlib.redirect_stdout(sys.stderr):  # its text bar writes to stdout
            progress(futures)
    return list(client.gather(futures))


def _cluster_error(exc: BaseException) -> BaseException:
    """``exc`` as it is when it is about the numbers, else, for the ways a cluster fails (a
    worker lost too often, a connection, a timeout), a :class:`ClusterError`."""
    if isinstance(exc, (ValueError, ArithmeticError, TypeError, IndexError, MemoryError)):
        return exc
    if "distributed" not in sys.modules:  # Dask's own scheduler in this process
        return exc
    import distributed

    if isinstance(exc, (distributed.client.FutureCancelledError, OSError, TimeoutError)) or (
        type(exc).__name__ == "KilledWorker"
    ):
        return ClusterError(f"the Dask computation failed: {one_line(exc)}")
    return exc


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
        return _gathered(client, client.compute(list(collections)))
    except Exception as exc:
        raise _cluster_error(exc) from None


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
    answer, leaves = planned(output, limit)
    return filled(answer, _computing(leaves))


def planned(output: Any, limit: int) -> tuple[Any, list[Any]]:
    """``output`` with each Dask array in it replaced by the place of its value (for
    :func:`filled`), and the Dask arrays; refused past ``limit`` numbers, as :func:`finish`."""
    leaves = _lazy_leaves(vars(output))
    count = sum(int(np.prod(a.shape)) for a in leaves)
    if count > limit:
        raise ClusterError(
            f"the result has {count:,} numbers, more than --max-output {limit:,} to bring into this "
            "process: write it with -o out.zarr (computed and stored by the workers), or narrow it "
            "with --wrt",
            2,
        )
    places = {id(a): _Place(i) for i, a in enumerate(leaves)}
    for key, value in vars(output).items():
        setattr(output, key, _replaced(value, lambda a: places.get(id(a), a)))
    return output, leaves


def filled(answer: Any, values: Sequence[Any]) -> Any:
    """A :func:`planned` answer with the computed ``values`` in their places."""
    for key, value in vars(answer).items():
        setattr(answer, key, _replaced(value, lambda a: values[a.index] if isinstance(a, _Place) else a))
    return answer


class _Place:
    """Where the computed value of a Dask array goes in a :func:`planned` answer."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _replaced(item: Any, replace: Callable[[Any], Any]) -> Any:
    """``item`` (an answer's attribute: arrays, and lists and dicts of them, a few levels deep)
    with ``replace`` applied to each thing that is not a list or dict."""
    if isinstance(item, Mapping):
        return {k: _replaced(v, replace) for k, v in item.items()}
    if isinstance(item, (list, tuple)):
        return type(item)(_replaced(v, replace) for v in item)
    return replace(item)


def write_zarr(path: str, arrays: Mapping[str, Any]) -> None:
    """Write ``arrays`` (names like ``value`` and ``grad/x``: groups within the store) to a new
    Zarr store at ``path``, computed and written by the workers in one computation."""
    _computing(zarr_writes(path, arrays))


def zarr_writes(path: str, arrays: Mapping[str, Any]) -> list[Any]:
    """The new Zarr store at ``path``, its arrays created, and the Dask collections that write
    ``arrays`` into it when computed (:func:`write_zarr`)."""
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
    return writes


def without_arrays(output: Any) -> Any:
    """``output`` with each Dask array in it left out (None): what is left to send elsewhere once
    they are written (its error and whether it failed)."""
    for key, value in vars(output).items():
        setattr(output, key, _replaced(value, lambda a: None if is_lazy(a) else a))
    return output


def address_of(option: str) -> str | None:
    """``--dask``'s value as a scheduler address: None for a local cluster."""
    return None if option in ("", "local") else option
