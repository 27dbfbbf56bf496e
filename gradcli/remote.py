"""A command's graph built on a worker (``--dask``): what the gradcli process sends
(:class:`ClusterJob`), and what the worker does with it (:func:`build_on_worker`), which
:func:`gradcli.scale.on_cluster` runs there.

Imported only for ``--dask``: in the gradcli process to make the job, on a worker to run it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .command import COMMANDS, Request, _suffix, describe, load_program

if TYPE_CHECKING:
    from .render import Output


class ClusterJob:
    """What a worker needs to build a command's graph (``--dask``): plain data, sent to it."""

    __slots__ = (
        "command",
        "module",
        "expr",
        "plugins",
        "values",
        "wrt",
        "settings",
        "style",
        "own",
        "zarr_path",
    )

    def __init__(
        self,
        function: Callable[..., Output | None],
        expr: str,
        req: Request,
        common: Mapping[str, Any],
        own: dict[str, Any],
    ) -> None:
        from .plugins import files_from_env

        # The command by its name, and the module that defines it (imported by the worker).
        self.command = next(name for name, f in COMMANDS.items() if f is function)
        self.module, self.expr, self.own = function.__module__, expr, own
        # Every plugin this process loaded, as (path, source): the worker loads them as they are
        # here, wherever it runs, whatever it loaded before; it reads no environment.
        self.plugins = []
        for path in [*common["plugins"], *files_from_env(os.environ)]:
            with open(path, encoding="utf-8") as f:
                self.plugins.append((path, f.read()))
        self.values, self.wrt, self.settings, self.style = req.values, req.wrt, req.settings, req.style
        path = common["output"]
        local = path is not None and "://" not in path
        self.zarr_path = (os.path.abspath(path) if local else path) if _suffix(path) == ".zarr" else None


def build_on_worker(job: ClusterJob) -> tuple[tuple[str, Any, list[str]], list[Any]]:
    """On a worker (``--dask``): the command's graph, built as this process would build it, and
    the Dask collections to compute. Returns ``(kind, answer, warnings)`` and the collections;
    kind is "answer" (values to fill in: :func:`gradcli.scale.filled`), "written" (to
    ``job.zarr_path``), "none" (nothing to show) or "failed" (the message and exit status of
    the error the user would have seen here)."""
    import importlib

    import dask.array  # noqa: F401  (as it is: a worker's, maybe a cluster others use too)

    from . import scale
    from .engine import limited_nodes
    from .fpe import reporting

    warnings: list[str] = []
    try:
        with _plugins_of(job), limited_nodes(job.settings.max_nodes), reporting(warnings.append):
            program = load_program(job.expr, (), job.settings, env={})
            values = scale.lazy_inputs(job.values)
            req = Request(program, values, job.wrt, job.settings, job.style)
            importlib.import_module(job.module)  # its commands, in COMMANDS
            output = COMMANDS[job.command](req, **job.own)
            if output is None:
                return ("none", None, warnings), []
            if job.zarr_path is not None:
                writes = scale.zarr_writes(job.zarr_path, output.arrays())
                return ("written", scale.without_arrays(output), warnings), writes
            answer, leaves = scale.planned(output, job.settings.max_output)
            return ("answer", answer, warnings), leaves
    except scale.ClusterError as exc:
        return ("failed", (str(exc), exc.status), warnings), []
    except KeyboardInterrupt:  # not a user's Ctrl-C, here: raised, it would end the worker
        return ("failed", ("interrupted on the worker that builds the graph", 1), warnings), []
    except BaseException as exc:  # as translate_errors: a plugin's SystemExit is its failure
        described = describe(exc)
        if described is None:
            raise
        return ("failed", described, warnings), []


# Builds with plugins take turns in a worker's process: each has the names its plugins register
# to itself. The text of each plugin copied to a file by this process, by its SHA-256.
_PLUGIN_BUILDS = threading.Lock()
_COPIES: dict[str, str] = {}


@contextlib.contextmanager
def _plugins_of(job: ClusterJob) -> Iterator[None]:
    """The job's plugins registered for its build, from their text as it was where the command
    was given (a worker runs many jobs, and may have loaded another version of a file, or
    none), and gone again afterwards. A build without plugins needs no turn: the plugins of
    another build that it may see meanwhile have names its expression does not use (they were
    checked where it was given)."""
    if not job.plugins:
        yield
        return
    from .functions.registry import REGISTRY
    from .plugins import PluginError, load_plugin_file

    with _turn(_PLUGIN_BUILDS):
        before = dict(REGISTRY)
        try:
            for path, source in job.plugins:
                copy = _copy_of(path, source)
                try:
                    load_plugin_file(copy)
                except PluginError as exc:  # in the words of the file the user named
                    raise PluginError(str(exc).replace(copy, path)) from None
            yield
        finally:  # what the build added goes (never a built-in function, even for a moment)
            for name in [n for n in REGISTRY if n not in before]:
                del REGISTRY[name]


@contextlib.contextmanager
def _turn(lock: Any) -> Iterator[None]:
    """``lock`` held in the block. On a worker, a build that waits for it gives up its thread
    meanwhile (``distributed.secede``), so that the build holding it, which may compute on the
    cluster (``check``), can have its tasks run."""
    if not lock.acquire(blocking=False):
        import distributed

        try:
            distributed.secede()
            seceded = True
        except Exception:  # not a worker's task
            seceded = False
        lock.acquire()
        if seceded:
            try:
                distributed.rejoin()
            except BaseException:
                lock.release()
                raise
    try:
        yield
    finally:
        lock.release()


def _copy_of(path: str, source: str) -> str:
    """A file holding ``source`` (the plugin at ``path``), written by this process into a folder
    only it uses and named by the text's SHA-256: another version of the file is another file,
    and so another module."""
    import hashlib

    data = source.encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(data).hexdigest()
    copy = _COPIES.get(digest)
    if copy is None or not os.path.exists(copy):
        folder = os.path.join(_private_folder(), digest[:32])
        os.makedirs(folder, mode=0o700, exist_ok=True)
        copy = os.path.join(folder, os.path.basename(path))
        with open(copy, "wb") as f:
            f.write(data)
        _COPIES[digest] = copy
    return copy


@functools.cache
def _private_folder() -> str:
    """A folder of this process's own (the worker's local directory, which distributed removes
    with the worker, else a new temporary folder)."""
    try:
        import distributed

        return os.path.join(distributed.get_worker().local_directory, "gradcli-plugins")
    except Exception:  # not a worker
        import tempfile

        return tempfile.mkdtemp(prefix="gradcli-plugins-")
