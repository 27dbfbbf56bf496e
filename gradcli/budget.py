"""The memory budget: how much memory gradcli, and the programs it starts, may take.

Without one, an input that needs more memory than the machine has is ended by the kernel's OOM
killer (or drags the machine into swap first). With one, an allocation past it fails at once
(NumPy raises MemoryError) and the user reads ``error: out of memory ...``.

The budget is enforced by the kernel as ``RLIMIT_DATA``: the process's heap and private writable
mappings, which is where NumPy's arrays and Python's objects live. Not ``RLIMIT_AS``: that counts
all address space, including reservations that hold no memory (each thread's malloc arena
reserves 64 MiB, CUDA reserves terabytes), so it refuses work that would fit. Both count memory
when it is reserved rather than when it is touched, so OpenBLAS's per-thread buffers (about 40 MiB
for each thread, started with NumPy) are part of the budget. They are allocated as the library
loads, which happens with the limit as it was before gradcli lowered it (:func:`loading`): under
a limit too tight for them OpenBLAS's threads retry for ever, and gradcli would hang instead of
saying that the budget is too small. The buffers OpenBLAS takes later, at the first matrix
product each thread shares, are taken inside :func:`loading` too where the budget is tight, and
left out of it (:func:`_take_blas_buffers`): OpenBLAS ends the process itself where it cannot
have them.

The default is half of the physical memory (or of the container's memory limit, if that is
lower): enough for large work, and it leaves the other half to the rest of the machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

__all__ = [
    "DEFAULT",
    "ENV_VAR",
    "SIZE",
    "BudgetTooSmallError",
    "apply",
    "child_preexec",
    "limit",
    "loading",
    "format_size",
    "parse_size",
    "physical_memory",
    "room",
]

ENV_VAR = "GRADCLI_MAX_MEMORY"
# Half the memory: enough for large work, and the other half stays for the rest of the machine.
DEFAULT = "50%"
UNLIMITED = ("none", "unlimited")

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgtp]?)(?:i?b)?", re.IGNORECASE)
_PERCENT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*%")
# Container memory limits, cgroup v2 then v1 ("max" or a huge number when there is none).
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def physical_memory() -> int | None:
    """Bytes of memory this process can have: the machine's, or its container's if lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    for path in _CGROUP_LIMITS:
        try:
            with open(path, "rb") as f:  # (bytes: a text encoding would be one more import)
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total if total > 0 else None


def parse_size(text: str) -> int | None:
    """``4G``, ``512M``, ``1.5GiB``, ``100000`` (bytes), ``25%`` (of the physical memory), or
    ``none``/``unlimited`` (None). Units are binary, as for ``ulimit`` and ``sort -S``."""
    stripped = text.strip()
    if stripped.lower() in UNLIMITED:
        return None
    percent = _PERCENT.fullmatch(stripped)
    if percent:
        memory = physical_memory()
        if memory is None:
            raise ValueError("the physical memory of this machine is unknown: give a size like 4G")
        return int(memory * float(percent.group(1)) / 100)
    size = _SIZE.fullmatch(stripped)
    if not size:
        raise ValueError(f"expected a size like 4G, 512M, 25% or unlimited, got {text!r}")
    number = float(size.group(1)) * _UNITS[size.group(2).lower()]
    if not number < _LARGEST:  # (the kernel's limits are 64-bit; inf too)
        raise ValueError(f"{text!r} is more than any machine has: give a size like 4G, or unlimited")
    return int(number)


# Sizes from 8 EiB up do not fit the kernel's limits (and no machine has them).
_LARGEST = float(1 << 63)


def format_size(n: int) -> str:
    """Bytes as the shortest of ``parse_size``'s forms that is close: ``11.5G``, ``768M``."""
    for unit in "PTGMK":
        scale = _UNITS[unit.lower()]
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n}B"


class _SizeType(click.ParamType):
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, int):
            return value
        try:
            size = parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if size is not None and size < 1:
            self.fail("the memory budget must be more than 0 bytes (or unlimited)", param, ctx)
        return size


SIZE = _SizeType()


def _resource() -> Any:
    """The ``resource`` module where the kernel enforces data limits, else None."""
    if sys.platform == "win32":
        return None
    import resource

    return resource


def apply(budget: int | None) -> Callable[[], None]:
    """Limit this process to ``budget`` bytes (None: no limit of ours) and return the function
    that puts the limit back as it was (for in-process callers: tests, ``gradcli.cli.run``).

    A lower limit set by the user (``ulimit -d``) stays: the budget only ever lowers it.
    """
    global _before
    resource = _resource()
    if resource is None or budget is None:
        return lambda: None
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    wanted = min([budget] + [x for x in (soft, hard) if x != resource.RLIM_INFINITY])
    if wanted == soft:
        return lambda: None
    resource.setrlimit(resource.RLIMIT_DATA, (wanted, hard))
    _before = soft

    def put_back() -> None:
        global _before
        _before = None
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))

    return put_back


# The data limit as it was before apply() lowered it (None: not lowered), for loading().
_before: int | None = None


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """Around the first import of a library with native code that allocates as it loads (NumPy,
    SciPy: OpenBLAS takes a buffer for each of its threads): the data limit as it was before the
    budget lowered it, so that the library loads whole, or fails as it would without gradcli.
    Once loaded, what it holds counts against the budget as any other memory does; a budget that
    it already fills ends the first work past it with the usual out-of-memory error. (Without
    this, a budget of 150M made ``gradcli eval "erf(x)"`` spin for ever in SciPy's OpenBLAS.)"""
    resource = _resource()
    lowered = _before
    if resource is None or lowered is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (lowered, hard))
    try:
        yield
        used = _usage().get("VmData", 0)
        taken = _take_blas_buffers(soft, used)
        soft, used = soft + taken, used + taken
    except BaseException:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
        raise
    if used > soft:  # nothing more could be allocated: the error is said without the limit
        raise BudgetTooSmallError(
            f"the memory budget (--max-memory {format_size(soft - _blas_buffers)}) is less than gradcli "
            f"takes to start ({format_size(used - _blas_buffers)} here, with the libraries it loads): "
            "raise --max-memory"
        )
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


# What OpenBLAS takes for a thread's buffer at its first matrix product on that thread (32 MiB
# measured, and some to spare): the headroom under the budget below which loading() has it
# taken at once.
_BLAS_BUFFER = 64 << 20
_blas_taken = False
_blas_buffers = 0  # what taking them added to the data segment, and so to the limit


def _take_blas_buffers(limit: int, used: int) -> int:
    """Where the budget (``limit``, with ``used`` of it taken) leaves less room than NumPy's
    OpenBLAS may take for its buffers, have it take them now, inside :func:`loading`, and return
    the bytes they took (0 if nothing was done).

    OpenBLAS allocates a buffer for each thread at the first matrix product big enough to share
    among them, and where it cannot, it ends the process itself (status 1, "OpenBLAS error:
    Memory allocation still failed after 10 retries, giving up.", no word of gradcli's:
    ``x @ A`` or a plot under ``--max-memory 120M``). Taken here, they are left out of the budget,
    as a limit raised by what they took: reserved address space that a product only touches as
    far as it needs, and of a size set by the machine's number of CPUs (2 GiB for 64 threads), not
    by the work. With room enough (the default budget) nothing is done: the start stays as fast."""
    global _blas_taken, _blas_buffers
    numpy = sys.modules.get("numpy")
    if numpy is None or _blas_taken:
        return 0
    if limit - used >= _BLAS_BUFFER * _blas_threads():
        return 0
    _blas_taken = True
    a = numpy.ones((256, 256))  # (2^24 multiply-adds: enough for every thread OpenBLAS has, up to 64)
    a @ a
    del a
    taken = max(0, _usage().get("VmData", 0) - used)
    _blas_buffers += taken
    return taken


def _blas_threads() -> int:
    """How many threads OpenBLAS runs: as its environment says, else one for each CPU."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


class BudgetTooSmallError(MemoryError):
    """The budget is smaller than what gradcli holds once its libraries are loaded."""


def _usage() -> dict[str, int]:
    """This process's data segment and address space in bytes, from /proc (Linux)."""
    found: dict[str, int] = {}
    try:
        with open("/proc/self/status", "rb") as f:  # (bytes: no text encoding to import)
            for line in f:
                key, _, value = line.partition(b":")
                if key in (b"VmData", b"VmSize"):
                    found[key.decode()] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return found


def limit() -> int | None:
    """The budget in force (this process's data limit, less OpenBLAS's buffers where they were
    left out of it: :func:`_take_blas_buffers`), or None if there is none."""
    resource = _resource()
    if resource is None:
        return None
    soft = resource.getrlimit(resource.RLIMIT_DATA)[0]
    return None if soft == resource.RLIM_INFINITY else soft - _blas_buffers


def room() -> int | None:
    """Bytes this process may still allocate before it runs out (None: no limit known).

    Both limits count: the budget (``RLIMIT_DATA``) and an address-space limit the user may
    have set (``ulimit -v``).
    """
    resource = _resource()
    if resource is None:
        return None
    usage = _usage()
    left = []
    for which, key in ((resource.RLIMIT_DATA, "VmData"), (resource.RLIMIT_AS, "VmSize")):
        soft = resource.getrlimit(which)[0]
        if soft != resource.RLIM_INFINITY:
            left.append(max(0, soft - usage.get(key, 0)))
    return min(left) if left else None


def child_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess`` that holds a child (Graphviz's ``dot``) to the room
    left in the budget, so that gradcli and the child together stay within it; None when there
    is no budget. The limit is worked out here, before the fork: the child only sets it."""
    resource = _resource()
    left = room()
    if resource is None or left is None:
        return None
    hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
    wanted = left if hard == resource.RLIM_INFINITY else min(left, hard)
    setrlimit, which = resource.setrlimit, resource.RLIMIT_DATA

    def preexec() -> None:
        setrlimit(which, (wanted, hard))

    return preexec
