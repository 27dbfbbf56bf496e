"""Loading user Functions, only when asked: ``--plugin FILE.py``, ``GRADCLI_PLUGINS`` and entry
points in the group ``gradcli.functions``.

A plugin is a Python file (or an installed module) that registers Functions with
``@gradcli.register("name")``. Nothing is ever imported from the current directory on its own,
and ``importlib.metadata`` is imported only when entry points are actually looked up, so that
``import gradcli`` stays fast. Every failure is a :class:`PluginError` with one line naming the
plugin, never a traceback.
"""

from __future__ import annotations

import _thread
import os
import re
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from .engine import Function
from .functions.registry import REGISTRY, RegistryError, Spec, register

__all__ = ["ENV_VAR", "ENTRY_POINT_GROUP", "PluginError", "failure", "load_plugin_file", "load_plugins"]

ENV_VAR = "GRADCLI_PLUGINS"
ENTRY_POINT_GROUP = "gradcli.functions"


class PluginError(Exception):
    """A plugin could not be loaded; the message is one line meant for the user."""


# Resolved path -> what it registered: loading a file twice is a no-op, as long as what it
# registered is still there (tests restore the registry between cases).
_loaded: dict[str, dict[str, Spec]] = {}
# _thread rather than threading: the same lock, without threading's import cost at startup.
_lock = _thread.RLock()


def _describe(e: BaseException, where: str) -> str:
    from .failures import one_line  # (only on failure, as each use of it here: not at startup)

    if isinstance(e, RegistryError):
        return one_line(e)
    line = ""
    if isinstance(e, SyntaxError) and e.lineno:
        line = f" (line {e.lineno})"
        message = e.msg
    else:
        import traceback  # only on failure: it is not needed to load a plugin that works

        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == where]
        if frames:
            line = f" (line {frames[-1].lineno})"
        message = str(e)
    text = f"{type(e).__name__}: {message}" if message else type(e).__name__
    return one_line(text) + line


def _still_registered(specs: dict[str, Spec]) -> bool:
    return all(REGISTRY.get(name) is spec for name, spec in specs.items())


def _restore(before: dict[str, Spec]) -> None:
    """Undo whatever a failed plugin did to the registry before it failed."""
    for name in [n for n in REGISTRY if n not in before]:
        del REGISTRY[name]
    REGISTRY.update(before)


def load_plugin_file(path: str) -> list[str]:
    """Import the Python file at ``path`` and return the function names it registered.

    The module gets a private name (``gradcli_plugin_<stem>_<hash>``), so it cannot shadow or be
    shadowed by an importable module. Loading the same file again is a no-op. On failure the
    registry is left as it was before the attempt.
    """
    resolved = os.path.realpath(path)
    if not os.path.exists(resolved):
        raise PluginError(f"plugin {path}: no such file")
    if not os.path.isfile(resolved):
        raise PluginError(f"plugin {path}: not a file")
    # Imported here, as the CLI imports this module whether or not a plugin is asked for.
    import importlib.util
    from importlib.machinery import SourceFileLoader

    with _lock:
        if resolved in _loaded and _still_registered(_loaded[resolved]):
            return list(_loaded[resolved])
        stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(resolved))[0])
        # A checksum, not a cryptographic hash: it only keeps two files with one stem apart
        # (hashlib would load OpenSSL).
        import zlib

        digest = f"{zlib.crc32(resolved.encode('utf-8', 'surrogateescape')):08x}"
        module_name = f"gradcli_plugin_{stem}_{digest}"
        loader = SourceFileLoader(module_name, resolved)
        spec = importlib.util.spec_from_file_location(module_name, resolved, loader=loader)
        assert spec is not None  # always, given an explicit loader
        module = importlib.util.module_from_spec(spec)
        before = dict(REGISTRY)
        # In sys.modules while it runs, as a normal import would be (dataclasses, pickling and
        # typing look the module up there).
        sys.modules[module_name] = module
        try:
            loader.exec_module(module)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # SystemExit too: a plugin must not end gradcli, or show a traceback
            sys.modules.pop(module_name, None)
            _restore(before)
            raise PluginError(f"plugin {path}: {_describe(e, resolved)}") from None
        names = [n for n in REGISTRY if n not in before]
        _loaded[resolved] = {n: REGISTRY[n] for n in names}
        return names


def files_from_env(env: Mapping[str, str]) -> list[str]:
    """The plugin files that ``env`` lists (``GRADCLI_PLUGINS``, separated by ``os.pathsep``)."""
    return [p for p in env.get(ENV_VAR, "").split(os.pathsep) if p.strip()]


def _load_entry_point(ep: Any) -> list[str]:
    label = f"plugin entry point {ep.name!r} ({ep.value})"
    before = dict(REGISTRY)
    try:
        obj = ep.load()
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        _restore(before)
        raise PluginError(f"{label}: {_describe(e, '')}") from None
    names = [n for n in REGISTRY if n not in before]
    if isinstance(obj, ModuleType):
        return names
    if isinstance(obj, type) and issubclass(obj, Function):
        if any(spec.cls is obj for spec in REGISTRY.values()):
            return names
        try:
            register(ep.name)(obj)
        except RegistryError as e:
            from .failures import one_line

            raise PluginError(f"{label}: {one_line(e)}") from None
        return [*names, ep.name]
    raise PluginError(f"{label}: expected a module or a gradcli.Function subclass, got {type(obj).__name__}")


def load_plugins(
    files: Sequence[str] = (),
    env: Mapping[str, str] = os.environ,
    entry_points: bool = True,
) -> list[str]:
    """Load the plugins the user asked for and return the function names they registered.

    In order: ``files`` (``--plugin``), the files listed in ``env["GRADCLI_PLUGINS"]``
    (separated by ``os.pathsep``), then, if ``entry_points``, the installed entry points of the
    group ``gradcli.functions`` (each a module that registers, or a Function subclass that is
    registered under the entry point's name).
    """
    names: list[str] = []
    for path in [*files, *files_from_env(env)]:
        names.extend(n for n in load_plugin_file(path) if n not in names)
    if entry_points:
        # Here, not at module level: scanning installed distributions costs startup time.
        from importlib.metadata import entry_points as find_entry_points

        for ep in find_entry_points(group=ENTRY_POINT_GROUP):
            names.extend(n for n in _load_entry_point(ep) if n not in names)
    return names


def failure(exc: BaseException) -> str | None:
    """The message for ``exc`` if a Function outside gradcli (a plugin's) raised it, or a
    Function has no ``backward``/``forward``; None otherwise.

    The traceback tells: the innermost frame of a Function's own method names the function.
    Ctrl-C is never a plugin's failure (it reaches the user as an interrupt).
    """
    if isinstance(exc, KeyboardInterrupt):
        return None
    import traceback

    from .failures import one_line

    base = {Function.forward.__code__: "forward", Function.backward.__code__: "backward"}
    for frame, _ in reversed(list(traceback.walk_tb(exc.__traceback__))):
        owner = frame.f_locals.get("self")
        if not isinstance(owner, Function):
            continue
        if frame.f_code in base and isinstance(exc, NotImplementedError):
            return f"{owner.name} has no {base[frame.f_code]}"
        if type(owner).__module__.partition(".")[0] != "gradcli":
            where = f" in {frame.f_code.co_name}" if frame.f_code.co_name in ("forward", "backward") else ""
            text = one_line(exc)
            kind = type(exc).__name__
            return f"{owner.name} (a plugin) failed{where}: {kind}" + (f": {text}" if text else "")
    return None
